"""Detectors on frames built to the schema (as a trace loaded from disk would give
them), and the recorder side (stalls, memory, watchdog) on real programs."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import networkx as nx
import polars as pl
import pytest

import scope_nb as scope
from scope_nb.analysis.deadlocks import detect_deadlocks, lock_graph
from scope_nb.analysis.performance import (
    call_tree_analysis,
    performance_hotspots,
    queue_bottlenecks,
    timing_analysis,
)
from scope_nb.analysis.races import detect_race_conditions
from scope_nb.analysis.stalls import detect_stalls
from scope_nb.recorder import own_threads
from scope_nb.schema import ACTORS, EVENTS, polars_schema

pytestmark = pytest.mark.timeout(60)


def events(*rows: dict) -> pl.DataFrame:
    full = []
    for i, r in enumerate(rows):
        d = dict.fromkeys(EVENTS)
        d.update(seq=i, ts=1_000 + i, pid=1, locks_held=[])
        d.update(r)
        full.append(d)
    return pl.DataFrame(full, schema=polars_schema(EVENTS))


def actors(*ids: str, kind: str = "thread") -> pl.DataFrame:
    return pl.DataFrame(
        [{**dict.fromkeys(ACTORS), "actor": a, "kind": kind, "name": a, "pid": 1} for a in ids],
        schema=polars_schema(ACTORS),
    )


def acc(op, actor, attr="n", obj="c", locks=(), loc="f.py:1", value="0"):
    return dict(
        kind=op,
        actor=actor,
        obj=obj,
        target=attr,
        locks_held=list(locks),
        location=loc,
        detail=value,
    )


T12 = actors("T1", "T2", "T3")


# -- races -----------------------------------------------------------------------------
def test_lost_update_names_both_sides():
    ev = events(
        acc("read", "T1", loc="f.py:1"),
        acc("read", "T2"),
        acc("write", "T2", loc="f.py:9", value="1"),
        acc("write", "T1", loc="f.py:2", value="1"),
    )
    [r] = detect_race_conditions(ev, T12)
    assert (r.kind, r.obj, r.attribute, r.lost_update) == ("lost_update", "c", "n", True)
    assert (
        r.first.location == "f.py:1"
        and r.second.location == "f.py:2"
        and r.between[0].actor == "T2"
    )
    assert r.to_frame()["role"].to_list() == ["first", "between", "second"]


def test_common_lock_is_no_race_and_disjoint_locks_are():
    same = events(acc("write", "T1", locks=["L"]), acc("write", "T2", locks=["L", "M"]))
    assert detect_race_conditions(same, T12) == []
    [r] = detect_race_conditions(
        events(acc("write", "T1", locks=["L"]), acc("write", "T2", locks=["M"])), T12
    )
    assert r.kind == "data_race" and r.locks == (["L"], ["M"])


@pytest.mark.parametrize(
    "sync",
    [
        [
            dict(kind="send", actor="T1", target="q", msg_id=7),
            dict(kind="receive", actor="T2", target="q", msg_id=7),
        ],
        [dict(kind="spawn", actor="T1", target="T2")],
        [dict(kind="exit", actor="T1"), dict(kind="join", actor="T2", target="T1")],
        [
            dict(kind="event_set", actor="T1", target="E"),
            dict(kind="event_wait", actor="T2", target="E"),
        ],
        [
            dict(kind="lock_release", actor="T1", target="L"),
            dict(kind="lock_acquire", actor="T2", target="L"),
        ],
        # two hops: T1 -> T3 through a queue, T3 -> T2 through an Event
        [
            dict(kind="send", actor="T1", target="q", msg_id=1),
            dict(kind="receive", actor="T3", target="q", msg_id=1),
            dict(kind="event_set", actor="T3", target="E"),
            dict(kind="event_wait", actor="T2", target="E"),
        ],
    ],
    ids=["queue", "spawn", "join", "event", "lock", "two-hops"],
)
def test_happens_before_hand_off_is_no_race(sync):
    ev = events(acc("write", "T1"), *sync, acc("write", "T2"))
    assert detect_race_conditions(ev, T12) == []
    reversed_sync = events(*sync, acc("write", "T1"), acc("write", "T2"))
    assert [r.kind for r in detect_race_conditions(reversed_sync, T12)] == ["data_race"]


def test_tasks_of_one_loop_only_report_stale_reads():
    tasks = actors("A1", "A2", kind="task")
    assert detect_race_conditions(events(acc("write", "A1"), acc("write", "A2")), tasks) == []
    ev = events(acc("read", "A1"), acc("write", "A2"), acc("write", "A1"))
    assert [r.kind for r in detect_race_conditions(ev, tasks)] == ["lost_update"]


def test_atomicity_violation_on_two_attributes():
    ev = events(
        acc("read", "R", "a"), acc("write", "W", "a"), acc("write", "W", "b"), acc("read", "R", "b")
    )
    kinds = {r.kind: r for r in detect_race_conditions(ev, actors("R", "W"))}
    assert kinds["atomicity"].attributes == ["a", "b"] and kinds["atomicity"].second.actor == "R"


def test_timeline_restricts_the_accesses():
    ev = events(acc("read", "T1"), acc("write", "T2"), acc("write", "T1"))
    assert detect_race_conditions(ev, T12, timeline=ev.filter(pl.col("seq") == 0)) == []
    with pytest.raises(TypeError, match="timeline"):
        detect_race_conditions(ev, T12, timeline=[1, 2])


# -- deadlocks ---------------------------------------------------------------------------
def take(actor, lock, held=(), loc="f.py:1", kind="lock_acquire"):
    return dict(kind=kind, actor=actor, target=lock, locks_held=list(held), location=loc)


def test_lock_order_cycle_with_places():
    ev = events(
        take("T1", "A"),
        take("T1", "B", ["A"], "f.py:5"),
        take("T2", "B"),
        take("T2", "A", ["B"], "f.py:9"),
    )
    g = lock_graph(ev)
    assert isinstance(g, nx.DiGraph) and set(g.edges) == {("A", "B"), ("B", "A")}
    [r] = detect_deadlocks(ev, T12)
    assert r.kind == "potential" and r.cycle == ["A", "B"]
    assert r.to_frame().select("holding", "taking", "location").rows() == [
        ("A", "B", "f.py:5"),
        ("B", "A", "f.py:9"),
    ]


def test_cycle_of_one_actor_or_under_a_gate_lock_is_not_reported():
    one = events(take("T1", "B", ["A"]), take("T1", "A", ["B"]))
    gated = events(take("T1", "B", ["G", "A"]), take("T2", "A", ["G", "B"]))
    assert detect_deadlocks(one, T12) == [] and detect_deadlocks(gated, T12) == []


def test_self_deadlock_and_reentrant_acquire():
    hung = events(take("T1", "L"), take("T1", "L", ["L"], kind="lock_wait"))
    assert [r.kind for r in detect_deadlocks(hung, T12)] == ["self"]
    reentrant = events(
        take("T1", "L"), take("T1", "L", ["L"], kind="lock_wait"), take("T1", "L", ["L"])
    )
    assert detect_deadlocks(reentrant, T12) == []


def test_leaked_lock_names_the_waiters():
    ev = events(
        take("T1", "L"),
        dict(kind="crash", actor="T1", detail="ValueError|x"),
        take("T2", "L", kind="lock_timeout"),
    )
    [r] = detect_deadlocks(ev, T12)
    assert r.kind == "leaked" and r.actors == ["T1", "T2"]


# -- stalls and bottlenecks --------------------------------------------------------------------
def test_backlog_and_orphaned_queue():
    sends = [dict(kind="send", actor="P", target="q", msg_id=i) for i in range(40)]
    ev = events(
        *sends,
        dict(kind="receive", actor="C", target="q", msg_id=0),
        dict(kind="crash", actor="C", detail="RuntimeError|RuntimeError('x')"),
    )
    b = queue_bottlenecks(ev)
    assert (
        b["queue"].to_list() == ["q"]
        and b["peak_depth"][0] == 40
        and b["consumers"][0].to_list() == ["C"]
    )
    kinds = {r.kind: r for r in detect_stalls(ev, actors("P", "C"))}
    assert "39 message(s)" in kinds["orphaned_queue"].headline and kinds["backlog"].target == "q"
    assert detect_stalls(ev.head(10), actors("P", "C")) == []


# -- performance ---------------------------------------------------------------------------------
def test_hotspots_self_time_and_call_tree():
    ev = events(
        dict(kind="call", actor="T1", module="m", function="outer", duration_ns=100, depth=0),
        dict(
            kind="call",
            actor="T1",
            module="m",
            function="inner",
            duration_ns=70,
            depth=1,
            parent_seq=0,
        ),
        dict(
            kind="call",
            actor="T1",
            module="m",
            function="inner",
            duration_ns=10,
            depth=1,
            parent_seq=0,
        ),
        dict(kind="exception", actor="T1", module="m", function="inner", call_seq=2),
    )
    hot = performance_hotspots(ev, "m")
    assert hot.select(
        "function", "count", "total_ns", "self_ns", "max_ns", "exceptions"
    ).rows() == [("inner", 2, 80, 80, 70, 1), ("outer", 1, 100, 20, 100, 0)]
    tree = call_tree_analysis(ev, "m")
    assert tree.frame.select("path", "count", "inclusive_ns", "self_ns").rows() == [
        ("m.outer", 1, 100, 20),
        ("m.outer > m.inner", 2, 80, 80),
    ]
    assert list(tree.graph.edges) == [("m.outer", "m.outer > m.inner")]
    assert timing_analysis(ev, "m")["count"].sum() == 3
    assert performance_hotspots(ev, "other").height == 0


def test_hotspot_percentiles_are_exact():
    """The two-pass percentiles give what polars' own "nearest" quantile gives: spread
    durations, equal ones (one histogram bucket), a single call, an unfinished call,
    zero and huge durations, even and odd counts."""
    rows = [
        dict(
            kind="call", actor="T1", module="m", function="spread", duration_ns=(k * 7919) % 100_003
        )
        for k in range(1, 2_001)
    ]
    rows += [
        dict(kind="call", actor="T1", module="m", function="same", duration_ns=500)
        for _ in range(37)
    ]
    rows += [dict(kind="call", actor="T1", module="m", function="once", duration_ns=3)]
    rows += [
        dict(kind="call", actor="T1", module="m", function="open", duration_ns=None),
        dict(kind="call", actor="T1", module="m", function="open", duration_ns=8),
    ]
    rows += [
        dict(kind="call", actor="T2", module="m", function="wide", duration_ns=v)
        for v in (0, 1, 2, 10**12, 10**15, 7, 7, 9)
    ]
    ev = events(*rows)
    hot = performance_hotspots(ev).sort("function")
    want = (
        ev.filter(pl.col("kind") == "call")
        .group_by("module", "function")
        .agg(
            pl.col("duration_ns").quantile(0.5, "nearest").cast(pl.Int64).alias("p50_ns"),
            pl.col("duration_ns").quantile(0.95, "nearest").cast(pl.Int64).alias("p95_ns"),
        )
        .sort("function")
    )
    assert (
        hot.select("function", "p50_ns", "p95_ns").rows()
        == want.select("function", "p50_ns", "p95_ns").rows()
    )
    assert hot.filter(pl.col("function") == "open")["count"].item() == 2


# -- recorder side --------------------------------------------------------------------------------
def test_stall_recorder_restores_the_loop_exactly():
    from asyncio import base_events
    from asyncio import events as aevents

    run, handler = aevents.Handle._run, base_events.BaseEventLoop.call_exception_handler
    with scope.record(slow_callback=0.05) as trace:
        assert aevents.Handle._run is not run

        async def main():
            await asyncio.sleep(0)

        asyncio.run(main())
    assert (
        aevents.Handle._run is run and base_events.BaseEventLoop.call_exception_handler is handler
    )
    assert trace.detect_stalls() == [] and trace.errors == {}


def test_a_blocked_loop_shows_the_programs_stack_not_the_recorders():
    async def main():
        await asyncio.sleep(0)
        time.sleep(0.5)  # far beyond slow_callback: the monitor sees the step running

    with scope.record(slow_callback=0.05) as trace:
        asyncio.run(main())
    [stall] = [r for r in trace.detect_stalls() if r.kind == "blocked_loop"]
    assert "time.sleep(0.5)" in stall.detail and "asyncio" in stall.detail
    assert "scope_nb" + os.sep + "record" not in stall.detail


def test_memory_sampler_records_rss_and_objects():
    class Box:
        def __init__(self):
            self.items = []

    with scope.record(memory_interval=30.0) as trace:
        box = scope.trace_object(Box(), "box")
        box.items = list(range(1000))
    report = trace.memory_analysis()
    assert report.samples.height >= 2 and report.samples["rss"].drop_nulls().len() >= 2
    assert report.objects.filter(pl.col("obj") == "box").height >= 1
    assert "RSS" in report.headline and trace.memory_analysis("box").objects[
        "obj"
    ].unique().to_list() == ["box"]


def test_watchdog_off_by_default_and_thread_stops():
    before = {t.name for t in threading.enumerate()}
    with scope.record(watchdog=0.5):
        assert "scope_nb-watchdog" in {t.name for t in own_threads.running()}
    assert {t.name for t in threading.enumerate()} - before == set()
    assert own_threads.running() == []
    with scope.record():
        assert "scope_nb-watchdog" not in {t.name for t in own_threads.running()}


def test_crash_report_has_context():
    import queue

    q = queue.Queue()
    with scope.record() as trace:
        lock = threading.Lock()

        def worker():
            q.get()
            lock.acquire()
            raise ValueError("bad item")

        t = threading.Thread(target=worker, name="worker")
        t.start()
        q.put("item")
        t.join()
    ev = trace.get_crash_events("worker")
    assert ev.exception == "ValueError: bad item" and ev.actor == trace.resolve_actor("worker")
    report = trace.analyze_crash("worker")
    assert (
        report.locks_held == ["lock"]
        and report.queues_consumed
        and report.last_messages.height >= 1
    )
    assert "ValueError" in repr(report) and "<table>" in report._repr_html_()
    assert [c.exc_type for c in trace.get_crash_events()] == ["ValueError"]
    with pytest.raises(ValueError, match="obj_or_actor"):
        trace.analyze_crash("nobody")
