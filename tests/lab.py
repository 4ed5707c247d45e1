"""JupyterLab for the browser tests: a server started on a free port with its own
config, data (so no notebook is trusted), settings and workspace directories, and
Debian's chromium driven by Playwright with every request off this machine refused
and counted."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

CHROMIUM = "/usr/bin/chromium"
# screenshots of each view, one folder per Python: kept by CI (README, "Tests")
ARTIFACTS = (
    pathlib.Path(__file__).resolve().parents[1]
    / "artifacts"
    / "screenshots"
    / f"{sys.version_info.major}.{sys.version_info.minor}"
)
AUTOSAVE = 2  # seconds: JupyterLab saves a modified notebook this often (120 by default)
SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin": {"autosave": True, "autosaveInterval": AUTOSAVE},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false"},
    # every cell in the DOM: a test reads outputs far down a notebook
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def jupyterlab(root: pathlib.Path, scratch: pathlib.Path):
    """A JupyterLab serving `root`; yields its URL. `scratch` holds its own dirs."""
    env = dict(os.environ)
    for var in (
        "JUPYTER_CONFIG_DIR",
        "JUPYTER_DATA_DIR",
        "JUPYTER_RUNTIME_DIR",
        "JUPYTERLAB_SETTINGS_DIR",
        "JUPYTERLAB_WORKSPACES_DIR",
    ):
        env[var] = str(scratch / var.lower())
        os.makedirs(env[var], exist_ok=True)
    for plugin, values in SETTINGS.items():
        package, name = plugin.rsplit("/", 1)
        folder = pathlib.Path(env["JUPYTERLAB_SETTINGS_DIR"]) / package
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.jupyterlab-settings").write_text(json.dumps(values))
    port = _free_port()
    log_path = scratch / "lab.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter",
                "lab",
                "--no-browser",
                "--allow-root",
                "--ip=127.0.0.1",
                f"--port={port}",
                "--IdentityProvider.token=",
                "--ServerApp.password=",
                "--LabApp.expose_app_in_browser=True",
                f"--ServerApp.root_dir={root}",
                "--LabApp.news_url=",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    pytest.fail(f"JupyterLab did not start: {log_path.read_text()[-2000:]}")
                time.sleep(0.3)
        try:
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextlib.contextmanager
def offline_page(viewport=(1400, 1300)):
    """A chromium page that may reach 127.0.0.1 only; yields (page, refused URLs)."""
    from playwright.sync_api import sync_playwright

    refused: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})

        def route(r):
            if r.request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")):
                r.continue_()
            else:
                refused.append(r.request.url)
                r.abort()

        page.route("**/*", route)
        try:
            yield page, refused
        finally:
            browser.close()


def poll(fn, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def wait_for_notebook(page, kernel: bool = True) -> None:
    """Until the current notebook is open (and with `kernel`, its kernel idle)."""
    ready = (
        "window.jupyterapp && window.jupyterapp.shell.currentWidget && "
        "window.jupyterapp.shell.currentWidget.context"
    )
    page.wait_for_function(
        ready + " && window.jupyterapp.shell.currentWidget.context.isReady", timeout=60_000
    )
    if kernel:
        session = "window.jupyterapp.shell.currentWidget.sessionContext.session"
        page.wait_for_function(
            f"{session} && {session}.kernel && {session}.kernel.status === 'idle'", timeout=60_000
        )


# How much of a figure in element `el` is drawn. A picture (an <img>, or Vega's <canvas>)
# is read back: `ink` is the share of its pixels unlike its corner pixel (the background),
# `run` the longest row of pixels of one colour other than the background's: a box, a bar,
# an axis or a lane is one, a letter never is, so a picture of a caption alone (an empty
# graph's "nothing to draw") has ink and no run. An SVG counts its shapes, text aside.
MARKS = """el => {
  const read = (source, w, h) => {
    const c = document.createElement('canvas');
    c.width = w; c.height = h;
    const g = c.getContext('2d');
    g.drawImage(source, 0, 0);
    const px = new Uint32Array(g.getImageData(0, 0, w, h).data.buffer);
    let ink = 0, run = 0;
    for (let y = 0; y < h; y++) {
      let len = 0;
      for (let x = 0; x < w; x++) {
        const i = y * w + x;
        if (px[i] === px[0]) { len = 0; continue; }
        ink++;
        len = x > 0 && px[i] === px[i - 1] ? len + 1 : 1;
        if (len > run) run = len;
      }
    }
    return {ink: ink / (w * h), run, width: w, height: h};
  };
  const canvas = el.querySelector('canvas');
  if (canvas && canvas.width > 50)
    return {kind: 'canvas', ...read(canvas, canvas.width, canvas.height)};
  const img = el.querySelector('img');
  if (img && img.complete && img.naturalWidth > 50)
    return {kind: 'img', ...read(img, img.naturalWidth, img.naturalHeight)};
  const svg = el.querySelector('svg');
  if (svg) {
    const shapes = [...svg.querySelectorAll('path, rect, line, circle, ellipse, polygon, polyline')]
      .filter(s => { const b = s.getBBox(); return b.width > 0 || b.height > 0; });
    return {kind: 'svg', shapes: shapes.length, width: svg.getBoundingClientRect().width};
  }
  return null;
}"""


def marks(locator) -> dict | None:
    """What `MARKS` measures of the figure in `locator` (None: no figure in it yet)."""
    return locator.evaluate(MARKS)


def is_drawn(m: dict | None, shapes: int = 3) -> bool:
    """A figure with marks on it: ink and a shape on a picture, `shapes` shapes in an SVG."""
    if not m:
        return False
    if m["kind"] == "svg":
        return m["shapes"] >= shapes
    return m["ink"] > 0.003 and m["run"] >= 30
