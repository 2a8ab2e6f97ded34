"""Watch a model learn: a live training dashboard for ``Trainer`` and ``train_model_simple``.

One widget that keeps updating while training runs: the training and validation loss curves
(with two reference lines: the corpus's unigram entropy, what a model that ignores the context
reaches, and the shipped course model's final validation loss), tokens per second and time left,
the learning rate, a sample from the current weights at every evaluation (always the same prompt,
so you read the text getting better) and the probe accuracies (``gptbook.training.probes``) as they climb.
A Stop button ends training cleanly after the current step; the model keeps what it learned
(and ``Trainer`` saves its checkpoint as at any end).

    trainer = Trainer(config, dashboard=True)
    trainer.fit()                     # in Jupyter: returns at once, training goes on under the dashboard

    dashboard = TrainingDashboard()   # with the classic loop
    dashboard.run(lambda: train_model_simple(..., callback=dashboard))

Why a background thread: while a cell runs, the kernel handles no widget events, so a Stop
button could not be clicked. ``run`` therefore trains in a thread when the dashboard is shown
in a live Jupyter front end and returns at once (``wait()`` blocks until the end; ``result``
holds what the training function returned). Elsewhere -- a terminal, a script, a notebook run
by ``nbval`` or ``nbclient`` -- nothing is drawn and training runs in the foreground with the
usual progress bar and log lines. ``$GPTBOOK_DASHBOARD=text`` (or ``widget``) forces one or the other.

Drawing is cheap by design: the picture (matplotlib, sent as a PNG, ~0.15 s to draw) is redrawn
at most every ``redraw_seconds`` and never more often than ``DRAW_SPACING`` times its own
drawing time. On a 2-core CPU that is ~2.5 % of a run's time, and training with the pictures is
no slower than without them beyond run-to-run noise (``bench/bench_dashboard.py`` measures both;
bench/RESULTS_DASHBOARD.md). Plain ipywidgets, no JavaScript of our own, no CDN.

The parts carry CSS classes for browser tests: ``gptbook-dashboard``, ``gptbook-dashboard-status``,
``gptbook-dashboard-plot``, ``gptbook-dashboard-sample``, ``gptbook-dashboard-log``,
``gptbook-dashboard-stop``, ``gptbook-error``.

The picture itself is drawn in ``dashboard_plot.py``; learners import the dashboard from ``gptbook.widgets``
(or ``Trainer(config, dashboard=True)`` makes one).

Taught in notebook 08 (training).
"""

from __future__ import annotations

import html
import math
import os
import threading
import time
import warnings
from typing import Any, Callable, Optional

import ipywidgets as W
from matplotlib.figure import Figure

from .._shared import eval_mode, hold_model, release_model
from .base import _ERROR_STYLE, _with_classes, figure_to_png
from .dashboard_plot import dashboard_figure, reference_losses


def live_frontend() -> bool:
    """Whether widgets shown now reach a person: True in a Jupyter kernel, False in a terminal or under pytest/nbval."""
    forced = os.environ.get("GPTBOOK_DASHBOARD", "").strip().lower()
    if forced in ("widget", "text"):
        return forced == "widget"
    if "PYTEST_CURRENT_TEST" in os.environ or os.environ.get("NBVAL") or "nbclient" in os.environ.get("JPY_SESSION_NAME", ""):
        return False
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipywidgets
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


#: the picture waits at least this many times its own drawing time between redraws (drawing <= 1/61 of the time)
DRAW_SPACING = 60

_ACTIVE: Optional["TrainingDashboard"] = None  # the dashboard whose run is training in the background


class TrainingDashboard(W.VBox):
    """The live training dashboard: a callback for ``Trainer`` / ``train_model_simple`` and a widget.

    Args:
        redraw_seconds: redraw the picture at most this often (it also waits ``DRAW_SPACING`` x its drawing time).
        sample_prompt: the prompt of the samples made by the dashboard itself (``train_model_simple``;
            ``Trainer`` sends its own, from ``TrainConfig.sample_prompt``).
        sample_tokens: length of those samples (0: none).
        probe_stories: validation stories for the probes the dashboard runs itself (0: none).
        references: reference lines ``{label: loss}`` (default: ``reference_losses()``).
        live: show a widget and train in the background (default: ``live_frontend()``).

    Drive it from Python as the tests do: call it as a callback, read ``status.value``,
    ``sample.value``, ``data`` and ``n_draws``; ``stop()`` is what the Stop button does.
    """

    def __init__(self, *, redraw_seconds: float = 2.0, sample_prompt: str = "Once upon a time",
                 sample_tokens: int = 40, probe_stories: int = 10,
                 references: Optional[dict[str, float]] = None, live: Optional[bool] = None) -> None:
        self.live = live_frontend() if live is None else bool(live)
        self.redraw_seconds = redraw_seconds
        self.sample_prompt, self.sample_tokens, self.probe_stories = sample_prompt, sample_tokens, probe_stories
        self.references = reference_losses() if references is None else dict(references)

        self.status = _with_classes(W.HTML("Waiting for training to start…"), "gptbook-dashboard-status")
        self.progress = W.FloatProgress(value=0.0, min=0.0, max=1.0, layout=W.Layout(width="40%"))
        self.stop_button = W.Button(description="Stop", icon="stop", button_style="danger", disabled=True,
                                    tooltip="End training after the current step; the model keeps what it learned")
        _with_classes(self.stop_button, "gptbook-dashboard-stop")
        self.image = _with_classes(W.Image(format="png", layout=W.Layout(align_self="flex-start")), "gptbook-dashboard-plot")
        self.sample = _with_classes(W.HTML(), "gptbook-dashboard-sample")
        self.log_view = _with_classes(W.HTML(), "gptbook-dashboard-log")
        self.error = _with_classes(W.HTML(), "gptbook-error")
        super().__init__([W.HBox([self.stop_button, self.progress]), self.status, self.error, self.image,
                          self.sample, self.log_view])
        self.add_class("gptbook-dashboard")
        self.stop_button.on_click(lambda _button: self.stop())

        self._stop_requested = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()
        self._held: Any = None  # the model a background run trains (held from its "start": gptbook._shared)
        self.result: Any = None  # what the function given to ``run`` returned
        self.exception: Optional[BaseException] = None
        self.n_draws = 0  # pictures drawn so far
        self.draw_seconds = 0.0  # time spent drawing them
        self.reset()

    # -- state ------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the curves of the last run (called at every "start")."""
        self.data: dict[str, list] = {"steps": [], "train_losses": [], "lrs": [], "val_steps": [], "val_losses": [],
                                      "probe_steps": [], "probes": []}
        self.samples: list[tuple[int, str]] = []
        self.log_lines: list[str] = []
        self.total_steps = 0
        self.first_step = 0
        self.step = 0
        self.state = "waiting"  # -> "training" -> "finished" / "stopped"
        self._started = self._last_draw = self._last_status = time.perf_counter()
        self._first = None  # (time, step, tokens) at the first step of this run: the pace is measured from there
        self._tokens = 0
        self._dirty = False

    @property
    def running(self) -> bool:
        """Whether a training run is under way (between "start" and "end")."""
        return self.state == "training"

    def stop(self) -> None:
        """Ask training to stop after the current step (what the Stop button does)."""
        self._stop_requested.set()
        if self.running:
            self.status.value += " · <b>stopping…</b>"

    # -- running ----------------------------------------------------------------------------
    def should_run_in_background(self) -> bool:
        """True when ``run`` would use a thread and we are not already in it."""
        return self.live and threading.current_thread() is not self._thread

    def run(self, train: Callable[[], Any]) -> Any:
        """Run ``train()`` (a function that trains with this dashboard as its callback).

        Live (Jupyter): show the dashboard, start ``train`` in a background thread and return at
        once -- ``Trainer.fit`` then returns its history, which fills in as it trains. Otherwise:
        run ``train()`` here and return what it returns.

        In the background the training thread owns the model from its "start" to the end: it alone switches
        the model between ``train()`` and ``eval()``, and ``eval_mode`` in a cell refuses meanwhile (gptbook._shared).
        In the background ``train`` runs beside the cells that follow: whatever it draws from torch's
        global generator (``nn.Dropout``, ``torch.manual_seed``) it takes from theirs. ``Trainer`` draws
        from none (see ``Trainer.fit``); with ``train_model_simple`` set the model's dropout to 0 or
        its generator (``gptbook.layers.use_dropout_generator``) for seeded cells to stay reproducible.
        """
        if not self.live:
            self.result = train()
            return self.result
        global _ACTIVE
        if _ACTIVE is not None and _ACTIVE._thread is not None and _ACTIVE._thread.is_alive():
            # the cell was run again while the last run trains: stop that one first (it keeps its model)
            _ACTIVE.stop()
            _ACTIVE.wait(120)
        _ACTIVE = self
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is not None:  # (a script forcing live=True, e.g. the benchmark, shows nothing)
            display(self)
        self._stop_requested.clear()
        self.result, self.exception = None, None

        def target() -> None:
            try:
                self.result = train()
            except BaseException as exc:  # show it in the widget: a thread's traceback would be lost
                self.exception = exc
                self.error.value = (f'<div style="{_ERROR_STYLE}">⚠ training failed: '
                                    f'{html.escape(type(exc).__name__ + ": " + str(exc))}</div>')
                self.state = "failed"
                self.stop_button.disabled = True
            finally:
                if self._held is not None:  # the kernel may switch the model's modes again
                    release_model(self._held)
                    self._held = None

        self._thread = threading.Thread(target=target, name="gptbook-training", daemon=True)
        self._thread.start()
        owner = getattr(train, "__self__", None)
        return getattr(owner, "history", None)

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until a background run has finished (True) or ``timeout`` seconds have passed (False)."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def log_to(self, fallback: Callable[[str], None]) -> Callable[[str], None]:
        """A log function for ``Trainer``: lines go to the dashboard when it is live, else to ``fallback``."""
        def log(message: str) -> None:
            if not self.live:
                fallback(message)
                return
            self.log_lines = (self.log_lines + [message])[-6:]
            self.log_view.value = ('<pre style="font-size:11px;color:#555;margin:0;white-space:pre-wrap">'
                                   + html.escape("\n".join(self.log_lines)) + "</pre>")
        return log

    # -- the callback -----------------------------------------------------------------------
    def __call__(self, event: str, **info: Any) -> bool:
        """The training callback: record, redraw when due; True once Stop was pressed."""
        with self._lock:
            handler = getattr(self, f"_on_{event}", None)
            if handler is not None:
                handler(**info)
            return self._stop_requested.is_set()

    def _on_start(self, total_steps: int, step: int = 0, model: Any = None, history: Optional[dict] = None,
                  **_: Any) -> None:
        self.reset()
        self._stop_requested.clear()
        self.total_steps, self.first_step, self.step = int(total_steps), int(step), int(step)
        if model is not None and self._thread is threading.current_thread():
            # this thread trains the model now: until the run ends, no other thread switches its train/eval modes
            hold_model(model)
            self._held = model
        if history:  # a resumed Trainer: show the curves so far
            self.data["steps"] = list(history.get("steps", []))
            self.data["train_losses"] = list(history.get("train_losses", []))
            self.data["lrs"] = [math.nan] * len(self.data["steps"])
            self.data["val_steps"] = list(history.get("val_steps", []))
            self.data["val_losses"] = list(history.get("val_losses", []))
            for row in history.get("val_probes", []):
                self.data["probe_steps"].append(row["step"])
                self.data["probes"].append({k: v for k, v in row.items() if k != "step"})
        self.state = "training"
        self.stop_button.disabled = False
        self.error.value = ""
        self._update_status(force=True)
        self._draw()

    def _on_step(self, step: int, train_loss: float, lr: float = math.nan, tokens_seen: int = 0, **_: Any) -> None:
        self.step, self._tokens = int(step), int(tokens_seen)
        if self._first is None:
            self._first = (time.perf_counter(), self.step, self._tokens)
        self.data["steps"].append(self.step)
        self.data["train_losses"].append(float(train_loss))
        self.data["lrs"].append(float(lr))
        self._dirty = True
        self._update_status()
        self._maybe_draw()

    def _on_eval(self, step: int, val_loss: float, sample: Optional[str] = None,
                 probes: Optional[dict] = None, model: Any = None, **_: Any) -> None:
        self.data["val_steps"].append(int(step))
        self.data["val_losses"].append(float(val_loss))
        if sample is None and model is not None and self.sample_tokens > 0:
            sample = self._make_sample(model)
        if probes is None and model is not None and self.probe_stories > 0:
            probes = self._run_probes(model)
        if sample is not None:
            self.samples.append((int(step), sample))
            self.sample.value = (f'<div style="font-size:12px"><b>sample at step {int(step)}</b> '
                                 f'<span style="color:#666">(the same prompt each time)</span>'
                                 f'<div style="white-space:pre-wrap;border:1px solid #ccc;border-radius:4px;'
                                 f'padding:4px 6px">{html.escape(sample)}</div></div>')
        if probes:
            self.data["probe_steps"].append(int(step))
            self.data["probes"].append({k: float(v) for k, v in probes.items() if k != "step"})
        self._dirty = True
        self._maybe_draw(force=True)

    def _on_end(self, step: int, stopped: bool = False, **_: Any) -> None:
        self.step = int(step)
        self.state = "stopped" if stopped else "finished"
        self.stop_button.disabled = True
        self._update_status(force=True)
        self._draw()

    # -- what the dashboard computes itself (for train_model_simple) --------------------------
    def _make_sample(self, model: Any) -> str:
        from ..generation import generate
        from ..tokenizer import EOT_ID, get_tokenizer, text_to_token_ids, token_ids_to_text

        with eval_mode(model):
            tokenizer = get_tokenizer()
            idx = text_to_token_ids(self.sample_prompt, tokenizer).to(next(model.parameters()).device)
            out = generate(model, idx, self.sample_tokens, temperature=0.8, top_k=40, eos_id=EOT_ID, seed=123)
            return token_ids_to_text(out[0], tokenizer)

    def _run_probes(self, model: Any) -> Optional[dict]:
        from ..training.probes import run_probes

        try:
            return run_probes(model, n_stories=self.probe_stories)
        except Exception:  # a model of another shape or vocabulary: no probes, training goes on
            return None

    # -- showing ----------------------------------------------------------------------------
    def status_text(self) -> str:
        """The status line as plain text: step, loss, tokens/s, time left, learning rate."""
        parts = [f"step {self.step}/{self.total_steps}"]
        if self.data["train_losses"]:
            parts.append(f"loss {self.data['train_losses'][-1]:.3f}")
        if self.data["val_losses"]:
            parts.append(f"val loss {self.data['val_losses'][-1]:.3f}")
        if self._first is not None and self.step > self._first[1]:
            first_time, first_step, first_tokens = self._first
            elapsed = time.perf_counter() - first_time
            parts.append(f"{(self._tokens - first_tokens) / elapsed:,.0f} tokens/s")
            if self.state == "training":
                left = elapsed / (self.step - first_step) * max(self.total_steps - self.step, 0)
                parts.append(f"{_duration(left)} left")
        lrs = [v for v in self.data["lrs"] if not math.isnan(v)]
        if lrs:
            parts.append(f"lr {lrs[-1]:.2e}")
        parts.append({"waiting": "waiting", "training": "training", "stopped": "stopped by you",
                      "finished": "finished", "failed": "failed"}[self.state])
        return " · ".join(parts)

    def _update_status(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._last_status < 0.5:
            return
        self._last_status = now
        self.status.value = html.escape(self.status_text())
        if self.total_steps:
            self.progress.value = min(1.0, self.step / self.total_steps)

    def _maybe_draw(self, force: bool = False) -> None:
        if not self.live or not self._dirty:
            return
        since = time.perf_counter() - self._last_draw
        average = self.draw_seconds / self.n_draws if self.n_draws else 0.0
        if since >= max(self.redraw_seconds, DRAW_SPACING * average) or (force and since >= DRAW_SPACING * average):
            self._draw()

    def _draw(self) -> None:
        """Redraw the picture now (only when live: nobody would see it otherwise)."""
        if not self.live:
            return
        started = time.perf_counter()
        with warnings.catch_warnings():  # from a background thread a warning would land in some other cell
            warnings.simplefilter("ignore")
            self.image.value = figure_to_png(self.figure(), dpi=80, tight=False)  # constrained layout: no crop pass
        self._last_draw = time.perf_counter()
        self.draw_seconds += self._last_draw - started
        self.n_draws += 1
        self._dirty = False

    def _x_max(self) -> int:
        """Right end of the step axes: the run's length, or, for a long run, a range that doubles as it goes
        (so that the first hundred steps of a 100,000-step run are not a sliver at the left edge)."""
        x_max = 50
        while x_max < 1.1 * self.step:
            x_max *= 2
        return max(min(x_max, self.total_steps), self.step, 1) if self.total_steps else max(x_max, self.step)

    def figure(self) -> Figure:
        """The picture: losses (with the reference lines), learning rate, probe accuracies."""
        return dashboard_figure(self.data, self.references, self._x_max())


__all__ = ["TrainingDashboard", "live_frontend", "reference_losses"]
