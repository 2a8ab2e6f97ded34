"""The command line: ``gptbook train`` and ``gptbook generate`` (also ``python -m gptbook ...``).

    gptbook train                                          # GPT_CONFIG_TINY on the bundled stories, into runs/tiny
    gptbook train --recipe course --out runs/course-model  # the course model, as gptbook ships it
    gptbook train --data my_book.txt --steps 500 --out runs/book   # your own UTF-8 text
    gptbook train --set n_layers=2 --set emb_dim=128 --out runs/small
    gptbook train --out runs/tiny --resume --steps 400     # continue a run up to step 400
    torchrun --nproc_per_node 2 -m gptbook train ...       # several processes (DDP)

    gptbook generate runs/tiny --prompt "Once upon a time"
    gptbook generate path/to/gpt2 --prompt "Hello, I am" --temperature 0   # greedy
    gptbook generate gpt2 --top-p 0.9 --max-new-tokens 200 --seed 7        # GPT-2 from the hub (online)

Every input is checked before anything is loaded, trained or written: a bad one ends the command
with one line on stderr and exit status 2. Training progress goes to stdout, and a checkpoint
(``gptbook.loading.checkpoint``) to ``--out`` every ``--save-every`` steps and at the end; generated text is
printed as it comes. The library behind it: ``gptbook.training.Trainer`` and
``gptbook.generation.generate_stream``.

One command a file: ``args.py`` (the checked option types, ``--device``, ``UsageError``), ``train.py``
(``gptbook train``), ``generate.py`` (``gptbook generate``); the parser and ``main`` are here.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from .args import (
    ABOVE_0, AT_LEAST_0, PROBABILITY, PROG, SEED, SHARE, WHOLE_0, WHOLE_1, UsageError, _Parser, _formatter,
    parse_override, resolve_device,
)
from .generate import _generate_parser, load_model, run_generate
from .train import _train_parser, run_train, train_config_from_args

__all__ = ["ABOVE_0", "AT_LEAST_0", "PROBABILITY", "PROG", "SEED", "SHARE", "UsageError", "WHOLE_0", "WHOLE_1",
           "build_parser", "load_model", "main", "parse_override", "resolve_device", "run_generate", "run_train",
           "train_config_from_args"]


def build_parser() -> argparse.ArgumentParser:
    """The ``gptbook`` parser with its two commands, ``train`` and ``generate``."""
    parser = _Parser(prog=PROG, formatter_class=_formatter,
                     description="gptbook's command-line tools: train a GPT, and generate text with one.",
                     epilog="Run 'gptbook train --help' or 'gptbook generate --help' for their options.")
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"gptbook {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="{train,generate}")
    _train_parser(commands)
    _generate_parser(commands)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``gptbook ...`` with ``argv`` (default: the command line); returns the exit status.

    0: done; 2: bad input (one line on stderr, nothing written); 130: stopped with Ctrl+C.
    """
    parser = build_parser()
    args = parser.parse_args(argv)  # exits with status 2 (one line) on a malformed option
    if args.command is None:
        parser.error("choose a command: train or generate")
    try:
        return args.run(args)
    except UsageError as exc:
        message = " ".join(str(exc).split("\n"))
        print(f"{PROG} {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
