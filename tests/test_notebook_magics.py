"""The notebook layer in an in-process IPython shell: loading, `%%scope` and `%scope`,
wrong options, postmortem, the explorer at the cursor, the summary, unloading."""

from __future__ import annotations

import asyncio
import importlib.util
import pathlib
import subprocess
import sys
import threading

import pytest
from cells import run
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

import scope_nb

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _synthetic():
    spec = importlib.util.spec_from_file_location(
        "bench_notebook", ROOT / "benchmarks" / "bench_notebook.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.synthetic_trace


def test_load_ext_is_fast_and_lazy():
    code = (
        "import sys, time\n"
        "from IPython.testing.globalipapp import start_ipython\n"
        "ip = start_ipython()\n"
        "t = time.perf_counter(); ip.run_line_magic('load_ext', 'scope'); dt = time.perf_counter() "
        "- t\n"
        "ip.run_line_magic('load_ext', 'scope_nb')\n"
        "print(dt, 'polars' in sys.modules, 'altair' in sys.modules, ip.find_cell_magic('scope') "
        "is not None)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    dt, polars_loaded, altair_loaded, has_magic = out.stdout.split()
    assert float(dt) < 0.3
    assert (polars_loaded, altair_loaded, has_magic) == ("False", "False", "True")


def test_cell_records_threads_keeps_trace_and_returns_value(ip):
    result, cap = run(
        ip,
        (
            "%%scope -o recorded\n"
            "import threading\n"
            "gate = threading.Barrier(2)\n"
            "def worker():\n"
            "    gate.wait()\n"
            "pair = [threading.Thread(target=worker, name=f'nb-worker-{i}') for i in range(2)]\n"
            "for t in pair: t.start()\n"
            "for t in pair: t.join()\n"
            "6 * 7\n"
        ),
    )
    assert result.success and result.result == 42
    trace = ip.user_ns["_scope"]
    assert ip.user_ns["recorded"] is trace and not scope_nb.is_recording()
    names = set(trace.actors()["name"].to_list())
    assert {"nb-worker-0", "nb-worker-1"} <= names
    shown = [o.data for o in cap.outputs]
    assert any("text/html" in d and 'data-section="races"' in d["text/html"] for d in shown)


def test_await_cell_records_tasks(ip):
    result, _ = run(
        ip,
        (
            "%%scope --quiet\n"
            "import asyncio\n"
            "async def child(n):\n"
            "    await asyncio.sleep(0)\n"
            "    return n * 2\n"
            "results = await asyncio.gather(child(1), child(2))\n"
            "sum(results)\n"
        ),
    )
    assert result.success and result.result == 6
    trace = ip.user_ns["_scope"]
    assert trace.actors().filter(trace.actors()["kind"] == "task").height >= 2


@pytest.mark.timeout(60, method="thread")  # a hang is in the event loop: end the run
def test_await_cell_returns_when_the_shell_runs_inside_a_task(ip):
    async def kernel():  # a kernel runs each cell inside a task of its own running loop
        cell = "%%scope --quiet\nimport asyncio\nawait asyncio.sleep(0)\n'awaited'\n"
        first = run(ip, cell)
        return first, asyncio.current_task(), run(ip, cell)

    (result, _), task, (again, _) = asyncio.run(kernel())
    assert result.success and result.result == "awaited"
    assert again.success and again.result == "awaited"
    assert task is not None and task.get_coro().__name__ == "kernel"


def test_failing_cell_raises_as_usual_keeps_trace_and_postmortem(ip):
    ip.user_ns.pop("after", None)
    result, cap = run(ip, "%%scope\nbefore = 1\nraise KeyError('boom')\nafter = 1\n")
    assert isinstance(result.error_in_exec, KeyError)
    assert "before" in ip.user_ns and "after" not in ip.user_ns
    assert not scope_nb.is_recording()
    assert isinstance(ip.user_ns["_scope"], scope_nb.Trace)
    assert "%scope postmortem" in cap.stderr
    report = ip.run_line_magic("scope", "postmortem")
    assert isinstance(report.exception, KeyError)
    assert "KeyError" in report._repr_html_() and "boom" in repr(report)


@pytest.mark.filterwarnings(
    "ignore::pytest.PytestUnhandledThreadExceptionWarning"
)  # the crash is the point
def test_postmortem_of_a_crashed_thread(ip):
    result, _ = run(
        ip,
        (
            "%%scope --quiet\n"
            "import threading\n"
            "def doomed():\n"
            "    raise ValueError('thread died')\n"
            "t = threading.Thread(target=doomed, name='doomed')\n"
            "t.start(); t.join()\n"
        ),
    )
    assert result.success
    report = ip.run_line_magic("scope", "postmortem")
    assert "thread died" in repr(report)


@pytest.mark.parametrize(
    "line, message",
    [
        ("--level nope", "invalid choice"),
        ("--sample lots", "invalid float"),
        ("--bogus", "unrecognized arguments"),
        ("--sample 2", "sample_rate"),
        ("--objects missing_variable", "missing_variable"),
        ("-o 'not a name'", "not a valid variable name"),
    ],
)
def test_wrong_options_are_one_line_errors_and_do_not_run_the_cell(ip, line, message):
    ip.user_ns.pop("ran", None)
    with pytest.raises(UsageError) as err:
        ip.run_cell_magic("scope", line, "ran = True\n")
    assert message in str(err.value) and "\n" not in str(err.value)
    assert "ran" not in ip.user_ns and not scope_nb.is_recording()


def test_wrong_line_commands(ip):
    for line, message in [
        ("", "missing COMMAND"),
        ("frobnicate", "invalid choice"),
        ("stop", "nothing is recording"),
        ("trace module json", "nothing is recording"),
        ("trace widget x", "invalid choice"),
    ]:
        with pytest.raises(UsageError, match=message):
            ip.run_line_magic("scope", line)


def test_start_status_trace_lock_stop(ip, capsys):
    ip.user_ns["guard"] = threading.Lock()
    ip.run_line_magic("scope", "start --max-events 5000")
    try:
        assert scope_nb.is_recording()
        ip.run_line_magic("scope", "status")
        ip.run_line_magic("scope", "trace lock guard")
        assert ip.user_ns["guard"] is not None
        ip.run_cell("with guard:\n    pass\n")
        with pytest.raises(UsageError, match="no variable named"):
            ip.run_line_magic("scope", "trace object nothing_here")
    finally:
        with capture_output():
            ip.run_line_magic("scope", "stop")
    out = capsys.readouterr().out
    assert "recording" in out and "max_events 5,000" in out
    trace = ip.user_ns["_scope"]
    assert "guard" in set(trace.events(["lock_acquire"])["target"].to_list())
    ip.run_line_magic("scope", "status")
    assert "not recording" in capsys.readouterr().out


def test_help_names_every_option_and_command(ip, capsys):
    doc = ip.find_line_magic("scope").__doc__
    ip.run_line_magic("scope", "help")
    printed = capsys.readouterr().out
    for text in (doc, printed):
        for word in (
            "--level",
            "--sample",
            "--max-events",
            "--modules",
            "--objects",
            "--output",
            "--quiet",
            "start",
            "stop",
            "status",
            "trace",
            "load",
            "explore",
            "postmortem",
            "export",
            "--trusted",
        ):
            assert word in text


def test_export_writes_perfetto_json(ip, tmp_path):
    run(ip, "%%scope --quiet\nx = sum(range(10))\n")
    target = tmp_path / "cell.json"
    with capture_output():
        ip.run_line_magic("scope", f"export {target}")
    assert target.exists() and target.read_text().lstrip().startswith(("{", "["))


def test_explorer_shows_the_state_the_object_held_at_the_cursor(ip):
    ip.run_cell(
        "import threading\n"
        "class Account:\n"
        "    def __init__(self):\n"
        "        self.balance = 0\n"
        "acct = Account()\n"
    )
    result, _ = run(
        ip,
        (
            "%%scope --quiet --objects acct\n"
            "start_line = threading.Barrier(2)\n"
            "def deposit():\n"
            "    start_line.wait()\n"
            "    for _ in range(20):\n"
            "        seen = acct.balance\n"
            "        acct.balance = seen + 1\n"
            "ts = [threading.Thread(target=deposit) for _ in range(2)]\n"
            "for t in ts: t.start()\n"
            "for t in ts: t.join()\n"
        ),
    )
    assert result.success
    trace = ip.user_ns["_scope"]
    timeline = trace.state_timeline("acct")
    assert timeline.height >= 2
    explorer = ip.run_line_magic("scope", "explore")
    assert explorer.state_obj.value == "acct"
    probe = int(timeline["ts"][timeline.height // 2])
    explorer.seek(probe)
    expected = trace.get_state_at("acct", explorer.cursor_ts)["balance"]
    assert f"<code>{expected!r}</code>" in explorer.state_panel.value
    explorer.step(1)
    explorer.step(-1)
    assert explorer.last_update_ms < 100
    assert (
        explorer.timeline_base.value.startswith("<img")
        and "Error" not in explorer.timeline_base.value
    )
    assert "<line" in explorer.timeline_cursor.value


def test_explorer_navigation_and_filters_on_a_large_trace():
    trace = _synthetic()(200_000)
    from scope_nb.notebook.explorer import Explorer

    ex = Explorer(trace, tab="hotspots")
    assert ex.lower.selected_index == Explorer.TABS.index("hotspots")
    assert "<svg" in ex.lower.children[ex.lower.selected_index].value
    ex.jump("send", 1)
    assert ex._ev["kind"][ex.cursor] == "send"
    first_send = ex.cursor
    ex.jump("send", 1)
    assert ex.cursor > first_send and ex._ev["kind"][ex.cursor] == "send"
    ex.jump("send", -1)
    assert ex.cursor == first_send
    ex.f_actor.value = "T3:1"
    ex.step(1)
    assert ex._ev["actor"][ex.cursor] == "T3:1"
    assert "worker-3" in ex.events_panel.value and "worker-4" not in ex.events_panel.value
    ex.slider.value = 150_000
    assert ex.last_update_ms < 100
    assert "16 actors alive" in ex.actors_panel.value
    with pytest.raises(ValueError, match="tab"):
        Explorer(trace, tab="nope")


def test_charts_stay_small_on_large_traces():
    from scope_nb.notebook import charts

    trace = _synthetic()(300_000, n_threads=40)
    data = charts.timeline_data(trace)
    assert data["bins"].height <= (charts.MAX_LANES + 1) * charts.TIME_BINS
    assert data["messages"].height <= charts.MAX_ARROWS + 1
    assert len(data["lanes"]) == charts.MAX_LANES + 1 and data["lanes"][-1] == "other actors"
    spec = charts.queue_depth_chart(trace).to_dict()
    assert len(next(iter(spec["datasets"].values()))) <= 400
    svg = charts.to_svg(charts.timeline_chart(trace, cursor=trace.time_range()[0]))
    assert svg.startswith("<svg") and "Error" not in svg


def test_offline_renderer_is_enabled_and_respects_a_user_choice():
    import altair as alt

    from scope_nb.notebook import charts

    before = alt.renderers.active
    try:
        alt.renderers.enable("default")
        assert charts.enable_offline() == "svg" and alt.renderers.active == "svg"
        alt.renderers.enable("png")
        assert charts.enable_offline() == "png"
        with pytest.raises(ValueError, match="mode"):
            charts.enable_offline("cdn")
    finally:
        alt.renderers.enable(before)


def test_summary_degrades_per_section():
    trace = _synthetic()(5_000)

    def broken():
        raise RuntimeError("detector exploded")

    trace.detect_race_conditions = broken
    text = repr(trace)
    assert "races" in text and "section failed: RuntimeError: detector exploded" in text
    assert "5,000" in text  # the other sections still rendered
    html = trace._repr_html_()
    assert 'class="failed"' in html and "detector exploded" in html


def test_unload_removes_everything(shell):
    shell.run_line_magic("load_ext", "scope")
    run(shell, "%%scope --quiet\nz = 1\n")
    assert "_scope" in shell.user_ns
    shell.run_line_magic("unload_ext", "scope")
    assert shell.find_line_magic("scope") is None and shell.find_cell_magic("scope") is None
    assert "_scope" not in shell.user_ns
    result, _ = run(shell, "%scope status")
    assert not result.success
