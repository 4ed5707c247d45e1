"""Semaphores are not mutexes: a release by a thread that never acquired is a signal
(recorded, a happens-before edge, not a leak), a semaphore with room for several is
neither a gate nor a common lock; Lock / RLock keep their semantics. Also: each
target of a tuple / list unpacking names its lock. Interleavings are forced with
Barriers / Events made before recording (untraced)."""

from __future__ import annotations

import threading

import polars as pl
import pytest
from programs import gated_inversion, threads

import scope_nb as scope

pytestmark = pytest.mark.timeout(60)


class Obj:
    def __init__(self):
        self.n = 0


def run(program):
    with scope.record() as trace:
        program()
    return trace


def releases(trace, name):
    return trace.events("lock_release").filter(pl.col("target") == name)


# -- a signal: released by one thread, acquired by another ------------------------------------
def test_a_semaphore_signal_orders_the_handoff():
    def program():
        s = threading.Semaphore(0)
        o = scope.trace_object(Obj(), "o")

        def producer():
            o.n = 5
            s.release()

        def consumer():
            s.acquire()
            o.n += 1

        threads(producer, consumer)
        assert o.n == 6

    trace = run(program)
    assert trace.detect_race_conditions() == []
    [rel] = releases(trace, "s").iter_rows(named=True)
    producer = trace.actors().filter(pl.col("name") == "producer")["actor"][0]
    assert rel["actor"] == producer and rel["locks_held"] == []
    assert "test_semaphore_signals.py" in rel["location"]


def test_a_release_after_the_acquire_orders_nothing():
    bar = threading.Barrier(2)

    def program():
        s = threading.Semaphore(1)
        o = scope.trace_object(Obj(), "o")

        def holder():
            s.acquire()
            o.n = 1
            bar.wait()

        def releaser():
            bar.wait()
            o.n = 2
            s.release()

        threads(holder, releaser)

    [r] = run(program).detect_race_conditions()
    assert (r.kind, r.attribute) == ("data_race", "n")


def test_a_signal_semaphore_is_not_leaked():
    def program():
        s = threading.Semaphore(0)
        threads(lambda: s.release(), lambda: s.acquire())

    trace = run(program)
    assert releases(trace, "s").height == 1
    assert trace.detect_deadlocks() == []


def test_a_pool_slot_kept_by_an_ended_thread_is_still_leaked():
    def program():
        pool = threading.BoundedSemaphore(2)
        threads(lambda: pool.acquire())

    [r] = run(program).detect_deadlocks()
    assert (r.kind, r.cycle) == ("leaked", ["pool"])


def test_two_consumers_of_a_signal_hold_no_common_lock():
    got = threading.Barrier(2)

    def program():
        s = threading.Semaphore(0)
        o = scope.trace_object(Obj(), "o")

        def consumer():
            s.acquire()
            got.wait()
            o.n = 1

        s.release()
        s.release()
        threads(consumer, consumer)

    [r] = run(program).detect_race_conditions()
    assert (r.kind, r.attribute, r.locks) == ("data_race", "n", (["s"], ["s"]))


# -- a semaphore with room for several ------------------------------------------------------
def test_a_semaphore_with_room_for_two_is_no_gate_even_taken_one_at_a_time():
    trace = gated_inversion("Semaphore", 2)
    assert trace.lock_graph().edges["a", "b"]["gates"] == []
    [r] = [r for r in trace.detect_deadlocks() if r.kind == "potential"]
    assert r.cycle == ["a", "b"] and len(r.actors) == 2


def test_a_semaphore_of_one_is_still_a_gate():
    trace = gated_inversion("BoundedSemaphore", 1)
    assert trace.lock_graph().edges["a", "b"]["gates"] == ["gate"]
    assert trace.detect_deadlocks() == []


# -- behaviour kept --------------------------------------------------------------------------
def test_bounded_semaphore_over_release_raises_as_untraced_and_records_nothing():
    plain = threading.BoundedSemaphore(1)
    with pytest.raises(ValueError) as untraced:
        plain.release()
    errors = []

    def program():
        sem = threading.BoundedSemaphore(1)

        def other():
            try:
                sem.release()
            except ValueError as e:
                errors.append(e)

        threads(other)
        with pytest.raises(ValueError) as traced:
            sem.release()
        errors.append(traced.value)
        assert sem._value == 1

    trace = run(program)
    assert [str(e) for e in errors] == [str(untraced.value)] * 2
    assert releases(trace, "sem").height == 0


def test_lock_and_rlock_release_by_a_non_holder_raise_as_untraced_and_record_nothing():
    untraced = []
    for lock in (threading.Lock(), threading.RLock()):
        with pytest.raises(RuntimeError) as e:
            lock.release()
        untraced.append(str(e.value))
    held = threading.Event()
    done = threading.Event()
    errors = []

    def program():
        lock = threading.Lock()
        rlock = threading.RLock()
        for lk in (lock, rlock):
            with pytest.raises(RuntimeError) as e:
                lk.release()
            errors.append(str(e.value))

        def holder():
            with rlock:
                held.set()
                done.wait(10)

        t = threading.Thread(target=holder)
        t.start()
        held.wait(10)
        try:
            rlock.release()
        except RuntimeError as e:
            errors.append(str(e))
        done.set()
        t.join(10)

    trace = run(program)
    assert errors == [*untraced, untraced[1]]
    assert releases(trace, "lock").height == 0
    assert releases(trace, "rlock").height == 1  # the holder's own


# -- naming ----------------------------------------------------------------------------------
class Pair:
    def __init__(self):
        self.a, self.b = threading.Lock(), threading.RLock()


def test_each_target_of_an_unpacking_names_its_lock():
    def program():
        a, b, c = threading.Lock(), threading.Lock(), threading.Lock()
        d, e = [threading.Semaphore(2), threading.Lock()]
        pair = Pair()
        single = threading.Lock()
        listed = [threading.Lock()]
        for lk in (a, b, c, d, e, pair.a, pair.b, single, *listed):
            with lk:
                pass

    trace = run(program)
    names = trace.events("lock_acquire")["target"].to_list()
    assert names == ["a", "b", "c", "d", "e", "Pair.a", "Pair.b", "single", "Lock-1"]
