"""Every HTML the project renders for a notebook survives an untrusted notebook's
sanitizer: JupyterLab drops `<style>` and `<script>`, so none may be relied on. Each
object with a `_repr_html_` is rendered from a real recording (a crash, a lost update, a
lock-order inversion, an orphaned queue, traced calls, memory samples, a traced
object's changes, a failed `%%scope` cell), and the test knows them all: a new one that
is not rendered here fails it."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import queue
import re
import threading

import calls_sample
import pytest
from cells import run
from programs import gated_inversion, in_turn, threads

import scope_nb

pytestmark = pytest.mark.filterwarnings(
    "ignore::pytest.PytestUnhandledThreadExceptionWarning"
)  # crashes on purpose
FORBIDDEN = re.compile(r"<\s*(style|script)\b", re.IGNORECASE)


def classes_with_html() -> set[type]:
    """The classes of scope_nb that define `_repr_html_` themselves."""
    found = set()
    modules = []
    for pkg in (scope_nb.trace, scope_nb.analysis, scope_nb.notebook):
        modules += [
            importlib.import_module(f"{pkg.__name__}.{m.name}")
            for m in pkgutil.iter_modules(pkg.__path__)
        ]
    for module in modules:
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and "_repr_html_" in vars(cls):
                found.add(cls)
    return found


def crashing_consumer_program():
    """A consumer takes one message of three and raises (a crash, an orphaned queue);
    `calls_sample` is traced and called (hotspots, a call tree); memory is sampled."""
    with scope_nb.record(modules=["calls_sample"], memory_interval=30.0) as trace:
        q: queue.Queue = queue.Queue()

        def producer():
            calls_sample.fib(6)
            for i in range(3):
                q.put(i)

        def consumer():
            q.get()
            raise RuntimeError("consumer gave up")

        in_turn(producer, consumer)
    return trace


def failed_cell(shell):
    """The post-mortem of a `%%scope` cell that started a thread and raised."""
    shell.run_line_magic("load_ext", "scope")
    try:
        run(
            shell,
            "%%scope --quiet\nimport threading\nthreading.Thread(target=print).start()\n"
            "raise KeyError('x')\n",
        )
        return shell.run_line_magic("scope", "postmortem")
    finally:
        shell.run_line_magic("unload_ext", "scope")


class Tally:
    def __init__(self):
        self.n = 0


def lost_update_program():
    """`slow` reads a traced tally, `fast` writes it, `slow` writes its stale value + 1."""
    tally = Tally()
    read, wrote = threading.Event(), threading.Event()

    def slow():
        v = tally.n
        read.set()
        wrote.wait()
        tally.n = v + 1

    def fast():
        read.wait()
        tally.n = tally.n + 1
        wrote.set()

    with scope_nb.record() as trace:
        scope_nb.trace_object(tally, name="tally")
        threads(slow, fast)
    return trace


@pytest.fixture(scope="module")
def rendered(shell) -> dict[type, list[str]]:
    """class -> the HTML of each of its instances rendered here."""
    from scope_nb.notebook.explorer import Explorer
    from scope_nb.notebook.magics import SummaryPanel

    out: dict[type, list[str]] = {}

    def keep(obj):
        out.setdefault(type(obj), []).append(obj._repr_html_())

    crash = crashing_consumer_program()
    keep(crash)
    keep(crash.analyze_crash("consumer"))
    keep(crash.get_crash_events("consumer"))
    for report in crash.detect_stalls():
        keep(report)
    keep(crash.performance_analysis("calls_sample"))
    keep(crash.call_tree_analysis("calls_sample"))
    keep(crash.memory_analysis())
    keep(crash.system_snapshot_at(crash.time_range()[1]))
    keep(SummaryPanel(crash))

    race = lost_update_program()
    for report in race.detect_race_conditions():
        keep(report)
    t0, t1 = race.time_range()
    keep(race.analyze_state_change("tally", t0, t1))
    keep(Explorer(race, obj="tally"))

    for report in gated_inversion("Semaphore", 2).detect_deadlocks():
        keep(report)
    keep(failed_cell(shell))
    return out


def test_every_html_is_sanitizer_proof(rendered):
    from scope_nb.analysis.reports import CrashReport, DeadlockReport, RaceReport, StallReport
    from scope_nb.notebook.magics import CellFailure

    for cls in (CrashReport, RaceReport, DeadlockReport, StallReport, CellFailure, scope_nb.Trace):
        assert rendered.get(cls), f"the programs gave no {cls.__name__}"
    for cls, pages in rendered.items():
        for page in pages:
            assert FORBIDDEN.search(page) is None, (
                f"{cls.__name__}'s HTML holds a <style> or <script>"
            )


def test_the_trace_summary_styles_its_findings_inline(rendered):
    [page] = rendered[scope_nb.Trace]
    crashes = re.search(r'<tr data-section="crashes">(.*?)</tr>', page).group(1)
    assert 'style="color:#b00020;font-weight:600"' in crashes and 'class="bad"' not in page


def test_a_frame_in_a_report_is_drawn_inline(rendered):
    from scope_nb.analysis.reports import CrashReport

    [page] = rendered[CrashReport]
    assert '<table class="scope-frame" style=' in page and "consumer gave up" in page


def test_no_html_renderer_is_left_out(rendered):
    assert classes_with_html() - set(rendered) == set()
