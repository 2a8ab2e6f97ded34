"""The live training dashboard: what it shows while a run goes, its Stop button, and its fall-back outside Jupyter."""

import math
import threading
import time

import matplotlib
import pytest
import torch

from gptbook import GPTModel
from gptbook._shared import eval_mode
from gptbook.loading.checkpoint import load_checkpoint_metadata
from gptbook.training.corpus import load_corpus
from gptbook.ui.dashboard import TrainingDashboard, live_frontend, reference_losses
from gptbook.data import create_dataloader_v1
from gptbook.training import TrainConfig, Trainer, train_model_simple

matplotlib.use("Agg")

PNG = b"\x89PNG"


def config(tmp_path, **kwargs):
    base = dict(model="tiny", model_overrides={"emb_dim": 32, "n_layers": 2, "n_heads": 2, "context_length": 32},
                out_dir=str(tmp_path / "run"), batch_size=2, max_steps=6, eval_every=3, eval_batches=1,
                save_every=100, log_every=3, lr=3e-3, warmup_steps=2, sample_tokens=5, probe_stories=1)
    base.update(kwargs)
    return TrainConfig(**base)


def wait_until(condition, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_background_run_owns_its_model_until_it_ends():
    """Only the training thread switches the model between train() and eval() while it trains in the background:
    eval_mode in a cell meanwhile refuses (it would turn dropout off under the training steps), and afterwards the
    model is the kernel's again."""
    from conftest import MINI_CONFIG

    model = GPTModel(MINI_CONFIG)
    dashboard = TrainingDashboard(live=True, references={}, sample_tokens=0, probe_stories=0)
    started, finish = threading.Event(), threading.Event()

    def train():
        dashboard("start", model=model, total_steps=2)
        with eval_mode(model):  # the training thread may switch it (its evaluations)
            pass
        started.set()
        assert finish.wait(60)
        dashboard("end", step=2, model=model)
        return "done"

    dashboard.run(train)
    try:
        assert started.wait(60)
        with pytest.raises(RuntimeError, match=r"dashboard\.wait\(\)"):
            with eval_mode(model):
                pass
        assert model.training
    finally:
        finish.set()
    assert dashboard.wait(60) and dashboard.result == "done" and dashboard.exception is None
    with eval_mode(model):
        assert not model.training
    assert model.training


def test_under_pytest_there_is_no_live_front_end_and_training_runs_in_the_foreground(tmp_path):
    assert not live_frontend()
    lines = []
    trainer = Trainer(config(tmp_path), log=lines.append, dashboard=True)
    history = trainer.fit()  # returns when done: no thread
    assert trainer.dashboard.live is False and trainer.dashboard.n_draws == 0
    assert history["steps"] == [1, 2, 3, 4, 5, 6]
    assert any("val loss" in line for line in lines), "the log lines still go to the terminal"
    assert trainer.dashboard.state == "finished"


def test_a_live_run_shows_losses_sample_probes_and_status_while_it_trains(tmp_path):
    dashboard = TrainingDashboard(live=True, redraw_seconds=0.0)
    trainer = Trainer(config(tmp_path), dashboard=dashboard)
    history = trainer.fit()  # live: training goes on in a background thread
    assert history is trainer.history
    assert dashboard.wait(300)
    assert dashboard.exception is None
    assert dashboard.state == "finished"
    assert dashboard.data["steps"] == [1, 2, 3, 4, 5, 6]
    assert dashboard.data["val_steps"] == [3, 6] and len(dashboard.data["val_losses"]) == 2
    assert [row.keys() for row in dashboard.data["probes"]][0] >= {"counting", "name_copying"}
    status = dashboard.status.value
    assert "step 6/6" in status and "tokens/s" in status and "lr " in status and "finished" in status
    assert "sample at step 6" in dashboard.sample.value and "Once upon a time" in dashboard.sample.value
    assert dashboard.n_draws >= 2 and bytes(dashboard.image.value).startswith(PNG)
    assert "val loss" in dashboard.log_view.value, "the log lines show in the dashboard"
    assert dashboard.stop_button.disabled  # nothing left to stop


@pytest.mark.slow  # trains in a background thread for seconds
def test_stop_button_ends_training_cleanly_and_keeps_the_model(tmp_path):
    dashboard = TrainingDashboard(live=True, redraw_seconds=0.0)
    trainer = Trainer(config(tmp_path, max_steps=10_000, eval_every=1000), dashboard=dashboard)
    trainer.fit()
    wait_until(lambda: dashboard.step >= 3)
    assert not dashboard.stop_button.disabled
    dashboard.stop_button.click()  # what a click in the browser does
    assert dashboard.wait(120)
    assert dashboard.state == "stopped" and "stopped by you" in dashboard.status.value
    assert 3 <= trainer.step < 10_000
    saved = load_checkpoint_metadata(tmp_path / "run")
    assert saved["step"] == trainer.step, "the model as it was at Stop is saved"

    # running the cell again with resume= continues where it stopped, the old curve still shown
    again = TrainingDashboard(live=True, redraw_seconds=0.0)
    resumed = Trainer(config(tmp_path, max_steps=trainer.step + 2, resume=str(tmp_path / "run")), dashboard=again)
    resumed.fit()
    assert again.wait(120) and again.state == "finished"
    assert again.data["steps"][-3:] == [trainer.step, trainer.step + 1, trainer.step + 2]


@pytest.mark.slow  # trains in a background thread for seconds
def test_starting_a_new_run_stops_the_one_still_training(tmp_path):
    first = TrainingDashboard(live=True)
    Trainer(config(tmp_path / "a", max_steps=10_000, eval_every=1000), dashboard=first).fit()
    wait_until(lambda: first.step >= 1)
    second = TrainingDashboard(live=True)
    Trainer(config(tmp_path / "b", max_steps=2), dashboard=second).fit()
    assert first.state == "stopped"  # never two trainings fighting over the CPU
    assert second.wait(120) and second.state == "finished"


def test_train_model_simple_with_the_dashboard_samples_probes_and_stops(tokenizer):
    torch.manual_seed(1)
    model = GPTModel({"vocab_size": 50257, "context_length": 32, "emb_dim": 32, "n_heads": 2, "n_layers": 1,
                      "drop_rate": 0.0, "qkv_bias": False})
    text = load_corpus("val")[:4000]
    train_loader = create_dataloader_v1(text[:3000], batch_size=2, max_length=16, stride=16, tokenizer=tokenizer)
    val_loader = create_dataloader_v1(text[3000:], batch_size=2, max_length=16, stride=16, shuffle=False,
                                      tokenizer=tokenizer)
    dashboard = TrainingDashboard(live=False, sample_tokens=4, probe_stories=1)

    def stop_after_four(event, **info):
        if event == "step" and info["step"] == 4:
            dashboard.stop()  # as if Stop were pressed during step 4
        return dashboard(event, **info)

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    train_losses, val_losses, _ = dashboard.run(lambda: train_model_simple(
        model, train_loader, val_loader, optimizer, "cpu", num_epochs=5, eval_freq=2, eval_iter=1,
        start_context="Once upon a time", tokenizer=tokenizer, progress=False, callback=stop_after_four))
    assert dashboard.data["steps"] == [1, 2, 3, 4] and dashboard.state == "stopped"
    assert len(val_losses) == 2 == len(dashboard.data["val_losses"])  # evaluations after steps 1 and 3
    assert dashboard.samples and dashboard.samples[-1][1].startswith("Once upon a time")
    assert set(dashboard.data["probes"][-1]) == {"counting", "count_recall", "weekday_order", "name_copying"}


def test_the_picture_has_the_curves_the_reference_lines_and_the_probes():
    dashboard = TrainingDashboard(live=False, references={"unigram entropy": 6.0, "shipped model": 0.3})
    dashboard("start", total_steps=10)
    for step in range(1, 5):
        dashboard("step", step=step, train_loss=9.0 - step, lr=1e-3 * step, tokens_seen=64 * step)
    dashboard("eval", step=4, val_loss=5.5, sample="Once upon a time, there was", probes={"counting": 0.5})
    fig = dashboard.figure()
    loss_ax, lr_ax, probe_ax = fig.axes[:3]
    assert [list(line.get_ydata()) for line in loss_ax.lines[:2]] == [[8.0, 7.0, 6.0, 5.0], [5.5]]
    assert sorted(float(line.get_ydata()[0]) for line in loss_ax.lines[2:]) == [0.3, 6.0]  # the reference lines
    assert list(lr_ax.lines[0].get_ydata()) == pytest.approx([1e-3, 2e-3, 3e-3, 4e-3])
    assert list(probe_ax.lines[0].get_ydata()) == [50.0]
    assert "step 4/10" in dashboard.status_text() and "loss 5.000" in dashboard.status_text()


def test_reference_lines_include_the_unigram_entropy():
    refs = reference_losses()
    assert 4.0 < refs["unigram entropy"] < 8.0
    assert all(math.isfinite(v) for v in refs.values())


@pytest.mark.slow  # trains in a background thread for seconds
def test_a_background_run_leaves_the_notebooks_random_numbers_alone(tmp_path):
    """A cell that seeds torch's global generator draws the same numbers while a dashboard trains meanwhile
    (notebook 08 seeds and builds a model while its dashboard still trains), and the run's losses are
    those of the same run in the foreground."""
    torch.manual_seed(123)
    expected = torch.rand(20_000)
    foreground = Trainer(config(tmp_path / "fg", max_steps=12, eval_every=100, probes=False), log=lambda m: None).fit()

    dashboard = TrainingDashboard(live=True, redraw_seconds=60.0)
    trainer = Trainer(config(tmp_path / "bg", max_steps=12, eval_every=100, probes=False), dashboard=dashboard)
    trainer.fit()
    draws = 0
    while not dashboard.wait(0):
        torch.manual_seed(123)
        assert torch.equal(torch.rand(20_000), expected), "training reseeded or drew from the global generator"
        draws += 1
    assert dashboard.exception is None and draws > 0
    assert trainer.history["train_losses"] == foreground["train_losses"]


def test_training_leaves_the_global_random_state_as_it_found_it(tmp_path):
    torch.manual_seed(7)
    state = torch.get_rng_state()
    Trainer(config(tmp_path, max_steps=3, probes=False), log=lambda m: None).fit()
    assert torch.equal(torch.get_rng_state(), state)
