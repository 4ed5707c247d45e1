"""A notebook exercising every magic runs top to bottom in a real kernel (nbclient),
and each output has the MIME types a saved notebook needs to read well."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

WIDGET = "application/vnd.jupyter.widget-view+json"


def cells(tmp) -> list[tuple[str, str]]:
    """(key, source) of every cell; the key names the cell in the assertions."""
    return [
        ("load", "%load_ext scope"),
        (
            "setup",
            "import threading\n"
            "import scope_nb\n"
            "class Counter:\n"
            "    def __init__(self):\n"
            "        self.value = 0\n"
            "counter = Counter()\n"
            "guard = threading.Lock()",
        ),
        (
            "record",
            "%%scope --objects counter -o race\n"
            "gate = threading.Barrier(2)\n"
            "def bump():\n"
            "    gate.wait()\n"
            "    for _ in range(25):\n"
            "        v = counter.value\n"
            "        counter.value = v + 1\n"
            "workers = [threading.Thread(target=bump, name=f'bump-{i}') for i in range(2)]\n"
            "for w in workers: w.start()\n"
            "for w in workers: w.join()",
        ),
        ("await", "%%scope --quiet\nimport asyncio\nawait asyncio.sleep(0)\n'awaited'"),
        (
            "kernel_actors",
            "import html\n"
            "def shown(trace):\n"
            "    ex, names = trace.explore(), dict(trace.actors()['actor', 'name'].iter_rows())\n"
            "    hidden = sorted(names[a] or a for a in ex.hidden_actors)\n"
            "    offered = sorted(names[a] or a for _, a in ex.f_actor.options if a in names)\n"
            "    ex.lower.selected_index = ex.TABS.index('supervision')\n"
            "    tree = html.unescape(ex.lower.children[ex.lower.selected_index].value)\n"
            "    drawn = sorted(n for n in set(names.values()) if n and f'>{n} (' in tree)\n"
            "    return {'hidden': hidden, 'offered': offered, 'tree': drawn}\n"
            "with scope_nb.record() as plain:\n"
            "    w = threading.Thread(target=lambda: None, name='rec-w')\n"
            "    w.start()\n"
            "    w.join()\n"
            "import json\n"
            "print('SHOWN' + json.dumps({'cell': shown(race), 'record': shown(plain)}))",
        ),
        ("status", "%scope status"),
        ("start", "%scope start --max-events 5000"),
        ("trace_lock", "%scope trace lock guard"),
        ("use_lock", "with guard:\n    counter.value += 1"),
        ("stop", "%scope stop"),
        ("explore", "%scope explore"),
        ("export", f"%scope export {tmp}/race.json"),
        ("save", f"race.save({str(tmp / 'saved')!r})"),
        ("load", f"%scope load {tmp}/saved"),
        ("fail", "%%scope --quiet\nraise ValueError('cell failed on purpose')"),
        ("postmortem", "%scope postmortem"),
        ("chart", "from scope_nb.notebook import charts, graphs\ncharts.timeline_chart(race)"),
        ("graph", "graphs.supervision_svg(race)"),
        ("tree", "race.supervision_tree()"),
        ("renderer", "import altair as alt\nalt.renderers.active"),
        ("help", "%scope help"),
        ("bad", "%scope start --level nope"),
        ("repr", "race"),
    ]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nb")
    nb = nbformat.v4.new_notebook()
    keys = []
    for key, source in cells(tmp):
        cell = nbformat.v4.new_code_cell(source)
        nb.cells.append(cell)
        keys.append(key)
    NotebookClient(
        nb,
        kernel_name="python3",
        timeout=120,
        allow_errors=True,
        resources={"metadata": {"path": str(tmp)}},
    ).execute()
    return {key: cell.outputs for key, cell in zip(keys, nb.cells, strict=True)}


def mimes(outputs) -> set[str]:
    return {m for o in outputs if "data" in o for m in o["data"]}


def text(outputs) -> str:
    return "".join(o.get("text", "") for o in outputs if o["output_type"] == "stream")


def test_no_cell_failed_unexpectedly(executed):
    errors = {
        k: o["ename"] for k, outs in executed.items() for o in outs if o["output_type"] == "error"
    }
    assert errors == {"fail": "ValueError"}


def test_summary_outputs_are_html_and_live_widgets(executed):
    for key in ("record", "stop", "load"):
        assert {"text/html", "text/plain", WIDGET} <= mimes(executed[key]), key
        html = next(o["data"]["text/html"] for o in executed[key] if "data" in o)
        assert 'data-section="crashes"' in html and "section failed" not in html
    assert executed["load"] and executed["await"][0]["data"]["text/plain"] == "'awaited'"
    summary = next(o["data"]["text/plain"] for o in executed["record"] if "data" in o)
    actors = next(line for line in summary.splitlines() if line.strip().startswith("actors"))
    assert actors.split(";")[0].split(None, 1)[1] == "2 threads", (
        "the kernel's own actors are not counted"
    )
    assert "of the kernel's own left out" in actors
    loaded = next(o["data"]["text/plain"] for o in executed["load"] if "data" in o)
    assert actors in loaded.splitlines(), "the saved and loaded trace hides the same actors"
    assert "<style" not in html, "an untrusted notebook drops <style>: the summary styles inline"


def test_the_explorer_hides_the_kernels_actors_in_a_kernel(executed):
    import json

    line = next(s for s in text(executed["kernel_actors"]).splitlines() if s.startswith("SHOWN"))
    shown = json.loads(line[len("SHOWN") :])
    for key, cells_own in (("cell", ["bump-0", "bump-1"]), ("record", ["rec-w"])):
        hidden, offered = shown[key]["hidden"], shown[key]["offered"]
        assert "MainThread" in hidden and "MainThread" not in offered, (key, shown[key])
        assert set(cells_own) <= set(offered), (key, shown[key])
        assert not set(hidden) & set(offered)
        assert shown[key]["tree"] == sorted(set(offered)), ("the supervision tab too", shown[key])


def test_explorer_has_a_static_fallback(executed):
    assert {"text/html", WIDGET} <= mimes(executed["explore"])
    html = executed["explore"][0]["data"]["text/html"]
    assert "scope-explorer-static" in html and "<svg" in html


def test_line_commands_print(executed):
    assert "not recording" in text(executed["status"])
    assert "recording" in text(executed["start"]) and "tracing lock guard" in text(
        executed["trace_lock"]
    )
    assert "race.json" in text(executed["export"])
    assert "--max-events" in text(executed["help"]) and "postmortem" in text(executed["help"])


def test_failure_and_postmortem(executed):
    error = next(o for o in executed["fail"] if o["output_type"] == "error")
    assert "cell failed on purpose" in error["evalue"]
    assert "%scope postmortem" in "".join(o.get("text", "") for o in executed["fail"])
    assert "text/html" in mimes(executed["postmortem"])
    assert "cell failed on purpose" in executed["postmortem"][0]["data"]["text/html"]
    bad = text(executed["bad"]).strip()
    assert bad.startswith("UsageError: %scope start: argument --level") and "\n" not in bad


def test_charts_and_graphs_render_offline_untrusted(executed):
    """With no call by the user: a PNG (and for charts the Vega-Lite spec, which the
    front ends draw with the Vega they ship), and nothing an untrusted notebook strips."""
    assert {"image/png", "application/vnd.vegalite.v5+json"} <= mimes(executed["chart"])
    for key in ("chart", "graph", "tree"):
        assert "image/png" in mimes(executed[key]), key
        assert not {"text/html", "image/svg+xml"} & mimes(executed[key]), key
    assert "DiGraph at 0x" not in str(executed["tree"])
    assert executed["renderer"][0]["data"]["text/plain"] == "'default'", (
        "altair's renderer left alone"
    )
    assert "text/html" in mimes(executed["repr"])
