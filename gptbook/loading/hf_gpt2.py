"""Reading OpenAI's GPT-2 weights in the Hugging Face format, as a gptbook configuration and state dict.

A Hugging Face GPT-2 checkpoint is a folder with ``config.json`` and ``model.safetensors``.
Its tensor names differ from ours, and two details need care:

- the query, key and value projections are fused into one ``c_attn`` matrix, which we split
  into ``W_query``, ``W_key`` and ``W_value``;
- GPT-2 stores its linear layers as "Conv1D" with weights of shape (in, out), while
  ``nn.Linear`` stores (out, in): those four matrices per block are transposed.

    ours                              Hugging Face (prefix "transformer." is optional)
    tok_emb.weight                    wte.weight
    pos_emb.weight                    wpe.weight
    trf_blocks.i.norm1.scale/shift    h.i.ln_1.weight/bias
    trf_blocks.i.att.W_query/key/value  h.i.attn.c_attn.weight/bias  (split in 3, transposed)
    trf_blocks.i.att.out_proj         h.i.attn.c_proj.weight/bias     (transposed)
    trf_blocks.i.norm2.scale/shift    h.i.ln_2.weight/bias
    trf_blocks.i.ff.layers.0          h.i.mlp.c_fc.weight/bias        (transposed)
    trf_blocks.i.ff.layers.2          h.i.mlp.c_proj.weight/bias      (transposed)
    final_norm.scale/shift            ln_f.weight/bias
    out_head.weight                   tied to wte.weight

``GPTModel.from_pretrained`` (and ``gptbook.weights.load_gpt2_checkpoint``) build the model from
what ``read_hf_gpt2`` returns. Taught in notebook 09 (real GPT-2 weights).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Union

import torch

from ..config import validate_config
from .source import HF_CONFIG, HF_WEIGHTS, hf_folder

CONFIG_FILE = HF_CONFIG  # "config.json"
WEIGHTS_FILE = HF_WEIGHTS  # "model.safetensors"


def config_from_hf(hf_config: dict[str, Any]) -> dict[str, Any]:
    """Translate a Hugging Face GPT-2 ``config.json`` into a gptbook configuration."""
    try:
        cfg = {
            "vocab_size": hf_config["vocab_size"],
            "context_length": hf_config.get("n_positions", hf_config.get("n_ctx")),
            "emb_dim": hf_config["n_embd"],
            "n_heads": hf_config["n_head"],
            "n_layers": hf_config["n_layer"],
            "drop_rate": float(hf_config.get("resid_pdrop", 0.1)),
            "qkv_bias": True,
            "tie_weights": bool(hf_config.get("tie_word_embeddings", True)),
        }
    except KeyError as exc:
        raise ValueError(f"config.json lacks the GPT-2 field {exc.args[0]!r}; is this a GPT-2 checkpoint?") from None
    activation = hf_config.get("activation_function", "gelu_new")
    if activation not in ("gelu_new", "gelu_pytorch_tanh"):
        raise ValueError(
            f"config.json asks for activation {activation!r}, but gptbook implements GPT-2's tanh GELU ('gelu_new') only"
        )
    return validate_config(cfg)


def hf_to_gptbook_state_dict(hf_state: dict[str, torch.Tensor], cfg: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Rename, split and transpose a Hugging Face GPT-2 state dict into gptbook's names."""
    prefix = "transformer." if any(k.startswith("transformer.") for k in hf_state) else ""

    def get(name: str) -> torch.Tensor:
        key = prefix + name
        if key not in hf_state:
            raise ValueError(f"the checkpoint has no tensor {key!r}; it does not look like a complete GPT-2 checkpoint")
        return hf_state[key]

    emb = cfg["emb_dim"]
    sd: dict[str, torch.Tensor] = {"tok_emb.weight": get("wte.weight"), "pos_emb.weight": get("wpe.weight")}
    for i in range(cfg["n_layers"]):
        h, ours = f"h.{i}.", f"trf_blocks.{i}."
        sd[ours + "norm1.scale"], sd[ours + "norm1.shift"] = get(h + "ln_1.weight"), get(h + "ln_1.bias")
        sd[ours + "norm2.scale"], sd[ours + "norm2.shift"] = get(h + "ln_2.weight"), get(h + "ln_2.bias")
        c_attn_w, c_attn_b = get(h + "attn.c_attn.weight"), get(h + "attn.c_attn.bias")
        if c_attn_w.shape != (emb, 3 * emb):
            raise ValueError(
                f"tensor {prefix + h}attn.c_attn.weight has shape {tuple(c_attn_w.shape)}, expected {(emb, 3 * emb)} "
                f"for emb_dim={emb}"
            )
        # c_attn is (emb, 3*emb) = [query | key | value] along the output dimension, stored (in, out).
        for name, w, bias in zip(("W_query", "W_key", "W_value"), c_attn_w.split(emb, dim=1), c_attn_b.split(emb)):
            sd[ours + f"att.{name}.weight"] = w.T
            sd[ours + f"att.{name}.bias"] = bias
        sd[ours + "att.out_proj.weight"], sd[ours + "att.out_proj.bias"] = get(h + "attn.c_proj.weight").T, get(h + "attn.c_proj.bias")
        sd[ours + "ff.layers.0.weight"], sd[ours + "ff.layers.0.bias"] = get(h + "mlp.c_fc.weight").T, get(h + "mlp.c_fc.bias")
        sd[ours + "ff.layers.2.weight"], sd[ours + "ff.layers.2.bias"] = get(h + "mlp.c_proj.weight").T, get(h + "mlp.c_proj.bias")
    sd["final_norm.scale"], sd["final_norm.shift"] = get("ln_f.weight"), get("ln_f.bias")
    if not cfg["tie_weights"]:
        sd["out_head.weight"] = hf_state.get("lm_head.weight", sd["tok_emb.weight"])
    return sd


def read_hf_gpt2(name_or_path: Union[str, Path]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The gptbook configuration and state dict (gptbook's names) of a Hugging Face GPT-2 checkpoint: a local
    folder with ``config.json`` and ``model.safetensors``, or a hub id such as ``"gpt2"``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = hf_folder(name_or_path)
    config_path, weights_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    for needed in (config_path, weights_path):
        if not needed.is_file():
            raise ValueError(f"{folder} has no {needed.name}; a GPT-2 checkpoint needs {CONFIG_FILE} and {WEIGHTS_FILE}")
    cfg = config_from_hf(json.loads(config_path.read_text(encoding="utf-8")))
    try:
        hf_state = load_file(str(weights_path))
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"{weights_path} is not a readable safetensors file ({exc}); download it again") from exc
    return cfg, hf_to_gptbook_state_dict(hf_state, cfg)
