"""The training recipes of the course: settings for ``Trainer`` that the course runs and documents.

``COURSE_RECIPE``
    how the shipped course model was trained (``gptbook.course_model``; an hour on 2 CPU cores):
    ``gptbook train --recipe course --out runs/course-model``.
``NOTEBOOK_RECIPE``
    the learner's own run in notebook 08: under three minutes on 2 CPU cores, and it learns to count:
    ``gptbook train --recipe notebook --out runs/notebook``.

``RECIPES`` maps the names ``gptbook train --recipe`` accepts to them. Both train on the bundled stories
and keep the head rows of the tokens the stories never use as one shared row (``merge_unused``,
``gptbook.training.UnusedTokens``): the same training as the full softmax, at a fiftieth of the head's cost.
"""

from __future__ import annotations

from .training import TrainConfig

#: How the shipped course model was trained: ``gptbook train --recipe course`` starts from this.
COURSE_RECIPE = TrainConfig(
    model="tiny",
    # width 128 instead of 256: a quarter of the work per token, and the stories need no more
    # (no dropout either: 2.5 passes over generated stories leave nothing to overfit)
    model_overrides={"emb_dim": 128, "drop_rate": 0.0},
    batch_size=8,
    max_length=256,
    max_steps=1600,  # 3.3 million tokens: about 2.5 passes over the 1.33 million training tokens
    lr=2e-3,  # 3e-3 is unstable here: the loss stalls near 4.4 and greedy text is commas and newlines
    min_lr=2e-4,
    warmup_steps=100,
    eval_every=50,  # dense, so that the history shows when each skill (and the induction head) appeared
    eval_batches=8,
    save_every=200,
    log_every=50,
    seed=123,
    device="cpu",
    autocast=False,
    probes=True,
    probe_stories=40,
    merge_unused=True,  # the head rows of the ~49,000 tokens the stories never use trained as one (exact)
)

#: Notebook 08's own training run: the smallest model that still has room for an induction circuit
#: (two layers), short windows and a high learning rate, stopped by the clock (``max_seconds``).
NOTEBOOK_RECIPE = TrainConfig(
    model="tiny",
    model_overrides={"emb_dim": 128, "n_layers": 2, "drop_rate": 0.0},
    batch_size=16,
    max_length=128,
    max_steps=100_000,  # the clock stops it first
    max_seconds=150.0,
    lr=3e-3,
    min_lr=3e-4,
    warmup_steps=20,
    eval_every=100,
    eval_batches=4,
    save_every=100_000,
    log_every=50,
    seed=123,
    device="cpu",
    autocast=False,
    probes=True,
    probe_stories=20,
    merge_unused=True,
    out_dir="runs/notebook",
)

#: What ``gptbook train --recipe NAME`` starts from.
RECIPES = {"course": COURSE_RECIPE, "notebook": NOTEBOOK_RECIPE}
