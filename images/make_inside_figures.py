"""Pictures made from the shipped course model: notebook 10's opening figure and the README's dashboard picture.

    python images/make_inside_figures.py

- ``images/inside_the_model.png``: the logit lens on a count (left) and the name-fetching score of every head (right);
- ``images/screenshots/training_dashboard.png`` (only if missing: the browser test refreshes it with a real
  screenshot under GPTBOOK_UPDATE_README_SCREENSHOTS=1): the dashboard's picture, replayed from the shipped model's
  training history at about a third of the run.
Re-run after retraining the course model.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from gptbook import get_tokenizer, load_course_model  # noqa: E402
from gptbook.course_model import COURSE_RECIPE, course_model_info  # noqa: E402
from gptbook.interpret import logit_lens, name_copy_scores, plot_logit_lens  # noqa: E402
from gptbook.training import lr_at_step  # noqa: E402

HERE = Path(__file__).resolve().parent


def inside_figure() -> None:
    model, tokenizer = load_course_model(), get_tokenizer()
    lens = logit_lens(model, torch.tensor(tokenizer.encode("She counted them: one, two, three, four,")))
    fetch = name_copy_scores(model, n_stories=10)
    fig = Figure(figsize=(12, 3.4), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[3, 1.1])
    plot_logit_lens(lens, ax=left)
    left.set_title("logit lens: the top next-token guess after each layer")
    right.imshow(fetch.numpy(), cmap="Purples", vmin=0, vmax=1)
    for (layer, head), value in ((divmod(i, fetch.shape[1]), float(v)) for i, v in enumerate(fetch.flatten())):
        right.text(head, layer, f"{value:.1f}", ha="center", va="center", fontsize=8,
                   color="white" if value > 0.6 else "black")
    right.set(title="attention on the earlier name", xlabel="head", ylabel="layer",
              xticks=range(fetch.shape[1]), yticks=range(fetch.shape[0]))
    fig.savefig(HERE / "inside_the_model.png", dpi=90)


def dashboard_picture() -> None:
    from gptbook.dashboard import TrainingDashboard

    target = HERE / "screenshots" / "training_dashboard.png"
    if target.exists():
        return
    history = course_model_info()["history"]
    r = COURSE_RECIPE
    end = history["val_steps"][len(history["val_steps"]) // 3]
    dashboard = TrainingDashboard(live=False)
    dashboard("start", total_steps=r.max_steps)
    for step, loss in zip(history["train_steps"], history["train_losses"]):
        if step > end:
            break
        dashboard("step", step=step, train_loss=loss, tokens_seen=step * r.batch_size * r.max_length,
                  lr=lr_at_step(step - 1, r.lr, r.max_steps, r.warmup_steps, r.min_lr))
    for step, loss, probes in zip(history["val_steps"], history["val_losses"], history["val_probes"]):
        if step <= end:
            dashboard("eval", step=step, val_loss=loss, probes=probes)
    dashboard.figure().savefig(target, dpi=80)


if __name__ == "__main__":
    inside_figure()
    dashboard_picture()
