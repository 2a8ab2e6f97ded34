#!/usr/bin/env python3
"""Set up the course in a virtual environment, then open it in JupyterLab or run the tests.

    python3 setup_course.py lab     # install what is missing, open the course in JupyterLab
    python3 setup_course.py test    # install what is missing (test tools too), run every test

The environment lives in ``.venv/`` beside this file and sees the packages already installed
for this Python (``--system-site-packages``), so a suitable PyTorch you already have is kept.
Without one, PyTorch is installed, and on Linux its CPU build is taken from PyTorch's own index
(a few hundred MB instead of several GB); the script says which build it got. Running the command
again only installs what changed (installing for ``test`` covers ``lab`` too). Delete ``.venv/``
to start over.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import urllib.request
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
TORCH_MIN = (2, 4)  # the lowest PyTorch tested (tools/test_floors.py)
TORCH_PIN = "torch==2.13.0"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
WHEELS = ROOT / "wheels"  # a wheelhouse (notebooks/README.md): when present, pip installs from it alone, offline
FIRST_NOTEBOOK = "notebooks/01_text_to_tokens.ipynb"
REQUIREMENTS = {"lab": ["requirements.txt"], "test": ["requirements.txt", "requirements-test.txt"]}
COVERS = {"lab": ["lab"], "test": ["test", "lab"]}  # installing for "test" installs everything "lab" needs
LAB_SETTINGS = ROOT / "binder" / "overrides.json"  # JupyterLab settings of the course (also used on Binder)
#: The test run loads only the project's own pytest plugin, not whatever else this Python has installed.
PYTEST_PLUGINS = ["-p", "nbval"]


class SetupError(Exception):
    """A step that failed: reported in one line (what happened, what to do), with exit status 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage block
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def say(message: str) -> None:
    print(f"[setup] {message}", flush=True)


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(*args: str | Path, check: bool = True, env: dict | None = None) -> int:
    code = subprocess.run([str(a) for a in args], env=env).returncode
    if check and code != 0:
        raise SetupError(f"this command failed (exit status {code}); its messages are above: "
                         + " ".join(str(a) for a in args))
    return code


def ensure_venv() -> Path:
    if not venv_python().exists():
        say(f"creating the virtual environment {VENV.name}/")
        try:
            venv.EnvBuilder(with_pip=True, system_site_packages=True).create(VENV)
        except (OSError, subprocess.CalledProcessError) as exc:
            raise SetupError(f"could not create {VENV.name}/ ({exc}); on Debian or Ubuntu install the package "
                             "python3-venv first, then delete .venv/ and run this again") from None
    return venv_python()


def torch_build(python: Path) -> tuple[str, str | None] | None:
    """``(version, CUDA version or None)`` of the PyTorch that ``python`` imports; None without one."""
    code = "import json, torch; print(json.dumps([torch.__version__, torch.version.cuda]))"
    result = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    if result.returncode != 0:
        return None
    version, cuda = json.loads(result.stdout.strip().splitlines()[-1])
    return version, cuda


def is_suitable(version: str) -> bool:
    return tuple(int(p) for p in version.split("+")[0].split(".")[:2]) >= TORCH_MIN


def cpu_index_reachable() -> bool:
    """The CPU wheels of PyTorch for Linux live on their own index; use it only when it answers quickly."""
    try:
        urllib.request.urlopen(CPU_INDEX + "/torch/", timeout=3).close()
        return True
    except Exception:
        return False


def pip_source() -> list[str]:
    """pip's options for where packages come from: the wheelhouse ``wheels/`` alone if there is one."""
    return ["--no-index", "--find-links", str(WHEELS)] if WHEELS.is_dir() else []


def ensure_torch(python: Path) -> None:
    found = torch_build(python)
    if found and is_suitable(found[0]):
        say(f"PyTorch {found[0]} is already installed; keeping it")
        return
    cpu_by_hand = f"{python} -m pip install {TORCH_PIN} --index-url {CPU_INDEX}"
    requirement, source = TORCH_PIN, pip_source()
    if source:
        say(f"installing PyTorch from the wheelhouse {WHEELS.name}/ (no network)")
        requirement = "torch"  # whichever version the wheelhouse holds
    elif platform.system() != "Linux":
        say(f"installing PyTorch ({TORCH_PIN}) from PyPI, whose {platform.system()} build has no CUDA")
    elif cpu_index_reachable():
        say(f"installing PyTorch's CPU build ({TORCH_PIN}) from {CPU_INDEX}")
        source = ["--extra-index-url", CPU_INDEX]
    else:
        say(f"PyTorch's index of CPU builds ({CPU_INDEX}) did not answer within 3 s, so PyTorch comes from PyPI, "
            "whose Linux build on x86-64 includes CUDA (several GB). For the CPU build instead, stop now "
            f"(Ctrl+C), run: {cpu_by_hand}  and then this command again.")
    run(python, "-m", "pip", "install", "--disable-pip-version-check", requirement, *source)
    installed = torch_build(python)
    if installed is None:
        raise SetupError(f"PyTorch was installed but cannot be imported; try: {cpu_by_hand}")
    version, cuda = installed
    if cuda is None:
        say(f"installed PyTorch {version} without CUDA (the CPU build)")
    else:
        say(f"installed PyTorch {version} with CUDA {cuda}: the course needs only the CPU build "
            f"(a few hundred MB); to swap: {python} -m pip uninstall -y torch, then {cpu_by_hand}")


def requirements_digest(mode: str) -> str:
    files = [ROOT / name for name in REQUIREMENTS[mode]] + [ROOT / "pyproject.toml"]
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()


def stamp(mode: str) -> Path:
    return VENV / f".installed-{mode}"


def packages_up_to_date(mode: str) -> bool:
    return stamp(mode).exists() and stamp(mode).read_text() == requirements_digest(mode)


def ensure_packages(python: Path, mode: str) -> None:
    if packages_up_to_date(mode):
        say("packages are up to date")
        return
    ensure_torch(python)
    say("installing the course's packages" + (f" from the wheelhouse {WHEELS.name}/" if pip_source() else ""))
    requirement_args = [arg for f in REQUIREMENTS[mode] for arg in ("-r", str(ROOT / f))]
    run(python, "-m", "pip", "install", "--disable-pip-version-check", *pip_source(), *requirement_args,
        "-e", str(ROOT))
    for covered in COVERS[mode]:
        stamp(covered).write_text(requirements_digest(covered))


def lab_settings_dir(python: Path) -> Path | None:
    """The folder of the application settings of the JupyterLab that ``python`` runs, or None."""
    code = "from jupyterlab.labapp import LabApp; print(LabApp().app_settings_dir)"
    result = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    return Path(result.stdout.strip().splitlines()[-1]) if result.returncode == 0 and result.stdout.strip() else None


def write_lab_settings(settings_dir: Path) -> Path:
    """Put the course's JupyterLab settings (``binder/overrides.json``: never ask about Jupyter news or
    check for updates) into ``settings_dir/overrides.d/gptbook.json``; returns that file."""
    target = settings_dir / "overrides.d" / "gptbook.json"
    settings = LAB_SETTINGS.read_text(encoding="utf-8")
    if not target.exists() or target.read_text(encoding="utf-8") != settings:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(settings, encoding="utf-8")
    return target


def ensure_lab_settings(python: Path) -> None:
    folder = lab_settings_dir(python)
    if folder is None or not folder.resolve().is_relative_to(VENV.resolve()):
        say(f"JupyterLab keeps its settings outside {VENV.name}/ ({folder}): it may ask once whether to "
            "get Jupyter news; answering either way is fine")
        return
    write_lab_settings(folder)


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="setup_course.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["lab", "test"], help="open the course in JupyterLab, or run the tests")
    parser.add_argument("extra", nargs=argparse.REMAINDER, help="passed on to jupyter lab / pytest")
    args = parser.parse_args(argv)
    if sys.version_info < (3, 10):
        print(f"setup_course.py: error: the course needs Python 3.10 or newer; this is {platform.python_version()} "
              f"({sys.executable})", file=sys.stderr)
        return 2

    python = ensure_venv()
    ensure_packages(python, args.command)
    os.chdir(ROOT)
    if args.command == "lab":
        ensure_lab_settings(python)
        # Encrypt the connection to the kernel where the kernel supports it (ipykernel >= 7.4 otherwise
        # warns in the terminal that it runs over TCP without encryption).
        flags = ["--KernelManager.transport_encryption=auto"]
        flags += ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
        say("opening JupyterLab (stop it with Ctrl+C)")
        return run(python, "-m", "jupyterlab", FIRST_NOTEBOOK, *flags, *args.extra, check=False)
    say("checking the shipped course model (gptbook.load_course_model)")
    run(python, "-c", "from gptbook import load_course_model; load_course_model()")
    say("running the tests: the library, every notebook (nbval) and the browser test")
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    return run(python, "-m", "pytest", *PYTEST_PLUGINS, *args.extra, check=False, env=env)


def entry(argv: list[str] | None = None) -> int:
    """``main``, with a failed step or Ctrl+C reported in one line instead of a traceback."""
    try:
        return main(argv)
    except SetupError as exc:
        print(f"setup_course.py: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nsetup_course.py: stopped (Ctrl+C)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(entry())
