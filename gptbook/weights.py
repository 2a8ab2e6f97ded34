"""Loading OpenAI's GPT-2 weights, in the Hugging Face format, into ``GPTModel`` (notebook 09).

``load_gpt2_checkpoint(name_or_path)`` is ``GPTModel.from_pretrained(name_or_path)``. How the tensors are renamed,
split and transposed is in ``gptbook.loading.hf_gpt2`` (its docstring has the table of names); which folder or hub id
a name means, in ``gptbook.loading.source``; the checked load, in ``gptbook.loading.state``. This module keeps the
public path ``gptbook.weights`` that notebook 09 and the tests use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import torch

from .loading.hf_gpt2 import CONFIG_FILE, WEIGHTS_FILE, config_from_hf, hf_to_gptbook_state_dict, read_hf_gpt2
from .loading.state import load_state_dict_checked
from .model import GPTModel

__all__ = ["CONFIG_FILE", "WEIGHTS_FILE", "config_from_hf", "hf_to_gptbook_state_dict", "load_gpt2_checkpoint",
           "load_state_dict_checked", "read_hf_gpt2"]


def load_gpt2_checkpoint(
    name_or_path: Union[str, Path],
    dtype: Optional[torch.dtype] = None,
    device: Union[str, torch.device, None] = None,
) -> GPTModel:
    """Build a ``GPTModel`` from a Hugging Face GPT-2 checkpoint (folder or model id); eval mode.
    The same as ``GPTModel.from_pretrained``."""
    return GPTModel.from_pretrained(name_or_path, dtype=dtype, device=device)
