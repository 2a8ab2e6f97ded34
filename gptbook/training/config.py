"""``TrainConfig``: every setting of a ``Trainer`` run, checked when it is made (``gptbook train`` fills one in)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional


def _check_train_config(cfg: "TrainConfig") -> None:
    """Raise a ``ValueError`` naming the first setting of ``cfg`` that cannot work, and what it must be."""
    def fail(name: str, what: str) -> None:
        raise ValueError(f"TrainConfig.{name} must be {what}, got {getattr(cfg, name)!r}")

    def is_int(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    def is_number(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

    at_least = {"batch_size": 1, "max_steps": 1, "warmup_steps": 0, "grad_accum_steps": 1, "eval_every": 1,
                "eval_batches": 1, "save_every": 1, "log_every": 1, "sample_tokens": 0}
    for name, low in at_least.items():
        if not is_int(getattr(cfg, name)) or getattr(cfg, name) < low:
            fail(name, f"a whole number >= {low}")
    if cfg.max_length is not None and (not is_int(cfg.max_length) or cfg.max_length < 1):
        fail("max_length", "None (the model's context length) or a whole number >= 1")
    if not is_int(cfg.seed):
        fail("seed", "a whole number")
    if not is_number(cfg.lr) or cfg.lr <= 0:
        fail("lr", "a number > 0")
    if cfg.grad_clip is not None and (not is_number(cfg.grad_clip) or cfg.grad_clip <= 0):
        fail("grad_clip", "a number > 0 (the largest gradient norm) or None (no clipping)")
    for name in ("min_lr", "weight_decay", "max_seconds"):  # max_seconds may also be None (no time limit)
        value = getattr(cfg, name)
        if not (value is None and name == "max_seconds") and (not is_number(value) or value < 0):
            fail(name, "a number >= 0" + (" or None (no time limit)" if name == "max_seconds" else ""))
    if not is_number(cfg.val_fraction) or not 0 < cfg.val_fraction < 1:
        fail("val_fraction", "a number between 0 and 1 (the share of your text kept for validation)")
    if cfg.init not in ("gpt2", "sinusoidal", "default"):
        fail("init", "'gpt2' (GPT-2's initialisation), 'sinusoidal' (GPT-2's, with sinusoidal position "
                     "embeddings) or 'default' (PyTorch's)")
    if isinstance(cfg.init_std, bool) or not isinstance(cfg.init_std, (int, float)) or not 0 < cfg.init_std <= 1:
        fail("init_std", "a standard deviation above 0 and at most 1, e.g. 0.02 (GPT-2's) or 1 / sqrt(emb_dim)")
    if not isinstance(cfg.model_overrides, dict):
        fail("model_overrides", "a dict of configuration fields, e.g. {'n_layers': 2}")
    if not isinstance(cfg.merge_unused, bool):
        fail("merge_unused", "True (train the head rows of unused tokens as one shared row) or False")
    for name in ("copy_drills", "copy_echo"):
        if not is_number(getattr(cfg, name)) or not 0 <= getattr(cfg, name) <= 1:
            fail(name, "a probability between 0 and 1" + (" (the share of rows that are copy drills; 0: none)"
                                                          if name == "copy_drills" else ""))
    if not isinstance(cfg.probes, bool):
        fail("probes", "True (run the probes at every evaluation on the bundled corpus) or False")
    if not is_int(cfg.probe_stories) or cfg.probe_stories < 1:
        fail("probe_stories", "a whole number >= 1 (to run no probes, set probes=False)")


@dataclass
class TrainConfig:
    """Every setting of a ``Trainer`` run; the command line ``gptbook train`` fills one in.

    Checked when it is made: a setting that cannot work raises a ``ValueError`` that names it.
    """

    def __post_init__(self) -> None:
        _check_train_config(self)

    model: str = "tiny"  # a name for get_config ("tiny", "124M", "gpt2", ...)
    model_overrides: dict[str, Any] = field(default_factory=dict)  # e.g. {"n_layers": 2}
    data: Optional[str] = None  # None: the bundled corpus; else a text file or an http(s) URL
    val_fraction: float = 0.1  # for a text of your own: the last 10 % validates
    out_dir: str = "runs/tiny"
    batch_size: int = 4  # small batches, many steps: what learns fastest in a few CPU minutes
    max_length: Optional[int] = None  # tokens per window; default: the model's context_length
    max_steps: int = 200  # optimizer steps
    lr: float = 2e-3  # peak learning rate
    min_lr: float = 2e-4
    warmup_steps: int = 10
    weight_decay: float = 0.1
    grad_clip: Optional[float] = 1.0
    grad_accum_steps: int = 1
    eval_every: int = 50
    eval_batches: int = 8
    save_every: int = 100
    log_every: int = 10
    seed: int = 123
    device: str = "auto"
    autocast: Optional[bool] = None  # None: bf16 where it pays off (bf16-capable CUDA GPUs)
    sample_prompt: str = "Once upon a time"
    sample_tokens: int = 60
    init: str = "gpt2"  # "gpt2": init_weights_gpt2; "sinusoidal": the same, with sinusoidal_positions; "default": PyTorch's
    init_std: float = 0.02  # the standard deviation of "gpt2" and "sinusoidal" (GPT-2's 0.02 was chosen for width 768)
    resume: Optional[str] = None  # a checkpoint folder to continue from
    max_seconds: Optional[float] = None  # stop (and save) after this much time; the cosine then ends there
    probes: bool = True  # on the bundled corpus: run gptbook.training.probes at every evaluation (kept in the history)
    probe_stories: int = 40  # validation stories the probes read
    merge_unused: bool = False  # train the head rows of tokens the text never uses as one row (UnusedTokens)
    copy_drills: float = 0.0  # share of training rows replaced by copy drills (gptbook.training.copy_drills); 0: none
    copy_echo: float = 0.3  # of the drills, the share that are "X by X" echoes (the rest: repeated sequences)
