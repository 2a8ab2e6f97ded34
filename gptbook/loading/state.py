"""One checked state-dict load: every name and shape is compared before anything is copied, so a checkpoint
that does not fit leaves the model as it was, and the error names the tensor and both shapes."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

BUILD_WITH_ITS_CONFIG = "build the model with the configuration the checkpoint was saved with"


def _is_tied_head(model: nn.Module, name: str) -> bool:
    """A tied model's output head is its token embedding: a checkpoint need not hold it twice."""
    return name == "out_head.weight" and bool(getattr(model, "cfg", {}).get("tie_weights", False))


def check_state_dict(model: nn.Module, state: dict[str, torch.Tensor], *, fix: str = BUILD_WITH_ITS_CONFIG,
                     error: type[Exception] = ValueError, allow_tied_head: bool = True) -> None:
    """Raise ``error`` unless ``state`` has exactly the tensors ``model`` needs, each of the model's shape.

    ``fix`` ends the messages about a missing tensor or a shape (what the user should do). With
    ``allow_tied_head`` a tied model's ``out_head.weight`` may be absent (it is ``tok_emb.weight``).
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not (allow_tied_head and _is_tied_head(model, k))]
    if missing:
        raise error(f"the checkpoint lacks {len(missing)} tensor(s) the model needs, e.g. {missing[0]!r}; {fix}")
    unexpected = [k for k in state if k not in expected]
    if unexpected:
        raise error(f"the checkpoint has {len(unexpected)} tensor(s) the model does not know, e.g. "
                    f"{unexpected[0]!r}; it was saved from a different architecture")
    for name, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise error(f"tensor {name!r} has shape {tuple(tensor.shape)} in the checkpoint but "
                        f"{tuple(expected[name].shape)} in the model; {fix}")


def load_state_dict_checked(model: nn.Module, state: dict[str, torch.Tensor], *, fix: Optional[str] = None,
                            error: type[Exception] = ValueError) -> None:
    """Copy ``state`` into ``model`` after ``check_state_dict`` (nothing is copied unless everything fits)."""
    check_state_dict(model, state, fix=fix or BUILD_WITH_ITS_CONFIG, error=error)
    model.load_state_dict(state, strict=False)
