"""Helpers for the end-to-end browser test (``tests/test_browser.py``).

- ``find_chromium``: a Chromium/Chrome executable on this machine (never downloads one).
- ``JupyterLabServer``: JupyterLab on 127.0.0.1 with a random token, in a throw-away Jupyter home,
  configured so that it fetches nothing from the internet (no news, no update check, no PyPI listing).
- ``BrowserWatch``: records every request that leaves 127.0.0.1 (and blocks it), every console
  error and every uncaught page error.
- Notebook helpers: run all cells from the menu, wait for the kernel, find error outputs.
- ``save_small_png``: a screenshot shrunk and compressed for the README.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Optional
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent

#: Chromium flags that work headless, as root, in containers, and keep Chromium itself quiet on the network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-features=Translate,OptimizationHints,MediaRouter",
    "--no-first-run",
    "--no-default-browser-check",
    # Belt and braces: any host name resolves to nothing, so even a request that slipped past the
    # page-level router could not leave the machine. 127.0.0.1 is an address, never resolved.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]

#: Where a browser usually lives; the first one that exists wins (after $GPTBOOK_BROWSER).
BROWSER_NAMES = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"]


# --------------------------------------------------------------------------------------------
# Finding a browser
# --------------------------------------------------------------------------------------------

def find_chromium() -> tuple[Optional[str], str]:
    """Return ``(path, how it was found)`` or ``(None, why not)``.

    Looks at ``$GPTBOOK_BROWSER``, then Debian's ``/usr/bin/chromium`` and the usual names on the
    PATH, then a browser that ``playwright install`` may have put in its cache. Downloads nothing.
    """
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return None, "the Python package 'playwright' is not installed (pip install playwright)"
    explicit = os.environ.get("GPTBOOK_BROWSER")
    if explicit:
        if Path(explicit).is_file() and os.access(explicit, os.X_OK):
            return explicit, "$GPTBOOK_BROWSER"
        return None, f"$GPTBOOK_BROWSER={explicit!r} is not an executable file"
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found, f"{name} on the PATH"
    # A browser downloaded earlier by `playwright install chromium`, if any.
    cache = Path(os.environ.get("PLAYWRIGHT_BROWSERS_PATH", Path.home() / ".cache" / "ms-playwright"))
    for candidate in sorted(cache.glob("chromium-*/chrome-linux*/chrome"), reverse=True):
        if os.access(candidate, os.X_OK):
            return str(candidate), "playwright's browser cache"
    return None, ("no Chromium or Chrome found (looked at $GPTBOOK_BROWSER, "
                  + ", ".join(BROWSER_NAMES) + " and playwright's cache); on Debian/Ubuntu: apt-get install chromium")


# --------------------------------------------------------------------------------------------
# JupyterLab
# --------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))


class JupyterLabServer:
    """JupyterLab serving ``root_dir`` on 127.0.0.1:<free port> with a random token.

    Everything Jupyter writes (config, settings, workspaces, runtime files, IPython profile)
    goes to ``home``, a temporary folder; the kernel is this Python's own (``sys.prefix``), so the
    test uses the virtual environment it runs in.
    """

    def __init__(self, root_dir: Path, home: Path, log_path: Path):
        self.root_dir = Path(root_dir)
        self.home = Path(home)
        self.log_path = Path(log_path)
        self.token = secrets.token_hex(24)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.proc: Optional[subprocess.Popen] = None
        self._log = None

    # -- setup ------------------------------------------------------------------------------
    def _matplotlib_dir(self) -> str:
        """Matplotlib's existing font cache if there is one (rebuilding it costs seconds), else a new one."""
        existing = os.environ.get("MPLCONFIGDIR") or os.path.join(os.path.expanduser("~"), ".cache", "matplotlib")
        return existing if os.path.isdir(existing) else str(self.home / "matplotlib")

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "IPYTHON"))}
        env.update(
            HOME=str(self.home),
            JUPYTER_CONFIG_DIR=str(self.home / "config"),
            JUPYTER_DATA_DIR=str(self.home / "data"),
            JUPYTER_RUNTIME_DIR=str(self.home / "runtime"),
            IPYTHONDIR=str(self.home / "ipython"),
            MPLCONFIGDIR=self._matplotlib_dir(),
            # The virtual environment's share/jupyter (kernel spec, lab extensions) comes first,
            # so no kernel spec installed elsewhere on the machine can be picked up.
            JUPYTER_PATH=os.path.join(sys.prefix, "share", "jupyter"),
            JUPYTER_PREFER_ENV_PATH="1",
            JUPYTER_PLATFORM_DIRS="1",
            PYTHONPATH=os.pathsep.join([str(ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])),
            # The course model is trained once and cached (gptbook.training.course_model): share that cache,
            # or every run of this test would train it again.
            GPTBOOK_CACHE=os.environ.get("GPTBOOK_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "gptbook"),
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            PYTHONUNBUFFERED="1",
            # Keep the kernel from competing with the browser for the CPU cores.
            OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
        )
        env.pop("PYTHONSTARTUP", None)
        env.pop("PYTEST_CURRENT_TEST", None)  # the kernel is a learner's, not a test's (gptbook.ui.dashboard looks at it)
        env.pop("GPTBOOK_DASHBOARD", None)
        return env

    def _write_config(self) -> None:
        config = self.home / "config"
        _write_json(config / "jupyter_server_config.json", {
            "ServerApp": {
                "ip": "127.0.0.1",
                "port": self.port,
                "port_retries": 0,
                "token": self.token,
                "open_browser": False,
                "root_dir": str(self.root_dir),
                "allow_remote_access": False,
            },
            "LabApp": {
                "news_url": None,  # no announcements feed
                "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
                "extension_manager": "readonly",  # no PyPI listing
            },
            # JupyterLab's front end asks jupyter-lsp for its status; don't let it scan for language servers.
            "LanguageServerManager": {"autodetect": False},
            # As `setup_course.py lab` does: encrypt the kernel's connection where the kernel supports it.
            "KernelManager": {"transport_encryption": "auto"},
        })
        settings = config / "lab" / "user-settings" / "@jupyterlab"
        # Never ask about news or updates (a toast would also cover part of the page).
        _write_json(settings / "apputils-extension" / "notification.jupyterlab-settings",
                    {"fetchNews": "false", "checkForUpdates": False})
        # Render every cell in the DOM (no virtual scrolling), so the test can see all prompts and outputs.
        _write_json(settings / "notebook-extension" / "tracker.jupyterlab-settings",
                    {"windowingMode": "none", "kernelShutdown": True})
        _write_json(settings / "extensionmanager-extension" / "plugin.jupyterlab-settings", {"enabled": False})
        # Opening a notebook should not pop up the "which kernel?" dialog.
        _write_json(settings / "docmanager-extension" / "plugin.jupyterlab-settings", {"autosave": False})
        # The theme: fixed, so screenshots look the same everywhere.
        _write_json(settings / "apputils-extension" / "themes.jupyterlab-settings",
                    {"theme": "JupyterLab Light", "adaptive-theme": False})

    # -- life cycle ---------------------------------------------------------------------------
    def start(self, timeout: float = 90.0) -> "JupyterLabServer":
        for sub in ("config", "data", "runtime", "ipython", "matplotlib"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        self._write_config()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w")
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        self.proc = subprocess.Popen(cmd, cwd=self.root_dir, env=self._environment(),
                                     stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self.api("status")
                return self
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"JupyterLab did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "JupyterLabServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- REST API -----------------------------------------------------------------------------
    def api(self, path: str, method: str = "GET", timeout: float = 5.0):
        request = urllib.request.Request(f"{self.base_url}/api/{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def kernels(self) -> list[dict]:
        return self.api("kernels")

    def shutdown_kernels(self) -> None:
        for kernel in self.kernels():
            try:
                self.api(f"kernels/{kernel['id']}", method="DELETE", timeout=15)
            except OSError:
                pass

    def lab_url(self, notebook: str) -> str:
        return f"{self.base_url}/lab/tree/{notebook}?token={self.token}&reset"

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


def copy_course(source: Path, dest: Path) -> Path:
    """Copy notebooks/ and images/ (the notebooks link ../images/*.svg) from ``source`` into ``dest``."""
    for name in ("notebooks", "images"):
        src = Path(source) / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    return dest


# --------------------------------------------------------------------------------------------
# What the browser does: requests, console, page errors
# --------------------------------------------------------------------------------------------

#: Console errors that are known to be harmless. Each entry is a regular expression, with the reason.
CONSOLE_ALLOW = [
    # (empty for now: add a pattern only with a comment saying why it is harmless)
]


def _is_local(url: str, port: int) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about", "chrome-error"):
        return True  # stays inside the browser
    return parts.scheme in ("http", "https", "ws", "wss") and parts.hostname == "127.0.0.1" and parts.port == port


class BrowserWatch:
    """Blocks and records every request that is not to our server; records console and page errors."""

    def __init__(self, port: int):
        self.port = port
        self.outside_requests: list[str] = []
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.requests = 0

    def attach_context(self, context) -> None:
        def route(route, request):
            self.requests += 1
            if _is_local(request.url, self.port):
                route.continue_()
            else:
                self.outside_requests.append(f"{request.method} {request.url}")
                route.abort("blockedbyclient")

        context.route("**/*", route)

        def websocket_route(ws):
            self.outside_requests.append(f"WEBSOCKET {ws.url}")
            ws.close()

        # WebSockets are not seen by context.route: refuse (and record) any to another host.
        if hasattr(context, "route_web_socket"):  # playwright >= 1.48
            context.route_web_socket(lambda url: not _is_local(url, self.port), websocket_route)

    def attach_page(self, page, label: str) -> None:
        def on_console(message):
            if message.type not in ("error", "assert"):
                return
            text = message.text
            if any(re.search(pattern, text) for pattern, _why in CONSOLE_ALLOW):
                return
            location = message.location or {}
            where = f" ({location.get('url', '')}:{location.get('lineNumber', '')})" if location.get("url") else ""
            self.console_errors.append(f"[{label}] {text}{where}")

        def on_websocket(ws):
            if not _is_local(ws.url, self.port):
                self.outside_requests.append(f"WEBSOCKET {ws.url}")

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.page_errors.append(f"[{label}] {error}"))
        page.on("websocket", on_websocket)
        page.on("request", lambda request: None if _is_local(request.url, self.port)
                else self.outside_requests.append(f"{request.method} {request.url}"))

    def reset(self) -> None:
        """Forget what was recorded so far (each test reports its own problems)."""
        self.outside_requests.clear()
        self.console_errors.clear()
        self.page_errors.clear()

    def problems(self) -> list[str]:
        lines = []
        lines += [f"request that left 127.0.0.1: {r}" for r in dict.fromkeys(self.outside_requests)]
        lines += [f"browser console error: {e}" for e in self.console_errors]
        lines += [f"uncaught error in the page: {e}" for e in self.page_errors]
        return lines


# --------------------------------------------------------------------------------------------
# Driving a notebook in JupyterLab
# --------------------------------------------------------------------------------------------

def wait_for_notebook(page, timeout_ms: int = 90_000) -> None:
    """Wait until the notebook is shown and its kernel has started and is idle."""
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=timeout_ms)
    wait_kernel_idle(page, timeout_ms=timeout_ms)


def kernel_status(page) -> str:
    """The kernel status JupyterLab shows: 'idle', 'busy', 'starting', ..., or 'no kernel'."""
    return page.evaluate("""() => {
        const bar = document.querySelector('#jp-main-statusbar');
        const text = ((bar && bar.innerText) || '').replace(/\\s+/g, ' ');
        if (/No Kernel/.test(text)) return 'no kernel';
        const m = text.match(/\\|\\s*(Idle|Busy|Starting|Connecting|Restarting|Reconnecting|Initializing|Unknown|Dead|Terminating|Autorestarting)\\b/i);
        return m ? m[1].toLowerCase() : 'unknown';
    }""")


def wait_kernel_idle(page, timeout_ms: int = 90_000) -> None:
    deadline = time.monotonic() + timeout_ms / 1000
    idle_since = None
    while time.monotonic() < deadline:
        dialog = page.locator(".jp-Dialog")
        if dialog.count() and dialog.first.is_visible():  # e.g. "Select Kernel": the notebook's metadata is wrong
            raise AssertionError(f"JupyterLab shows a dialog instead of running the notebook: "
                                 f"{dialog.first.inner_text()[:500]!r}")
        if kernel_status(page) == "idle":
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > 0.5:
                return
        else:
            idle_since = None
        page.wait_for_timeout(100)
    raise AssertionError(f"the kernel did not become idle within {timeout_ms / 1000:.0f} s "
                         f"(status: {kernel_status(page)})")


def code_cell_prompts(page) -> list[str]:
    """The execution prompts of every code cell of the notebook on screen, e.g. ['[1]:', '[*]:']."""
    return page.evaluate("""() => {
        const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
        return Array.from(panel.querySelectorAll('.jp-CodeCell .jp-Cell-inputWrapper .jp-InputPrompt'))
            .map(p => p.textContent.trim());
    }""")


def run_all_cells(page, timeout_ms: int = 180_000) -> list[str]:
    """Run → Run All Cells from the menu bar, then wait until every code cell has run.

    Returns the final prompts, e.g. ['[1]:', '[2]:', ...]. Raises AssertionError when the run does
    not finish in time, or stops early (a cell raised: the cells after it never run).
    """
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-item:not(.lm-mod-disabled) .lm-Menu-itemLabel",
                 has_text=re.compile(r"^Run All Cells$")).click()
    deadline = time.monotonic() + timeout_ms / 1000
    prompts: list[str] = []
    started = False  # True once a cell shows [*] (queued or running) or a number
    idle_since = None
    while time.monotonic() < deadline:
        prompts = code_cell_prompts(page)
        running = any(p == "[*]:" for p in prompts)
        started = started or running or any(re.fullmatch(r"\[\d+\]:", p) for p in prompts)
        if started and not running and kernel_status(page) == "idle":
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since >= 1.0:  # stays idle: the run is over
                break
        else:
            idle_since = None
        page.wait_for_timeout(250)
    else:
        raise AssertionError(f"Run All Cells did not finish within {timeout_ms / 1000:.0f} s; prompts: {prompts}")
    not_run = [i for i, p in enumerate(prompts) if not re.fullmatch(r"\[\d+\]:", p)]
    if not_run:
        errors = "\n".join(output_errors(page)) or "(no error output shown)"
        raise AssertionError(f"Run All Cells stopped early: code cells {not_run} did not run "
                             f"(prompts {prompts}).\nErrors shown:\n{errors}")
    page.wait_for_timeout(300)  # let the last outputs (widget views) render
    return prompts


def output_errors(page) -> list[str]:
    """Text of every error or stderr output, and of every widget that failed to render or shows an error."""
    return page.evaluate("""() => {
        const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
        const found = [];
        const text = el => (el.innerText || el.textContent || '').trim().slice(0, 2000);
        for (const el of panel.querySelectorAll(
                '[data-mime-type="application/vnd.jupyter.stderr"], .jp-OutputArea-output.jp-mod-error, .jp-RenderedError'))
            found.push('cell output: ' + text(el));
        for (const el of panel.querySelectorAll('.gptbook-error'))
            if (text(el) && el.offsetParent !== null) found.push('widget error: ' + text(el));
        for (const el of panel.querySelectorAll('.jp-OutputArea-output'))
            if (/Error displaying widget|Failed to load model class|model not found/.test(text(el)))
                found.push('widget failed to render: ' + text(el));
        return found;
    }""")


# --------------------------------------------------------------------------------------------
# Screenshots
# --------------------------------------------------------------------------------------------

def save_small_png(src: Path, dest: Path, width: int = 1000, max_bytes: int = 200_000, margin: int = 8) -> Path:
    """A README-sized copy of a screenshot: blank borders trimmed, at most ``width`` px wide, palette PNG."""
    from PIL import Image, ImageChops

    dest.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(src) as image:
        image = image.convert("RGB")
        background = Image.new("RGB", image.size, image.getpixel((image.width - 1, image.height - 1)))
        box = ImageChops.difference(image, background).getbbox()
        if box:
            left, top, right, bottom = box
            image = image.crop((max(left - margin, 0), max(top - margin, 0),
                                min(right + margin, image.width), min(bottom + margin, image.height)))
        if image.width > width:
            image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
        for colours in (256, 128, 64):
            image.quantize(colors=colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
                dest, optimize=True)
            if dest.stat().st_size <= max_bytes:
                break
    return dest
