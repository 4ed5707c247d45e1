"""Traced locks through the public API: events, held locks, lock order, exact
semantics (CPython's own lock tests run against traced locks), restoration."""

import asyncio
import pickle
import queue
import re
import threading

import polars as pl
import pytest
from test import lock_tests

import scope_nb as scope
from scope_nb.recorder.patchers.locks import TracedLock, TracedRLock


def _lock_events(trace, name):
    ev = trace.events().filter(pl.col("target") == name)
    return ev.filter(
        pl.col("kind").str.starts_with("lock_") | pl.col("kind").str.starts_with("event_")
    )


def test_factories_and_classes_restored_after_stop():
    before = (
        threading.Lock,
        threading.RLock,
        threading.Condition.__init__,
        threading.Semaphore.acquire,
        threading.Semaphore.__enter__,
        threading.BoundedSemaphore.release,
        threading.Event.set,
        threading.Event.wait,
        asyncio.Lock.acquire,
        asyncio.Lock.release,
        asyncio.Event.wait,
    )
    scope.start()
    assert threading.Lock is not before[0]
    scope.stop()
    after = (
        threading.Lock,
        threading.RLock,
        threading.Condition.__init__,
        threading.Semaphore.acquire,
        threading.Semaphore.__enter__,
        threading.BoundedSemaphore.release,
        threading.Event.set,
        threading.Event.wait,
        asyncio.Lock.acquire,
        asyncio.Lock.release,
        asyncio.Event.wait,
    )
    assert all(a is b for a, b in zip(before, after, strict=True))


def test_a_traced_lock_kept_after_stop_works_and_records_nothing():
    with scope.record() as trace:
        lock = threading.Lock()
        rlock = threading.RLock()
        with lock, rlock:
            pass
    with lock, rlock, rlock:  # after stop: the real locks' behaviour, no events
        assert lock.locked()
    assert not lock.locked() and lock.acquire(False)
    lock.release()
    with pytest.raises(RuntimeError):
        rlock.release()
    assert _lock_events(trace, "lock").height == _lock_events(trace, "rlock").height == 2
    with scope.record() as again:  # a new recording does not see the old one's locks
        with lock:
            pass
    assert _lock_events(again, "lock").height == 0


def test_user_locks_traced_stdlib_locks_not():
    with scope.record() as trace:
        mine = threading.Lock()
        rmine = threading.RLock()
        q = queue.Queue()
        q.put(1)
        q.get()
        t = threading.Thread(target=lambda: None)
        t.start()
        t.join()
    assert isinstance(mine, TracedLock) and mine.name == "mine"
    assert isinstance(rmine, TracedRLock) and rmine.name == "rmine"
    assert not isinstance(q.mutex, TracedLock)
    assert not isinstance(q.not_empty._lock, TracedLock)
    targets = set(
        trace.events().filter(pl.col("kind").str.starts_with("lock_"))["target"].drop_nulls()
    )
    assert targets == set()  # nothing of the queue's or the thread's own locks


def test_acquire_release_held_and_timeouts():
    with scope.record() as trace:
        a = threading.Lock()
        b = threading.Lock()
        got = []

        def worker():
            # a is held by the main thread: must wait, then time out
            got.append(a.acquire(timeout=0.01))

        with a:
            with b:
                pass
            t = threading.Thread(target=worker)
            t.start()
            t.join()
    assert got == [False]
    ev = _lock_events(trace, "a")
    main_actor = ev["actor"][0]
    kinds = ev.select("kind", "actor").rows()
    assert kinds[0] == ("lock_acquire", main_actor)
    waits = ev.filter(pl.col("kind") == "lock_wait")
    assert waits.height == 1 and waits["actor"][0] != main_actor
    timeout = ev.filter(pl.col("kind") == "lock_timeout")
    assert timeout.height == 1 and timeout["duration_ns"][0] > 0
    bev = _lock_events(trace, "b")
    assert bev["kind"].to_list() == ["lock_acquire", "lock_release"]
    assert bev["locks_held"].to_list() == [["a"], ["a", "b"]]
    # an uncontended acquire does not wait
    assert "lock_wait" not in bev["kind"].to_list()
    assert bev["location"][0].endswith(f"test_locks.py:{_line_of('with b:')}")


def _line_of(text):
    with open(__file__) as f:
        return next(i for i, line in enumerate(f, 1) if line.strip() == text)


def test_rlock_reentrancy_is_one_hold():
    with scope.record() as trace:
        r = threading.RLock()
        with r:
            with r:
                assert r._is_owned()
            assert r._is_owned()
        assert not r._is_owned()
    assert _lock_events(trace, "r")["kind"].to_list() == ["lock_acquire", "lock_release"]


def test_semantics_match_the_original():
    orig = threading.Lock()
    orig_r = threading.RLock()
    scope.start()
    lock, rlock = threading.Lock(), threading.RLock()
    assert isinstance(lock, TracedLock)
    for real, traced in ((orig, lock), (orig_r, rlock)):
        with pytest.raises(ValueError) as e1:
            real.acquire(False, 1)
        with pytest.raises(ValueError) as e2:
            traced.acquire(False, 1)
        assert str(e1.value) == str(e2.value)
        with pytest.raises(ValueError):
            traced.acquire(timeout=-2)
        with pytest.raises(RuntimeError):
            traced.release()
        with pytest.raises(TypeError):
            pickle.dumps(traced)
        assert re.match(r"<unlocked _thread\.R?[lL]ock object", repr(traced)), repr(traced)
        assert traced.acquire() is True
        assert re.match(r"<locked _thread\.R?[lL]ock object", repr(traced)), repr(traced)
        traced.release()
    assert lock.acquire(blocking=False) and not lock.acquire(False)
    lock.release()
    assert hasattr(lock, "locked_lock") and not hasattr(rlock, "acquire_lock")
    assert not hasattr(lock, "_is_owned") and hasattr(rlock, "_is_owned")
    lock._at_fork_reinit()
    assert not lock.locked()
    # an RLock can only be released by its owner
    rlock.acquire()
    errors = []

    def other():
        try:
            rlock.release()
        except RuntimeError as e:
            errors.append(e)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    rlock.release()
    assert len(errors) == 1
    scope.stop()
    assert not isinstance(threading.Lock(), TracedLock)


def test_stress_eight_threads_mutual_exclusion():
    n_threads, n_iter = 8, 300
    with scope.record(max_events=1_000_000) as trace:
        lock = threading.Lock()
        rlock = threading.RLock()
        sem = threading.Semaphore(1)
        counts = {"lock": 0, "rlock": 0, "sem": 0}
        inside = {"lock": 0, "rlock": 0, "sem": 0}
        overlap = []
        start = threading.Barrier(n_threads)

        def bump(key):
            inside[key] += 1
            if inside[key] != 1:
                overlap.append(key)
            counts[key] += 1
            inside[key] -= 1

        def work():
            start.wait()
            for i in range(n_iter):
                with lock:
                    bump("lock")
                with rlock:
                    with rlock:
                        bump("rlock")
                if i % 2:
                    with sem:
                        bump("sem")
                else:
                    while not lock.acquire(timeout=0.5):
                        pass
                    bump("lock")
                    lock.release()

        threads = [threading.Thread(target=work) for _ in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert overlap == []
    assert counts == {
        "lock": n_threads * n_iter * 3 // 2,
        "rlock": n_threads * n_iter,
        "sem": n_threads * n_iter // 2,
    }
    for name, n in (("lock", counts["lock"]), ("rlock", counts["rlock"]), ("sem", counts["sem"])):
        ev = _lock_events(trace, name)
        assert ev.filter(pl.col("kind") == "lock_acquire").height == n
        assert ev.filter(pl.col("kind") == "lock_release").height == n
    # no actor ever holds a lock twice, and after everything nobody holds anything
    acq = trace.events("lock_acquire")
    assert all(t not in held for t, held in zip(acq["target"], acq["locks_held"], strict=True))
    assert trace.system_snapshot_at(trace.time_range()[1]).locks.height == 0


def test_condition_wait_notify_with_traced_rlock_and_lock():
    for make in (lambda: threading.Condition(), lambda: threading.Condition(threading.Lock())):
        with scope.record() as trace:
            cond = make()
            items = []
            ready = threading.Event()

            def consumer(cond=cond, items=items, ready=ready):
                with cond:
                    ready.set()
                    assert cond.wait_for(lambda: len(items) == 3, timeout=10)
                    items.append("done")

            t = threading.Thread(target=consumer)
            t.start()
            ready.wait()
            for i in range(3):
                with cond:
                    items.append(i)
                    cond.notify()
            t.join()
        assert items == [0, 1, 2, "done"]
        name = cond._lock.name
        ev = _lock_events(trace, name)
        consumer_actor = ev.filter(pl.col("kind") == "lock_acquire")["actor"][0]
        mine = ev.filter(pl.col("actor") == consumer_actor)["kind"].to_list()
        # the wait released the lock and took it back at least once
        assert mine[0] == "lock_acquire" and mine[-1] == "lock_release"
        assert mine.count("lock_acquire") == mine.count("lock_release") >= 2


def test_semaphore_bounded_and_event():
    with scope.record() as trace:
        sem = threading.BoundedSemaphore(2)
        assert sem.acquire() and sem.acquire(blocking=False)
        assert not sem.acquire(blocking=False)
        assert not sem.acquire(timeout=0.01)
        with pytest.raises(ValueError):
            sem.acquire(False, 1)
        sem.release(2)
        with pytest.raises(ValueError):
            sem.release()
        flag = threading.Event()
        seen = []
        t = threading.Thread(target=lambda: seen.append(flag.wait(10)))
        t.start()
        flag.set()
        t.join()
    assert seen == [True]
    kinds = _lock_events(trace, "sem")["kind"].to_list()
    assert kinds == [
        "lock_acquire",
        "lock_acquire",
        "lock_wait",
        "lock_timeout",
        "lock_release",
        "lock_release",
    ]
    fev = _lock_events(trace, "flag")
    assert fev.filter(pl.col("kind") == "event_set").height == 1
    waited = fev.filter(pl.col("kind") == "event_wait")
    assert waited["detail"].to_list() == ["True"]


def test_lock_order_inversion_is_reported_once_with_places():
    with scope.record() as trace:
        first = threading.Lock()
        second = threading.Lock()

        def one():
            with first:
                with second:
                    pass

        def two():
            with second:
                with first:
                    pass

        for fn in (one, two, one, two):  # one after the other: no real deadlock
            t = threading.Thread(target=fn)
            t.start()
            t.join()
    inv = trace.events("lock_order")
    assert inv.height == 1
    assert inv["target"][0] == "second -> first"
    detail = inv["detail"][0]
    assert detail.splitlines()[0] == "second -> first -> second"
    assert "took first at" in detail and "took second at" in detail and "test_locks.py" in detail


def test_trace_lock_for_locks_made_before_start():
    early = threading.Lock()
    early_cond = threading.Condition()
    early_sem = threading.Semaphore()
    with scope.record() as trace:
        lk = scope.trace_lock(early, "early")
        cond = scope.trace_lock(early_cond, "cond")
        assert scope.trace_lock(early_sem, "sem") is early_sem
        with lk:
            pass
        with cond:
            cond.notify()
        with early_sem:
            pass
        with pytest.raises(TypeError, match="trace_lock: lock must be one of"):
            scope.trace_lock(1)
        with pytest.raises(TypeError, match="name must be a str"):
            scope.trace_lock(early, 3)
    assert isinstance(lk, TracedLock)
    for name in ("early", "cond", "sem"):
        assert _lock_events(trace, name)["kind"].to_list() == ["lock_acquire", "lock_release"]


def test_asyncio_lock_and_event():
    async def main():
        lock = asyncio.Lock()
        go = asyncio.Event()
        order = []

        async def user(tag):
            async with lock:
                order.append(tag)
                await go.wait()

        a = asyncio.create_task(user("a"))
        b = asyncio.create_task(user("b"))
        while not lock.locked():
            await asyncio.sleep(0)
        for _ in range(3):
            await asyncio.sleep(0)  # let b reach the lock and wait
        go.set()
        await asyncio.gather(a, b)
        return order

    with scope.record() as trace:
        order = asyncio.run(main())
    assert order == ["a", "b"]
    ev = _lock_events(trace, "lock")
    kinds = ev["kind"].to_list()
    assert kinds.count("lock_acquire") == 2 and kinds.count("lock_release") == 2
    assert kinds.count("lock_wait") == 1
    holders = ev.filter(pl.col("kind") == "lock_acquire")["actor"].to_list()
    assert len(set(holders)) == 2 and all(h.startswith("A") for h in holders)
    assert _lock_events(trace, "go").filter(pl.col("kind") == "event_set").height == 1


def test_isinstance_keeps_working():
    with scope.record():
        lk = threading.Lock()
        if (
            isinstance(threading.Lock, type)
            or hasattr(threading.Lock, "_original")
            and isinstance(threading.Lock._original, type)
        ):
            assert isinstance(lk, threading.Lock)
        else:
            with pytest.raises(TypeError):
                isinstance(lk, threading.Lock)
        assert isinstance(threading.Condition(), threading.Condition)
        assert type(threading.Event()) is threading.Event


# -- CPython's own lock tests, run against traced locks ------------------------------------

_orig_lock = threading.Lock
_orig_rlock = threading.RLock


class _Recording:
    def setUp(self):
        scope.start(max_events=200_000)
        super().setUp()

    def tearDown(self):
        super().tearDown()
        scope.stop()


def _traced(make):
    def factory(*args, **kwargs):
        return scope.trace_lock(make(*args, **kwargs))

    return staticmethod(factory)


class TestCPythonLock(_Recording, lock_tests.LockTests):
    locktype = _traced(_orig_lock)


class TestCPythonRLock(_Recording, lock_tests.RLockTests):
    locktype = _traced(_orig_rlock)


class TestCPythonCondition(_Recording, lock_tests.ConditionTests):
    condtype = staticmethod(
        lambda lock=None: threading.Condition(scope.trace_lock(lock or _orig_rlock()))
    )


class TestCPythonSemaphore(_Recording, lock_tests.SemaphoreTests):
    semtype = _traced(threading.Semaphore)


class TestCPythonBoundedSemaphore(_Recording, lock_tests.BoundedSemaphoreTests):
    semtype = _traced(threading.BoundedSemaphore)


class TestCPythonEvent(_Recording, lock_tests.EventTests):
    eventtype = _traced(threading.Event)
