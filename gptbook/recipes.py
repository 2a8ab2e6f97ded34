"""The training recipes of the course: settings for ``Trainer`` that the course runs and documents.

``COURSE_RECIPE``
    how the shipped course model was trained (``gptbook.course_model``; about an hour on 2 CPU cores):
    ``gptbook train --recipe course --out runs/course-model``.

``RECIPES`` maps the names ``gptbook train --recipe`` accepts to them: one place for every recipe.
"""

from __future__ import annotations

from .training import TrainConfig

#: How the shipped course model was trained: ``gptbook train --recipe course`` starts from this.
COURSE_RECIPE = TrainConfig(
    model="tiny",
    batch_size=8,
    max_length=256,
    max_steps=2000,  # 4.1 million tokens: about 3.6 passes over the 1.13 million training tokens
    lr=2e-3,  # 3e-3 is unstable here: the loss stalls near 4.4 and greedy text is commas and newlines
    min_lr=2e-4,
    warmup_steps=100,
    eval_every=250,
    eval_batches=16,
    save_every=250,
    log_every=50,
    seed=123,
    device="cpu",
    autocast=False,
    probes=True,
    probe_stories=40,
)

#: What ``gptbook train --recipe NAME`` starts from.
RECIPES = {"course": COURSE_RECIPE}
