"""The small rules written once in ``gptbook._shared``: evaluation mode for a while, the device, the cache folder,
the CPU's name."""

import threading
from pathlib import Path

import pytest
import torch
from torch import nn

from gptbook import GPTModel
from gptbook._shared import (
    cache_dir, choose_device, cpu_name, cpu_vendor, eval_mode, eval_twin, eval_view, hold_model, release_model,
)


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


# -- who switches a model's modes: the thread that owns it ------------------------------------------

def test_an_eval_twin_shares_the_weights_but_not_the_modes():
    from conftest import MINI_CONFIG

    torch.manual_seed(0)
    model = GPTModel(MINI_CONFIG).train()
    twin = eval_twin(model)
    assert all(m.training for m in model.modules()) and not any(m.training for m in twin.modules())
    assert all(a is b for a, b in zip(twin.parameters(), model.parameters()))  # the same tensors: no copy
    assert len(list(twin.parameters())) == len(list(model.parameters()))  # a tied weight stays one
    x = torch.randint(0, 50257, (1, 6))
    with eval_mode(model), torch.no_grad():
        expected = model(x)
    with torch.no_grad():
        torch.testing.assert_close(twin(x), expected)
        model.out_head.weight.mul_(2)  # training goes on: the twin sees it
        assert torch.equal(twin.out_head.weight, model.out_head.weight)
    assert all(m.training for m in model.modules())


def test_eval_mode_refuses_a_model_that_another_thread_trains():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)).train()
    held, done, seen = threading.Event(), threading.Event(), []

    def train():  # a background run: it holds the model and may switch it itself
        hold_model(model)
        with eval_mode(model):
            seen.append(model.training)
        held.set()
        assert done.wait(60)
        release_model(model)

    thread = threading.Thread(target=train)
    thread.start()
    try:
        assert held.wait(60) and seen == [False]
        with pytest.raises(RuntimeError, match="trained in a background thread"):
            with eval_mode(model):
                pass
        assert model.training, "the refusal switched nothing"
        view = eval_view(model)
        assert view is not model and not view.training and model.training
    finally:
        done.set()
        thread.join(60)
    with eval_mode(model):  # released: the kernel's own again
        assert not model.training
    model.eval()
    assert eval_view(model) is model  # in eval mode and nobody trains it: no twin needed


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
