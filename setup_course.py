#!/usr/bin/env python3
"""Set up the course in a virtual environment, then open it in JupyterLab or run the tests.

    python3 setup_course.py lab     # install what is missing, open the course in JupyterLab
    python3 setup_course.py test    # install what is missing (test tools too), run every test

The environment lives in ``.venv/`` beside this file and sees the packages already installed
for this Python (``--system-site-packages``), so a suitable PyTorch you already have is kept.
Without one, the CPU build of PyTorch is installed (a few hundred MB instead of several GB).
Running the command again only installs what changed. Delete ``.venv/`` to start over.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import subprocess
import sys
import urllib.request
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
TORCH_MIN = (2, 4)
TORCH_PIN = "torch==2.13.0"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
FIRST_NOTEBOOK = "notebooks/01_text_to_tokens.ipynb"
REQUIREMENTS = {"lab": ["requirements.txt"], "test": ["requirements.txt", "requirements-test.txt"]}


def say(message: str) -> None:
    print(f"[setup] {message}", flush=True)


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(*args: str | Path, check: bool = True) -> int:
    return subprocess.run([str(a) for a in args], check=check).returncode


def ensure_venv() -> Path:
    if not venv_python().exists():
        say(f"creating the virtual environment {VENV.name}/")
        venv.EnvBuilder(with_pip=True, system_site_packages=True).create(VENV)
    return venv_python()


def has_suitable_torch(python: Path) -> bool:
    code = (
        "import sys, torch; v = tuple(int(p) for p in torch.__version__.split('+')[0].split('.')[:2]); "
        f"sys.exit(0 if v >= {TORCH_MIN} else 1)"
    )
    return subprocess.run([str(python), "-c", code], capture_output=True).returncode == 0


def cpu_index_reachable() -> bool:
    """The CPU wheels of PyTorch live on their own index; use it only when it answers quickly."""
    if platform.system() != "Linux":
        return False  # PyPI's wheels for macOS and Windows are CPU builds already
    try:
        urllib.request.urlopen(CPU_INDEX + "/torch/", timeout=3).close()
        return True
    except Exception:
        return False


def ensure_torch(python: Path) -> None:
    if has_suitable_torch(python):
        say("PyTorch is already installed; keeping it")
        return
    say(f"installing PyTorch, CPU build ({TORCH_PIN})")
    extra = ["--extra-index-url", CPU_INDEX] if cpu_index_reachable() else []
    run(python, "-m", "pip", "install", TORCH_PIN, *extra)


def ensure_packages(python: Path, mode: str) -> None:
    files = [ROOT / name for name in REQUIREMENTS[mode]] + [ROOT / "pyproject.toml"]
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()
    stamp = VENV / f".installed-{mode}"
    if stamp.exists() and stamp.read_text() == digest:
        say("packages are up to date")
        return
    ensure_torch(python)
    say("installing the course's packages")
    requirement_args = [arg for f in REQUIREMENTS[mode] for arg in ("-r", str(ROOT / f))]
    run(python, "-m", "pip", "install", "--disable-pip-version-check", *requirement_args, "-e", str(ROOT))
    stamp.write_text(digest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["lab", "test"], help="open the course in JupyterLab, or run the tests")
    parser.add_argument("extra", nargs=argparse.REMAINDER, help="passed on to jupyter lab / pytest")
    args = parser.parse_args(argv)

    python = ensure_venv()
    ensure_packages(python, args.command)
    os.chdir(ROOT)
    if args.command == "lab":
        # Encrypt the connection to the kernel where the kernel supports it (ipykernel >= 7.4 otherwise
        # warns in the terminal that it runs over TCP without encryption).
        flags = ["--KernelManager.transport_encryption=auto"]
        flags += ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
        say("opening JupyterLab (stop it with Ctrl+C)")
        return run(python, "-m", "jupyterlab", FIRST_NOTEBOOK, *flags, *args.extra, check=False)
    say("preparing the course model (trained once, then cached)")
    run(python, "-c", "from gptbook.course_model import load_course_model; load_course_model()")
    say("running the tests: the library, every notebook (nbval) and the browser test")
    return run(python, "-m", "pytest", *args.extra, check=False)


if __name__ == "__main__":
    sys.exit(main())
