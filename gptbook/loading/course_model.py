"""The shipped course model, read back: its weights and metadata in ``gptbook/data``, checked and loaded.

``load_course_model()`` checks the weights' sha256 against the metadata and builds the model (about a second,
offline); ``course_model_info()`` is the metadata. Making those files from a training run (training, probes,
export) is ``gptbook.training.course_model``'s job; this part only reads, so that the dashboard and the
notebooks can use it without importing the trainer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .checkpoint import _sha256

if TYPE_CHECKING:
    from ..model import GPTModel

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
#: The shipped weights (bf16 safetensors) and their metadata.
WEIGHTS_FILE = DATA_DIR / "course_model.safetensors"
INFO_FILE = DATA_DIR / "course_model.json"


def course_model_info() -> dict[str, Any]:
    """The shipped course model's metadata: recipe, corpus hash, run figures, probes, history."""
    if not INFO_FILE.is_file():
        raise FileNotFoundError(
            f"the course model's metadata {INFO_FILE.name} is missing from {DATA_DIR}; reinstall gptbook "
            "(pip install -e . from the repository, or the Colab setup cell) to get the shipped model back"
        )
    return json.loads(INFO_FILE.read_text(encoding="utf-8"))


def load_course_model(verify: bool = True) -> GPTModel:
    """Return the course's trained tiny GPT (fp32, eval mode), loaded from the weights shipped with gptbook.

    Args:
        verify: check the weights file's sha256 against the metadata first (a damaged or
            half-downloaded file is refused with a ``ValueError`` instead of giving a broken model).
    """
    from safetensors.torch import load_file

    info = course_model_info()
    if not WEIGHTS_FILE.is_file():
        raise FileNotFoundError(
            f"the course model's weights {WEIGHTS_FILE.name} are missing from {DATA_DIR}; reinstall gptbook "
            "(pip install -e . from the repository, or the Colab setup cell)"
        )
    if verify and _sha256(WEIGHTS_FILE) != info["sha256"]:
        raise ValueError(
            f"{WEIGHTS_FILE} does not match its recorded sha256 (the file is damaged or was replaced); "
            "restore it with `git checkout -- gptbook/data` or reinstall gptbook"
        )
    state = load_file(str(WEIGHTS_FILE))  # bf16 tensors; the output head is tied to tok_emb (not stored)
    state["out_head.weight"] = state["tok_emb.weight"]
    from ..model import GPTModel  # here, not at the top: loading the course model is the only use

    model = GPTModel(info["config"])
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return model.eval()
