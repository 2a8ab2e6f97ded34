"""Command line: train a GPT on the bundled corpus or on your own text.

    python -m gptbook.train                                   # GPT_CONFIG_TINY on the bundled stories
    python -m gptbook.train --data my_book.txt --steps 500    # your own UTF-8 text file
    python -m gptbook.train --set n_layers=2 --set emb_dim=128 --out runs/small
    python -m gptbook.train --resume runs/tiny --steps 400    # continue a run up to step 400
    torchrun --nproc_per_node 2 -m gptbook.train ...          # several processes (DDP)

Progress goes to the terminal; a checkpoint (see gptbook.checkpoint) is written to ``--out``
every ``--save-every`` steps and at the end. Generate from it with
``python -m gptbook.generate runs/tiny --prompt "Once upon a time"``.

The library behind it is ``gptbook.training.Trainer``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Optional, Sequence

from .training import TrainConfig, Trainer, perplexity


def _parse_value(text: str) -> Any:
    """``"2"`` -> 2, ``"0.1"`` -> 0.1, ``"true"`` -> True, anything else stays a string."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set expects KEY=VALUE (e.g. --set n_layers=2), got {item!r}")
        overrides[key.strip()] = _parse_value(value)
    return overrides


def build_parser() -> argparse.ArgumentParser:
    defaults = TrainConfig()
    p = argparse.ArgumentParser(
        prog="python -m gptbook.train",
        description="Train a GPT model (gptbook) and save checkpoints.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--config", default=defaults.model, help="model configuration name: tiny, 124M, gpt2, ...")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="change one configuration field, e.g. --set n_layers=2 (repeatable)")
    p.add_argument("--data", default=None, help="a UTF-8 text file or an http(s) URL (default: the bundled corpus)")
    p.add_argument("--out", default=defaults.out_dir, help="checkpoint folder to write")
    p.add_argument("--steps", type=int, default=defaults.max_steps, help="optimizer steps to train (in total)")
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--max-length", type=int, default=None, help="tokens per sequence (default: the context length)")
    p.add_argument("--lr", type=float, default=defaults.lr, help="peak learning rate")
    p.add_argument("--min-lr", type=float, default=defaults.min_lr, help="learning rate at the end of the cosine")
    p.add_argument("--warmup-steps", type=int, default=defaults.warmup_steps)
    p.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    p.add_argument("--grad-clip", type=float, default=defaults.grad_clip, help="max gradient norm (0: no clipping)")
    p.add_argument("--grad-accum", type=int, default=defaults.grad_accum_steps, help="batches per optimizer step")
    p.add_argument("--eval-every", type=int, default=defaults.eval_every)
    p.add_argument("--eval-batches", type=int, default=defaults.eval_batches)
    p.add_argument("--save-every", type=int, default=defaults.save_every)
    p.add_argument("--log-every", type=int, default=defaults.log_every)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--device", default=defaults.device, help="auto (CUDA, then MPS, then CPU), cpu, cuda, mps, ...")
    p.add_argument("--bf16", choices=("auto", "on", "off"), default="auto",
                   help="bf16 autocast; auto = on for bf16-capable CUDA GPUs only")
    p.add_argument("--init", choices=("gpt2", "default"), default=defaults.init,
                   help="initialisation of a new model: GPT-2's (normal, std 0.02) or PyTorch's defaults")
    p.add_argument("--prompt", default=defaults.sample_prompt, help="start of the samples printed while training")
    p.add_argument("--resume", nargs="?", const="", default=None, metavar="CHECKPOINT",
                   help="continue from a checkpoint folder (without a value: the --out folder)")
    p.add_argument("--max-seconds", type=float, default=None, help="stop (and save) after this much time")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Turn parsed command-line arguments into a ``TrainConfig``."""
    return TrainConfig(
        model=args.config,
        model_overrides=_parse_overrides(args.overrides),
        data=args.data,
        out_dir=args.out,
        batch_size=args.batch_size,
        max_length=args.max_length,
        max_steps=args.steps,
        lr=args.lr,
        min_lr=args.min_lr,
        warmup_steps=args.warmup_steps,
        weight_decay=args.weight_decay,
        grad_clip=args.grad_clip if args.grad_clip and args.grad_clip > 0 else None,
        grad_accum_steps=args.grad_accum,
        eval_every=args.eval_every,
        eval_batches=args.eval_batches,
        save_every=args.save_every,
        log_every=args.log_every,
        seed=args.seed,
        device=args.device,
        autocast={"auto": None, "on": True, "off": False}[args.bf16],
        init=args.init,
        sample_prompt=args.prompt,
        resume=(args.out if args.resume == "" else args.resume),
        max_seconds=args.max_seconds,
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit status (0 on success)."""
    args = build_parser().parse_args(argv)
    config = config_from_args(args)
    trainer = Trainer(config, log=lambda message: print(message, flush=True))
    try:
        history = trainer.fit()
    except (ValueError, FileNotFoundError, IsADirectoryError, ConnectionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        trainer.close()
    if trainer.rank == 0 and history["val_losses"]:
        val = history["val_losses"][-1]
        print(f"done: step {trainer.step}, validation loss {val:.3f} (perplexity {perplexity(val):.1f}), "
              f"checkpoint in {config.out_dir}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
