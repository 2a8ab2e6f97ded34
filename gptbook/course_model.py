"""The course's own trained model: ``GPT_CONFIG_TINY`` trained on the bundled stories.

Several notebooks want a model that has learned something (the live generation widget, the
attention heat maps after training). ``load_course_model()`` trains one with ``Trainer`` — the
same code as ``python -m gptbook.train`` — the first time it is called (a minute or two on a
laptop CPU), saves it as a checkpoint in a cache folder, and loads it in a second afterwards.

The cache folder is ``$GPTBOOK_CACHE`` if set, else ``~/.cache/gptbook``. Each recipe (the
training settings, gptbook's version, the corpus) gets its own sub-folder, so a changed recipe
never loads a stale model. Delete the folder to retrain.

Taught in notebooks 07 (generating text) and 08 (training).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Optional, Union

from .checkpoint import META_FILE, load_checkpoint
from .model import GPTModel
from .training import TrainConfig, Trainer

#: How the shipped course model was trained: ``gptbook train --recipe course`` starts from this.
COURSE_RECIPE = TrainConfig(
    model="tiny",
    batch_size=8,
    max_length=256,
    max_steps=3000,  # 6.1 million tokens: about 5 passes over the 1.15 million training tokens
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


def cache_dir() -> Path:
    """Where trained course models are kept: ``$GPTBOOK_CACHE`` or ``~/.cache/gptbook``."""
    return Path(os.environ.get("GPTBOOK_CACHE") or Path.home() / ".cache" / "gptbook").expanduser()


def _recipe_key(recipe: TrainConfig) -> str:
    """A short fingerprint of everything that decides the trained weights."""
    from . import __version__
    from .corpus import load_corpus

    settings = {k: v for k, v in asdict(recipe).items() if k not in ("out_dir", "log_every", "resume")}
    corpus = hashlib.sha256(load_corpus("all").encode("utf-8")).hexdigest()
    blob = json.dumps({"recipe": settings, "gptbook": __version__, "corpus": corpus}, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:12]


def load_course_model(recipe: TrainConfig = COURSE_RECIPE, folder: Union[str, Path, None] = None,
                      verbose: bool = True) -> GPTModel:
    """Return the course's trained tiny GPT in eval mode, training and caching it on first use.

    Args:
        recipe: the training settings (default ``COURSE_RECIPE``: 160 steps of 2 x 256 tokens).
        folder: where to cache the checkpoint (default: a sub-folder of ``cache_dir()``).
        verbose: print the training progress when training happens.
    """
    target = Path(folder) if folder is not None else cache_dir() / f"course-model-{_recipe_key(recipe)}"
    if not (target / META_FILE).is_file():
        if verbose:
            print(f"Training the course model once ({recipe.max_steps} steps; about a minute or two on a CPU). "
                  "Later calls load it from the cache.", flush=True)
        trainer = Trainer(TrainConfig(**{**asdict(recipe), "out_dir": str(target)}),
                          log=print if verbose else (lambda message: None))
        trainer.fit()
        trainer.close()
    return load_checkpoint(target).eval()
