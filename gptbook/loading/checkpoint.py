"""Saving and loading training checkpoints safely: safetensors + JSON, never pickle.

A checkpoint is a folder:

    checkpoint.json          the model configuration, your metadata (step, losses, ...), the
                             optimizer's settings, and the size and SHA-256 of the files below
    model.safetensors        the weights (a tied output head is stored once, as the embedding)
    optimizer.safetensors    the optimizer's tensors (AdamW's moving averages), if saved

``torch.save``/``torch.load`` use pickle, which can run arbitrary code hidden in a file you
downloaded; safetensors files hold nothing but tensors and JSON holds nothing but data.

Loading checks everything before it changes anything: the files' sizes and hashes (a truncated
or corrupted file is caught even when safetensors could still parse it), every tensor name and
shape against the model (the error names the tensor and both shapes), and the optimizer's
parameter groups. Only then are the weights copied in, so a failed load leaves the model and
the optimizer exactly as they were.

Taught in notebook 08 (training).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Optional, Union

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .source import CHECKPOINT_META
from .state import check_state_dict

FORMAT = "gptbook-checkpoint"
VERSION = 1
META_FILE = CHECKPOINT_META  # "checkpoint.json"
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
# Model settings that must agree between a checkpoint and a model even where shapes would not tell.
STRUCTURAL_KEYS = ("vocab_size", "context_length", "emb_dim", "n_heads", "n_layers", "qkv_bias", "tie_weights")

PathLike = Union[str, Path]


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded: missing, corrupted, or made for another model."""


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------

def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_atomic(path: Path, write) -> None:
    """Write through a temporary file, then rename: a crash never leaves half a file under ``path``."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def _tied_names(model: nn.Module) -> dict[str, str]:
    """Names in ``state_dict()`` that share storage with an earlier name: ``{duplicate: original}``."""
    seen: dict[tuple, str] = {}
    tied = {}
    for name, tensor in model.state_dict(keep_vars=True).items():
        key = (tensor.data_ptr(), tensor.dtype, tuple(tensor.shape), tensor.device.type)
        if key in seen and tensor.numel() > 0:
            tied[name] = seen[key]
        else:
            seen[key] = name
    return tied


def _to_json(value: Any, what: str) -> Any:
    """Make ``value`` JSON-friendly (tuples -> lists, 0-d tensors -> numbers) or say why it can't be."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_to_json(v, what) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_json(v, what) for k, v in value.items()}
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"{what} must hold plain data (numbers, strings, lists, dicts) to go into "
                    f"{META_FILE}; got {type(value).__name__}")


def _file_record(path: Path) -> dict[str, Any]:
    return {"bytes": path.stat().st_size, "sha256": _sha256(path)}


def _check_file(folder: Path, name: str, record: dict[str, Any]) -> Path:
    path = folder / name
    if not path.is_file():
        raise CheckpointError(f"the checkpoint {str(folder)!r} lists {name} but the file is missing")
    size = path.stat().st_size
    if size != record["bytes"]:
        raise CheckpointError(
            f"{name} in {str(folder)!r} is truncated or was overwritten: it has {size:,} bytes, the checkpoint "
            f"recorded {record['bytes']:,}. Nothing was loaded; use another checkpoint or save this one again"
        )
    if _sha256(path) != record["sha256"]:
        raise CheckpointError(
            f"{name} in {str(folder)!r} is corrupted: its SHA-256 does not match the one recorded when it was "
            "saved. Nothing was loaded; use another checkpoint or save this one again"
        )
    return path


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"cannot read {str(path)!r} as safetensors ({exc}); nothing was loaded") from None


# ---------------------------------------------------------------------------------------------
# Saving
# ---------------------------------------------------------------------------------------------

def _optimizer_to_files(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into tensors (for safetensors) and everything else (for JSON)."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    values: dict[str, dict[str, Any]] = {}
    for param_id, state in sd["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{param_id}.{key}"] = value.detach().cpu().contiguous()
            else:
                values.setdefault(str(param_id), {})[key] = _to_json(value, "the optimizer state")
    info = {
        "class": type(optimizer).__name__,
        "param_groups": _to_json(sd["param_groups"], "the optimizer's param_groups"),
        "state_values": values,
    }
    return tensors, info


def save_checkpoint(path: PathLike, model: nn.Module, optimizer: Optional[torch.optim.Optimizer] = None,
                    **metadata: Any) -> Path:
    """Save ``model`` (and ``optimizer``) to the folder ``path``; returns the folder.

    Keyword arguments become metadata in ``checkpoint.json`` (for example ``step=1000``,
    ``train_losses=[...]``); read them back with ``load_checkpoint_metadata``. The model must
    have a ``cfg`` dict (every ``GPTModel`` has) so that ``load_checkpoint`` can rebuild it.
    Existing files in the folder are replaced.
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{str(folder)!r} is a file; a checkpoint is a folder, give a folder path")
    cfg = getattr(model, "cfg", None)
    if not isinstance(cfg, dict):
        raise TypeError("save_checkpoint needs a model with a .cfg configuration dict, such as a GPTModel")
    folder.mkdir(parents=True, exist_ok=True)

    tied = _tied_names(model)
    weights = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items() if name not in tied}
    _write_atomic(folder / MODEL_FILE, lambda p: save_file(weights, str(p), metadata={"format": "pt"}))
    files = {MODEL_FILE: _file_record(folder / MODEL_FILE)}

    optimizer_info = None
    if optimizer is not None:
        tensors, optimizer_info = _optimizer_to_files(optimizer)
        _write_atomic(folder / OPTIMIZER_FILE, lambda p: save_file(tensors, str(p), metadata={"format": "pt"}))
        files[OPTIMIZER_FILE] = _file_record(folder / OPTIMIZER_FILE)
    elif (folder / OPTIMIZER_FILE).exists():
        (folder / OPTIMIZER_FILE).unlink()  # stale: from an earlier save of this folder

    meta = {
        "format": FORMAT,
        "version": VERSION,
        "config": _to_json(cfg, "the model configuration"),
        "tied": tied,
        "files": files,
        "optimizer": optimizer_info,
        "metadata": _to_json(metadata, "the metadata"),
    }
    text = json.dumps(meta, indent=1)
    _write_atomic(folder / META_FILE, lambda p: p.write_text(text, encoding="utf-8"))
    return folder


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------

def _read_meta(folder: Path) -> dict[str, Any]:
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        hint = ""
        if (folder / "config.json").is_file():
            hint = " It looks like a Hugging Face model folder: load it with GPTModel.from_pretrained(path)."
        raise CheckpointError(f"{str(folder)!r} is not a gptbook checkpoint: it has no {META_FILE}.{hint}")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{str(meta_path)!r} is corrupted ({exc}); nothing was loaded") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{str(meta_path)!r} is not a gptbook checkpoint description")
    if meta.get("version", 0) > VERSION:
        raise CheckpointError(f"{str(folder)!r} was written by a newer gptbook (format version {meta['version']}); "
                              "upgrade gptbook to load it")
    return meta


def load_checkpoint_metadata(path: PathLike) -> dict[str, Any]:
    """The metadata saved with a checkpoint (``step``, losses, ...), plus its model ``config``."""
    meta = _read_meta(Path(path))
    return {**meta.get("metadata", {}), "config": meta["config"]}


def _check_against_model(state: dict[str, torch.Tensor], model: nn.Module, ckpt_cfg: dict[str, Any],
                         folder: Path) -> None:
    """Raise ``CheckpointError`` unless every name and shape in ``state`` fits ``model`` and the structural
    configuration fields agree."""
    check_state_dict(model, state, error=CheckpointError, allow_tied_head=False,
                     fix=f"build the model with the configuration of {str(folder)!r} (load_checkpoint(path) does)")
    model_cfg = getattr(model, "cfg", None)
    if isinstance(model_cfg, dict):
        for key in STRUCTURAL_KEYS:
            a, b = ckpt_cfg.get(key, False), model_cfg.get(key, False)
            if a != b:
                raise CheckpointError(f"configuration field {key!r} is {a!r} in the checkpoint but {b!r} in the "
                                      "model; build the model with the checkpoint's configuration")


def _optimizer_state_from_files(tensors: dict[str, torch.Tensor], info: dict[str, Any],
                                optimizer: torch.optim.Optimizer, folder: Path) -> dict[str, Any]:
    """Rebuild an ``optimizer.state_dict()`` and check it against ``optimizer``'s parameters."""
    if info.get("class") != type(optimizer).__name__:
        raise CheckpointError(f"the checkpoint holds {info.get('class')} state, but the optimizer is a "
                              f"{type(optimizer).__name__}")
    groups = info["param_groups"]
    if len(groups) != len(optimizer.param_groups):
        raise CheckpointError(f"the checkpoint's optimizer has {len(groups)} parameter group(s), this one "
                              f"{len(optimizer.param_groups)}; create it the same way (make_optimizer)")
    params: dict[int, torch.Tensor] = {}
    for saved, current in zip(groups, optimizer.param_groups):
        if len(saved["params"]) != len(current["params"]):
            raise CheckpointError(f"a parameter group has {len(saved['params'])} parameters in the checkpoint but "
                                  f"{len(current['params'])} in the optimizer; it was built for another model")
        params.update(zip(saved["params"], current["params"]))
        if "betas" in saved:
            saved["betas"] = tuple(saved["betas"])
    state: dict[int, dict[str, Any]] = {}
    for name, tensor in tensors.items():
        _, param_id, key = name.split(".", 2)
        state.setdefault(int(param_id), {})[key] = tensor
    for param_id, values in info.get("state_values", {}).items():
        state.setdefault(int(param_id), {}).update(values)
    for param_id, values in state.items():
        if param_id not in params:
            raise CheckpointError(f"optimizer state for unknown parameter {param_id} in {str(folder)!r}")
        for key, value in values.items():
            if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != params[param_id].shape:
                raise CheckpointError(f"optimizer tensor {key!r} of parameter {param_id} has shape "
                                      f"{tuple(value.shape)} in the checkpoint but the parameter has shape "
                                      f"{tuple(params[param_id].shape)}")
    return {"state": dict(sorted(state.items())), "param_groups": groups}


def load_checkpoint(path: PathLike, model: Optional[nn.Module] = None,
                    optimizer: Optional[torch.optim.Optimizer] = None,
                    device: Union[str, torch.device, None] = None) -> nn.Module:
    """Load a checkpoint saved by ``save_checkpoint``; returns the model.

    Args:
        path: the checkpoint folder.
        model: load into this model; ``None`` builds a ``GPTModel`` from the saved configuration,
            in the dtype its weights were saved in (a bf16 model comes back in bf16).
        optimizer: also restore this optimizer's state (it must be built for ``model`` the same
            way as the saved one).
        device: move a newly built model there (default: the CPU).

    Raises ``CheckpointError`` (a ``ValueError``) for a missing, truncated or corrupted file,
    or for a checkpoint that does not fit the model (naming the tensor and both shapes); the
    model and optimizer are left untouched then. Never unpickles anything.
    """
    folder = Path(path)
    meta = _read_meta(folder)
    files = meta.get("files", {})
    if MODEL_FILE not in files:
        raise CheckpointError(f"the checkpoint {str(folder)!r} lists no {MODEL_FILE}")
    state = _read_tensors(_check_file(folder, MODEL_FILE, files[MODEL_FILE]))
    for duplicate, original in meta.get("tied", {}).items():
        state[duplicate] = state[original]  # the tied head is the embedding matrix

    optimizer_state = None
    if optimizer is not None:
        if not meta.get("optimizer") or OPTIMIZER_FILE not in files:
            raise CheckpointError(f"the checkpoint {str(folder)!r} was saved without optimizer state; "
                                  "pass optimizer=None (a fresh optimizer starts from zero moments)")
        tensors = _read_tensors(_check_file(folder, OPTIMIZER_FILE, files[OPTIMIZER_FILE]))

    built = model is None
    if built:
        from ..model import GPTModel

        try:
            model = GPTModel(meta["config"])
        except ValueError as exc:
            raise CheckpointError(f"the configuration stored in {str(folder)!r} is invalid: {exc}") from None
        dtypes = {t.dtype for t in state.values() if t.is_floating_point()}
        if len(dtypes) == 1 and dtypes != {torch.float32}:
            model.to(dtypes.pop())  # e.g. a bf16 model: keep it bf16 (and half the memory)
    _check_against_model(state, model, meta["config"], folder)
    if optimizer is not None:
        optimizer_state = _optimizer_state_from_files(tensors, meta["optimizer"], optimizer, folder)

    # Everything checked: now copy (load_state_dict copies into the existing tensors, casting dtypes).
    model.load_state_dict(state, strict=True)
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)
    if built and device is not None:
        model.to(device)
    return model
