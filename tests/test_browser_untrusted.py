"""The stored teaching notebooks in a real browser, opened untrusted (as JupyterLab,
GitHub and nbviewer open a notebook someone else ran): every figure shows as a
picture with marks on it, not as text such as `alt.LayerChart(...)`, no request leaves
the machine, and opening a notebook leaves its file as it was, past JupyterLab's
autosave and after closing it. Then a live kernel: after `%load_ext scope`, with
nothing enabled, the summary, a chart and the graphs are drawn with no network."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import sys
import time

import nbformat
import pytest
from lab import (
    ARTIFACTS,
    AUTOSAVE,
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

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[1] / "notebooks"
NAMES = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))
LIVE = [
    "%load_ext scope",
    "%%scope\nimport threading, queue\nq = queue.Queue()\n"
    "ledger, audit = threading.Lock(), threading.Lock()\n"
    "def put(i):\n"
    "    with ledger:\n"
    "        with audit:\n"
    "            q.put(i)\n"
    "workers = [threading.Thread(target=put, args=(i,), name=f'putter-{i}') for i in range(3)]\n"
    "for w in workers: w.start()\nfor w in workers: w.join()",
    "from scope_nb.notebook import charts\ncharts.timeline_chart(_scope)",
    "_scope.supervision_tree()",
    "_scope.lock_graph()",
]
LIVE_FIGURES = {2: "timeline", 3: "supervision", 4: "lock-graph"}  # cell index -> view
# what a stored figure shows, from the call that drew it
VIEWS = {
    "timeline_chart": "timeline",
    "supervision": "supervision",
    "lock_graph": "lock-graph",
    "hotspots_chart": "hotspots",
    "queue_depth_chart": "queue-depth",
}


def view(source: str) -> str:
    """The view a figure cell draws (the last drawing call in it)."""
    found = [(source.rfind(call), name) for call, name in VIEWS.items() if call in source]
    return max(found)[1] if found else "figure"


def drawn_figures(outputs, n: int):
    """The marks of the `n` figures drawn among `outputs`, or None until all are."""
    found = [m for m in (marks(outputs.nth(j)) for j in range(outputs.count())) if is_drawn(m)]
    return found if len(found) == n else None


def drawn_first(outputs):
    """The marks of the first of `outputs` once it is drawn with marks, else None."""
    m = marks(outputs.first) if outputs.count() else None
    return m if is_drawn(m) else None


def figures(nb: nbformat.NotebookNode) -> dict[int, int]:
    """cell index -> how many figure outputs (a PNG) it stores."""
    counts = {}
    for i, cell in enumerate(nb.cells):
        n = sum(1 for o in cell.get("outputs", []) if "image/png" in o.get("data", {}))
        if n:
            counts[i] = n
    return counts


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("stored")
    for name in NAMES:
        shutil.copy(NOTEBOOKS / f"{name}.ipynb", root)
    live = nbformat.v4.new_notebook()
    live.cells = [nbformat.v4.new_code_cell(src) for src in LIVE]
    live.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(live, root / "live.ipynb")
    with jupyterlab(root, tmp_path_factory.mktemp("jupyter")) as url:
        yield url, root


def test_stored_notebooks_show_every_figure_untrusted(lab):
    url, root = lab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    paths = {name: root / f"{name}.ipynb" for name in NAMES}
    before = {name: (p.read_bytes(), p.stat().st_mtime_ns) for name, p in paths.items()}
    shown: dict[str, list[str]] = {}
    with offline_page() as (page, refused):
        page.goto(f"{url}/lab?reset")  # no tab restored from before
        page.wait_for_function("window.jupyterapp", timeout=60_000)
        page.evaluate("window.jupyterapp.restored.then(() => true)")
        autosave = page.evaluate(
            "window.jupyterapp.serviceManager.settings"
            ".fetch('@jupyterlab/docmanager-extension:plugin')"
            ".then(s => [s.settings.autosave, s.settings.autosaveInterval])"
        )
        assert autosave == [True, AUTOSAVE], "JupyterLab would not save a modified notebook"
        for name in NAMES:
            nb = nbformat.reads(before[name][0].decode("utf-8"), as_version=4)
            expected = figures(nb)
            assert expected, f"{name} stores no figure"
            # opened as a person opens it, each in its own tab, all kept open until the end
            page.evaluate(
                f"window.jupyterapp.commands.execute('docmanager:open', {{path: '{name}.ipynb'}})"
                ".then(() => true)"
            )
            page.wait_for_function(
                "window.jupyterapp.shell.currentWidget && "
                f"window.jupyterapp.shell.currentWidget.context.path === '{name}.ipynb'",
                timeout=60_000,
            )
            wait_for_notebook(page, kernel=False)
            trusted = page.evaluate(
                "(() => { const cells = window.jupyterapp.shell.currentWidget.model.cells;"
                " let t = 0; for (let i = 0; i < cells.length; i++) t += cells.get(i).trusted;"
                " return t; })()"
            )
            assert trusted == 0, f"{name} opened trusted"
            panel = page.evaluate("window.jupyterapp.shell.currentWidget.id")
            cells = page.locator(f"[id='{panel}'] .jp-Notebook .jp-Cell")
            poll(lambda cells=cells, nb=nb: cells.count() == len(nb.cells), 30, f"{name}'s cells")
            kinds = []
            for index, n in expected.items():
                outputs = cells.nth(index).locator(".jp-OutputArea-output")
                found = poll(
                    lambda outputs=outputs, n=n: drawn_figures(outputs, n),
                    30,
                    f"{name} cell {index}: {n} figure(s) drawn with marks",
                )
                kinds += [m["kind"] for m in found]
                area = cells.nth(index).locator(".jp-OutputArea")
                text = area.inner_text()
                assert (
                    "alt.LayerChart" not in text
                    and "alt.Chart" not in text
                    and "DiGraph at 0x" not in text
                )
                shot = f"untrusted-{name}-{view(nb.cells[index].source)}-{index}.png"
                area.screenshot(path=str(ARTIFACTS / shot))
            shown[name] = kinds
            # the %%scope summary
            summary = page.locator(f"[id='{panel}'] .scope-sum:has(th[style])")
            html = [
                o.get("data", {}).get("text/html", "")
                for c in nb.cells
                for o in c.get("outputs", [])
            ]
            stored = any("scope-sum" in h and "<style" not in h for h in html)  # a %%scope summary
            assert summary.count() >= stored, f"{name}: the summary lost its inline styles"
            if summary.count():  # keeps its inline styling through the sanitizer
                th = summary.first.locator("th").first
                assert th.evaluate("e => getComputedStyle(e).textAlign") == "left"
                summary.first.screenshot(path=str(ARTIFACTS / f"untrusted-{name}-summary.png"))
            # the kernel's info is in: JupyterLab has written into the model what it writes
            wait_for_notebook(page)
            page.evaluate(
                "window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.info"
            )
            page.evaluate(
                "window.jupyterapp.shell.currentWidget.sessionContext.shutdown().then(() => true)"
            )
        # past the autosave interval since the last kernel's info: a modified notebook
        # would have been saved by now
        time.sleep(3 * AUTOSAVE)
        dirty = page.evaluate(
            "(() => { const d = {}, open = [...window.jupyterapp.shell.widgets('main')];"
            " for (const w of open) if (w.context) {"
            " d[w.context.path.replace('.ipynb', '')] = w.context.model.dirty; w.dispose(); }"
            " return d; })()"
        )
    assert not refused, f"requests left the machine: {refused[:5]}"
    assert all(shown.values())
    assert sorted(dirty) == NAMES
    changed = {
        name: what_changed(before[name][0], paths[name].read_bytes())
        for name in NAMES
        if (paths[name].read_bytes(), paths[name].stat().st_mtime_ns) != before[name]
    }
    built_on = {nb_python(before[name][0]) for name in NAMES}
    kernel = ".".join(map(str, sys.version_info[:3]))
    if built_on == {kernel}:
        assert not any(dirty.values()), f"opening changed them in JupyterLab: {dirty}"
        assert not changed, f"opening them modified their files: {changed}"
    else:
        # Stored with the Python they were run on; a kernel of another Python makes
        # JupyterLab write its own version into the metadata, and nothing else.
        assert set(changed.values()) <= {("metadata.language_info.version", kernel)}, changed


def nb_python(raw: bytes) -> str:
    return json.loads(raw)["metadata"]["language_info"]["version"]


def what_changed(old: bytes, new: bytes) -> tuple[str, str]:
    """Which part of a notebook file changed: ("metadata.language_info.version", the new
    version) when that is the only change, else the first changed line."""
    a, b = json.loads(old), json.loads(new)
    version = b.get("metadata", {}).get("language_info", {}).get("version", "")
    a["metadata"]["language_info"]["version"] = version
    if a == b and re.sub(rb'"version": "3\.[0-9.]+"', b"", old) == re.sub(
        rb'"version": "3\.[0-9.]+"', b"", new
    ):
        return ("metadata.language_info.version", version)
    lines = [(x, y) for x, y in zip(old.splitlines(), new.splitlines(), strict=False) if x != y]
    return ("line", repr(lines[:1]) if lines else f"{len(old)} -> {len(new)} bytes")


def test_live_views_draw_offline_with_nothing_enabled(lab):
    url, _ = lab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with offline_page() as (page, refused):
        page.goto(f"{url}/lab/tree/live.ipynb?reset")
        wait_for_notebook(page)
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        panel = page.evaluate("window.jupyterapp.shell.currentWidget.id")
        cells = page.locator(f"[id='{panel}'] .jp-Notebook .jp-Cell")
        summary = cells.nth(1).locator(".scope-sum")
        summary.first.wait_for(state="visible", timeout=120_000)
        rows = summary.first.locator("tr")
        said = summary.first.inner_text()  # the cell's three threads and two locks
        assert rows.count() >= 3 and "3 threads" in said and "2 taken" in said, said
        summary.first.screenshot(path=str(ARTIFACTS / "trusted-summary.png"))
        for index, name in LIVE_FIGURES.items():
            out = cells.nth(index).locator(".jp-OutputArea-output")
            poll(lambda out=out: drawn_first(out), 120, f"the {name} drawn with marks")
            area = cells.nth(index).locator(".jp-OutputArea")
            text = area.inner_text()
            assert "Error loading script" not in text and "DiGraph at 0x" not in text
            area.screenshot(path=str(ARTIFACTS / f"trusted-{name}.png"))
        page.screenshot(path=str(ARTIFACTS / "live-charts.png"), full_page=True)
    assert not refused, f"requests left the machine: {refused[:5]}"
