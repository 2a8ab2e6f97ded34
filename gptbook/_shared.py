"""Small helpers the rooms of gptbook share, each rule written once: evaluation mode for a while, the device
to use, gptbook's cache folder, and the machine's CPU (its name is printed beside every measurement)."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Union

from torch import nn

if TYPE_CHECKING:
    import torch


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` (and every submodule) in evaluation mode for the ``with`` block, then restore each module's
    own mode: a model that was training goes on training, one in evaluation mode stays there."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


def choose_device(preference: Union[str, "torch.device", None] = "auto") -> "torch.device":
    """``"auto"`` (or None): CUDA if available, then Apple's MPS, then the CPU; otherwise ``torch.device(preference)``."""
    import torch

    if preference not in (None, "auto"):
        return torch.device(preference)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def cache_dir() -> Path:
    """gptbook's folder for what it keeps between sessions: ``$GPTBOOK_CACHE``, or ``~/.cache/gptbook``."""
    return Path(os.environ.get("GPTBOOK_CACHE") or Path.home() / ".cache" / "gptbook").expanduser()


def cpu_info(field: str) -> str:
    """One field of Linux's ``/proc/cpuinfo`` for the first CPU ("model name", "vendor_id", ...); "" where there is
    no such file or field (macOS, Windows)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.split(":", 1)[0].strip() == field:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def cpu_name() -> str:
    """The CPU's model name, for the record beside a measurement ("Intel(R) Xeon(R) ...", else what ``platform``
    says)."""
    return cpu_info("model name") or platform.processor() or platform.machine() or "unknown CPU"


def cpu_vendor() -> str:
    """The x86 CPU's vendor string ("GenuineIntel", "AuthenticAMD"), or "" where unknown."""
    processor = platform.processor()  # Windows: "AMD64 Family 25 Model 17 Stepping 1, AuthenticAMD"
    return cpu_info("vendor_id") or next((v for v in ("GenuineIntel", "AuthenticAMD") if v in processor), "")
