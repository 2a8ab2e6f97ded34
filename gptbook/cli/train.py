"""``gptbook train``: its options, the ``TrainConfig`` they describe, the checks made before anything is trained
or written, and the run (``gptbook.training.Trainer``)."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from .args import (
    ABOVE_0, AT_LEAST_0, SEED, SHARE, WHOLE_0, WHOLE_1, UsageError, _bf16, _formatter, _override, resolve_device,
)

if TYPE_CHECKING:
    from ..training import TrainConfig


def _train_parser(commands: argparse._SubParsersAction) -> None:
    from ..training.recipes import RECIPES
    from ..training import TrainConfig

    d = TrainConfig()
    recipes = "; ".join(f"--recipe {name}: " + ", ".join(f"{k}={v!r}" for k, v in asdict(recipe).items()
                                                        if v != getattr(d, k)) for name, recipe in RECIPES.items())
    p = commands.add_parser(
        "train", help="train a GPT and save checkpoints", formatter_class=_formatter,
        description="Train a GPT (gptbook.training.Trainer) and save checkpoints to --out.",
        epilog=f"A recipe (gptbook.training.recipes) replaces the defaults ({recipes}); "
               "the options given change it. Under torchrun every process trains its share (DDP).")

    def option(flag: str, dest: str, help: str, default: Optional[str] = None, **kwargs: Any) -> None:
        """An option that sets the TrainConfig field ``dest`` only when given (so a recipe can fill the rest)."""
        text = help if default is None else f"{help} (default: {default})"
        p.add_argument(flag, dest=dest, help=text, default=argparse.SUPPRESS, **kwargs)

    p.add_argument("--recipe", choices=list(RECIPES), default=argparse.SUPPRESS,
                   help="start from a recipe (gptbook.training.recipes): course (the shipped model) or notebook (notebook 08's run)")
    option("--config", "model", "model configuration: tiny, 124M, gpt2, gpt2-medium, ...", d.model, metavar="NAME")
    option("--set", "model_overrides", "change one model configuration field, e.g. n_layers=2 (repeatable)",
           action="append", type=_override, metavar="KEY=VALUE")
    option("--data", "data", "a UTF-8 text file or an http(s) URL to train on", "the bundled stories",
           metavar="FILE")
    option("--out", "out_dir", "checkpoint folder to write", d.out_dir, metavar="FOLDER")
    option("--resume", "resume", "continue the run saved in FOLDER (without FOLDER: the --out folder)",
           nargs="?", const="", metavar="FOLDER")
    p.add_argument("--overwrite", action="store_true", help="replace a checkpoint that is already in --out")
    option("--steps", "max_steps", "optimizer steps in total, resumed ones included", d.max_steps,
           type=WHOLE_1, metavar="N")
    option("--max-seconds", "max_seconds", "stop (and save) after this many seconds", "no limit",
           type=AT_LEAST_0, metavar="S")
    option("--batch-size", "batch_size", "sequences per step (per process)", d.batch_size, type=WHOLE_1, metavar="N")
    option("--max-length", "max_length", "tokens per sequence", "the context length", type=WHOLE_1, metavar="N")
    option("--lr", "lr", "peak learning rate", d.lr, type=ABOVE_0)
    option("--min-lr", "min_lr", "learning rate at the end of the cosine decay", d.min_lr, type=AT_LEAST_0)
    option("--warmup-steps", "warmup_steps", "steps of linear learning-rate warm-up", d.warmup_steps,
           type=WHOLE_0, metavar="N")
    option("--weight-decay", "weight_decay", "AdamW's weight decay", d.weight_decay, type=AT_LEAST_0, metavar="W")
    option("--grad-clip", "grad_clip", "largest gradient norm; 0: no clipping", d.grad_clip, type=AT_LEAST_0,
           metavar="NORM")
    option("--grad-accum", "grad_accum_steps", "batches per optimizer step", d.grad_accum_steps, type=WHOLE_1,
           metavar="N")
    option("--eval-every", "eval_every", "steps between validation losses and samples", d.eval_every,
           type=WHOLE_1, metavar="N")
    option("--eval-batches", "eval_batches", "validation batches per evaluation", d.eval_batches, type=WHOLE_1,
           metavar="N")
    option("--save-every", "save_every", "steps between checkpoints (one is saved at the end too)", d.save_every,
           type=WHOLE_1, metavar="N")
    option("--log-every", "log_every", "steps between progress lines", d.log_every, type=WHOLE_1, metavar="N")
    option("--seed", "seed", "random seed: the same seed gives the same run", d.seed, type=SEED, metavar="N")
    option("--device", "device", "auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps", d.device)
    option("--bf16", "autocast", "bf16 autocast: auto (on for bf16-capable CUDA GPUs only), on or off", "auto",
           type=_bf16, metavar="{auto,on,off}")
    option("--init", "init", "a new model's weights: gpt2 (normal), sinusoidal (the same, sinusoidal "
           "positions) or default (PyTorch's)", d.init, choices=["gpt2", "sinusoidal", "default"], metavar="INIT")
    option("--init-std", "init_std", "std of the gpt2/sinusoidal start (small models: about 1/sqrt(width))",
           d.init_std, type=ABOVE_0, metavar="STD")
    option("--merge-unused", "merge_unused", "train the head rows of tokens the text never uses as one row (same "
           "training, faster)", "off", action="store_const", const=True)
    option("--copy-drills", "copy_drills", "share of rows that are copy drills (random tokens twice; 'X by X')",
           d.copy_drills, type=SHARE, metavar="SHARE")
    option("--copy-echo", "copy_echo", "share of the copy drills that are 'X by X' echoes", d.copy_echo, type=SHARE,
           metavar="SHARE")
    option("--prompt", "sample_prompt", "start of the samples printed while training", repr(d.sample_prompt),
           metavar="TEXT")
    p.set_defaults(run=run_train)


def train_config_from_args(args: argparse.Namespace) -> "TrainConfig":
    """The ``TrainConfig`` the options describe: ``--recipe``'s (or ``TrainConfig()``'s) settings, then
    every option given. ``--recipe course`` alone gives exactly ``gptbook.training.recipes.COURSE_RECIPE``."""
    from ..training.recipes import RECIPES
    from ..training import TrainConfig

    given = vars(args)
    base = RECIPES[given["recipe"]] if "recipe" in given else TrainConfig()
    changes = {f.name: given[f.name] for f in fields(TrainConfig) if f.name in given}
    if "model_overrides" in changes:
        changes["model_overrides"] = {**base.model_overrides, **dict(changes["model_overrides"])}
    if changes.get("grad_clip") == 0:
        changes["grad_clip"] = None
    if changes.get("resume") == "":
        changes["resume"] = changes.get("out_dir", base.out_dir)
    try:
        return replace(base, **changes)
    except ValueError as exc:  # TrainConfig's own checks (the option types catch most before)
        raise UsageError(str(exc)) from None


def _check_train(config: "TrainConfig", args: argparse.Namespace) -> None:
    """Everything that can be checked before training starts; ``UsageError`` names what to change."""
    from ..loading.checkpoint import META_FILE, CheckpointError, load_checkpoint_metadata
    from ..config import get_config, validate_config

    given = vars(args)
    if config.resume is not None:
        if "model" in given or "model_overrides" in given:
            raise UsageError("--config and --set shape a new model, but a resumed run keeps its checkpoint's "
                             "configuration: drop them, or drop --resume")
        if not Path(config.resume).expanduser().is_dir():
            raise UsageError(f"--resume: no such checkpoint folder: {config.resume!r} "
                             f"(the current folder is {os.getcwd()!r})")
        try:
            load_checkpoint_metadata(config.resume)
        except CheckpointError as exc:
            raise UsageError(f"--resume: {exc}") from None
    else:
        try:
            model_cfg = validate_config({**get_config(config.model), **config.model_overrides})
        except ValueError as exc:
            raise UsageError(f"{'--set' if config.model_overrides else '--config'}: {exc}") from None
        if config.max_length is not None and config.max_length > model_cfg["context_length"]:
            raise UsageError(f"--max-length {config.max_length} is longer than the model's context_length "
                             f"({model_cfg['context_length']}): use at most that, or --set context_length=N")
    if config.data not in (None, "bundled") and not str(config.data).startswith(("http://", "https://")):
        data = Path(config.data).expanduser()
        if not data.exists():
            raise UsageError(f"--data: no such file: {config.data!r} (the current folder is {os.getcwd()!r})")
        if not data.is_file():
            raise UsageError(f"--data: {config.data!r} is a folder; give the path of a text file in it")
    resolve_device(config.device)
    out = Path(config.out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out: {config.out_dir!r} is a file; a checkpoint is a folder, give a folder path")
    resuming_here = config.resume is not None and Path(config.resume).expanduser().resolve() == out.resolve()
    if (out / META_FILE).is_file() and not resuming_here and not args.overwrite:
        try:
            step = f" (step {load_checkpoint_metadata(out).get('step')})"
        except CheckpointError:
            step = ""
        raise UsageError(f"{config.out_dir!r} already holds a checkpoint{step}: add --resume to continue it, "
                         "--overwrite to replace it, or choose another --out")


def run_train(args: argparse.Namespace) -> int:
    """``gptbook train``: check every option, then train; returns the exit status."""
    from ..loading.checkpoint import META_FILE, load_checkpoint_metadata
    from ..training import Trainer, perplexity

    config = train_config_from_args(args)
    _check_train(config, args)
    trainer = Trainer(config, log=lambda message: print(message, flush=True))
    try:
        history = trainer.fit()
    except KeyboardInterrupt:
        out = Path(config.out_dir)
        saved = (f"the last checkpoint in {config.out_dir} is from step {load_checkpoint_metadata(out)['step']} "
                 "(continue it with --resume)") if (out / META_FILE).is_file() else "no checkpoint was saved"
        print(f"\nstopped at step {trainer.step}: {saved}", file=sys.stderr)
        return 130
    except (ValueError, OSError) as exc:  # e.g. a text that is not UTF-8, or too short; no network for --data
        raise UsageError(str(exc)) from None
    finally:
        trainer.close()
    if trainer.rank == 0 and history["val_losses"]:
        val = history["val_losses"][-1]
        print(f"done: step {trainer.step}, validation loss {val:.3f} (perplexity {perplexity(val):.1f}), "
              f"checkpoint in {config.out_dir}", flush=True)
    return 0
