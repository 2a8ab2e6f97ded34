"""setup_course.py and the offline install: what an instructor and a learner rely on before the first notebook.

- installing for `test` also covers `lab` (no second pip run), and the script says which PyTorch build it got;
- a failed step or a wrong command is one line, never a traceback;
- the test run loads only the project's own pytest plugin;
- JupyterLab opened by `setup_course.py lab` never asks about Jupyter news;
- the instructor page's offline wheelhouse recipe installs the course with the stock pip of Python 3.10-3.13.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # fresh virtual environments, pip, Python processes

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def setup_course(tmp_path, monkeypatch):
    """setup_course.py as a module, its virtual environment and wheelhouse moved into ``tmp_path``."""
    spec = importlib.util.spec_from_file_location("setup_course_under_test", REPO / "setup_course.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "VENV", tmp_path / ".venv")
    monkeypatch.setattr(module, "WHEELS", tmp_path / "wheels")
    (tmp_path / ".venv").mkdir()
    return module


class Recorder:
    """Stands in for ``setup_course.run``: records each command instead of running it."""

    def __init__(self):
        self.commands: list[list[str]] = []

    def __call__(self, *args, check=True, env=None):
        self.commands.append([str(a) for a in args])
        return 0

    def pip_installs(self):
        return [c for c in self.commands if c[1:4] == ["-m", "pip", "install"]]


def test_installing_for_test_also_covers_lab(setup_course, monkeypatch, capsys):
    run = Recorder()
    monkeypatch.setattr(setup_course, "run", run)
    monkeypatch.setattr(setup_course, "torch_build", lambda python: ("2.13.0+cpu", None))
    python = Path("python")
    setup_course.ensure_packages(python, "test")
    assert len(run.pip_installs()) == 1
    assert "requirements-test.txt" in " ".join(run.pip_installs()[0])
    setup_course.ensure_packages(python, "lab")
    setup_course.ensure_packages(python, "test")
    assert len(run.pip_installs()) == 1  # neither needed pip again
    assert capsys.readouterr().out.count("packages are up to date") == 2


def test_lab_first_then_test_installs_the_test_tools(setup_course, monkeypatch):
    run = Recorder()
    monkeypatch.setattr(setup_course, "run", run)
    monkeypatch.setattr(setup_course, "torch_build", lambda python: ("2.13.0+cpu", None))
    setup_course.ensure_packages(Path("python"), "lab")
    setup_course.ensure_packages(Path("python"), "test")
    installs = run.pip_installs()
    assert len(installs) == 2 and "requirements-test.txt" not in " ".join(installs[0])


@pytest.mark.parametrize("system, index_answers, built, expected", [
    ("Linux", True, ("2.13.0+cpu", None), ["PyTorch's CPU build", "installed PyTorch 2.13.0+cpu without CUDA"]),
    ("Linux", False, ("2.13.0", "12.8"), ["did not answer within 3 s", "includes CUDA (several GB)",
                                          "--index-url https://download.pytorch.org/whl/cpu",
                                          "installed PyTorch 2.13.0 with CUDA 12.8"]),
    ("Darwin", False, ("2.13.0", None), ["from PyPI, whose Darwin build has no CUDA", "without CUDA"]),
])
def test_setup_says_which_pytorch_build_it_installs(setup_course, monkeypatch, capsys, system, index_answers,
                                                    built, expected):
    run = Recorder()
    builds = iter([None, built])  # none before, the new one after
    monkeypatch.setattr(setup_course, "run", run)
    monkeypatch.setattr(setup_course, "torch_build", lambda python: next(builds))
    monkeypatch.setattr(setup_course.platform, "system", lambda: system)
    monkeypatch.setattr(setup_course, "cpu_index_reachable", lambda: index_answers)
    setup_course.ensure_torch(Path("python"))
    out = capsys.readouterr().out
    for text in expected:
        assert text in out, out
    uses_cpu_index = "--extra-index-url" in run.pip_installs()[0]
    assert uses_cpu_index == (system == "Linux" and index_answers)
    if not index_answers or system != "Linux":
        assert "installing PyTorch's CPU build" not in out  # never claims the CPU build it cannot promise


def test_a_wheelhouse_folder_makes_every_install_offline(setup_course, monkeypatch):
    (setup_course.WHEELS).mkdir()
    run = Recorder()
    builds = iter([None, ("2.13.0+cpu", None)])
    monkeypatch.setattr(setup_course, "run", run)
    monkeypatch.setattr(setup_course, "torch_build", lambda python: next(builds, ("2.13.0+cpu", None)))
    monkeypatch.setattr(setup_course, "cpu_index_reachable", lambda: pytest.fail("must not look for the network"))
    setup_course.ensure_packages(Path("python"), "lab")
    installs = run.pip_installs()
    assert len(installs) == 2
    for command in installs:
        assert "--no-index" in command and command[command.index("--find-links") + 1] == str(setup_course.WHEELS)


def test_setup_errors_are_one_line_without_traceback(setup_course, monkeypatch, capsys):
    def failing_pip(*args, **kwargs):
        raise setup_course.SetupError("this command failed (exit status 1); its messages are above: pip install")

    monkeypatch.setattr(setup_course, "main", failing_pip)
    assert setup_course.entry(["lab"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("setup_course.py: error: this command failed")

    bad = subprocess.run([sys.executable, str(REPO / "setup_course.py"), "notebook"], capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and "invalid choice: 'notebook'" in bad.stderr and "Traceback" not in bad.stderr


def test_the_test_run_loads_only_the_projects_pytest_plugin(tmp_path, setup_course):
    """What `setup_course.py test` runs collects the notebooks (nbval) and the browser test, with no other plugin."""
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    run = subprocess.run([sys.executable, "-m", "pytest", *setup_course.PYTEST_PLUGINS, "-p", "no:cacheprovider",
                          "--collect-only", "tests/test_browser.py", "tests/test_config.py",
                          "notebooks/01_text_to_tokens.ipynb"],
                         capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    plugins = re.search(r"^plugins: (.*)$", run.stdout, re.M)
    assert plugins and [p.split("-")[0] for p in plugins.group(1).split(", ")] == ["nbval"], run.stdout[:500]
    assert "<IPyNbCell Cell 0>" in run.stdout  # nbval collected the notebook
    assert "test_browser" in run.stdout


# ---------------------------------------------------------------------------------------------
# JupyterLab: no "Would you like to get notified about official Jupyter news?"
# ---------------------------------------------------------------------------------------------

def test_the_course_settings_go_into_its_own_environment(setup_course):
    pytest.importorskip("jupyterlab")
    folder = setup_course.lab_settings_dir(Path(sys.executable))
    assert folder is not None and folder.resolve().is_relative_to(Path(sys.prefix).resolve())


def test_jupyterlab_with_the_course_settings_never_asks_about_news(tmp_path, setup_course):
    """A JupyterLab that reads the settings `setup_course.py lab` writes reports news and updates as off."""
    pytest.importorskip("jupyterlab")
    from browser_support import JupyterLabServer

    app_settings = tmp_path / "app-settings"
    written = setup_course.write_lab_settings(app_settings)
    assert written == app_settings / "overrides.d" / "gptbook.json"

    class CourseLab(JupyterLabServer):
        def _write_config(self) -> None:
            super()._write_config()  # an isolated Jupyter home; then only the course's settings
            config_file = self.home / "config" / "jupyter_server_config.json"
            config = json.loads(config_file.read_text())
            config["LabApp"]["app_settings_dir"] = str(app_settings)
            config_file.write_text(json.dumps(config))
            for user_setting in (self.home / "config" / "lab" / "user-settings").rglob("notification.*"):
                user_setting.unlink()

    with CourseLab(REPO, tmp_path / "home", tmp_path / "lab.log") as lab:
        url = f"{lab.base_url}/lab/api/settings/@jupyterlab/apputils-extension:notification"
        request = urllib.request.Request(url, headers={"Authorization": f"token {lab.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            setting = json.loads(response.read())
    # The server hands the front end the schema with the course's values as defaults, and no user setting:
    # so "Fetch official Jupyter news" is "Never" (JupyterLab's own default, "none", asks) and no update check.
    assert setting["settings"] == {}
    defaults = {name: spec["default"] for name, spec in setting["schema"]["properties"].items()}
    assert defaults["fetchNews"] == "false" and defaults["checkForUpdates"] is False, defaults


def test_binder_uses_the_same_settings():
    post_build = (REPO / "binder" / "postBuild").read_text()
    assert "cp binder/overrides.json" in post_build and "share/jupyter/lab/settings/overrides.json" in post_build
    settings = json.loads((REPO / "binder" / "overrides.json").read_text())
    assert settings["@jupyterlab/apputils-extension:notification"] == {"fetchNews": "false", "checkForUpdates": False}


# ---------------------------------------------------------------------------------------------
# The instructor page's offline recipe, with the stock pip of each Python from 3.10 to 3.13
# ---------------------------------------------------------------------------------------------

def recipe_commands() -> tuple[str, str]:
    """The wheelhouse download line and the by-hand install line, as notebooks/README.md prints them."""
    page = (REPO / "notebooks" / "README.md").read_text(encoding="utf-8")
    download = re.search(r"^\s*(python3 -m pip download .*)$", page, re.M)
    install = re.search(r"^\s*(\.venv/bin/python -m pip install --no-index .*)$", page, re.M)
    assert download and install, "notebooks/README.md lost its wheelhouse recipe"
    return download.group(1), install.group(1)


def build_requirements() -> list[str]:
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    block = re.search(r"^\[build-system\]\s*\nrequires\s*=\s*\[(.*?)\]", pyproject, re.M | re.S)
    return re.findall(r'"([^"]+)"', block.group(1))


def test_the_wheelhouse_holds_what_installing_the_course_folder_needs():
    download, install = recipe_commands()
    words = shlex.split(download)
    for requirement in build_requirements():  # pip builds `-e .` with these, and offline finds them only here
        assert requirement in words, f"the download line must name {requirement!r} (pyproject's build-system)"
    assert "-r" in words and words[words.index("-r") + 1] == "requirements.txt"
    assert shlex.split(install)[-4:] == ["-r", "requirements.txt", "-e", "."]


def local_package_sources() -> list[str]:
    """pip options naming the package sources on this machine's disk (pip's configured file:// indexes and
    find-links folders): where an offline test can get setuptools from."""
    listing = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    indexes, links = [], []
    for line in listing.splitlines():
        key, _, value = line.partition("=")
        for item in value.strip("'\"").split():
            if key.endswith("index-url") and item.startswith("file://"):
                indexes.append(item)
            elif key.endswith("find-links") and Path(item).is_dir():
                links.append(item)
    options = []
    if indexes:
        options += ["--index-url", indexes[0], *[x for url in indexes[1:] for x in ("--extra-index-url", url)]]
    else:
        options += ["--no-index"]
    return options + [x for folder in dict.fromkeys(links) for x in ("--find-links", folder)]


def find_python(minor: int) -> str | None:
    """A Python 3.<minor> on this machine: on the PATH, or installed by pyenv."""
    candidates = [shutil.which(f"python3.{minor}")]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += sorted(str(p) for p in pyenv.glob(f"3.{minor}.*/bin/python3.{minor}"))
    for candidate in filter(None, candidates):
        check = subprocess.run([candidate, "-c", "import sys, ensurepip; print(sys.version_info[:2])"],
                               capture_output=True, text=True)
        if check.returncode == 0 and check.stdout.strip() == f"(3, {minor})":
            return candidate
    return None


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory):
    """The recipe's wheelhouse, reduced to what the course folder's own install needs (its build backend),
    made from package files already on this machine: no network."""
    folder = tmp_path_factory.mktemp("wheels")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PIP_")}, "PIP_CONFIG_FILE": os.devnull}
    sources = local_package_sources()
    got = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(folder), *sources,
                          *build_requirements()], capture_output=True, text=True, env=env, timeout=300)
    if got.returncode != 0:
        pytest.skip("no package source on this machine's disk holds " + ", ".join(build_requirements())
                    + f" (pip's file:// indexes and find-links: {sources or 'none'}), so no offline wheelhouse "
                    "can be made here")
    return folder


@pytest.mark.parametrize("minor", [10, 11, 12, 13])
def test_offline_recipe_installs_the_course_with_stock_pip(minor, wheelhouse, tmp_path):
    """The page's install line, run word for word in a fresh venv (the pip that Python bundles), offline.

    The course's dependencies are left out of this copy (its requirements.txt is empty and its pyproject
    lists none): resolving them from a wheelhouse is pip's everyday job; building `-e .` from it is what
    failed with the pip of Python 3.11 before the page named the build backend."""
    if os.name == "nt":
        pytest.skip("the page's by-hand install line is the macOS/Linux spelling")
    python = find_python(minor)
    if python is None:
        pytest.skip(f"no Python 3.{minor} on this machine")
    course = tmp_path / "course"
    course.mkdir()
    shutil.copytree(REPO / "gptbook", course / "gptbook", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "README.md", course / "README.md")
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    (course / "pyproject.toml").write_text(re.sub(r"(?ms)^dependencies = \[.*?^\]", "dependencies = []", pyproject))
    (course / "requirements.txt").write_text("# the wheelhouse's packages are left out of this test\n")
    shutil.copytree(wheelhouse, course / "wheels")

    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUAL_ENV", "PYTHON"))},
           "PIP_CONFIG_FILE": os.devnull}  # only the wheelhouse: none of this machine's pip settings
    made = subprocess.run([python, "-m", "venv", ".venv"], cwd=course, capture_output=True, text=True, env=env,
                          timeout=300)
    assert made.returncode == 0, made.stderr
    _, install = recipe_commands()
    ran = subprocess.run(shlex.split(install), cwd=course, capture_output=True, text=True, env=env, timeout=300)
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    venv_python = course / ".venv" / "bin" / "python"
    code = "import importlib.metadata as m; d = m.metadata('gptbook'); print(d['Version'], d['License-Expression'])"
    installed = subprocess.run([str(venv_python), "-c", code], capture_output=True, text=True, env=env)
    assert installed.stdout.split() == ["0.1.0", "MIT"], installed.stderr  # the license as an SPDX expression
    assert (course / ".venv" / "bin" / "gptbook").exists()  # the console script
