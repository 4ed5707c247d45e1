"""Healthy programs: the standard library's concurrency idioms used as documented. Each
must get no report of any family (no race, deadlock, stall, hang or crash)."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import queue
import threading

import scope_nb as scope

from .harness import WATCHDOG, Healthy, join, start


def _started(fn, n):
    """n threads running fn, named fn0, fn1, ..."""
    ts = [threading.Thread(target=fn, name=f"{fn.__name__}{i}") for i in range(n)]
    for t in ts:
        t.start()
    return ts


class _Box:
    def __init__(self):
        self.value = None
        self.count = 0


def queue_with_sentinel():
    q = queue.Queue(maxsize=4)
    got = []

    def producer():
        for i in range(10):
            q.put(i)
        q.put(None)

    def consumer():
        while (item := q.get()) is not None:
            got.append(item)

    join(start(producer, consumer))


def queue_join_task_done_in_finally():
    q = queue.Queue()
    done = []

    def worker():
        while True:
            item = q.get()
            try:
                if item is None:
                    return
                done.append(item * 2)
            finally:
                q.task_done()

    ts = start(worker)
    for i in range(5):
        q.put(i)
    q.join()
    q.put(None)
    join(ts)


def executor_map():
    with cf.ThreadPoolExecutor(max_workers=2) as ex:
        assert list(ex.map(pow, [2, 3, 4], [2, 2, 2])) == [4, 9, 16]


def executor_as_completed():
    with cf.ThreadPoolExecutor(max_workers=2) as ex:
        futs = [ex.submit(sum, range(n)) for n in (10, 20, 30)]
        assert sorted(f.result() for f in cf.as_completed(futs)) == [45, 190, 435]


def condition_with_predicate():
    cond = threading.Condition()
    box = scope.trace_object(_Box(), "box")

    def waiter():
        with cond:
            cond.wait_for(lambda: box.value is not None)

    def setter():
        with cond:
            box.value = "ready"
            cond.notify_all()

    join(start(waiter, setter))


def counter_under_lock():
    box = scope.trace_object(_Box(), "box")
    lock = threading.Lock()

    def bump():
        for _ in range(3):
            with lock:
                box.count = box.count + 1

    join(_started(bump, 3))


class _Results:
    def __init__(self):
        self.done = []  # appended to by every worker: appends commute
        self.by_worker = {}  # one key per worker, set once
        self.groups = {}  # filled with setdefault: one atomic get-or-create
        self.hits = {}  # counted under a lock


def containers_shared_by_workers():
    res = scope.trace_object(_Results(), "results")
    lock = threading.Lock()

    def work():
        me = threading.current_thread().name
        for i in range(3):
            res.done.append((me, i))
            res.groups.setdefault(i % 2, []).append(me)
            with lock:
                res.hits[i % 2] = res.hits.get(i % 2, 0) + 1
        res.by_worker[me] = True

    join(_started(work, 3))


def bounded_semaphore_pool():
    slots = threading.BoundedSemaphore(2)
    lock = threading.Lock()
    box = scope.trace_object(_Box(), "box")

    def use():
        with slots:
            with lock:
                box.count = box.count + 1

    join(_started(use, 3))


def rlock_recursion():
    lock = threading.RLock()
    seen = []

    def walk(depth):
        with lock:
            seen.append(depth)
            if depth:
                walk(depth - 1)

    def walker():
        walk(3)

    join(start(walker))


def event_publishes_state():
    box = scope.trace_object(_Box(), "box")
    published = threading.Event()
    seen = []

    def writer():
        box.value = "config"
        published.set()

    def reader():
        published.wait()
        seen.append(box.value)

    join(start(writer, reader))


def thread_local_state():
    local = threading.local()
    seen = []
    lock = threading.Lock()

    def work():
        local.name = threading.current_thread().name
        with lock:
            seen.append(local.name)

    join(_started(work, 2))


def ordered_lock_pairs():
    first = threading.Lock()
    second = threading.Lock()

    def transfer():  # every thread takes the two locks in the same order
        with first, second:
            pass

    join(_started(transfer, 2))


def timer_cancelled():
    fired = []
    t = threading.Timer(30.0, fired.append, args=("late",))
    t.start()
    t.cancel()
    t.join()


def asyncio_queue_join():
    async def main():
        q = asyncio.Queue(maxsize=2)
        done = []

        async def worker():
            while True:
                item = await q.get()
                try:
                    if item is None:
                        return
                    done.append(item)
                finally:
                    q.task_done()

        w = asyncio.create_task(worker())
        for i in range(5):
            await q.put(i)
        await q.join()
        await q.put(None)
        await w

    asyncio.run(main())


def asyncio_task_group():
    async def main():
        async def job(n):
            await asyncio.sleep(0)
            return n * n

        async with asyncio.TaskGroup() as tg:
            ts = [tg.create_task(job(n)) for n in range(3)]
        assert [t.result() for t in ts] == [0, 1, 4]

    asyncio.run(main())


def asyncio_run_in_executor():
    async def main():
        loop = asyncio.get_running_loop()
        with cf.ThreadPoolExecutor(max_workers=1) as ex:
            assert await loop.run_in_executor(ex, sum, range(1000)) == 499500

    asyncio.run(main())


def asyncio_semaphore_limit():
    async def main():
        sem = asyncio.Semaphore(2)
        done = []

        async def fetch(n):
            async with sem:
                await asyncio.sleep(0)
                done.append(n)

        await asyncio.gather(*(fetch(n) for n in range(4)))

    asyncio.run(main())


def asyncio_cancel_propagated():
    async def main():
        async def job():
            try:
                await asyncio.sleep(10)
            finally:
                pass  # clean up, and let the cancellation go on

        t = asyncio.create_task(job())
        await asyncio.sleep(0)
        t.cancel()
        try:
            await t
        except asyncio.CancelledError:
            pass

    asyncio.run(main())


HEALTHY = [
    Healthy("bounded Queue with a sentinel", queue_with_sentinel, WATCHDOG),
    Healthy("Queue.join with task_done in finally", queue_join_task_done_in_finally, WATCHDOG),
    Healthy("ThreadPoolExecutor.map", executor_map, WATCHDOG),
    Healthy("futures with as_completed", executor_as_completed, WATCHDOG),
    Healthy("Condition.wait_for a predicate", condition_with_predicate, WATCHDOG),
    Healthy("counter updated under a Lock", counter_under_lock),
    Healthy("list, dicts and setdefault shared by workers", containers_shared_by_workers),
    Healthy("BoundedSemaphore limiting a pool", bounded_semaphore_pool),
    Healthy("RLock taken recursively", rlock_recursion),
    Healthy("Event publishing state", event_publishes_state),
    Healthy("threading.local per-thread state", thread_local_state),
    Healthy("two locks always in one order", ordered_lock_pairs),
    Healthy("Timer cancelled before it fires", timer_cancelled, WATCHDOG),
    Healthy("asyncio.Queue join with task_done", asyncio_queue_join),
    Healthy("asyncio.TaskGroup", asyncio_task_group),
    Healthy("run_in_executor for blocking work", asyncio_run_in_executor),
    Healthy("asyncio.Semaphore limiting fetches", asyncio_semaphore_limit),
    Healthy("cancellation propagated through finally", asyncio_cancel_propagated),
]
