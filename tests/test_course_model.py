"""The course model is trained once, cached, and loaded from the cache afterwards."""

from dataclasses import replace

import torch

from gptbook import course_model
from gptbook.course_model import COURSE_RECIPE, load_course_model

QUICK = replace(COURSE_RECIPE, model_overrides={"emb_dim": 32, "n_heads": 2, "n_layers": 1, "context_length": 32},
                batch_size=2, max_length=32, max_steps=3, eval_every=3, eval_batches=1, sample_tokens=5)


def test_trains_once_then_loads_the_same_weights_from_the_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GPTBOOK_CACHE", str(tmp_path))
    first = load_course_model(QUICK)
    assert "Training the course model once" in capsys.readouterr().out
    assert not first.training and first.cfg["emb_dim"] == 32

    def must_not_train(*args, **kwargs):
        raise AssertionError("the cached model should have been loaded")

    monkeypatch.setattr(course_model, "Trainer", must_not_train)
    second = load_course_model(QUICK)
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), name


def test_a_changed_recipe_gets_its_own_cache_folder():
    assert course_model._recipe_key(QUICK) != course_model._recipe_key(replace(QUICK, max_steps=4))
    assert course_model._recipe_key(QUICK) == course_model._recipe_key(replace(QUICK, out_dir="elsewhere"))
