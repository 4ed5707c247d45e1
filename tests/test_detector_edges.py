"""Detectors on small real programs at their edges: what a plain lockdep or lockset
gets wrong (one actor's own cycle, gate locks, semaphores that exclude nobody, event
loops in several threads). Interleavings are forced with Barriers (untraced)."""

from __future__ import annotations

import asyncio
import threading

import polars as pl
import pytest
from both_ways import c_then_pure
from programs import gated_inversion, in_turn, threads

import scope_nb
import scope_nb as scope

pytestmark = pytest.mark.timeout(60)


class Counter:
    def __init__(self):
        self.n = 0


def run(*fns, **options):
    with scope.record(**options) as trace:
        threads(*fns)
    return trace


def potential(trace):
    return [r for r in trace.detect_deadlocks() if r.kind == "potential"]


# -- lock order -------------------------------------------------------------------------------
def test_one_thread_taking_two_locks_in_both_orders_is_no_inversion():
    # the recorder's live lock_order row must not outvote the frame analysis
    def both():
        a, b = threading.Lock(), threading.Lock()
        with a, b:
            pass
        with b, a:
            pass

    trace = run(both)
    assert trace.events("lock_order").height == 1
    assert potential(trace) == []


def test_inversion_under_a_common_gate_lock_is_not_reported():
    trace = gated_inversion("Lock")
    assert trace.lock_graph().edges["a", "b"]["gates"] == ["gate"]
    assert potential(trace) == []


def test_a_semaphore_two_threads_hold_at_once_is_no_gate():
    bar = threading.Barrier(2)

    def program():
        gate = threading.Semaphore(2)
        a = threading.Lock()
        b = threading.Lock()

        def one():
            with gate:
                bar.wait()
                with a, b:
                    pass
                bar.wait()

        def two():
            with gate:
                bar.wait()
                bar.wait()
                with b, a:
                    pass

        threads(one, two)

    trace = run(program)
    [r] = potential(trace)
    assert r.cycle == ["a", "b"] and len(r.actors) == 2


def test_rlock_reentered_under_another_lock_is_no_inversion():
    def program():
        r = threading.RLock()
        m = threading.Lock()

        def nested():
            with r, m, r:
                pass

        def plain():
            with r, m:
                pass

        in_turn(nested, plain)

    trace = run(program)
    assert list(trace.lock_graph().edges) == [("r", "m")]
    assert trace.detect_deadlocks() == []


# -- races ------------------------------------------------------------------------------------
def test_a_semaphore_with_room_for_two_is_no_common_lock():
    bar = threading.Barrier(2)

    def program():
        c = scope.trace_object(Counter(), "c")
        pool = threading.BoundedSemaphore(2)

        def worker():
            with pool:
                bar.wait()
                c.n = c.n + 1
                bar.wait()

        threads(worker, worker)

    trace = run(program)
    [r] = trace.detect_race_conditions()
    assert (r.kind, r.attribute) == ("data_race", "n")
    assert r.locks == (["pool"], ["pool"])


def test_tasks_of_event_loops_in_two_threads_race():
    bar = threading.Barrier(2)

    def program():
        c = scope.trace_object(Counter(), "c")

        def loop_thread():
            async def main():
                bar.wait()
                c.n = c.n + 1

            asyncio.run(main())

        threads(loop_thread, loop_thread)

    trace = run(program)
    [r] = trace.detect_race_conditions()
    assert (
        r.kind == "data_race" and r.first.actor.startswith("A") and r.second.actor.startswith("A")
    )


def test_a_loop_thread_and_its_tasks_share_one_program_order():
    # T writes, its loop's task writes, T writes again; then a task hands work to a
    # worker thread and reads the result: the future's result reaches the loop thread
    def program():
        c = scope.trace_object(Counter(), "c")

        async def main():
            c.n = c.n + 1

            def work():
                c.n = c.n + 1

            await asyncio.to_thread(work)
            c.n = c.n + 1

        c.n = 1
        asyncio.run(main())
        c.n = c.n + 1

    assert run(program).detect_race_conditions() == []


def test_a_worker_threads_exception_reaches_the_awaiting_task_in_order():
    # the worker writes and fails; the task that awaited it catches the exception and
    # writes: the failed future's exception, taken by the loop, orders the two writes
    def program():
        c = scope.trace_object(Counter(), "c")

        def work():
            c.n = c.n + 1
            raise KeyError("gone")

        async def main():
            try:
                await asyncio.to_thread(work)
            except KeyError:
                c.n = c.n + 1

        asyncio.run(main())

    trace = run(program)
    assert trace.detect_race_conditions() == []
    assert trace.events().filter(pl.col("kind") == "receive").height == 1


def _backoff(kind: str, blocking: bool):
    """Thread one takes a then b; thread two holds b and then takes a: by a
    non-blocking acquire (the try-lock back-off that avoids the deadlock) or a
    blocking one. The threads run one after the other."""
    with scope.record() as trace:
        a = getattr(threading, kind)()
        b = getattr(threading, kind)()

        def one():
            with a, b:
                pass

        def two():
            with b:
                if a.acquire(blocking=blocking):
                    a.release()

        in_turn(one, two)
    return trace


@pytest.mark.parametrize("kind", ["Lock", "RLock", "Semaphore"])
def test_a_try_lock_orders_no_locks(monkeypatch, kind):
    def check(pure):
        tried = _backoff(kind, blocking=False)
        acquires = tried.events("lock_acquire").filter(pl.col("target") == "a")
        assert acquires["function"].to_list() == [None, scope_nb.schema.TRY_ACQUIRE]
        assert ("b", "a") not in tried.lock_graph().edges
        assert tried.events("lock_order").height == 0
        assert potential(tried) == []
        blocked = _backoff(kind, blocking=True)
        assert blocked.lock_graph().has_edge("b", "a")
        assert blocked.events("lock_order").height == 1
        assert [sorted(r.cycle) for r in potential(blocked)] == [["a", "b"]]

    c_then_pure(monkeypatch, check)


class Vault:
    def __init__(self, kind: str):
        self.lock = getattr(threading, kind)()
        self.cond = threading.Condition()
        self.sem = threading.Semaphore(2)


def test_a_traced_objects_locks_are_named_after_it(monkeypatch):
    def check(pure):
        with scope.record() as trace:
            alice, bob = Vault("Lock"), Vault("RLock")
            used = Vault("Lock")
            with used.lock:  # recorded under its first name: it keeps it
                pass
            mine = threading.Lock()
            named = scope.trace_lock(mine, "mine")
            alice.other = bob.lock  # shared: the first object traced names it, once
            alice.mine = named
            for obj, name in ((bob, "bob"), (alice, "alice"), (used, "used")):
                scope.trace_object(obj, name)

            def one():
                with alice.lock, bob.lock:
                    pass

            def two():
                with bob.lock, alice.lock:
                    pass

            in_turn(one, two)
            with alice.cond, bob.sem, named:
                pass
        [report] = potential(trace)
        assert sorted(report.cycle) == ["alice.lock", "bob.lock"]
        taken = set(trace.events("lock_acquire")["target"])
        assert {"alice.cond", "bob.sem", "mine", "Vault.lock-3"} <= taken, taken
        assert "alice.other" not in taken and "used.lock" not in taken

    c_then_pure(monkeypatch, check)
