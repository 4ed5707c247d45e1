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
ARTIFACTS = pathlib.Path(__file__).resolve().parents[1] / "artifacts"  # screenshots of each view
SETTINGS = {
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
