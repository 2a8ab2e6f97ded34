#!/usr/bin/env python3
"""Re-execute course notebooks top to bottom and store their outputs the way the repository keeps them.

    python tools/refresh_notebooks.py notebooks/02_inputs_and_targets.ipynb [more.ipynb ...]

Each notebook runs on a fresh kernel from its own folder (as a learner runs it). Afterwards progress bars
get the text of their final state, and the cell execution timestamps, widget state and other per-run
metadata are dropped, so that a diff shows only
what changed in the outputs. Run the notebook tests afterwards (strict nbval compares these outputs,
also under other CPU kernels: ``python tests/portability.py avx2-1``).
"""

from __future__ import annotations

import html
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def progress_bars_in_final_state(nb) -> int:
    """Give each tqdm progress-bar widget output a plain-text form that shows where it ended (not "0%").

    A notebook viewer without the widget state (GitHub, nbval) shows an output's text/plain; for a
    progress bar that is the text it had when it was created. The final text is in the widget state.
    """
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    fixed = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            view = data.get("application/vnd.jupyter.widget-view+json")
            if not view or view.get("model_id") not in state:
                continue
            children = state[view["model_id"]].get("state", {}).get("children", [])
            kids = [state.get(k.replace("IPY_MODEL_", ""), {}) for k in children]
            if len(kids) != 3 or "Progress" not in kids[1].get("model_name", ""):
                continue
            left, right = (html.unescape(k["state"].get("value", "")) for k in (kids[0], kids[2]))
            bar = kids[1]["state"]
            n = int(round(10 * bar.get("value", 0) / (bar.get("max", 1) or 1)))
            data["text/plain"] = f"{left}|{'█' * n}{' ' * (10 - n)}|{right}".replace("\xa0", " ")
            fixed += 1
    return fixed


def refresh(path: Path) -> float:
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    seconds = time.perf_counter() - start
    progress_bars_in_final_state(nb)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        for output in cell.get("outputs", []):
            output.get("metadata", {}).pop("transient", None)
    nbformat.write(nb, path)
    return seconds


def main(paths: list[str]) -> int:
    if not paths:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    for name in paths:
        print(f"{name}: {refresh(Path(name).resolve()):.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
