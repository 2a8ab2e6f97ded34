"""Which model a name means: a gptbook checkpoint folder, a Hugging Face GPT-2 folder, or a hub id.

One rule for the command line (``gptbook generate NAME``) and for ``GPTModel.from_pretrained(NAME)``: an existing
folder is used as it is; an existing file, or a name that looks like a path but is not there, is an error (never a
download); ``hf:ORG/NAME`` is always a hub id, and so is a bare name like ``gpt2`` (and, in Python, ``ORG/NAME``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Union

CHECKPOINT_META = "checkpoint.json"  # a gptbook checkpoint folder holds this (gptbook.loading.checkpoint)
HF_CONFIG = "config.json"  # a Hugging Face GPT-2 folder holds these two
HF_WEIGHTS = "model.safetensors"


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: ``kind`` is "checkpoint" (a gptbook folder), "hf-folder" or "hub"; ``where`` is
    the folder (a ``Path``) or the hub id (a ``str``)."""

    kind: str
    where: Union[Path, str]


def _looks_like_path(text: str) -> bool:
    return "/" in text or "\\" in text or os.sep in text or text.startswith((".", "~")) or Path(text).is_absolute()


def locate_model(name: Union[str, Path], slash_hub_ids: bool = True) -> ModelSource:
    """Say where the model ``name`` is, without loading or downloading anything.

    ``slash_hub_ids``: whether ``ORG/NAME`` (one slash, no leading ``.``, ``~`` or ``/``) counts as a hub id when
    no such folder exists (Python's ``from_pretrained``: yes; the command line: no, it asks for ``hf:ORG/NAME``).
    Raises ``ValueError`` with what to do for a file, an empty folder or a missing path.
    """
    text = str(name)
    if text.startswith("hf:"):
        return ModelSource("hub", text[3:])
    path = Path(text).expanduser()
    if path.is_dir():
        if (path / CHECKPOINT_META).is_file():
            return ModelSource("checkpoint", path)
        if (path / HF_CONFIG).is_file():
            return ModelSource("hf-folder", path)
        raise ValueError(f"{text!r} is a folder but holds no model: neither a gptbook checkpoint ({CHECKPOINT_META}) "
                         f"nor GPT-2 weights ({HF_CONFIG} + {HF_WEIGHTS})")
    if path.exists():
        hint = f": give its folder, {str(path.parent)!r}" if path.name in (CHECKPOINT_META, HF_CONFIG) else ""
        raise ValueError(f"{text!r} is a file, not a checkpoint folder{hint}")
    maybe_hub_id = text.count("/") == 1 and not text.startswith((".", "~", "/"))
    if _looks_like_path(text) and not (slash_hub_ids and maybe_hub_id):
        hint = f"; if you meant the Hugging Face model {text!r}, write hf:{text}" if maybe_hub_id else ""
        raise ValueError(f"no such checkpoint folder: {text!r} (the current folder is {os.getcwd()!r}){hint}")
    return ModelSource("hub", text)


def hf_folder(name: Union[str, Path]) -> Path:
    """The local folder of a Hugging Face GPT-2 checkpoint ``name``: the folder itself, or the hub's download of
    ``config.json`` and ``model.safetensors`` (needs ``huggingface_hub`` and, the first time, a network)."""
    source = locate_model(name)
    if source.kind == "checkpoint":
        raise ValueError(f"{str(name)!r} is a gptbook checkpoint, not Hugging Face GPT-2 weights: load it with "
                         "gptbook.load_checkpoint(path)")
    if source.kind == "hf-folder":
        return Path(source.where)
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise ValueError(
            f"{source.where!r} is not a local folder, and downloading it needs huggingface_hub "
            "(pip install huggingface_hub)"
        ) from exc
    try:
        return Path(snapshot_download(str(source.where), allow_patterns=[HF_CONFIG, HF_WEIGHTS]))
    except Exception as exc:  # no network, unknown id, ...
        raise ValueError(
            f"could not get {source.where!r} from the Hugging Face hub ({type(exc).__name__}: {exc}). "
            f"Offline, pass a local folder with {HF_CONFIG} and {HF_WEIGHTS} instead."
        ) from exc
