#!/usr/bin/env python3
"""Test the lowest versions the course says it supports: install them, run the fast tests and a few notebooks.

    python3 tools/test_floors.py                      # build .venv-floors/ (once), then test
    python3 tools/test_floors.py -x tests/test_model.py   # pytest's arguments: options, other tests
    python3 tools/test_floors.py --torch torch==2.4.0 --index-url https://download.pytorch.org/whl/cpu

``requirements.txt`` and ``requirements-test.txt`` give each package a floor (``tiktoken>=0.7``); this
script installs exactly those floors (``tiktoken==0.7``) into a virtual environment of its own, without
the packages of the system Python, and runs:

- the library's fast tests (``FAST_TESTS``), and
- the notebooks in ``NOTEBOOKS`` under ``nbval --nbval-lax``: every cell must run and every ``assert``
  in them must hold; printed numbers are not compared, since older kernels may round differently.

PyTorch comes from ``--torch`` (default: ``TORCH_FLOOR``), from PyPI unless ``--index-url`` names
another index. On Linux PyPI's PyTorch includes CUDA (several GB, and the first run takes minutes);
PyTorch's own index of CPU builds is much smaller where it can be reached. A later run reuses the
environment when the versions it holds are the ones asked for. Exit code: pytest's (0 when all passed).
Not part of ``.ci/run`` (installing the environment takes minutes); README "Tests" says when to run it.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TORCH_FLOOR = "torch==2.4.0"
REQUIREMENT_FILES = ["requirements.txt", "requirements-test.txt"]
#: Test tools that the fast tests do not need (their tests skip without them); not installed here.
NOT_NEEDED = {"transformers", "playwright"}
#: Pins a floor needs that no requirement states: matplotlib 3.7's wheels were built for NumPy 1.
EXTRA_PINS = ["numpy<2"]
FAST_TESTS = ["tests/test_tokenizer.py", "tests/test_data.py", "tests/test_config.py", "tests/test_model.py",
              "tests/test_generation.py", "tests/test_training.py", "tests/test_checkpoint.py",
              "tests/test_weights.py", "tests/test_widgets.py", "tests/test_dashboard.py"]
#: Notebooks that use the newest APIs: attention and SDPA (04), the modern model's pieces (06),
#: generation and its widget (07).
NOTEBOOKS = ["notebooks/01_text_to_tokens.ipynb", "notebooks/04_attention.ipynb",
             "notebooks/06_gpt_model.ipynb", "notebooks/07_generating_text.ipynb"]


def floors() -> list[str]:
    """``name==version`` for every ``name>=version`` in the requirement files (except ``NOT_NEEDED``)."""
    pins = []
    for name in REQUIREMENT_FILES:
        for line in (ROOT / name).read_text(encoding="utf-8").splitlines():
            requirement = line.split("#", 1)[0].strip()
            match = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*>=\s*([0-9][0-9.]*)", requirement)
            if match and match[1].lower() != "torch" and match[1].lower() not in NOT_NEEDED:
                pins.append(f"{match[1]}=={match[2]}")
    return pins


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--venv", type=Path, default=ROOT / ".venv-floors", help="where to build the environment")
    parser.add_argument("--torch", default=TORCH_FLOOR, help=f"the PyTorch requirement (default {TORCH_FLOOR})")
    parser.add_argument("--index-url", help="an index for PyTorch (e.g. PyTorch's own CPU index)")
    args, pytest_args = parser.parse_known_args(argv)

    python = args.venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    wanted = "\n".join([args.torch, *floors(), *EXTRA_PINS, args.index_url or ""])
    stamp = args.venv / ".floors"
    if not (stamp.exists() and stamp.read_text() == wanted):
        print(f"[floors] building {args.venv} with {args.torch}, {', '.join(floors() + EXTRA_PINS)}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(args.venv)
        pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        source = ["--index-url", args.index_url, "--extra-index-url", "https://pypi.org/simple"] if args.index_url else []
        subprocess.run([*pip, args.torch, *source], check=True)
        subprocess.run([*pip, *floors(), *EXTRA_PINS, "-e", str(ROOT)], check=True)
        stamp.write_text(wanted)
    subprocess.run([str(python), "-c", "import torch, tiktoken, matplotlib, ipywidgets, jupyterlab, nbval; "
                    "print('[floors] torch', torch.__version__, '| matplotlib', matplotlib.__version__, "
                    "'| ipywidgets', ipywidgets.__version__, '| jupyterlab', jupyterlab.__version__)"], check=True)
    with tempfile.TemporaryDirectory(prefix="gptbook-cache-") as cache:
        env = {**os.environ, "GPTBOOK_CACHE": cache, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONPATH": str(ROOT)}
        # other arguments go to pytest: options (-x) and, instead of the default ones, tests or notebooks
        targets = [*pytest_args] if any(not a.startswith("-") for a in pytest_args) else [*pytest_args, *FAST_TESTS,
                                                                                           *NOTEBOOKS]
        command = [str(python), "-m", "pytest", "-p", "nbval", "-p", "no:cacheprovider", "--nbval-lax", "-q", *targets]
        return subprocess.run(command, cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
