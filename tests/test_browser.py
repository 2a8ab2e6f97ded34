"""End to end: the course's widgets working in a real JupyterLab, in a real (headless) Chromium.

What it does, offline and in a throw-away copy of the course (the repository is never touched):

1. start JupyterLab on 127.0.0.1 (random port, random token, temporary Jupyter home);
2. notebook 07: Run → Run All Cells, type a prompt into the generation widget, click Generate,
   and check that the text grows token by token while it runs;
3. notebook 04: Run → Run All Cells, switch the attention explorer's layer, then its head, and
   check that the heat map changes each time;
3b. a small notebook the test writes itself: train with ``Trainer(config, dashboard=True)``, check that
   the training dashboard keeps updating (step, picture) while training runs, press Stop, and check
   that training stops and says so;
3c. notebook 10: Run → Run All Cells, move the token-probability explorer's position slider and check
   that the candidates change;
4. throughout: fail on any error output in a cell, any widget error line, any error in the
   browser console or uncaught page error, and any request that is not to 127.0.0.1 (every
   such request is blocked and recorded).

Screenshots of each step go to $GPTBOOK_SCREENSHOTS (default: test-artifacts/screenshots/); the
folder is printed at the end of the pytest run. With GPTBOOK_UPDATE_README_SCREENSHOTS=1 the widget
pictures in images/screenshots/ are refreshed from this run (the dashboard's picture comes from notebook
08's full run instead: ``images/make_inside_figures.py --dashboard-from``).

Other knobs: $GPTBOOK_CACHE (where the trained course model is cached; shared with the notebooks,
default ~/.cache/gptbook, so it is trained once, not at every run) and $GPTBOOK_COURSE_DIR (test
another copy of the course: a folder with notebooks/ and images/).

Needs the Python package ``playwright`` and a Chromium (Debian: ``apt-get install chromium``;
another one: set $GPTBOOK_BROWSER). Nothing is downloaded. Without a browser the test is skipped
with the reason, except under CI (the variable ``CI`` is set), where that is a failure.

    .venv/bin/python -m pytest tests/test_browser.py -m browser
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path

import pytest

from browser_support import (
    CHROMIUM_ARGS,
    ROOT,
    BrowserWatch,
    JupyterLabServer,
    copy_course,
    find_chromium,
    output_errors,
    run_all_cells,
    save_small_png,
    wait_for_notebook,
)

pytestmark = pytest.mark.browser

GENERATION_NOTEBOOK = "notebooks/07_generating_text.ipynb"
ATTENTION_NOTEBOOK = "notebooks/04_attention.ipynb"
PROMPT = "On Monday, it was rainy, so"  # in the style of the stories the course model learned from
VIEWPORT = {"width": 1100, "height": 1200}  # tall enough for a whole widget in one screenshot
# A notebook runs in about a minute on 2 busy cores; the first run of notebook 07 also trains the
# course model once (gptbook.training.course_model caches it), which takes a few minutes more.
RUN_ALL_TIMEOUT_MS = 480_000
README_SCREENSHOTS = {  # README picture -> screenshot of this run it is made from
    "generation_widget.png": "07-4-generated.png",
    "attention_explorer.png": "04-4-head-changed.png",
    "token_explorer.png": "10-2-explorer.png",
}


# --------------------------------------------------------------------------------------------
# Fixtures: browser, JupyterLab, screenshots
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chromium_path() -> str:
    path, how = find_chromium()
    if path is None:
        message = f"browser test needs a Chromium: {how}"
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail(f"{message} (CI is set, so this is an error, not a skip)", pytrace=False)
        pytest.skip(message)
    return path


class _ScreenshotReport:
    """A tiny pytest plugin, registered by the ``screenshots`` fixture: prints where the pictures are."""

    def __init__(self, folder: Path):
        self.folder = folder

    def pytest_terminal_summary(self, terminalreporter) -> None:
        pictures = sorted(self.folder.glob("*.png"))
        if pictures:
            terminalreporter.write_sep("-", "browser test screenshots")
            terminalreporter.write_line(f"{len(pictures)} screenshots in {self.folder}")


@pytest.fixture(scope="module")
def screenshots(request, chromium_path) -> Path:
    folder = Path(os.environ.get("GPTBOOK_SCREENSHOTS") or ROOT / "test-artifacts" / "screenshots").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    for pattern in ("0[47]-*.png", "10-*.png", "dash-*.png", "failed-*.png"):  # last run's pictures (only ours)
        for old in folder.glob(pattern):
            old.unlink()
    plugin = _ScreenshotReport(folder)
    request.config.pluginmanager.register(plugin, "gptbook-browser-screenshots")
    yield folder
    if os.environ.get("GPTBOOK_UPDATE_README_SCREENSHOTS"):
        for name, source in README_SCREENSHOTS.items():
            if (folder / source).exists():
                save_small_png(folder / source, ROOT / "images" / "screenshots" / name)


@pytest.fixture(scope="module")
def lab(tmp_path_factory, chromium_path):
    """JupyterLab serving a temporary copy of the course."""
    source = Path(os.environ.get("GPTBOOK_COURSE_DIR") or ROOT)  # another copy of the course, to try changes
    course = copy_course(source, tmp_path_factory.mktemp("course"))
    home = tmp_path_factory.mktemp("jupyter-home")
    server = JupyterLabServer(course, home, log_path=home / "jupyterlab.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser(chromium_path, lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def watch(lab) -> BrowserWatch:
    return BrowserWatch(lab.port)


@pytest.fixture(scope="module")
def context(browser, watch):
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1, service_workers="block",
                                  locale="en-US", timezone_id="UTC")
    context.set_default_timeout(30_000)
    watch.attach_context(context)
    yield context
    context.close()


def _check_clean(page, watch: BrowserWatch, lab: JupyterLabServer, step: str) -> None:
    problems = [f"error shown in the notebook: {e}" for e in output_errors(page)] + watch.problems()
    if problems:
        pytest.fail(f"{step}:\n  " + "\n  ".join(problems) + f"\n\nJupyterLab log (end):\n{lab.log_tail(25)}",
                    pytrace=False)


@contextlib.contextmanager
def _notebook(context, watch, lab, screenshots: Path, notebook: str, label: str):
    """Open ``notebook`` in a new tab, run all its cells; on any failure keep a screenshot of the page."""
    if not (Path(lab.root_dir) / notebook).exists():
        pytest.fail(f"{notebook} is missing from the course", pytrace=False)
    lab.shutdown_kernels()  # the other notebook's kernel, if any: keep the CPU for this one
    watch.reset()
    page = context.new_page()
    watch.attach_page(page, label)
    try:
        page.goto(lab.lab_url(notebook))
        wait_for_notebook(page)
        # Fold the file browser away: more room for the notebook in the screenshots.
        current = page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
        if current.count():
            current.first.click()
        _shot(page, screenshots, f"{label}-0-opened.png")
        started = time.monotonic()
        failure = None
        try:
            run_all_cells(page, timeout_ms=RUN_ALL_TIMEOUT_MS)
        except AssertionError as exc:
            failure = f"{notebook}: {exc}" + "".join(f"\n  {p}" for p in watch.problems())
        if failure:
            pytest.fail(failure, pytrace=False)
        print(f"\n[browser test] {notebook}: Run → Run All Cells took {time.monotonic() - started:.1f} s")
        _shot(page, screenshots, f"{label}-1-all-cells-run.png")
        _check_clean(page, watch, lab, f"after running all cells of {notebook}")
        yield page
        _check_clean(page, watch, lab, f"at the end of the test of {notebook}")
    except BaseException:
        with contextlib.suppress(Exception):
            _shot(page, screenshots, f"failed-{label}.png")
        raise
    finally:
        page.close()


def _shot(target, folder: Path, name: str) -> Path:
    path = folder / name
    target.screenshot(path=str(path))
    return path


# --------------------------------------------------------------------------------------------
# Notebook 07: the generation widget streams tokens
# --------------------------------------------------------------------------------------------

# Watches the generation widget: every distinct text of its output (on each DOM change, and every
# 20 ms), and whether a generation was seen running (Generate disabled, or a status without "· done").
_SAMPLER = """([root, output, status, button]) => {
    const state = {samples: [], sawRunning: false};
    const t0 = performance.now();
    const take = () => {
        const text = output.innerText;
        if (!state.samples.length || state.samples[state.samples.length - 1].text !== text)
            state.samples.push({t: Math.round(performance.now() - t0), text});
        if (button.disabled || /^\\s*\\d+ \\/ \\d+ tokens\\s*$/.test(status.innerText)) state.sawRunning = true;
    };
    take();
    const observer = new MutationObserver(take);
    observer.observe(root, {childList: true, subtree: true, characterData: true, attributes: true});
    const timer = setInterval(take, 20);
    state.stop = () => { observer.disconnect(); clearInterval(timer); take(); };
    window.__gptbookSampler = state;
}"""

_FINISHED = """([status, button]) => window.__gptbookSampler.sawRunning && !button.disabled
    && /·\\s*(done|stopped|reached)/.test(status.innerText)"""


def test_generation_widget_streams_tokens(context, watch, lab, screenshots):
    with _notebook(context, watch, lab, screenshots, GENERATION_NOTEBOOK, "07") as page:
        _generate_in_widget(page, screenshots)
    _assert_no_unencrypted_kernel_warning(lab)


def _assert_no_unencrypted_kernel_warning(lab) -> None:
    """The kernel has run code by now, so its start-up messages are in the server's log; with
    KernelManager.transport_encryption=auto (as `setup_course.py lab` sets it) ipykernel's warning
    about an unencrypted TCP connection, alarming in a learner's terminal, must not be there."""
    log = lab.log_path.read_text(errors="replace")
    assert "without encryption" not in log, lab.log_tail()


def _generate_in_widget(page, screenshots: Path) -> None:
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    assert panel.locator("button.gptbook-generate-button").count() >= 1, \
        "notebook 07 shows no GenerationWidget (no .gptbook-generate-button)"
    widget = panel.locator(".jp-OutputArea-output", has=page.locator("button.gptbook-generate-button")).first
    button = widget.locator("button.gptbook-generate-button")
    prompt = widget.locator(".gptbook-prompt textarea, .gptbook-prompt input").first
    output = widget.locator(".gptbook-output").first
    status = widget.locator(".gptbook-status").first
    widget.scroll_into_view_if_needed()

    # Type the prompt like a person would, key by key.
    prompt.click()
    prompt.press("Control+a")
    prompt.press("Delete")
    prompt.press_sequentially(PROMPT, delay=15)
    page.wait_for_timeout(300)  # let the widget send the new value to the kernel
    _shot(widget, screenshots, "07-2-prompt-typed.png")

    handles = [widget.element_handle(), output.element_handle(), status.element_handle(), button.element_handle()]
    page.evaluate(_SAMPLER, handles)
    button.click()
    # Mid-generation picture: once a few tokens are there and before the end.
    page.wait_for_function("() => window.__gptbookSampler.samples.length >= 4", timeout=60_000)
    _shot(widget, screenshots, "07-3-generating.png")
    page.wait_for_function(_FINISHED, arg=handles[2:], timeout=120_000)
    page.wait_for_timeout(200)
    samples = page.evaluate("() => { window.__gptbookSampler.stop(); return window.__gptbookSampler.samples; }")
    _shot(widget, screenshots, "07-4-generated.png")
    _shot(page, screenshots, "07-5-page-after-generating.png")

    final = samples[-1]["text"].strip()
    texts = [s["text"].strip() for s in samples]
    assert final.startswith(PROMPT), f"the output should start with the typed prompt; it shows {final[:200]!r}"
    assert len(final) > len(PROMPT) + 5, f"no new text was generated; the output shows {final!r}"
    # Token by token: several intermediate texts, each longer than the prompt and a beginning of the final text
    # (a character split over two tokens shows as "�" for a moment, so compare without it).
    growing = [t for t in dict.fromkeys(texts)
               if len(PROMPT) < len(t) < len(final) and final.startswith(t.rstrip("\ufffd"))]
    timeline = ", ".join(f"{s['t']} ms: {len(s['text'])} chars" for s in samples[:40])
    assert len(growing) >= 3, (
        f"the text should appear token by token, but only {len(growing)} intermediate states were seen "
        f"({len(samples)} samples: {timeline})")
    lengths = [len(t) for t in growing]
    assert lengths == sorted(lengths), f"the text should only grow while generating: {lengths}"
    assert re.search(r"\d+ / \d+ tokens", status.inner_text()), f"status: {status.inner_text()!r}"
    print(f"[browser test] generation: {len(growing)} intermediate states in {samples[-1]['t']} ms, "
          f"{len(final) - len(PROMPT)} new characters")


# --------------------------------------------------------------------------------------------
# Notebook 04: the attention explorer redraws for another layer and head
# --------------------------------------------------------------------------------------------

def _pick_other_option(select, prefer_numeric: bool = True) -> str:
    """Choose an option of a <select> other than the current one; return its label."""
    options = select.evaluate("s => Array.from(s.options).map(o => ({label: o.label, selected: o.selected}))")
    others = [o["label"] for o in options if not o["selected"]]
    assert others, f"the dropdown has nothing else to choose: {options}"
    numeric = [label for label in others if label.isdigit()]
    label = numeric[0] if numeric and prefer_numeric else others[0]
    select.select_option(label=label)
    return label


def _wait_for_new_picture(page, image, old_src: str) -> None:
    page.wait_for_function(
        "([img, old]) => img.src && img.src !== old && img.complete && img.naturalWidth > 0",
        arg=[image.element_handle(), old_src], timeout=60_000)
    page.wait_for_timeout(100)


def test_attention_explorer_switches_layer_and_head(context, watch, lab, screenshots):
    with _notebook(context, watch, lab, screenshots, ATTENTION_NOTEBOOK, "04") as page:
        _switch_layer_and_head(page, screenshots)


def _switch_layer_and_head(page, screenshots: Path) -> None:
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    assert panel.locator(".gptbook-heatmap").count() >= 1, "notebook 04 shows no AttentionExplorer (no .gptbook-heatmap)"
    widget = panel.locator(".jp-OutputArea-output", has=page.locator(".gptbook-heatmap")).first
    image = widget.locator("img.gptbook-heatmap, .gptbook-heatmap img").first
    layer = widget.locator(".gptbook-layer select").first
    head = widget.locator(".gptbook-head select").first
    widget.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    _shot(widget, screenshots, "04-2-explorer.png")
    pictures = [image.screenshot()]

    src = image.get_attribute("src")
    new_layer = _pick_other_option(layer)
    _wait_for_new_picture(page, image, src)
    pictures.append(image.screenshot())
    _shot(widget, screenshots, "04-3-layer-changed.png")
    assert pictures[1] != pictures[0], f"the heat map did not change after choosing layer {new_layer}"

    src = image.get_attribute("src")
    new_head = _pick_other_option(head)
    _wait_for_new_picture(page, image, src)
    pictures.append(image.screenshot())
    _shot(widget, screenshots, "04-4-head-changed.png")
    assert pictures[2] != pictures[1], f"the heat map did not change after choosing head {new_head}"
    assert layer.evaluate("s => s.options[s.selectedIndex].label") == new_layer
    assert head.evaluate("s => s.options[s.selectedIndex].label") == new_head
    print(f"[browser test] attention: layer -> {new_layer}, head -> {new_head}: the heat map changed each time")


# --------------------------------------------------------------------------------------------
# The live training dashboard: updates while training runs, Stop stops it
# --------------------------------------------------------------------------------------------

DASHBOARD_NOTEBOOK = "notebooks/dashboard_check.ipynb"
DASHBOARD_CELL = """from gptbook import TrainConfig, Trainer

config = TrainConfig(model="tiny", model_overrides={"emb_dim": 32, "n_layers": 2, "n_heads": 2, "context_length": 32},
                     out_dir="runs/dashboard-check", batch_size=2, max_steps=100_000, eval_every=5, eval_batches=1,
                     save_every=100_000, log_every=5, sample_tokens=8, probe_stories=1)
trainer = Trainer(config, dashboard=True)
trainer.fit()"""


def _write_dashboard_notebook(root: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(DASHBOARD_CELL)]
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nbformat.write(nb, str(Path(root) / DASHBOARD_NOTEBOOK))


_STEP = "el => { const m = el.innerText.match(/step (\\d+)\\//); return m ? parseInt(m[1]) : -1; }"


def test_training_dashboard_updates_while_training_and_stop_stops_it(context, watch, lab, screenshots):
    _write_dashboard_notebook(lab.root_dir)
    with _notebook(context, watch, lab, screenshots, DASHBOARD_NOTEBOOK, "dash") as page:
        panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
        dashboard = panel.locator(".gptbook-dashboard").first
        dashboard.wait_for(timeout=120_000)
        status = dashboard.locator(".gptbook-dashboard-status").first
        image = dashboard.locator("img.gptbook-dashboard-plot, .gptbook-dashboard-plot img").first
        stop = dashboard.locator("button.gptbook-dashboard-stop").first

        # The cell has finished (Run All is over) and training goes on in the background: the widget keeps updating.
        page.wait_for_function(f"el => ({_STEP})(el) >= 1", arg=status.element_handle(), timeout=180_000)
        first_step = status.evaluate(_STEP)
        page.wait_for_function("img => img.src && img.naturalWidth > 0", arg=image.element_handle(), timeout=120_000)
        first_src = image.get_attribute("src")
        page.wait_for_function(f"([el, s]) => ({_STEP})(el) > s", arg=[status.element_handle(), first_step + 3],
                               timeout=180_000)
        page.wait_for_function("([img, old]) => img.src !== old && img.naturalWidth > 0",
                               arg=[image.element_handle(), first_src], timeout=180_000)
        _shot(dashboard, screenshots, "dash-2-training.png")
        assert "tokens/s" in status.inner_text() and "left" in status.inner_text(), status.inner_text()

        stop.click()
        page.wait_for_function("el => /stopped by you/.test(el.innerText)", arg=status.element_handle(), timeout=120_000)
        stopped_at = status.evaluate(_STEP)
        page.wait_for_timeout(2000)
        assert status.evaluate(_STEP) == stopped_at, "training went on after Stop"
        assert stop.is_disabled()
        _shot(dashboard, screenshots, "dash-3-stopped.png")
        print(f"[browser test] dashboard: steps {first_step} -> {stopped_at} while the kernel was free; Stop stopped it")


# --------------------------------------------------------------------------------------------
# Notebook 10: the token-probability explorer follows the position slider
# --------------------------------------------------------------------------------------------

INSIDE_NOTEBOOK = "notebooks/10_inside_the_model.ipynb"


def test_token_explorer_follows_the_position_slider(context, watch, lab, screenshots):
    with _notebook(context, watch, lab, screenshots, INSIDE_NOTEBOOK, "10") as page:
        panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
        assert panel.locator(".gptbook-explorer-top").count() >= 1, "notebook 10 shows no TokenProbabilityExplorer"
        widget = panel.locator(".jp-OutputArea-output", has=page.locator(".gptbook-explorer-top")).first
        top = widget.locator(".gptbook-explorer-top").first
        widget.scroll_into_view_if_needed()
        before = top.inner_text()
        assert "the model expects" in before and "%" in before, before
        _shot(widget, screenshots, "10-2-explorer.png")
        handle = widget.locator(".gptbook-explorer-position .noUi-handle, .gptbook-explorer-position [role=slider]").first
        handle.focus()
        for _ in range(3):
            handle.press("ArrowLeft")
        page.wait_for_function("([el, old]) => el.innerText !== old", arg=[top.element_handle(), before], timeout=60_000)
        after = top.inner_text()
        assert re.search(r"\(position \d+\)", after) and after != before
        _shot(widget, screenshots, "10-3-explorer-moved.png")
        print("[browser test] explorer: the candidates changed with the position slider")
