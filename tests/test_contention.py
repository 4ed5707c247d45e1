"""lock_contention(): per lock, how often it was taken, who waited and how long, how
long it was held, timed acquires that gave up; and its line in the summary."""

import asyncio
import threading

import polars as pl
import pytest

import scope_nb as scope

pytestmark = pytest.mark.timeout(60)


def _until_waiting(actor_name: str) -> None:
    """Block until the live recording shows `actor_name` waiting for a lock."""
    trace = scope.current()
    while True:
        waits = trace.events("lock_wait")
        names = dict(trace.actors().select("actor", "name").iter_rows())
        if any(names.get(a) == actor_name for a in waits["actor"]):
            return


def test_a_contended_lock_a_timeout_and_a_signal():
    with scope.record() as trace:
        lock = threading.Lock()
        done = threading.Semaphore(0)  # released by the worker, taken by main: a signal
        lock.acquire()

        def worker():
            with lock:
                pass
            done.release()

        t = threading.Thread(target=worker, name="worker")
        t.start()
        _until_waiting("worker")
        assert lock.acquire(timeout=0.01) is False  # gives up: main holds it already
        lock.release()
        done.acquire()
        t.join()
    rows = {r["lock"]: r for r in trace.lock_contention().iter_rows(named=True)}
    assert set(rows) == {"lock", "done"}
    lk = rows["lock"]
    assert (lk["acquisitions"], lk["actors"], lk["waited"], lk["timeouts"]) == (2, 2, 1, 1)
    timeout = trace.events("lock_timeout")["duration_ns"].item()
    assert (
        lk["wait_ns"] == lk["wait_max_ns"] + timeout
        and timeout >= 10_000_000
        and lk["wait_max_ns"] > 0
    )
    assert lk["hold_max_ns"] > timeout  # main held it through its own timed acquire
    assert rows["done"]["hold_ns"] is None and rows["done"]["acquisitions"] == 1
    assert trace.lock_contention()["lock"].to_list()[0] == "lock"  # the most waited-for first
    assert "contention" in repr(trace) and "lock: 1 of 2 acquisitions waited" in repr(trace)


def test_asyncio_tasks_queueing_on_a_lock():
    async def main():
        lock = asyncio.Lock()
        go = asyncio.Event()

        async def user():
            async with lock:
                await go.wait()

        tasks = [asyncio.create_task(user()) for _ in range(3)]
        while len(lock._waiters or ()) < 2:
            await asyncio.sleep(0)
        go.set()
        await asyncio.gather(*tasks)

    with scope.record() as trace:
        asyncio.run(main())
    row = trace.lock_contention().row(0, named=True)
    assert (row["lock"], row["acquisitions"], row["actors"], row["waited"]) == ("lock", 3, 3, 2)
    assert row["hold_ns"] > 0 and row["wait_p95_ns"] == row["wait_max_ns"] > 0


def test_no_locks():
    with scope.record() as trace:
        pass
    frame = trace.lock_contention()
    assert frame.height == 0 and frame.columns[:3] == ["lock", "acquisitions", "actors"]
    assert frame.schema["hold_ns"] == pl.Int64
    assert "no locks traced" in repr(trace)


def test_the_same_answer_from_a_saved_trace(tmp_path):
    with scope.record() as trace:
        lock = threading.Lock()
        lock.acquire()

        def worker():
            with lock:
                pass

        t = threading.Thread(target=worker, name="worker")
        t.start()
        _until_waiting("worker")
        lock.release()
        t.join()
    trace.save(tmp_path / "saved")
    loaded = scope.load(tmp_path / "saved")
    assert loaded.lock_contention().equals(trace.lock_contention())
    assert loaded.lock_contention()["waited"].to_list() == [1]


def test_a_thread_still_waiting_at_the_end_comes_first():
    with scope.record() as trace:
        held = threading.Lock()
        other = threading.Lock()
        with other:
            pass
        held.acquire()
        t = threading.Thread(
            target=lambda: held.acquire() and held.release(), name="stuck", daemon=True
        )
        t.start()
        _until_waiting("stuck")
    held.release()  # after the recording: the wait never ended inside it
    t.join()
    rows = trace.lock_contention()
    assert rows["lock"].to_list() == ["held", "other"]
    assert rows.row(0, named=True)["waiting"] == 1 and rows.row(1, named=True)["waiting"] == 0
    assert "still waiting at the end" in repr(trace)
