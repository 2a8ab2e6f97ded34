#!/usr/bin/env python3
"""Run every course notebook on a fresh kernel; print its wall time and the kernel's peak memory.

    python bench/bench_notebooks.py                 # all notebooks, in order
    python bench/bench_notebooks.py 04 07           # only those whose names start so
    python bench/bench_notebooks.py --fresh-cache   # as a first-time learner: no trained course model yet

The notebooks run from a temporary copy, so the repository's stored outputs are not touched.
Budget for the course (Binder): each notebook under 2 GB, all of them together under 10 minutes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of a running process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_notebook(path: Path, workdir: Path) -> tuple[float, float]:
    """Execute ``path`` in ``workdir`` on a new kernel; return (seconds, peak MB of the kernel)."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(workdir)}})
    start = time.perf_counter()
    with client.setup_kernel():
        pid = client.km.provisioner.process.pid
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        peak = peak_rss_mb(pid)
    return time.perf_counter() - start, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prefixes", nargs="*", help="run only notebooks whose names start with these")
    parser.add_argument("--fresh-cache", action="store_true", help="use an empty GPTBOOK_CACHE (the course model is trained)")
    args = parser.parse_args()

    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if args.prefixes:
        notebooks = [p for p in notebooks if p.name.startswith(tuple(args.prefixes))]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "notebooks"
        shutil.copytree(ROOT / "notebooks", work)
        shutil.copytree(ROOT / "images", Path(tmp) / "images")
        if args.fresh_cache:
            os.environ["GPTBOOK_CACHE"] = str(Path(tmp) / "cache")
        print(f"{'notebook':<32}{'time':>9}{'peak memory':>14}")
        total = 0.0
        for path in notebooks:
            seconds, peak = run_notebook(work / path.name, work)
            total += seconds
            print(f"{path.name:<32}{seconds:>8.1f}s{peak:>11.0f} MB", flush=True)
        print(f"{'all notebooks':<32}{total:>8.1f}s")
    print(f"({os.cpu_count()} CPUs, Python {sys.version.split()[0]}; first kernel start included)")


if __name__ == "__main__":
    main()
