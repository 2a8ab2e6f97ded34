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
(``gptbook.checkpoint``) to ``--out`` every ``--save-every`` steps and at the end; generated text is
printed as it comes. The library behind it: ``gptbook.training.Trainer`` and
``gptbook.generation.generate_stream``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, NoReturn, Optional, Sequence

if TYPE_CHECKING:
    import torch

    from .training import TrainConfig

PROG = "gptbook"


class UsageError(Exception):
    """Bad input on the command line: reported as one line on stderr, with exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake is reported in one line (no usage block) that points to ``--help``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.HelpFormatter(prog, max_help_position=32)


def _checked(convert: Callable[[str], Any], ok: Callable[[Any], bool], requirement: str) -> Callable[[str], Any]:
    """An argparse ``type``: ``convert`` the text, then insist on ``ok``; the error says ``requirement``."""
    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {requirement}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {requirement}, got {text!r}")
        return value
    return parse


_finite = math.isfinite
WHOLE_1 = _checked(int, lambda v: v >= 1, "a whole number >= 1")
WHOLE_0 = _checked(int, lambda v: v >= 0, "a whole number >= 0")
SEED = _checked(int, lambda v: 0 <= v < 2**32, "a whole number from 0 to 4294967295")
ABOVE_0 = _checked(float, lambda v: _finite(v) and v > 0, "a number > 0")
AT_LEAST_0 = _checked(float, lambda v: _finite(v) and v >= 0, "a number >= 0")
PROBABILITY = _checked(float, lambda v: _finite(v) and 0 < v <= 1, "a number above 0 and at most 1")
SHARE = _checked(float, lambda v: _finite(v) and 0 <= v <= 1, "a number from 0 to 1")


def parse_override(text: str) -> tuple[str, Any]:
    """``"n_layers=2"`` -> ``("n_layers", 2)``: one ``--set`` of a model configuration field.

    The value is read as JSON where it can be (``2``, ``0.1``, ``true``), else kept as text. Raises
    ``ValueError`` for text without ``=`` or a key that no model configuration has (the valid keys
    are in ``gptbook.config``: ``REQUIRED_KEYS`` and ``OPTIONAL_KEYS``).
    """
    from .config import OPTIONAL_KEYS, REQUIRED_KEYS

    key, sep, value = text.partition("=")
    key = key.strip()
    valid = [*REQUIRED_KEYS, *OPTIONAL_KEYS]
    if not sep or not key:
        raise ValueError(f"expected KEY=VALUE such as n_layers=2, got {text!r}")
    if key not in valid:
        raise ValueError(f"{key!r} is not a model configuration field; valid fields: {', '.join(valid)}")
    lowered = value.strip().lower()
    if lowered in ("true", "false"):
        return key, lowered == "true"
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _override(text: str) -> tuple[str, Any]:
    try:
        return parse_override(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _bf16(text: str) -> Optional[bool]:
    choices = {"auto": None, "on": True, "off": False}
    if text not in choices:
        raise argparse.ArgumentTypeError(f"must be auto, on or off, got {text!r}")
    return choices[text]


# ---------------------------------------------------------------------------------------------
# The parser
# ---------------------------------------------------------------------------------------------

def _train_parser(commands: argparse._SubParsersAction) -> None:
    from .recipes import RECIPES
    from .training import TrainConfig

    d = TrainConfig()
    recipes = "; ".join(f"--recipe {name}: " + ", ".join(f"{k}={v!r}" for k, v in asdict(recipe).items()
                                                        if v != getattr(d, k)) for name, recipe in RECIPES.items())
    p = commands.add_parser(
        "train", help="train a GPT and save checkpoints", formatter_class=_formatter,
        description="Train a GPT (gptbook.training.Trainer) and save checkpoints to --out.",
        epilog=f"A recipe (gptbook.recipes) replaces the defaults ({recipes}); "
               "the options given change it. Under torchrun every process trains its share (DDP).")

    def option(flag: str, dest: str, help: str, default: Optional[str] = None, **kwargs: Any) -> None:
        """An option that sets the TrainConfig field ``dest`` only when given (so a recipe can fill the rest)."""
        text = help if default is None else f"{help} (default: {default})"
        p.add_argument(flag, dest=dest, help=text, default=argparse.SUPPRESS, **kwargs)

    p.add_argument("--recipe", choices=list(RECIPES), default=argparse.SUPPRESS,
                   help="start from a recipe (gptbook.recipes): course (the shipped model) or notebook (notebook 08's run)")
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


def _generate_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "generate", help="continue a prompt with a checkpoint or GPT-2's weights", formatter_class=_formatter,
        description="Continue a prompt with a gptbook checkpoint or GPT-2's weights; the text is printed "
                    "as it is generated.")
    p.add_argument("model", metavar="MODEL",
                   help="a checkpoint folder (gptbook train --out), a Hugging Face GPT-2 folder "
                        "(config.json + model.safetensors), or a hub id such as gpt2 (hf:ORG/NAME for one with a slash)")
    p.add_argument("--prompt", default="Once upon a time", metavar="TEXT",
                   help="the text to continue (default: 'Once upon a time')")
    p.add_argument("--max-new-tokens", type=WHOLE_1, default=100, metavar="N",
                   help="tokens to generate at most (default: 100)")
    p.add_argument("--temperature", type=AT_LEAST_0, default=0.8, metavar="T",
                   help="0: greedy (always the most likely token); higher: more varied (default: 0.8)")
    p.add_argument("--top-k", type=WHOLE_0, default=50, metavar="K",
                   help="sample among the K most likely tokens; 0: among all (default: 50)")
    p.add_argument("--top-p", type=PROBABILITY, default=None, metavar="P",
                   help="sample among the most likely tokens that together have probability P (default: off)")
    p.add_argument("--seed", type=SEED, default=123, metavar="N",
                   help="random seed: the same seed gives the same text (default: 123)")
    p.add_argument("--no-eos", action="store_true", help="keep going past <|endoftext|> (default: stop there)")
    p.add_argument("--device", default="auto",
                   help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps (default: auto)")
    p.set_defaults(run=run_generate)


def build_parser() -> argparse.ArgumentParser:
    """The ``gptbook`` parser with its two commands, ``train`` and ``generate``."""
    parser = _Parser(prog=PROG, formatter_class=_formatter,
                     description="gptbook's command-line tools: train a GPT, and generate text with one.",
                     epilog="Run 'gptbook train --help' or 'gptbook generate --help' for their options.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"gptbook {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="{train,generate}")
    _train_parser(commands)
    _generate_parser(commands)
    return parser


# ---------------------------------------------------------------------------------------------
# Checks shared by both commands
# ---------------------------------------------------------------------------------------------

def resolve_device(name: str) -> "torch.device":
    """The ``torch.device`` for ``--device NAME``; ``UsageError`` when this machine has no such device."""
    import torch

    from ._shared import choose_device

    if name == "auto":
        return choose_device("auto")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UsageError(f"--device {name!r} is not a device; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = "this PyTorch is a CPU-only build" if torch.version.cuda is None else "PyTorch sees no CUDA GPU"
            raise UsageError(f"--device {name}: {why} (torch {torch.__version__}); use --device cpu, "
                             "or auto for the best device there is")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(f"--device {name}: there are only {torch.cuda.device_count()} CUDA device(s), "
                             f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
        return device
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise UsageError(f"--device {name}: Apple's MPS is not available here (it needs a Mac with Apple "
                             "silicon); use --device cpu, or auto for the best device there is")
        return device
    raise UsageError(f"--device {name!r}: gptbook runs on cpu, cuda or mps; use one of those, or auto")


# ---------------------------------------------------------------------------------------------
# gptbook train
# ---------------------------------------------------------------------------------------------

def train_config_from_args(args: argparse.Namespace) -> "TrainConfig":
    """The ``TrainConfig`` the options describe: ``--recipe``'s (or ``TrainConfig()``'s) settings, then
    every option given. ``--recipe course`` alone gives exactly ``gptbook.recipes.COURSE_RECIPE``."""
    from .recipes import RECIPES
    from .training import TrainConfig

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
    from .loading.checkpoint import META_FILE, CheckpointError, load_checkpoint_metadata
    from .config import get_config, validate_config

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
    from .loading.checkpoint import META_FILE, load_checkpoint_metadata
    from .training import Trainer, perplexity

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


# ---------------------------------------------------------------------------------------------
# gptbook generate
# ---------------------------------------------------------------------------------------------

def load_model(source: str, device: "torch.device") -> "torch.nn.Module":
    """The model ``generate`` names, in eval mode on ``device``: a gptbook checkpoint folder, a Hugging
    Face GPT-2 folder, or a hub id (``hf:ORG/NAME`` for one with a slash; the rule is
    ``gptbook.loading.source.locate_model``). ``UsageError`` otherwise."""
    from .loading.checkpoint import load_checkpoint
    from .loading.source import locate_model
    from .model import GPTModel

    try:
        where = locate_model(source, slash_hub_ids=False)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        if where.kind == "checkpoint":
            model = load_checkpoint(where.where, device=device)
        else:
            model = GPTModel.from_pretrained(where.where if where.kind == "hf-folder" else f"hf:{where.where}",
                                             device=device)
    except (ValueError, OSError) as exc:  # CheckpointError is a ValueError; so are the hub's errors
        raise UsageError(f"cannot load {source!r}: {exc}") from None
    return model.to(device).eval()


def run_generate(args: argparse.Namespace) -> int:
    """``gptbook generate``: check every option, load the model, print the continuation as it comes."""
    from .generation import generate_stream
    from .tokenizer import EOT_ID, get_tokenizer, text_to_token_ids

    if not args.prompt:
        raise UsageError("--prompt is empty: give some text to continue, e.g. --prompt 'Once upon a time'")
    device = resolve_device(args.device)
    model = load_model(args.model, device)
    tokenizer = get_tokenizer()
    idx = text_to_token_ids(args.prompt, tokenizer).to(device)  # (1, n)
    context = model.cfg["context_length"]
    if idx.shape[1] > context:
        print(f"note: the prompt is {idx.shape[1]} tokens long; the model sees only its last {context} "
              "(its context length)", file=sys.stderr, flush=True)
        idx = idx[:, -context:]  # (1, context)
    print(args.prompt, end="", flush=True)
    new_ids: list[int] = []
    printed = ""
    stream = generate_stream(
        model, idx, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k or None,
        top_p=args.top_p, eos_id=None if args.no_eos else EOT_ID, seed=args.seed,
    )
    for token in stream:  # (1, 1) per step
        token_id = int(token[0, 0])
        if token_id == EOT_ID and not args.no_eos:
            break
        new_ids.append(token_id)
        text = tokenizer.decode(new_ids)
        if not text.endswith("\ufffd"):  # wait until a character split over tokens is complete
            print(text[len(printed):], end="", flush=True)
            printed = text
    print(tokenizer.decode(new_ids)[len(printed):], flush=True)
    return 0


# ---------------------------------------------------------------------------------------------

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
