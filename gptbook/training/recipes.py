"""The training recipes of the course: settings for ``Trainer`` that the course runs and documents.

``COURSE_RECIPE``
    how the shipped course model was trained (``gptbook.training.course_model``; about half an hour on one
    CPU core): ``gptbook train --recipe course --out runs/course-model``.
``NOTEBOOK_RECIPE``
    notebook 08's own run, a few minutes on a laptop, after which the model counts:
    ``gptbook train --recipe notebook --out runs/notebook``.

Both train ``tiny`` at width 128 (4 blocks, 4 heads, context 256, no dropout), which is what
measured best for these stories (``tools/induction_lab/README.md``):

- **the initial weights' scale**: std 0.088 = 1/sqrt(128) instead of GPT-2's 0.02. GPT-2's value
  was chosen for width 768; at width 128 every product of two weight matrices (query times key,
  value times output) starts about 20 times too small, and attention heads sat on a plateau for
  thousands of steps before they learned to look anything up;
- **sinusoidal position embeddings** to start from, so that "the token before" is easy to find;
- **learning rate 2e-3** with 100 warm-up steps and a cosine to a tenth of it;
- **no weight decay**: AdamW's decay pulls every weight matrix toward zero at every step, the
  queries and keys included, which keeps attention soft. With decay 0.1 (the v2 model shipped on
  2026-12-05, seed 123) the strongest previous-token head put 0.49 of its attention on the token
  before and shared the job with a second head (0.44); without decay, the same seed's head 0.3
  sharpens to 0.53. Which heads share the job also depends on the seed (seed 2 without decay: two
  heads at 0.31 and 0.26), so notebook 10 lists the heads it finds and asserts their roles;
- **merge_unused**: the stories use about 2,200 of GPT-2's 50,257 tokens; the head rows of the
  others train as one shared row (``UnusedTokens``): the same training, much less work per step;
- for the course model only, **copy drills** (``gptbook.training.copy_drills``): a quarter of the rows are
  random tokens shown twice or "X by X" echoes, which make copying from the context a general rule
  (an induction head) rather than a trick for the stories' names and codes.

``RECIPES`` maps the names ``gptbook train --recipe`` accepts to them: one place for every recipe.
"""

from __future__ import annotations

from dataclasses import replace

from .config import TrainConfig

#: The model both recipes train: ``tiny`` at width 128, without dropout (7.3 million parameters, tied head).
WIDTH_128 = {"emb_dim": 128, "drop_rate": 0.0}

#: How the shipped course model was trained: ``gptbook train --recipe course`` starts from this.
COURSE_RECIPE = TrainConfig(
    model="tiny",
    model_overrides=dict(WIDTH_128),
    out_dir="runs/course-model",
    batch_size=8,
    max_length=256,
    max_steps=4000,  # 8.2 million tokens: about 4.6 passes over the 1.77 million training tokens
    lr=2e-3,
    min_lr=2e-4,
    warmup_steps=100,
    weight_decay=0.0,  # decay keeps attention soft (see above)
    eval_every=50,  # densely: the history shows when each skill appears (induction: a phase change)
    eval_batches=16,
    save_every=250,
    log_every=50,
    seed=123,
    device="cpu",
    autocast=False,
    init="sinusoidal",
    init_std=0.088,  # 1 / sqrt(128)
    merge_unused=True,
    copy_drills=0.25,
    copy_echo=0.3,
    probes=True,
    probe_stories=40,
)

#: Notebook 08's run (``gptbook train --recipe notebook``): counting learned in a few CPU minutes.
NOTEBOOK_RECIPE = replace(
    COURSE_RECIPE,
    out_dir="runs/notebook",
    max_steps=300,  # 0.6 million tokens
    warmup_steps=30,
    eval_every=50,
    eval_batches=4,
    save_every=300,
    log_every=25,
    device="auto",
    copy_drills=0.0,  # induction needs about 5 million tokens (the course model's history): not in minutes
    probe_stories=20,
)

#: What ``gptbook train --recipe NAME`` starts from.
RECIPES = {"course": COURSE_RECIPE, "notebook": NOTEBOOK_RECIPE}
