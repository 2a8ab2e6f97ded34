"""The small rules written once in ``gptbook._shared``: evaluation mode for a while, the device, the cache folder,
the CPU's name."""

from pathlib import Path

import torch
from torch import nn

from gptbook._shared import cache_dir, choose_device, cpu_name, cpu_vendor, eval_mode


def test_eval_mode_gives_every_module_its_own_mode_back():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5), nn.Sequential(nn.Dropout(0.1)))
    model.train()
    model[2].eval()  # a learner froze one part in evaluation mode
    with eval_mode(model) as inside:
        assert inside is model and not any(m.training for m in model.modules())
    assert [m.training for m in model.modules()] == [True, True, True, False, False]


def test_eval_mode_restores_the_modes_after_an_error():
    model = nn.Dropout(0.5).train()
    try:
        with eval_mode(model):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert model.training


def test_the_cache_folder_follows_gptbook_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("GPTBOOK_CACHE", str(tmp_path / "here"))
    assert cache_dir() == tmp_path / "here"
    monkeypatch.delenv("GPTBOOK_CACHE")
    assert cache_dir() == Path.home() / ".cache" / "gptbook"


def test_device_choice():
    assert choose_device("cpu") == torch.device("cpu")
    assert choose_device("auto").type in ("cpu", "cuda", "mps")
    assert choose_device(None) == choose_device("auto")


def test_the_cpu_has_a_name_and_a_vendor_string():
    assert isinstance(cpu_name(), str) and cpu_name()
    assert cpu_vendor() in ("", "GenuineIntel", "AuthenticAMD") or isinstance(cpu_vendor(), str)
