"""Training and exporting the course's own model: ``GPT_CONFIG_TINY`` trained on the bundled stories, shipped with gptbook.

Several notebooks want a model that has learned something: the live generation widget, the
attention heat maps after training, the logit lens and the head roles of notebook 10. That model
was trained once, with the project's own trainer and ``gptbook.training.recipes.COURSE_RECIPE``, and its weights
ship inside the package (``gptbook/data/course_model.safetensors``, bf16, about 15 MB) beside a JSON file of
metadata: the recipe, the corpus's hash, gptbook's version, the steps, tokens, wall time and
machine of the run, the validation loss and probe accuracies of the shipped weights, and the
losses, probes and head scores at every evaluation of the run (how the skills and circuits emerged).

Reading it back is ``gptbook.loading.course_model``: ``load_course_model()`` checks the file's sha256
and loads it in about a second, offline, with no training, so every learner, on any machine, gets
the very same weights. To train it again (about half an hour on one CPU core)::

    gptbook train --recipe course --out runs/course-model
    python -m gptbook.training.course_model export runs/course-model

Taught in notebooks 07 (generating text), 08 (training) and 10 (inside the trained model).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import torch

from .._shared import cpu_name
from ..loading.checkpoint import _sha256
from ..loading.course_model import DATA_DIR, INFO_FILE, WEIGHTS_FILE, course_model_info, load_course_model  # noqa: F401
from ..model import GPTModel
from .recipes import COURSE_RECIPE  # noqa: F401  (the recipe beside the export that records it)

#: Validation stories the shipped model's probe accuracies are measured on.
EXPORT_PROBE_STORIES = 120


# ---------------------------------------------------------------------------------------------
# Making the shipped files from a training run (maintainers; see the module docstring)
# ---------------------------------------------------------------------------------------------

def _machine() -> str:
    """The CPU's name, its cores, torch's threads and version: the record beside a training run's figures."""
    return f"{cpu_name()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads, torch {torch.__version__}"


def _full_val_loss(model: GPTModel) -> float:
    """Mean loss over every validation window of the bundled corpus (not only the eval batches)."""
    from .corpus import load_corpus
    from ..tokenizer import EOT_TEXT, get_tokenizer
    from .loss import model_loss
    from .windows import TokenWindows

    ids = torch.tensor(get_tokenizer().encode(load_corpus("val"), allowed_special={EOT_TEXT}))
    windows = TokenWindows(ids, model.cfg["context_length"], 8, seed=0, shuffle=False)
    total = 0.0
    with torch.no_grad():
        for i in range(windows.batches_per_epoch):
            inputs, targets = windows.batch(i)
            total += model_loss(model, inputs, targets).item()
    return total / windows.batches_per_epoch


def export_course_model(run_dir: Union[str, Path], wall_seconds: Optional[float] = None,
                        out_dir: Union[str, Path] = DATA_DIR, note: str = "") -> dict[str, Any]:
    """Write ``course_model.safetensors`` (bf16) and ``course_model.json`` from a finished training run.

    The validation loss and probe accuracies in the metadata are measured on the bf16 weights as
    shipped (loaded back to fp32), over the whole validation split and ``EXPORT_PROBE_STORIES`` stories.
    """
    from safetensors.torch import save_file

    from .._version import __version__
    from ..loading.checkpoint import load_checkpoint, load_checkpoint_metadata
    from .corpus import load_corpus
    from .probes import induction_accuracy, run_probes

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    meta = load_checkpoint_metadata(run_dir)
    model = load_checkpoint(run_dir).eval()
    if not model.cfg.get("tie_weights"):
        raise ValueError("the course model must tie its output head to the token embedding (tie_weights=True)")
    state = {k: v.detach().to(torch.bfloat16).contiguous() for k, v in model.state_dict().items()
             if k != "out_head.weight"}
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / WEIGHTS_FILE.name
    save_file(state, str(weights), metadata={"format": "gptbook-course-model", "tied": "out_head.weight=tok_emb.weight"})
    shipped = GPTModel(model.cfg)
    shipped.load_state_dict({**{k: v.float() for k, v in state.items()},
                             "out_head.weight": state["tok_emb.weight"].float()})
    shipped.eval()
    history = meta.get("history", {})
    recipe = meta.get("train_config", {})
    tokens_per_step = recipe.get("batch_size", 0) * recipe.get("max_length", 0) * recipe.get("grad_accum_steps", 1)
    info = {
        "config": model.cfg,
        "recipe": {k: v for k, v in recipe.items() if k not in ("out_dir", "resume")},
        "command": "gptbook train --recipe course --out runs/course-model && "
                   "python -m gptbook.training.course_model export runs/course-model",
        "corpus_sha256": hashlib.sha256(load_corpus("all").encode("utf-8")).hexdigest(),
        "gptbook_version": __version__,
        "steps": int(meta.get("step", 0)),
        "tokens": int(meta.get("step", 0)) * tokens_per_step,
        "wall_seconds": wall_seconds,
        "machine": _machine(),
        "trained_on": time.strftime("%Y-%m-%d"),
        "note": note,
        "val_loss": round(_full_val_loss(shipped), 4),
        "probes": {k: round(v, 4) for k, v in run_probes(shipped, n_stories=EXPORT_PROBE_STORIES).items()},
        "probe_stories": EXPORT_PROBE_STORIES,
        "induction": {k: round(v, 4) for k, v in induction_accuracy(shipped).items()},  # random tokens shown twice
        "history": {
            "val_steps": history.get("val_steps", []),
            "val_losses": [round(v, 4) for v in history.get("val_losses", [])],
            "val_probes": history.get("val_probes", []),
            "val_heads": history.get("val_heads", []),  # every head's previous-token and induction score
            "val_seconds": [round(v, 1) for v in history.get("val_seconds", [])],  # training time at each evaluation
            "train_steps": history.get("steps", [])[::10],
            "train_losses": [round(v, 4) for v in history.get("train_losses", [])[::10]],
        },
        "dtype": "bfloat16",
        "sha256": _sha256(weights),
        "bytes": weights.stat().st_size,
    }
    (out_dir / INFO_FILE.name).write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    return info


def course_model_report(info: Optional[dict[str, Any]] = None) -> str:
    """The shipped model's figures as a Markdown page: the run, the final figures, and how skills emerged."""
    from .probes import PROBES

    info = info or course_model_info()
    r = info["recipe"]
    columns = (*PROBES, "induction")
    minutes = f"{info['wall_seconds'] / 60:.0f} min" if info.get("wall_seconds") else "not recorded"
    lines = [
        "| | |", "|---|---|",
        f"| command | `{info['command']}` |",
        f"| model | `{r['model']}`: {info['config']['n_layers']} blocks of width {info['config']['emb_dim']}, "
        f"{info['config']['n_heads']} heads, context {info['config']['context_length']}, tied head |",
        f"| training | {info['steps']:,} steps of {r['batch_size']} x {r['max_length']} tokens = {info['tokens']:,} tokens; "
        f"AdamW, peak lr {r['lr']}, warm-up {r['warmup_steps']}, cosine to {r['min_lr']}, weight decay "
        f"{r.get('weight_decay', 0.1)}; seed {r['seed']}; "
        f"init {r.get('init', 'gpt2')} (std {r.get('init_std', 0.02)}); copy drills {r.get('copy_drills', 0.0):.0%} "
        f"of the rows; dropout {info['config']['drop_rate']} |",
        f"| wall time | {minutes} on {info['machine']} |",
        *([f"| note | {info['note']} |"] if info.get("note") else []),
        f"| shipped weights | {info['dtype']}, {info['bytes'] / 1e6:.1f} MB, sha256 `{info['sha256'][:16]}...` |",
        f"| validation loss | {info['val_loss']:.3f} (whole validation split, shipped weights) |",
        "| probe accuracies | " + ", ".join(f"{k} **{100 * info['probes'][k]:.0f} %**" for k in PROBES)
        + f" ({info['probe_stories']} validation stories) |",
        f"| induction | random corpus tokens shown twice: second copy **{100 * info['induction']['second']:.0f} %** "
        f"right, first copy {100 * info['induction']['first']:.0f} % (chance) |",
        "", "How the skills emerged (validation loss and probes at each evaluation of the run, "
        f"{r['probe_stories']} stories each):", "",
        "| step | tokens | val loss | " + " | ".join(columns) + " |",
        "|---:|---:|---:|" + "---:|" * len(columns),
    ]
    tokens_per_step = info["tokens"] // max(info["steps"], 1)
    probes_at = {p["step"]: p for p in info["history"]["val_probes"]}
    for step, loss in zip(info["history"]["val_steps"], info["history"]["val_losses"]):
        p = probes_at.get(step, {})
        lines.append(f"| {step:,} | {step * tokens_per_step:,} | {loss:.3f} | "
                     + " | ".join(f"{100 * p[k]:.0f} %" if k in p else "" for k in columns) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m gptbook.training.course_model export RUN_DIR [--wall-seconds S]`` writes the shipped files;
    ``python -m gptbook.training.course_model report`` prints their figures as Markdown."""
    parser = argparse.ArgumentParser(prog="python -m gptbook.training.course_model",
                                     description="Write the shipped course model from a training run.")
    sub = parser.add_subparsers(dest="command", required=True)
    export = sub.add_parser("export", help="write gptbook/data/course_model.{safetensors,json} from RUN_DIR")
    export.add_argument("run_dir", help="the --out folder of `gptbook train --recipe course`")
    export.add_argument("--wall-seconds", type=float, default=None, help="the training run's wall time, to record")
    export.add_argument("--out-dir", default=str(DATA_DIR), help="where to write (default: the package's data folder)")
    export.add_argument("--note", default="", help="anything about the run a reader should know, to record")
    sub.add_parser("report", help="print the shipped model's figures as Markdown")
    args = parser.parse_args(argv)
    if args.command == "report":
        print(course_model_report(), end="")
        return 0
    try:
        info = export_course_model(args.run_dir, args.wall_seconds, args.out_dir, args.note)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: info[k] for k in ("steps", "tokens", "val_loss", "probes", "bytes", "sha256")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
