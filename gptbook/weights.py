"""Loading OpenAI's GPT-2 weights, in the Hugging Face format, into ``GPTModel``.

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

Taught in notebook 09 (real GPT-2 weights).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Union

import torch

from .config import validate_config
from .model import GPTModel

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


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


def load_state_dict_checked(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy ``state`` into ``model`` after checking that every name and shape matches.

    Nothing is copied unless everything matches, so a bad checkpoint leaves the model as it was.
    The error names the offending tensor and both shapes.
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not _is_tied_duplicate(model, k)]
    unexpected = [k for k in state if k not in expected]
    if missing:
        raise ValueError(f"the checkpoint lacks {len(missing)} tensor(s) the model needs, e.g. {missing[0]!r}")
    if unexpected:
        raise ValueError(f"the checkpoint has {len(unexpected)} tensor(s) the model does not know, e.g. {unexpected[0]!r}")
    for name, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise ValueError(
                f"tensor {name!r} has shape {tuple(tensor.shape)} in the checkpoint but {tuple(expected[name].shape)} "
                "in the model; build the model with the configuration the checkpoint was saved with"
            )
    model.load_state_dict(state, strict=False)


def _is_tied_duplicate(model: torch.nn.Module, name: str) -> bool:
    return name == "out_head.weight" and getattr(model, "cfg", {}).get("tie_weights", False)


def _resolve_folder(name_or_path: Union[str, Path]) -> Path:
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    if path.exists() or str(name_or_path).startswith((".", "/", "~")):
        raise ValueError(f"{name_or_path!s} is not a folder holding {CONFIG_FILE} and {WEIGHTS_FILE}")
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise ValueError(
            f"{name_or_path!r} is not a local folder, and downloading it needs huggingface_hub "
            "(pip install huggingface_hub)"
        ) from exc
    try:
        return Path(snapshot_download(str(name_or_path), allow_patterns=[CONFIG_FILE, WEIGHTS_FILE]))
    except Exception as exc:  # no network, unknown id, ...
        raise ValueError(
            f"could not get {name_or_path!r} from the Hugging Face hub ({type(exc).__name__}: {exc}). "
            f"Offline, pass a local folder with {CONFIG_FILE} and {WEIGHTS_FILE} instead."
        ) from exc


def load_gpt2_checkpoint(
    name_or_path: Union[str, Path],
    dtype: Optional[torch.dtype] = None,
    device: Union[str, torch.device, None] = None,
) -> GPTModel:
    """Build a ``GPTModel`` from a Hugging Face GPT-2 checkpoint (folder or model id); eval mode."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = _resolve_folder(name_or_path)
    config_path, weights_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    for needed in (config_path, weights_path):
        if not needed.is_file():
            raise ValueError(f"{folder} has no {needed.name}; a GPT-2 checkpoint needs {CONFIG_FILE} and {WEIGHTS_FILE}")
    cfg = config_from_hf(json.loads(config_path.read_text(encoding="utf-8")))
    try:
        hf_state = load_file(str(weights_path))
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"{weights_path} is not a readable safetensors file ({exc}); download it again") from exc

    state = hf_to_gptbook_state_dict(hf_state, cfg)
    with torch.device("meta"):
        model = GPTModel(cfg)  # no memory, no random initialisation: every weight is loaded below
    model = model.to_empty(device="cpu")
    for module in model.modules():  # to_empty leaves buffers empty too: rebuild the causal masks
        if hasattr(module, "mask"):
            n = module.mask.shape[0]
            module.mask = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
    if cfg["tie_weights"]:
        model.out_head.weight = model.tok_emb.weight
    load_state_dict_checked(model, state)
    if dtype is not None or device is not None:
        model = model.to(device=device, dtype=dtype)
    return model.eval()
