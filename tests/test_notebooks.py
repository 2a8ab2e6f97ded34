"""The notebooks as a learner meets them: runnable on Colab, stored outputs clean, one structure.

nbval (run by the same pytest command) re-executes each notebook and compares its outputs; these
checks cover what nbval does not look at.
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
REPO_URL = re.search(r'^Repository = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
COLAB_CELL = (
    "# Running on Google Colab? This installs the course's package (nothing happens elsewhere).\n"
    "import sys\n"
    'if "google.colab" in sys.modules:\n'
    f'    %pip install -q "gptbook @ git+{REPO_URL}"'
)


def cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def source(cell):
    return "".join(cell["source"])


def test_the_learning_path_has_ten_notebooks():
    assert [p.name[:2] for p in NOTEBOOKS] == [f"{i:02d}" for i in range(1, 11)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_first_cell_sets_up_colab_from_the_one_repository_url(path):
    assert source(cells(path)[0]) == COLAB_CELL


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_opens_with_what_you_will_learn_and_a_local_figure_and_closes_with_exercises(path):
    markdown = "\n".join(source(c) for c in cells(path) if c["cell_type"] == "markdown")
    assert "What you will learn" in markdown
    assert re.search(r"!\[[^\]]*\]\(\.\./images/[\w-]+\.(svg|png)\)", markdown)
    assert markdown.count("<summary>") >= 2, "exercises need solutions a click away"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_outputs_are_stored_from_one_clean_run_without_errors_or_machine_paths(path):
    code = [c for c in cells(path) if c["cell_type"] == "code" and source(c).strip()]
    assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1))
    for cell in code:
        for out in cell["outputs"]:
            assert out["output_type"] != "error", source(cell)[:80]
            assert out.get("name") != "stderr" or "NBVAL_IGNORE_OUTPUT" in source(cell), source(cell)[:80]
            assert not re.search(r"/(work|tmp|root|home|Users)/[\w.-]+/", json.dumps(out)), source(cell)[:80]
    assert path.stat().st_size < 2_000_000


def test_readme_links_binder_and_colab_to_the_same_repository():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    slug = REPO_URL.removeprefix("https://github.com/")
    assert f"mybinder.org/v2/gh/{slug}/" in readme
    assert f"colab.research.google.com/github/{slug}/" in readme
    for path in NOTEBOOKS:
        assert f"notebooks/{path.name}" in readme
