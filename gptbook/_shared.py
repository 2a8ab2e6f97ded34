"""Small helpers the rooms of gptbook share, each rule written once: evaluation mode for a while (and who may
switch a model's mode), the device to use, gptbook's cache folder, and the machine's CPU (its name is printed
beside every measurement).

The rule for train/eval across threads: a model's ``train()``/``eval()`` flags are switched only by the thread
that owns it. A thread training a model in the background (``TrainingDashboard.run``) owns it from the first
step to the end (``hold_model``/``release_model``): ``eval_mode`` from any other thread refuses with an error that
says what to do, instead of turning dropout off under the training steps (or back on under a generation). A
widget's background thread owns no model: it never switches one, it runs ``eval_view(model)``, the model as it is
when that is safe, else an eval-mode twin that shares the weights (``eval_twin``).
"""

from __future__ import annotations

import contextlib
import copy
import os
import platform
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Union

from torch import nn

if TYPE_CHECKING:
    import torch

#: model -> the thread training it in the background (set by ``hold_model``, removed by ``release_model``)
_HOLDERS: "weakref.WeakKeyDictionary[nn.Module, threading.Thread]" = weakref.WeakKeyDictionary()
_HOLDERS_LOCK = threading.Lock()


def hold_model(model: nn.Module) -> None:
    """Mark ``model`` as trained by the calling thread until ``release_model(model)``: meanwhile ``eval_mode`` from
    another thread refuses to switch its modes, and ``eval_view`` gives other threads an eval-mode twin."""
    with _HOLDERS_LOCK:
        _HOLDERS[model] = threading.current_thread()


def release_model(model: nn.Module) -> None:
    """End ``hold_model(model)`` (of the calling thread; a hold by another thread is left alone)."""
    with _HOLDERS_LOCK:
        if _HOLDERS.get(model) is threading.current_thread():
            del _HOLDERS[model]


def held_elsewhere(model: nn.Module) -> bool:
    """Whether another thread, still running, trains ``model`` (holds it: ``hold_model``)."""
    with _HOLDERS_LOCK:
        holder = _HOLDERS.get(model)
    return holder is not None and holder is not threading.current_thread() and holder.is_alive()


def eval_twin(model: nn.Module) -> nn.Module:
    """A twin of ``model`` in evaluation mode: the same parameters and buffers (no copy, no memory; it sees every
    update), the same hooks, but train/eval flags of its own, so that running it never changes ``model``'s modes.

    Each module is copied shallowly (``copy.copy``) with its own dicts of parameters, buffers and children; a
    module shared by two parents stays shared. A ``forward`` set on an instance (``gptbook.prepack``'s fast path
    while another thread generates) is left out: the twin runs its class's ``forward``.
    """
    twins: dict[int, nn.Module] = {}

    def twin(module: nn.Module) -> nn.Module:
        if id(module) not in twins:
            new = copy.copy(module)
            twins[id(module)] = new
            new.__dict__.pop("forward", None)
            new.__dict__["_parameters"] = dict(module._parameters)
            new.__dict__["_buffers"] = dict(module._buffers)
            new.__dict__["_modules"] = {name: None if child is None else twin(child)
                                        for name, child in module._modules.items()}
            new.__dict__["training"] = False
        return twins[id(module)]

    return twin(model)


def eval_view(model: nn.Module) -> nn.Module:
    """What a thread that does not own ``model`` runs to use it in evaluation mode without switching its modes:
    ``model`` itself when every module is in eval mode and no other thread trains it, else ``eval_twin(model)``."""
    if held_elsewhere(model) or any(module.training for module in model.modules()):
        return eval_twin(model)
    return model


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` (and every submodule) in evaluation mode for the ``with`` block, then restore each module's
    own mode: a model that was training goes on training, one in evaluation mode stays there.

    Raises ``RuntimeError`` when another thread is training ``model`` in the background (``hold_model``): switching
    it here would turn dropout off under that thread's training steps.
    """
    if held_elsewhere(model):
        raise RuntimeError("this model is being trained in a background thread (a TrainingDashboard's run), which "
                           "switches it between train() and eval() itself: wait for the run to end "
                           "(dashboard.wait()), press Stop, or use a copy (copy.deepcopy(model))")
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
