"""The course model ships with gptbook: the same verified weights everywhere, loaded with no training."""

import hashlib
import json
import shutil
from dataclasses import asdict, replace

import pytest
import torch

from gptbook.training import course_model
from gptbook.loading import course_model as shipped_files
from gptbook.config import GPT_CONFIG_TINY
from gptbook.training.corpus import load_corpus
from gptbook.training.course_model import COURSE_RECIPE, course_model_info, export_course_model, load_course_model
from gptbook.interpret import ablate, head_scores
from gptbook.training.probes import PROBES, induction_accuracy, run_probes
from gptbook.training import TrainConfig, Trainer


@pytest.fixture(scope="module")
def shipped():
    return load_course_model()


def test_loads_the_shipped_tiny_model_in_eval_mode(shipped):
    assert not shipped.training
    assert {k: shipped.cfg[k] for k in GPT_CONFIG_TINY} == {**GPT_CONFIG_TINY, **COURSE_RECIPE.model_overrides}
    assert shipped.out_head.weight is shipped.tok_emb.weight  # the head stays tied
    # exactly the shipped bf16 values, whatever the machine: nothing was trained or rounded here
    for name, p in shipped.state_dict().items():
        assert p.dtype == torch.float32 and torch.equal(p, p.bfloat16().float()), name


def test_metadata_describes_the_run_that_made_it():
    info = course_model_info()
    expected_recipe = {k: v for k, v in json.loads(json.dumps(asdict(COURSE_RECIPE))).items()
                       if k not in ("out_dir", "resume")}
    # retrain when the recipe changes; a setting TrainConfig gained later must be at its default (the run had it so)
    defaults = json.loads(json.dumps(asdict(TrainConfig())))
    newer = {k for k in expected_recipe if k not in info["recipe"]}
    assert {k: expected_recipe[k] for k in newer} == {k: defaults[k] for k in newer}
    assert info["recipe"] == {k: v for k, v in expected_recipe.items() if k not in newer}
    assert info["corpus_sha256"] == hashlib.sha256(load_corpus("all").encode()).hexdigest()  # ... or the corpus
    assert info["steps"] == COURSE_RECIPE.max_steps
    assert info["tokens"] == COURSE_RECIPE.max_steps * COURSE_RECIPE.batch_size * COURSE_RECIPE.max_length
    assert info["wall_seconds"] > 0 and info["machine"] and info["gptbook_version"]
    assert info["bytes"] <= 40 * 1024 ** 2
    history = info["history"]
    assert len(history["val_steps"]) == len(history["val_losses"]) == len(history["val_probes"]) >= 4
    assert [p["step"] for p in history["val_probes"]] == history["val_steps"]
    assert all("induction" in p for p in history["val_probes"])
    assert [h["step"] for h in history["val_heads"]] == history["val_steps"]  # when each head formed
    assert len(history["val_seconds"]) == len(history["val_steps"])
    # densely where things change: notebook 10 plots when induction formed
    assert max(b - a for a, b in zip([0] + history["val_steps"], history["val_steps"])) <= 100
    assert set(info["probes"]) == set(PROBES)


@pytest.mark.slow
def test_it_has_learned_the_corpus_regularities(shipped):
    """Issue 17's bars, on validation stories and random sequences the model never saw."""
    info = course_model_info()
    for name in ("counting", "count_recall", "name_copying"):
        assert info["probes"][name] >= 0.95, name
    assert info["probes"]["weekday_order"] >= 0.90
    assert info["induction"]["second"] >= 0.5 and info["induction"]["first"] <= 0.05  # copies; chance on the first
    assert info["val_loss"] < 1.0  # the unigram entropy of the corpus is about 5.8 nats
    # the recorded accuracies are what this machine measures too (a few flips of rounding at most)
    here = run_probes(shipped, n_stories=course_model.EXPORT_PROBE_STORIES)
    for name in PROBES:
        assert here[name] == pytest.approx(info["probes"][name], abs=0.02), name
    assert induction_accuracy(shipped)["second"] == pytest.approx(info["induction"]["second"], abs=0.02)


@pytest.mark.slow
def test_it_has_an_induction_circuit_and_needs_it(shipped):
    """Previous-token heads in an earlier layer, induction heads in a later one, each needed by induction, while
    counting does without them: what notebook 10 shows and asserts (scores on repeated random corpus tokens)."""
    scores = head_scores(shipped)
    previous = [(l, h) for l, h in _heads(shipped) if scores["previous_token"][l, h] >= 0.3]
    induction = [(l, h) for l, h in _heads(shipped) if scores["induction"][l, h] >= 0.5]
    assert previous and induction and scores["previous_token"].max() >= 0.5  # issue 17's bar for one head
    assert max(l for l, _ in previous) < min(l for l, _ in induction)  # two steps, in two layers
    before = induction_accuracy(shipped)["second"]
    for heads in (previous, induction):
        with ablate(shipped, heads=heads):
            assert induction_accuracy(shipped)["second"] <= before - 0.5, heads
            if heads == induction:
                assert run_probes(shipped, n_stories=40)["counting"] >= 0.9


def _heads(model):
    return [(l, h) for l in range(model.cfg["n_layers"]) for h in range(model.cfg["n_heads"])]


def test_a_damaged_weights_file_is_refused(tmp_path, monkeypatch):
    weights, info = tmp_path / "course_model.safetensors", tmp_path / "course_model.json"
    shutil.copy(course_model.WEIGHTS_FILE, weights)
    shutil.copy(course_model.INFO_FILE, info)
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    monkeypatch.setattr(shipped_files, "WEIGHTS_FILE", weights)
    monkeypatch.setattr(shipped_files, "INFO_FILE", info)
    with pytest.raises(ValueError, match="sha256"):
        load_course_model()


def test_missing_files_say_how_to_get_them_back(tmp_path, monkeypatch):
    monkeypatch.setattr(shipped_files, "INFO_FILE", tmp_path / "nothing.json")
    with pytest.raises(FileNotFoundError, match="reinstall gptbook"):
        load_course_model()


@pytest.mark.slow
def test_export_writes_what_load_reads(tmp_path, monkeypatch):
    quick = replace(COURSE_RECIPE, model_overrides={"emb_dim": 32, "n_heads": 2, "n_layers": 1, "context_length": 32},
                    batch_size=2, max_length=32, max_steps=3, eval_every=3, eval_batches=1, sample_tokens=5,
                    probe_stories=2, out_dir=str(tmp_path / "run"))
    trainer = Trainer(TrainConfig(**asdict(quick)), log=lambda message: None)
    trainer.fit()
    trainer.close()
    monkeypatch.setattr(course_model, "EXPORT_PROBE_STORIES", 2)
    info = export_course_model(tmp_path / "run", wall_seconds=12.5, out_dir=tmp_path / "data")
    assert info["steps"] == 3 and info["tokens"] == 3 * 2 * 32 and info["wall_seconds"] == 12.5
    monkeypatch.setattr(shipped_files, "WEIGHTS_FILE", tmp_path / "data" / "course_model.safetensors")
    monkeypatch.setattr(shipped_files, "INFO_FILE", tmp_path / "data" / "course_model.json")
    loaded = load_course_model()
    for name, p in trainer.model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], p.detach().bfloat16().float()), name
    assert course_model.main(["export", str(tmp_path / "no-such-run"), "--out-dir", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()
