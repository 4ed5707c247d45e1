"""The kernel's own threads and tasks in the explorer of a trace a cell recorded: hidden
by default wherever actors are shown (alive, the actor filter, the lanes, the counts), a
checkbox shows them, their events stay in "(all)"; the same classification as the
summary's; a trace recorded outside a kernel shows everything as before."""

from __future__ import annotations

import threading

import pytest
from cells import run

import scope_nb

pytest.importorskip("ipywidgets")

CELL = (
    "%%scope --quiet\n"
    "import threading\n"
    "gate = threading.Barrier(2)\n"
    "pair = [threading.Thread(target=gate.wait, name=f'pair-{i}') for i in range(2)]\n"
    "for t in pair: t.start()\n"
    "for t in pair: t.join()\n"
)


def _explorer(trace, **kwargs):
    from scope_nb.notebook.explorer import Explorer

    return Explorer(trace, **kwargs)


def _offered(ex) -> set[str]:
    return {value for _, value in ex.f_actor.options}


def _ids(trace, *names: str) -> set[str]:
    return {a for a, n in trace.actors().select("actor", "name").iter_rows() if n in names}


def _while_pair_alive(ex, trace) -> int:
    """The first row at which a thread of the pair is alive."""
    import polars as pl

    pair = trace.actors().filter(pl.col("name").is_in(["pair-0", "pair-1"]))
    for row, ts in enumerate(ex._scrub.ts):
        alive = pair.filter((pl.col("started") <= ts) & (pl.col("ended") > ts))
        if alive.height:
            return row
    raise AssertionError("no event while the pair ran")


@pytest.fixture
def cell_trace(ip):
    result, _ = run(ip, CELL)
    assert result.success
    return ip.user_ns["_scope"]


def test_the_kernels_actors_are_hidden_by_default(cell_trace):
    from scope_nb.analysis.environment import environment_actors

    trace = cell_trace
    cell = trace.meta["cell"]
    expected = environment_actors(
        trace.actors(), cell["since"], cell["thread"], cell["body_end"], cell["pid"], cell["actor"]
    )
    ex = _explorer(trace)
    kernel = _ids(trace, "MainProcess", "MainThread")
    assert ex.hidden_actors == ex.kernel_actors == set(expected) == kernel
    pair = _ids(trace, "pair-0", "pair-1")
    assert len(pair) == 2 and _offered(ex) == {"(all)", *pair}
    assert "2 actors (and 2 of the kernel's own, hidden)" in ex._controls.header.value
    ex.slider.value = _while_pair_alive(ex, trace)
    alive = ex.actors_panel.value
    assert "pair-" in alive
    assert "MainThread" not in alive and "MainProcess" not in alive
    assert "2 of the kernel's own hidden" in alive
    assert ex.show_kernel.layout.display != "none" and ex.show_kernel.value is False
    assert ex.show_kernel.description == "show the kernel's own threads and tasks"


def test_hidden_actors_events_stay_in_all(cell_trace):
    trace = cell_trace
    ex = _explorer(trace)
    main = _ids(trace, "MainThread").pop()
    spawn = ex._ev.filter((ex._ev["kind"] == "spawn") & (ex._ev["actor"] == main))
    assert spawn.height == 2, "the cell's thread started the pair"
    ex.slider.value = int(ex._ev["seq"].search_sorted(spawn["seq"][0]))
    assert ex._filtered is None and "MainThread" in ex.events_panel.value
    assert len(trace.events()) == ex.n and main in set(ex._ev["actor"])


def test_the_checkbox_shows_them_and_hides_them_again(cell_trace):
    trace = cell_trace
    ex = _explorer(trace)
    ex._tabs.render(0)
    hidden_timeline = ex.timeline_base.value
    main = _ids(trace, "MainThread").pop()
    ex.slider.value = _while_pair_alive(ex, trace)

    ex.show_kernel.value = True
    assert ex.hidden_actors == frozenset() and main in _offered(ex)
    assert "MainThread" in ex.actors_panel.value and "MainProcess" in ex.actors_panel.value
    assert "hidden" not in ex.actors_panel.value
    assert "hidden" not in ex._controls.header.value
    shown_timeline = ex.timeline_base.value
    assert shown_timeline != hidden_timeline, "the timeline is drawn with the kernel's lanes"
    ex.f_actor.value = main
    assert set(ex._ev[ex._filtered.to_list()]["actor"]) == {main}

    ex.show_kernel.value = False
    assert main not in _offered(ex) and ex.f_actor.value == "(all)" and ex._filtered is None
    assert "MainThread" not in ex.actors_panel.value
    assert ex.timeline_base.value == hidden_timeline


def test_lanes_leave_the_hidden_out(cell_trace):
    from scope_nb.notebook import charts

    ex = _explorer(cell_trace)
    kernel = _ids(cell_trace, "MainProcess", "MainThread")
    hidden = charts.timeline_data(cell_trace, hide=ex.hidden_actors)["lanes"]
    shown = charts.timeline_data(cell_trace)["lanes"]
    assert not [lane for lane in hidden for a in kernel if f"[{a}]" in lane], hidden
    assert {"pair-0", "pair-1"} <= {lane.split(" [")[0] for lane in hidden}
    assert any(lane.startswith("MainThread") for lane in shown)
    assert "other actors" not in hidden, "hidden actors' events are not drawn as others"


def test_an_await_cells_own_task_and_its_tasks_are_the_cells(ip):
    result, _ = run(
        ip,
        "%%scope --quiet\nimport asyncio\n"
        "async def job():\n    await asyncio.sleep(0)\n"
        "await asyncio.gather(job(), job())\n",
    )
    assert result.success
    trace = ip.user_ns["_scope"]
    ex = _explorer(trace)
    tasks = trace.actors().filter(trace.actors()["kind"] == "task")["actor"].to_list()
    offered_tasks = [t for t in tasks if t in _offered(ex)]
    # the cell's own task and its two jobs, not the private loop's closing tasks
    assert len(offered_tasks) == 3, (offered_tasks, tasks)
    assert set(tasks) - set(offered_tasks) <= ex.hidden_actors


def test_a_recording_across_cells_hides_them_too(ip):
    for line in ("%scope start", "import threading", CELL.split("\n", 1)[1], "%scope stop"):
        result, _ = run(ip, line)
        assert result.success, line
    trace = ip.user_ns["_scope"]
    ex = _explorer(trace)
    assert _ids(trace, "MainThread") <= ex.hidden_actors
    assert _ids(trace, "pair-0", "pair-1") <= _offered(ex)
    assert not (_ids(trace, "MainThread") & _offered(ex))


def test_a_scripts_trace_shows_every_actor_as_before():
    with scope_nb.record() as trace:
        worker = threading.Thread(target=lambda: None, name="script-worker")
        worker.start()
        worker.join()
    assert "cell" not in trace.meta
    ex = _explorer(trace)
    assert ex.kernel_actors == frozenset() and ex.hidden_actors == frozenset()
    assert _offered(ex) == {"(all)", *trace.actors()["actor"]}
    assert ex.show_kernel.layout.display == "none"
    assert "hidden" not in ex._controls.header.value
    ex.slider.value = ex._scrub.row_at(trace.actors()["started"].max())
    assert "MainThread" in ex.actors_panel.value and "hidden" not in ex.actors_panel.value
