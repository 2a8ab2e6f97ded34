#!/usr/bin/env python3
"""Time to first generated text: a fresh kernel runs notebook 07 from the top until its first live
generation widget is on screen, and generates with the shipped course model.

    python bench/bench_first_text.py            # 3 runs, each on a new kernel
    python bench/bench_first_text.py --runs 5

What is timed, from the moment the kernel is asked to start: the kernel's start-up, every cell of
notebook 07 up to and including the first cell that shows a ``GenerationWidget`` (imports, loading the
course model from the package, building the widget), then one 30-token generation with the same
model in that kernel (what a learner's first click on "Generate" does). Goal: under 10 s on a 2-core
CPU, with no training on first use (an empty ``GPTBOOK_CACHE`` is used to prove it).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from gptbook._shared import cpu_name

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "07_generating_text.ipynb"
FIRST_CLICK = (
    "from gptbook import generate as _g, text_to_token_ids as _t\n"
    "_ = _g(course_model, _t('Once upon a time', tokenizer), max_new_tokens=30, temperature=0.8, top_k=40, seed=1)"
)


def one_run() -> tuple[float, float]:
    """Seconds until the widget cell has run, and until the first generation is done."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    widget_cell = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "GenerationWidget(" in c.source)
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    start = time.perf_counter()
    with client.setup_kernel():
        for index in range(widget_cell + 1):
            client.execute_cell(nb.cells[index], index)
        widget_ready = time.perf_counter() - start
        client.execute_cell(nbformat.v4.new_code_cell(FIRST_CLICK), widget_cell + 1)
        first_text = time.perf_counter() - start
    return widget_ready, first_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        os.environ["GPTBOOK_CACHE"] = cache  # nothing cached: the shipped model must be enough
        results = [one_run() for _ in range(args.runs)]
    for i, (ready, text) in enumerate(results, 1):
        print(f"run {i}: widget ready after {ready:5.1f} s, first 30 tokens generated after {text:5.1f} s")
    print(f"best: {min(r for r, _ in results):.1f} s to the widget, {min(t for _, t in results):.1f} s to text "
          f"(goal: under 10 s)")
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores; Python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
