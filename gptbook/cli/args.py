"""What both commands share: the checked option types (a bad value is one line on stderr, exit status 2),
``--set KEY=VALUE``, ``--bf16``, ``--device`` and ``UsageError``."""

from __future__ import annotations

import argparse
import json
import math
from typing import TYPE_CHECKING, Any, Callable, NoReturn, Optional

if TYPE_CHECKING:
    import torch

PROG = "gptbook"


class UsageError(Exception):
    """Bad input on the command line: reported as one line on stderr, with exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake is reported in one line (no usage block) that points to ``--help``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.HelpFormatter(prog, max_help_position=32)


def _checked(convert: Callable[[str], Any], ok: Callable[[Any], bool], requirement: str) -> Callable[[str], Any]:
    """An argparse ``type``: ``convert`` the text, then insist on ``ok``; the error says ``requirement``."""
    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {requirement}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {requirement}, got {text!r}")
        return value
    return parse


_finite = math.isfinite
WHOLE_1 = _checked(int, lambda v: v >= 1, "a whole number >= 1")
WHOLE_0 = _checked(int, lambda v: v >= 0, "a whole number >= 0")
SEED = _checked(int, lambda v: 0 <= v < 2**32, "a whole number from 0 to 4294967295")
ABOVE_0 = _checked(float, lambda v: _finite(v) and v > 0, "a number > 0")
AT_LEAST_0 = _checked(float, lambda v: _finite(v) and v >= 0, "a number >= 0")
PROBABILITY = _checked(float, lambda v: _finite(v) and 0 < v <= 1, "a number above 0 and at most 1")
SHARE = _checked(float, lambda v: _finite(v) and 0 <= v <= 1, "a number from 0 to 1")


def parse_override(text: str) -> tuple[str, Any]:
    """``"n_layers=2"`` -> ``("n_layers", 2)``: one ``--set`` of a model configuration field.

    The value is read as JSON where it can be (``2``, ``0.1``, ``true``), else kept as text. Raises
    ``ValueError`` for text without ``=`` or a key that no model configuration has (the valid keys
    are in ``gptbook.config``: ``REQUIRED_KEYS`` and ``OPTIONAL_KEYS``).
    """
    from ..config import OPTIONAL_KEYS, REQUIRED_KEYS

    key, sep, value = text.partition("=")
    key = key.strip()
    valid = [*REQUIRED_KEYS, *OPTIONAL_KEYS]
    if not sep or not key:
        raise ValueError(f"expected KEY=VALUE such as n_layers=2, got {text!r}")
    if key not in valid:
        raise ValueError(f"{key!r} is not a model configuration field; valid fields: {', '.join(valid)}")
    lowered = value.strip().lower()
    if lowered in ("true", "false"):
        return key, lowered == "true"
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _override(text: str) -> tuple[str, Any]:
    try:
        return parse_override(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _bf16(text: str) -> Optional[bool]:
    choices = {"auto": None, "on": True, "off": False}
    if text not in choices:
        raise argparse.ArgumentTypeError(f"must be auto, on or off, got {text!r}")
    return choices[text]


def resolve_device(name: str) -> "torch.device":
    """The ``torch.device`` for ``--device NAME``; ``UsageError`` when this machine has no such device."""
    import torch

    from .._shared import choose_device

    if name == "auto":
        return choose_device("auto")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UsageError(f"--device {name!r} is not a device; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = "this PyTorch is a CPU-only build" if torch.version.cuda is None else "PyTorch sees no CUDA GPU"
            raise UsageError(f"--device {name}: {why} (torch {torch.__version__}); use --device cpu, "
                             "or auto for the best device there is")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(f"--device {name}: there are only {torch.cuda.device_count()} CUDA device(s), "
                             f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
        return device
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise UsageError(f"--device {name}: Apple's MPS is not available here (it needs a Mac with Apple "
                             "silicon); use --device cpu, or auto for the best device there is")
        return device
    raise UsageError(f"--device {name!r}: gptbook runs on cpu, cuda or mps; use one of those, or auto")
