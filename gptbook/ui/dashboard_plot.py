"""What ``TrainingDashboard`` draws: the loss curves with their two reference lines (the corpus's unigram entropy,
the shipped course model's final validation loss), the learning rate, the probe accuracies (notebook 08)."""

from __future__ import annotations

import math
from typing import Optional

from matplotlib.figure import Figure

_PROBE_COLORS = {"counting": "#1f77b4", "count_recall": "#ff7f0e", "weekday_order": "#2ca02c",
                 "name_copying": "#d62728", "induction": "#9467bd"}


def reference_losses() -> dict[str, float]:
    """The two reference lines: ``{"unigram entropy": ..., "shipped model": ...}`` (those that can be found)."""
    refs: dict[str, float] = {}
    try:
        refs["unigram entropy"] = _unigram_entropy()
    except Exception:  # pragma: no cover - the corpus ships with the package
        pass
    try:
        from ..loading.course_model import course_model_info

        refs["shipped model"] = float(course_model_info()["history"]["val_losses"][-1])
    except Exception:  # no shipped model (yet): no line
        pass
    return refs


_ENTROPY: Optional[float] = None


def _unigram_entropy() -> float:
    global _ENTROPY
    if _ENTROPY is None:
        from ..training.corpus import load_corpus, unigram_entropy
        from ..tokenizer import EOT_TEXT, get_tokenizer

        _ENTROPY = unigram_entropy(get_tokenizer().encode(load_corpus("train"), allowed_special={EOT_TEXT}))
    return _ENTROPY


def dashboard_figure(data: dict[str, list], references: dict[str, float], x_max: int) -> Figure:
    """The dashboard's picture from its ``data`` (steps, losses, learning rates, probes), with a grey line for
    each of ``references`` (``{label: loss}``, the first dotted, the second dashed) and the step axes running from 0 to ``x_max``."""
    d = data
    fig = Figure(figsize=(11, 3.0), layout="constrained")
    loss_ax, lr_ax, probe_ax = fig.subplots(1, 3, width_ratios=[2.2, 1, 1.4])
    if d["steps"]:
        loss_ax.plot(d["steps"], d["train_losses"], color="#1f77b4", lw=0.8, alpha=0.7, label="training")
    if d["val_steps"]:
        loss_ax.plot(d["val_steps"], d["val_losses"], "o-", color="#ff7f0e", ms=3, label="validation")
    for (label, value), style in zip(references.items(), (":", "--")):
        loss_ax.axhline(value, color="#555", ls=style, lw=1)
        loss_ax.annotate(f"{label} {value:.2f}", (1.0, value), xycoords=("axes fraction", "data"),
                         ha="right", va="bottom", fontsize=8, color="#555")
    loss_ax.set(xlabel="step", ylabel="loss (nats)", title="loss")
    loss_ax.set_xlim(0, x_max)
    if d["steps"]:
        loss_ax.legend(loc="lower left", fontsize=8)  # where a falling loss never is, clear of the reference labels
    steps_lr = [(s, v) for s, v in zip(d["steps"], d["lrs"]) if not math.isnan(v)]
    if steps_lr:
        lr_ax.plot(*zip(*steps_lr), color="#9467bd")
    lr_ax.set(xlabel="step", title="learning rate")
    lr_ax.set_xlim(0, x_max)
    lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    for name in (d["probes"][-1] if d["probes"] else {}):
        values = [100 * row.get(name, math.nan) for row in d["probes"]]
        probe_ax.plot(d["probe_steps"], values, "o-", ms=3, label=name.replace("_", " "),
                      color=_PROBE_COLORS.get(name))
    probe_ax.set(xlabel="step", ylabel="% right", title="probe accuracies", ylim=(-3, 103))
    probe_ax.set_xlim(0, x_max)
    if d["probes"]:
        probe_ax.legend(loc="center right", fontsize=7)
    return fig
