"""The explorer in a real browser: JupyterLab started here, Debian's chromium driven by
Playwright. Two threads race on a traced object; the slider is moved with the
keyboard and the state panel must show the value the object held at that event; the
timeline, the supervision tree and the lock graph (the two depositors take two locks in
one order) are drawn with marks in their tabs."""

from __future__ import annotations

import json
import os
import re

import nbformat
import pytest
from lab import (
    ARTIFACTS,
    CHROMIUM,
    is_drawn,
    jupyterlab,
    marks,
    offline_page,
    poll,
    wait_for_notebook,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing (apt-get install chromium)"
    ),
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
    "ledger, audit = threading.Lock(), threading.Lock()\n"
    "def deposit():\n"
    "    start_line.wait()\n"
    "    for _ in range(15):\n"
    "        seen = acct.balance\n"
    "        acct.balance = seen + 1\n"
    "    with ledger:\n"
    "        with audit:\n"
    "            pass\n"
    "workers = [threading.Thread(target=deposit, name=f'depositor-{i}') for i in range(2)]\n"
    "for w in workers: w.start()\n"
    "for w in workers: w.join()",
    # what the panel must show at each row of the events frame (the oracle)
    "ts = _scope.events()['ts'].to_list()\n"
    "print('EXPECTED' + json.dumps({i: _scope.get_state_at('acct', t)['balance']\n"
    "      for i, t in enumerate(ts) if _scope.state_timeline('acct')['ts'].min() <= t}))",
    "explorer = _scope.explore()\nexplorer",
]

# For each edge drawn with an arrowhead: its marker is in the same SVG and is the only
# element of that id in the page (url(#id) finds the first: one in a hidden tab draws none)
ARROWS = """el => [...el.querySelectorAll('svg [marker-end]')].map(line => {
  const id = line.getAttribute('marker-end').slice(5, -1);
  return document.querySelectorAll(`[id="${id}"]`).length === 1
    && line.closest('svg').querySelector(`[id="${id}"]`) !== null;
})"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, root / "race.ipynb")
    with jupyterlab(root, tmp_path_factory.mktemp("jupyter")) as url:
        yield url


def test_explorer_in_jupyterlab(lab):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "explorer-failure.png").unlink(missing_ok=True)  # only this run's
    with offline_page() as (page, refused):
        try:
            page.goto(f"{lab}/lab/tree/race.ipynb")
            wait_for_notebook(page)
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            explorer = page.locator(".scope-explorer")
            explorer.wait_for(state="visible", timeout=120_000)
            oracle_text = page.locator(
                ".jp-OutputArea-output", has_text="EXPECTED"
            ).first.inner_text()
            expected = {
                int(k): v for k, v in json.loads(oracle_text.split("EXPECTED", 1)[1]).items()
            }
            assert expected, "the race recorded no state of acct"

            handle = explorer.locator(".widget-slider .noUi-handle").first
            handle.focus()
            readout = explorer.locator(".widget-readout").first
            state = explorer.locator(".scope-state")
            target = sorted(expected)[len(expected) // 2]
            for _ in range(target):
                page.keyboard.press("ArrowRight")
            poll(
                lambda: readout.inner_text().strip() == str(target),
                30,
                f"the slider to reach row {target}",
            )

            def shown_balance():
                text = state.inner_text() if state.count() else ""
                m = re.search(r"balance\s+(-?\d+)", text)
                at_row = readout.inner_text().strip()
                return (int(at_row), int(m.group(1))) if m and at_row == str(target) else None

            row, balance = poll(
                lambda: (lambda v: v if v and v[1] == expected[v[0]] else None)(shown_balance()),
                30,
                "the state panel to show acct.balance at the cursor",
            )
            assert balance == expected[row]

            timeline = explorer.locator("img.scope-timeline")
            assert timeline.count() == 1 and timeline.is_visible()
            assert timeline.evaluate("img => img.complete && img.naturalWidth > 100")
            assert explorer.locator("svg.scope-cursor line").count() == 1
            body = explorer.inner_text()
            assert "Error" not in body and "failed:" not in body
            # the kernel's own actors are hidden; the checkbox shows them and hides them again
            header = explorer.locator(".widget-html", has_text="scope_nb explorer").first
            assert "of the kernel's own, hidden" in header.inner_text()
            toggle = explorer.get_by_text("show the kernel's own threads and tasks")
            assert toggle.is_visible()
            for hidden in (False, True):
                toggle.click()
                poll(
                    lambda h=hidden: ("hidden" in header.inner_text()) == h,
                    30,
                    f"the header to {'hide' if hidden else 'count'} the kernel's own actors",
                )
            explorer.screenshot(path=str(ARTIFACTS / "explorer.png"))
            shown = explorer.locator(".widget-tab-contents > :not(.lm-mod-hidden)")
            for tab in ("timeline", "supervision", "locks"):
                explorer.locator(".lm-TabBar-tab", has_text=tab).first.click()
                poll(
                    lambda: (lambda m: m if is_drawn(m) else None)(marks(shown.first)),
                    60,
                    f"the explorer's {tab} tab drawn with marks",
                )
                assert "failed:" not in shown.first.inner_text()
                if tab != "timeline":  # every arrowhead is its own drawing's, found in the page
                    arrows = shown.first.evaluate(ARROWS)
                    assert arrows and all(arrows), f"{tab}: arrowheads missing ({arrows})"
                explorer.screenshot(path=str(ARTIFACTS / f"explorer-{tab}.png"))
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "explorer-failure.png"), full_page=True)
            raise
    assert not refused, f"requests left the machine: {refused[:5]}"
    assert (ARTIFACTS / "explorer.png").stat().st_size > 10_000
