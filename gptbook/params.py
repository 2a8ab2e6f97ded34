"""Where every parameter of a GPT comes from, computed by hand from the configuration.

For ``GPT_CONFIG_124M`` (emb_dim d = 768, vocab V = 50,257, context C = 1,024, 12 layers):

    token embedding       V * d                         38,597,376
    positional embedding  C * d                            786,432
    per block:
      attention           3 * d*d (+ 3*d qkv bias) + d*d + d (out_proj)     2,360,064
      feed-forward        d*4d + 4d + 4d*d + d                              4,722,432
      two LayerNorms      2 * (d + d)                                           3,072
      block total                                                           7,085,568
    all 12 blocks                                       85,026,816
    final LayerNorm       2 * d                              1,536
    output head           d * V (no bias)               38,597,376
    total                                              163,009,536
    with weight tying (head = token embedding)         124,412,160
    ... and with qkv biases, as OpenAI's GPT-2 has     124,439,808   (+ 12 * 3 * 768 = 27,648)

Taught in notebook 06 (the GPT model); ``count_parameters`` checks the sums on a real model.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .config import validate_config

BYTES_PER_PARAM = {"fp32": 4, "bf16": 2}


def parameter_breakdown(cfg: dict[str, Any]) -> dict[str, int]:
    """Count the parameters of ``GPTModel(cfg)`` piece by piece, without building it.

    Returns a dict with the keys ``token_embedding``, ``positional_embedding``,
    ``attention_per_block``, ``feed_forward_per_block``, ``norms_per_block``, ``per_block``,
    ``all_blocks``, ``final_norm``, ``output_head``, ``total`` (separate output head),
    ``total_tied`` (output head sharing the token embedding), ``total_tied_with_qkv_bias`` (the
    same with bias in the query/key/value projections, as in OpenAI's released GPT-2: for the
    124M sizes that is the well-known 124,439,808) and ``trainable`` (the number that applies to
    ``cfg`` itself, following its ``tie_weights``).
    """
    cfg = validate_config(cfg)
    d, vocab, ctx = cfg["emb_dim"], cfg["vocab_size"], cfg["context_length"]
    qkv_bias = 3 * d if cfg["qkv_bias"] else 0
    attention = 3 * d * d + qkv_bias + d * d + d  # W_query, W_key, W_value (+ biases), out_proj (+ bias)
    feed_forward = (d * 4 * d + 4 * d) + (4 * d * d + d)  # expand to 4d, project back
    norms = 2 * (d + d)  # norm1 and norm2, each a scale and a shift
    per_block = attention + feed_forward + norms
    parts = {
        "token_embedding": vocab * d,
        "positional_embedding": ctx * d,
        "attention_per_block": attention,
        "feed_forward_per_block": feed_forward,
        "norms_per_block": norms,
        "per_block": per_block,
        "all_blocks": per_block * cfg["n_layers"],
        "final_norm": 2 * d,
        "output_head": d * vocab,
    }
    total_tied = parts["token_embedding"] + parts["positional_embedding"] + parts["all_blocks"] + parts["final_norm"]
    parts["total"] = total_tied + parts["output_head"]
    parts["total_tied"] = total_tied
    parts["total_tied_with_qkv_bias"] = total_tied + (0 if cfg["qkv_bias"] else 3 * d * cfg["n_layers"])
    parts["trainable"] = total_tied if cfg["tie_weights"] else parts["total"]
    return parts


def count_parameters(model: nn.Module) -> int:
    """The number of distinct parameters in ``model`` (a tied matrix counts once)."""
    return sum(p.numel() for p in model.parameters())  # .parameters() yields shared tensors once


def model_size_mb(num_params: int, dtype: str | torch.dtype = "fp32") -> float:
    """Memory taken by ``num_params`` weights in megabytes (1 MB = 1024² bytes).

    ``dtype`` is ``"fp32"``, ``"bf16"`` or a ``torch.dtype``.
    """
    if isinstance(dtype, torch.dtype):
        bytes_per = torch.empty((), dtype=dtype).element_size()
    elif dtype in BYTES_PER_PARAM:
        bytes_per = BYTES_PER_PARAM[dtype]
    else:
        raise ValueError(f"dtype must be 'fp32', 'bf16' or a torch.dtype, got {dtype!r}")
    return num_params * bytes_per / 1024**2


def format_breakdown(cfg: dict[str, Any]) -> str:
    """A printable table of ``parameter_breakdown(cfg)`` with sizes in MB for fp32 and bf16."""
    parts = parameter_breakdown(cfg)
    labels = {
        "token_embedding": "token embedding",
        "positional_embedding": "positional embedding",
        "attention_per_block": "  attention (per block)",
        "feed_forward_per_block": "  feed-forward (per block)",
        "norms_per_block": "  2 LayerNorms (per block)",
        "per_block": "  one block",
        "all_blocks": f"all {cfg['n_layers']} blocks",
        "final_norm": "final LayerNorm",
        "output_head": "output head",
        "total": "total (separate output head)",
        "total_tied": "total with weight tying",
        "total_tied_with_qkv_bias": "... and with qkv bias (GPT-2)",
    }
    lines = [f"{label:<30}{parts[key]:>15,}" for key, label in labels.items()]
    for key in ("total", "total_tied"):
        lines.append(
            f"{labels[key] + ' size':<30}{model_size_mb(parts[key], 'fp32'):>12,.2f} MB fp32 "
            f"{model_size_mb(parts[key], 'bf16'):>9,.2f} MB bf16"
        )
    return "\n".join(lines)
