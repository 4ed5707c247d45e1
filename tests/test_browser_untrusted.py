"""The stored teaching notebooks in a real browser, opened untrusted (as JupyterLab,
GitHub and nbviewer open a notebook someone else ran): every figure shows as a
picture, not as text such as `alt.LayerChart(...)`, no request leaves the machine,
and opening a notebook does not modify it. Then a live kernel: after `%load_ext
scope`, with nothing enabled, a chart and a graph are drawn with no network."""

from __future__ import annotations

import os
import pathlib
import shutil

import nbformat
import pytest
from lab import ARTIFACTS, CHROMIUM, jupyterlab, offline_page, poll, wait_for_notebook

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
    "%%scope --quiet\nimport threading, queue\nq = queue.Queue()\n"
    "workers = [threading.Thread(target=q.put, args=(i,), name=f'putter-{i}') for i in range(3)]\n"
    "for w in workers: w.start()\nfor w in workers: w.join()",
    "from scope_nb.notebook import charts\ncharts.timeline_chart(_scope)",
    "_scope.supervision_tree()",
]

# A figure drawn in an output: an image that loaded, or Vega's canvas with ink on it.
DRAWN = """out => {
  const img = out.querySelector('img');
  if (img) return img.complete && img.naturalWidth > 50 ? 'img' : '';
  const canvas = out.querySelector('.jp-RenderedVegaCommon5 canvas');
  if (canvas && canvas.width > 50) {
    const px = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 3; i < px.length; i += 4) if (px[i] > 0) return 'vega';
  }
  const svg = out.querySelector('.jp-RenderedVegaCommon5 svg.marks');
  return svg && svg.querySelectorAll('path, rect, line').length > 3 ? 'vega' : '';
}"""


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
    ARTIFACTS.mkdir(exist_ok=True)
    before = {name: (root / f"{name}.ipynb").read_bytes() for name in NAMES}
    shown: dict[str, list[str]] = {}
    with offline_page() as (page, refused):
        for name in NAMES:
            nb = nbformat.reads(before[name].decode("utf-8"), as_version=4)
            expected = figures(nb)
            assert expected, f"{name} stores no figure"
            page.goto(f"{url}/lab/tree/{name}.ipynb?reset")  # no tab restored from before
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

                def drawn(outputs=outputs, n=n):
                    found = [
                        k
                        for k in (outputs.nth(j).evaluate(DRAWN) for j in range(outputs.count()))
                        if k
                    ]
                    return found if len(found) == n else None

                kinds += poll(drawn, 30, f"{name} cell {index}: {n} figure(s) drawn")
                text = cells.nth(index).locator(".jp-OutputArea").inner_text()
                assert (
                    "alt.LayerChart" not in text
                    and "alt.Chart" not in text
                    and "DiGraph at 0x" not in text
                )
            shown[name] = kinds
            first = cells.nth(next(iter(expected))).locator(".jp-OutputArea")
            first.screenshot(path=str(ARTIFACTS / f"untrusted-{name}-figure.png"))
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
            # the kernel's info is in: JupyterLab has written what it writes
            wait_for_notebook(page)
            page.evaluate(
                "window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.info"
            )
            dirty = page.evaluate("window.jupyterapp.shell.currentWidget.context.model.dirty")
            assert not dirty, f"opening {name} changed it"
            page.evaluate(
                "(() => { const w = window.jupyterapp.shell.currentWidget;"
                " return w.sessionContext.shutdown().then(() => w.dispose()); })()"
            )
    assert not refused, f"requests left the machine: {refused[:5]}"
    for name in NAMES:
        assert (root / f"{name}.ipynb").read_bytes() == before[name], (
            f"{name} was modified by opening it"
        )
    assert all(shown.values())


def test_live_charts_draw_offline_with_nothing_enabled(lab):
    url, _ = lab
    with offline_page() as (page, refused):
        page.goto(f"{url}/lab/tree/live.ipynb?reset")
        wait_for_notebook(page)
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        panel = page.evaluate("window.jupyterapp.shell.currentWidget.id")
        cells = page.locator(f"[id='{panel}'] .jp-Notebook .jp-Cell")
        for index in (2, 3):
            out = cells.nth(index).locator(".jp-OutputArea-output")
            poll(
                lambda out=out: out.count() and out.first.evaluate(DRAWN),
                120,
                f"cell {index} drawn",
            )
            text = cells.nth(index).locator(".jp-OutputArea").inner_text()
            assert "Error loading script" not in text and "DiGraph at 0x" not in text
        page.screenshot(path=str(ARTIFACTS / "live-charts.png"), full_page=True)
    assert not refused, f"requests left the machine: {refused[:5]}"
