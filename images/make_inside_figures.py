"""Pictures made from the shipped course model: notebook 10's opening figure and the README's dashboard picture.

    python images/make_inside_figures.py [--dashboard-from runs/notebook]

- ``images/inside_the_model.png``: the logit lens on a count (left), and the previous-token and induction scores
  of every head (right): the two halves of the course model's induction circuit;
- ``images/screenshots/training_dashboard.png``, with ``--dashboard-from RUN``: the dashboard's picture replayed
  from the history of a finished run of ``gptbook train --recipe notebook --out RUN`` (notebook 08's run: counting
  climbs as the loss falls).
Re-run after retraining the course model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from gptbook import get_tokenizer, load_course_model  # noqa: E402
from gptbook.training.corpus import load_corpus  # noqa: E402
from gptbook.interpret import head_scores, logit_lens, plot_logit_lens  # noqa: E402
from gptbook.tokenizer import EOT_ID  # noqa: E402
from gptbook.training import lr_at_step  # noqa: E402

HERE = Path(__file__).resolve().parent


def inside_figure() -> None:
    model, tokenizer = load_course_model(), get_tokenizer()
    lens = logit_lens(model, torch.tensor(tokenizer.encode("Mia found some shells. Mia counted them: one, two, three, four,")))
    story = torch.tensor(([EOT_ID] + tokenizer.encode(load_corpus("val").split("<|endoftext|>")[0]))[:256])
    scores = head_scores(model, text_ids=story.unsqueeze(0))
    fig = Figure(figsize=(16, 3.6), layout="constrained")
    left, *grids = fig.subplots(1, 3, width_ratios=[4, 1.1, 1.1])
    plot_logit_lens(lens, ax=left)
    left.set_title("logit lens: the top next-token guess after each layer")
    for ax, role, title in zip(grids, ("previous_token", "induction"), ("previous-token score", "induction score")):
        grid = scores[role]
        ax.imshow(grid.numpy(), cmap="Purples", vmin=0, vmax=1)
        for (layer, head), value in ((divmod(i, grid.shape[1]), float(v)) for i, v in enumerate(grid.flatten())):
            ax.text(head, layer, f"{value:.1f}", ha="center", va="center", fontsize=8,
                    color="white" if value > 0.6 else "black")
        ax.set(title=title, xlabel="head", ylabel="layer", xticks=range(grid.shape[1]), yticks=range(grid.shape[0]))
    fig.savefig(HERE / "inside_the_model.png", dpi=90)


def dashboard_picture(run: Path) -> None:
    """The dashboard as it looked at the end of ``run`` (a finished ``gptbook train`` folder), replayed."""
    from gptbook.loading.checkpoint import load_checkpoint_metadata
    from gptbook.ui.dashboard import TrainingDashboard

    meta = load_checkpoint_metadata(run)
    history, r = meta["history"], meta["train_config"]
    tokens_per_step = r["batch_size"] * r["max_length"] * r["grad_accum_steps"]
    dashboard = TrainingDashboard(live=False)
    dashboard("start", total_steps=r["max_steps"])
    for step, loss in zip(history["steps"], history["train_losses"]):
        dashboard("step", step=step, train_loss=loss, tokens_seen=step * tokens_per_step,
                  lr=lr_at_step(step - 1, r["lr"], r["max_steps"], r["warmup_steps"], r["min_lr"]))
    for step, loss, probes in zip(history["val_steps"], history["val_losses"], history["val_probes"]):
        dashboard("eval", step=step, val_loss=loss, probes=probes)
    dashboard.figure().savefig(HERE / "screenshots" / "training_dashboard.png", dpi=80)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dashboard-from", type=Path, default=None, metavar="RUN",
                        help="also draw the dashboard picture from this finished run of --recipe notebook")
    args = parser.parse_args()
    inside_figure()
    if args.dashboard_from is not None:
        dashboard_picture(args.dashboard_from)
