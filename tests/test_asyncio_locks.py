"""asyncio's Semaphore, BoundedSemaphore and Condition, traced like their threading
namesakes: waits, acquisitions (a semaphore's with its initial value), releases,
who holds and who waits at any instant; a cancelled wait gives up; semantics kept."""

import asyncio

import polars as pl
import pytest

import scope_nb as scope

pytestmark = pytest.mark.timeout(60)


def _on(trace, name):
    return trace.events().filter(
        (pl.col("target") == name) & pl.col("kind").str.starts_with("lock_")
    )


def test_semaphore_holders_and_waiters():
    async def main():
        sem = asyncio.Semaphore(2)
        go = asyncio.Event()

        async def worker():
            async with sem:
                await go.wait()

        tasks = [asyncio.create_task(worker()) for _ in range(4)]
        while len(sem._waiters or ()) < 2:  # two hold it, two wait
            await asyncio.sleep(0)
        go.set()
        await asyncio.gather(*tasks)
        return sem._value

    with scope.record() as trace:
        assert asyncio.run(main()) == 2
    ev = _on(trace, "sem")
    kinds = ev["kind"].to_list()
    assert (kinds.count("lock_acquire"), kinds.count("lock_wait"), kinds.count("lock_release")) == (
        4,
        2,
        4,
    )
    acq = ev.filter(pl.col("kind") == "lock_acquire")
    assert acq["detail"].to_list() == ["2"] * 4  # the initial value: room for two, no gate
    assert (
        sorted(acq["duration_ns"].to_list())[:2] == [0, 0]
        and min(acq["duration_ns"].to_list()[2:]) > 0
    )
    # the moment the second waiter started waiting: two tasks hold it, two wait
    t = ev.filter(pl.col("kind") == "lock_wait")["ts"].max()
    locks = trace.system_snapshot_at(t).locks.filter(pl.col("lock") == "sem")
    assert locks["status"].value_counts().sort("status").rows() == [("held", 2), ("waiting", 2)]


def test_bounded_semaphore_over_release_raises_and_records_nothing():
    async def main():
        sem = asyncio.BoundedSemaphore(1)
        async with sem:
            pass
        with pytest.raises(ValueError, match="released too many times"):
            sem.release()
        return sem._value

    with scope.record() as trace:
        assert asyncio.run(main()) == 1
    assert _on(trace, "sem")["kind"].to_list() == ["lock_acquire", "lock_release"]


@pytest.mark.parametrize("kind", ["Lock", "Semaphore"])
def test_a_cancelled_wait_gives_up(kind):
    async def main():
        lock = getattr(asyncio, kind)()
        await lock.acquire()
        waiter = asyncio.create_task(lock.acquire())
        while not lock._waiters:
            await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        lock.release()
        async with lock:  # still works, and nobody waits any more
            return lock.locked()

    with scope.record() as trace:
        assert asyncio.run(main()) is True
    ev = _on(trace, "lock")
    assert ev["kind"].to_list() == [
        "lock_acquire",
        "lock_wait",
        "lock_timeout",
        "lock_release",
        "lock_acquire",
        "lock_release",
    ]
    end = ev["ts"].max()
    assert trace.system_snapshot_at(end).locks.filter(pl.col("status") == "waiting").height == 0


def test_condition_is_named_and_traced_through_wait_and_notify():
    async def main():
        cond = asyncio.Condition()
        items = []

        async def consumer():
            async with cond:
                await cond.wait_for(lambda: items)
                return items.pop()

        task = asyncio.create_task(consumer())
        while not cond._waiters:
            await asyncio.sleep(0)
        async with cond:
            items.append("x")
            cond.notify()
        return await task

    with scope.record() as trace:
        assert asyncio.run(main()) == "x"
    ev = _on(trace, "cond")
    # consumer: take, release in wait, take again when notified, release; main: take, release
    assert ev["kind"].to_list().count("lock_acquire") == 3
    assert ev["kind"].to_list().count("lock_release") == 3
    assert len(set(ev["actor"].to_list())) == 2


def test_trace_lock_takes_asyncio_semaphores_and_conditions_made_before_start():
    sem = asyncio.Semaphore()
    cond = asyncio.Condition()

    async def main():
        async with sem, cond:
            pass

    with scope.record() as trace:
        assert scope.trace_lock(sem, "early_sem") is sem
        assert scope.trace_lock(cond, "cond") is cond
        assert scope.trace_lock(cond) is cond  # the same, again
        asyncio.run(main())
        assert scope.trace_lock(cond, "other") is cond  # renamed, its history with it
    assert _on(trace, "early_sem")["kind"].to_list() == ["lock_acquire", "lock_release"]
    assert _on(trace, "other")["kind"].to_list() == ["lock_acquire", "lock_release"]
    assert _on(trace, "cond").height == 0
    assert trace.lock_graph().has_edge("early_sem", "other")


def test_asyncio_patches_restored_after_stop():
    before = (
        asyncio.Semaphore.__init__,
        asyncio.Semaphore.acquire,
        asyncio.Semaphore.release,
        asyncio.BoundedSemaphore.release,
        asyncio.Condition.__init__,
    )
    scope.start()
    assert asyncio.Semaphore.acquire is not before[1]
    scope.stop()
    after = (
        asyncio.Semaphore.__init__,
        asyncio.Semaphore.acquire,
        asyncio.Semaphore.release,
        asyncio.BoundedSemaphore.release,
        asyncio.Condition.__init__,
    )
    assert all(a is b for a, b in zip(before, after, strict=True))


def test_trace_lock_refuses_a_condition_over_a_foreign_lock():
    class Foreign:
        """Quacks like an asyncio.Lock, but is not one."""

        locked = acquire = release = staticmethod(lambda *a: True)

    cond = asyncio.Condition.__new__(asyncio.Condition)
    cond._lock = Foreign()
    with scope.record():
        with pytest.raises(TypeError, match="lock is a Foreign, which is not traced"):
            scope.trace_lock(cond)
