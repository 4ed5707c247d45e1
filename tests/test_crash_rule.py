"""What is a crash, on real threads, tasks and processes: an actor that ended by an
exception nobody handled. An exception the program retrieved (a task awaited or
gathered, a TaskGroup's), a cancellation, a pool's workers ended by its shutdown or
terminate(), a traced method that raised: none of these is a crash."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import multiprocessing
import sys
import threading

import polars as pl
import pytest

import scope_nb as scope

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")


def _row(trace, name):
    rows = trace.actors().filter(pl.col("name") == name)
    assert rows.height == 1, rows
    return rows.row(0, named=True)


def _crashed_names(trace) -> list[str]:
    names = dict(trace.actors().select("actor", "name").iter_rows())
    return [names.get(e.actor) for e in trace.get_crash_events()]


def _summary_crashes(trace) -> str:
    (line,) = [ln for ln in repr(trace).splitlines() if ln.strip().startswith("crashes")]
    return line.split("crashes", 1)[1].strip()


class _Closed(Exception):
    """A queue library's "the queue was shut down" (janus / culsans style)."""


class _ClosableQueue:
    """An asyncio queue that can be shut down: a waiting get() raises `_Closed`."""

    def __init__(self):
        self.q: asyncio.Queue = asyncio.Queue()
        self.closed = asyncio.Event()

    async def get(self):
        getter = asyncio.ensure_future(self.q.get())
        closing = asyncio.ensure_future(self.closed.wait())
        done, _ = await asyncio.wait({getter, closing}, return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            closing.cancel()
            return getter.result()
        getter.cancel()
        raise _Closed("queue shut down")


async def _consumers_until_shutdown(queue, put, shutdown, n=3):
    seen = []

    async def consumer(i):
        while True:
            seen.append(await queue.get())

    tasks = [asyncio.create_task(consumer(i), name=f"consumer-{i}") for i in range(n)]
    for item in range(n):
        put(item)
    while len(seen) < n:
        await asyncio.sleep(0)
    shutdown()
    return await asyncio.gather(*tasks, return_exceptions=True)


def test_consumers_ended_by_a_queue_shutdown_and_gathered_did_not_crash():
    async def main():
        queue = _ClosableQueue()
        return await _consumers_until_shutdown(queue, queue.q.put_nowait, queue.closed.set)

    with scope.record() as trace:
        results = asyncio.run(main())
    assert [type(r) for r in results] == [_Closed] * 3
    assert trace.get_crash_events() == []
    assert _summary_crashes(trace) == "none"
    for i in range(3):
        row = _row(trace, f"consumer-{i}")
        assert (row["outcome"], row["exception"]) == (
            "failed",
            "_Closed|_Closed('queue shut down')",
        )


@pytest.mark.skipif(sys.version_info < (3, 13), reason="asyncio.Queue.shutdown is new in 3.13")
def test_consumers_ended_by_asyncio_queue_shutdown_and_gathered_did_not_crash():
    async def main():
        queue = asyncio.Queue()
        return await _consumers_until_shutdown(queue, queue.put_nowait, queue.shutdown)

    with scope.record() as trace:
        results = asyncio.run(main())
    assert [type(r) for r in results] == [asyncio.QueueShutDown] * 3
    assert trace.get_crash_events() == []
    assert {_row(trace, f"consumer-{i}")["outcome"] for i in range(3)} == {"failed"}


def test_a_task_cancelled_and_awaited_did_not_crash():
    async def main():
        started = asyncio.Event()

        async def forever():
            started.set()
            await asyncio.Event().wait()

        t = asyncio.create_task(forever(), name="stopped")
        await started.wait()
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t

    with scope.record() as trace:
        asyncio.run(main())
    assert trace.get_crash_events() == []
    assert _row(trace, "stopped")["outcome"] == "cancelled"


async def _fails():
    raise ValueError("bad input")


@pytest.mark.parametrize("how", ["await", "exception", "result"])
def test_a_task_exception_the_program_retrieved_is_not_a_crash(how):
    async def main():
        t = asyncio.create_task(_fails(), name="retrieved")
        if how == "await":
            with pytest.raises(ValueError):
                await t
        else:
            await asyncio.wait({t})
            if how == "exception":
                assert isinstance(t.exception(), ValueError)
            else:
                with pytest.raises(ValueError):
                    t.result()
        return t  # still referenced when the recording stops

    with scope.record() as trace:
        task = asyncio.run(main())
    assert task.done()
    assert trace.get_crash_events() == []
    assert trace.get_crash_events(_row(trace, "retrieved")["actor"]) is None
    assert not [r for r in trace.detect_stalls() if r.kind == "exc_unretrieved"]
    row = _row(trace, "retrieved")
    assert (row["outcome"], row["exception"]) == ("failed", "ValueError|ValueError('bad input')")
    (end,) = trace.events("exit").filter(pl.col("actor") == row["actor"])["detail"].to_list()
    assert end.startswith("ValueError|ValueError('bad input')\n") and "_fails" in end


def test_a_task_still_referenced_at_stop_whose_exception_nobody_retrieved_crashed():
    kept = {}

    async def main():
        kept["watch"] = asyncio.create_task(_fails(), name="forgotten")
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    with scope.record() as trace:
        asyncio.run(main())
    assert kept["watch"]._log_traceback is True  # the recording did not retrieve it either
    row = _row(trace, "forgotten")
    assert (row["outcome"], row["exception"]) == ("crashed", "ValueError|ValueError('bad input')")
    crash = trace.get_crash_events(row["actor"])
    assert crash is not None and crash.exception == "ValueError: bad input"
    assert crash.location.endswith(f":{_fails.__code__.co_firstlineno + 1}")
    assert trace.analyze_crash(row["actor"]).crash.exception == "ValueError: bad input"
    (lost,) = [r for r in trace.detect_stalls() if r.kind == "exc_unretrieved"]
    assert lost.actor == row["actor"] and "ValueError: bad input" in lost.summary
    assert _summary_crashes(trace).startswith("1 actor crashed")
    kept["watch"].exception()  # retrieved now, so the interpreter does not log it


def test_a_task_collected_with_its_exception_never_retrieved_crashed():
    import gc

    async def main():
        asyncio.create_task(_fails(), name="dropped")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        gc.collect()

    with scope.record() as trace:
        asyncio.run(main())
        gc.collect()
    assert _crashed_names(trace) == ["dropped"]
    assert _row(trace, "dropped")["outcome"] == "crashed"


def test_a_taskgroup_whose_failure_the_program_handled_did_not_crash():
    async def main():
        async with asyncio.TaskGroup() as group:
            group.create_task(_fails(), name="member")

    async def outer():
        with pytest.raises(ExceptionGroup):
            await main()

    with scope.record() as trace:
        asyncio.run(outer())
    assert trace.get_crash_events() == []
    (group,) = trace.find_processes("supervisor")["outcome"].to_list()
    assert group == "failed"
    assert _row(trace, "member")["outcome"] == "failed"


def test_worker_threads_of_a_shut_down_pool_did_not_crash():
    def job(i):
        if i == 1:
            raise KeyError(i)  # caught by the pool into its future
        return i

    with scope.record() as trace:
        ex = cf.ThreadPoolExecutor(max_workers=2, thread_name_prefix="shut")
        futures = [ex.submit(job, i) for i in range(4)]
        cf.wait(futures)
        ex.shutdown(wait=True, cancel_futures=True)
    assert isinstance(futures[1].exception(), KeyError)
    workers = trace.find_processes("worker")
    assert workers.height >= 1 and set(workers["outcome"]) == {"ok"}
    assert trace.get_crash_events() == []


_POOL_SYNC: dict = {}


def _pool_init(started, gate):
    _POOL_SYNC.update(started=started, gate=gate)


def _busy(_):
    _POOL_SYNC["started"].release()
    _POOL_SYNC["gate"].wait()  # never set: the pool's terminate() ends the worker


def test_pool_terminate_ends_its_workers_without_a_crash():
    ctx = multiprocessing.get_context("fork")
    with scope.record() as trace:
        started, gate = ctx.Semaphore(0), ctx.Event()
        pool = ctx.Pool(2, initializer=_pool_init, initargs=(started, gate))
        pending = pool.map_async(_busy, range(2), chunksize=1)
        started.acquire()
        started.acquire()  # both workers are inside a task
        pool.terminate()
        pool.join()
    assert not pending.ready()
    workers = trace.actors().filter(
        (pl.col("kind") == "process") & pl.col("name").str.starts_with("ForkPoolWorker")
    )
    assert workers["outcome"].to_list() == ["terminated", "terminated"], trace.actors()
    assert trace.get_crash_events() == []


def _raise():
    raise RuntimeError("child failed")


def test_a_process_terminated_by_its_parent_did_not_crash_and_one_that_failed_did():
    ctx = multiprocessing.get_context("fork")
    with scope.record() as trace:
        gate = ctx.Event()
        stopped = ctx.Process(target=gate.wait, name="stopped-child")
        failed = ctx.Process(target=_raise, name="failed-child")
        stopped.start()
        failed.start()
        stopped.terminate()
        stopped.join()
        failed.join()
    assert (stopped.exitcode, failed.exitcode) == (-15, 1)
    s, f = _row(trace, "stopped-child"), _row(trace, "failed-child")
    assert (s["outcome"], s["exception"]) == ("terminated", None)
    (end,) = trace.events("exit").filter(pl.col("actor") == s["actor"])["detail"].to_list()
    assert end == "killed by SIGTERM (exit code -15), as its parent asked"
    assert (f["outcome"], f["exception"]) == ("crashed", "exit code 1")
    assert _crashed_names(trace) == ["failed-child"]


def test_a_thread_dying_of_an_unhandled_exception_crashed():
    def work():
        raise OSError("disk full")

    with scope.record() as trace:
        t = threading.Thread(target=work, name="dies")
        t.start()
        t.join()
    assert _crashed_names(trace) == ["dies"]
    assert trace.get_crash_events(_row(trace, "dies")["actor"]).exception == "OSError: disk full"


def test_a_main_task_exception_asyncio_run_reraises_unhandled_is_its_threads_crash():
    async def main():
        await _fails()

    with scope.record() as trace:
        t = threading.Thread(target=asyncio.run, args=(main(),), name="loop-thread")
        t.start()
        t.join()
    assert _crashed_names(trace) == ["loop-thread"]
    crash = trace.get_crash_events(_row(trace, "loop-thread")["actor"])
    assert crash.exception == "ValueError: bad input" and "_fails" in crash.traceback
    tasks = trace.actors().filter(pl.col("kind") == "task")  # main() and asyncio.run's own
    # retrieved by asyncio.run
    assert tasks.filter(pl.col("outcome") != "ok")["outcome"].to_list() == ["failed"]


class Account:
    def __init__(self):
        self.balance = 0

    def withdraw(self, n):
        if n > self.balance:
            raise ValueError("insufficient funds")
        self.balance -= n


def test_an_exception_escaping_a_traced_method_is_a_failed_call_of_its_caller_not_a_crash():
    account = Account()
    with scope.record() as trace:
        scope.trace_object(account, name="account")

        def teller():
            try:
                account.withdraw(5)
            except ValueError:
                pass

        t = threading.Thread(target=teller, name="teller")
        t.start()
        t.join()
    assert trace.get_crash_events() == []
    assert _row(trace, "teller")["outcome"] == "ok"
    failed = trace.get_crash_events("account")
    assert failed is not None and failed.kind == "exception"
    assert failed.actor == _row(trace, "teller")["actor"] and failed.exception.startswith(
        "ValueError"
    )
