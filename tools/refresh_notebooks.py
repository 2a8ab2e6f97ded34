#!/usr/bin/env python3
"""Re-execute course notebooks top to bottom and store their outputs the way the repository keeps them.

    python tools/refresh_notebooks.py notebooks/02_inputs_and_targets.ipynb [more.ipynb ...]

Each notebook runs on a fresh kernel from its own folder (as a learner runs it). Afterwards the cell
execution timestamps, widget state and other per-run metadata are dropped, so that a diff shows only
what changed in the outputs. Run the notebook tests afterwards (strict nbval compares these outputs,
also under other CPU kernels: ``python tests/portability.py avx2-1``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def refresh(path: Path) -> float:
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    seconds = time.perf_counter() - start
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
