"""Shared fixtures: the tokenizer and small models that build in milliseconds."""

import importlib
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test may reach the network
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from gptbook import GPT_CONFIG_124M, GPTModel, get_tokenizer  # noqa: E402

#: A model small enough to build and run in milliseconds, with the real GPT-2 vocabulary.
MINI_CONFIG = {**GPT_CONFIG_124M, "context_length": 32, "emb_dim": 32, "n_heads": 4, "n_layers": 2}


@pytest.fixture(scope="session")
def tokenizer():
    return get_tokenizer()


@pytest.fixture
def mini_model():
    torch.manual_seed(0)
    return GPTModel(MINI_CONFIG).eval()


@pytest.fixture(scope="session")
def model_124m():
    """The classic 124M model exactly as a learner builds it (seed 123), in eval mode."""
    torch.manual_seed(123)
    return GPTModel(GPT_CONFIG_124M).eval()


def need(module: str, reason: str):
    """Import a test dependency: skip without it on a learner's machine, fail in CI (``CI=true``).

    ``requirements-test.txt`` installs every test dependency, so in CI a missing one is a broken
    setup, not a reason to pass silently.
    """
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        return importlib.import_module(module)
    return pytest.importorskip(module, reason=reason)


#: Fixtures that make a test slow (seconds each, on 2 cores): such tests get the ``slow`` mark by themselves.
SLOW_FIXTURES = {"model_124m"}


def pytest_collection_modifyitems(config, items):
    """Mark as ``slow`` every test that uses a slow fixture or drives the browser, so that the fast developer loop
    ``pytest -m "not slow" tests/`` leaves them out (CI runs everything)."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) or item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.slow)
