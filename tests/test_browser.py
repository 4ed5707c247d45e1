"""The explorer in a real browser: JupyterLab started here, Debian's chromium driven by
Playwright. Two threads race on a traced object; the slider is moved with the
keyboard and the state panel must show the value the object held at that event."""

from __future__ import annotations

import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import time
import urllib.request

import nbformat
import pytest

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = pathlib.Path(__file__).resolve().parents[1] / "artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing (apt-get install chromium)"),
]

CELLS = [
    "%load_ext scope",
    "import threading, json\n"
    "class Account:\n"
    "    def __init__(self):\n"
    "        self.balance = 0\n"
    "acct = Account()",
    "%%scope --quiet --objects acct\n"
    "start_line = threading.Barrier(2)\n"
    "def deposit():\n"
    "    start_line.wait()\n"
    "    for _ in range(15):\n"
    "        seen = acct.balance\n"
    "        acct.balance = seen + 1\n"
    "workers = [threading.Thread(target=deposit, name=f'depositor-{i}') for i in range(2)]\n"
    "for w in workers: w.start()\n"
    "for w in workers: w.join()",
    # what the panel must show at each row of the events frame (the oracle)
    "ts = _scope.events()['ts'].to_list()\n"
    "print('EXPECTED' + json.dumps({i: _scope.get_state_at('acct', t)['balance']\n"
    "      for i, t in enumerate(ts) if _scope.state_timeline('acct')['ts'].min() <= t}))",
    "explorer = _scope.explore()\nexplorer",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "race.ipynb")
    port = _free_port()
    env = dict(os.environ)
    for var in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR"):
        env[var] = str(tmp_path_factory.mktemp(var.lower()))
    news = pathlib.Path(env["JUPYTERLAB_SETTINGS_DIR"]) / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    log = open(root / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
         "--IdentityProvider.token=", "--ServerApp.password=", "--LabApp.expose_app_in_browser=True",
         f"--ServerApp.root_dir={root}", "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        stdout=log, stderr=subprocess.STDOUT, env=env,
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
                pytest.fail(f"JupyterLab did not start: {(root / 'lab.log').read_text()[-2000:]}")
            time.sleep(0.3)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def _poll(fn, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def test_explorer_in_jupyterlab(lab):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run"])
        page = browser.new_page(viewport={"width": 1400, "height": 1300})
        try:
            page.goto(f"{lab}/lab/tree/race.ipynb")
            page.wait_for_function("window.jupyterapp && window.jupyterapp.shell.currentWidget"
                                   " && window.jupyterapp.shell.currentWidget.sessionContext"
                                   " && window.jupyterapp.shell.currentWidget.sessionContext.session"
                                   " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel",
                                   timeout=60_000)
            page.wait_for_function("window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'",
                                   timeout=60_000)
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            explorer = page.locator(".scope-explorer")
            explorer.wait_for(state="visible", timeout=120_000)
            oracle_text = page.locator(".jp-OutputArea-output", has_text="EXPECTED").first.inner_text()
            expected = {int(k): v for k, v in json.loads(oracle_text.split("EXPECTED", 1)[1]).items()}
            assert expected, "the race recorded no state of acct"

            handle = explorer.locator(".widget-slider .noUi-handle").first
            handle.focus()
            readout = explorer.locator(".widget-readout").first
            state = explorer.locator(".scope-state")
            target = sorted(expected)[len(expected) // 2]
            for _ in range(target):
                page.keyboard.press("ArrowRight")
            _poll(lambda: readout.inner_text().strip() == str(target), 30, f"the slider to reach row {target}")

            def shown_balance():
                text = state.inner_text() if state.count() else ""
                m = re.search(r"balance\s+(-?\d+)", text)
                at_row = readout.inner_text().strip()
                return (int(at_row), int(m.group(1))) if m and at_row == str(target) else None

            row, balance = _poll(lambda: (lambda v: v if v and v[1] == expected[v[0]] else None)(shown_balance()),
                                 30, "the state panel to show acct.balance at the cursor")
            assert balance == expected[row]

            charts = explorer.locator("svg.marks")
            assert charts.count() >= 1 and charts.first.is_visible()
            assert explorer.locator("svg.scope-cursor line").count() == 1
            body = explorer.inner_text()
            assert "Error" not in body and "failed:" not in body
            explorer.screenshot(path=str(ARTIFACTS / "explorer.png"))
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "explorer-failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    assert (ARTIFACTS / "explorer.png").stat().st_size > 10_000
