"""The bug suite: small concurrent programs with a classic bug, each with a fixed twin.

The interleaving that shows the bug is forced with Barriers (not traced: they add no
happens-before edge) or Events. `check(trace)` returns the report that names the bug,
or None; on the fixed twin it must return None."""

from __future__ import annotations

import asyncio
import gc
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import scope_nb as scope

DEADLINE = 20.0  # seconds to wait for the watchdog before giving up


def wait_for_kind(kind: str, deadline: float = DEADLINE) -> bool:
    """Poll the live trace until an event of `kind` was recorded (the watchdog's verdict)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if scope.current().events(kind).height:
            return True
        time.sleep(0.02)
    return False


@dataclass
class Case:
    name: str
    bug: Callable[[], Any]
    fixed: Callable[[], Any]
    check: Callable[[Any], Any]
    options: dict = field(default_factory=dict)


def _start(*fns):
    ts = [threading.Thread(target=f, name=f.__name__) for f in fns]
    for t in ts:
        t.start()
    return ts


def _join(ts):
    for t in ts:
        t.join(DEADLINE)


def races(kind: str, obj: str, attr: str | None = None):
    def check(trace):
        return next(
            (
                r
                for r in trace.detect_race_conditions()
                if r.kind == kind and r.obj == obj and (attr is None or r.attribute == attr)
            ),
            None,
        )

    return check


def deadlock(kind: str):
    return lambda trace: next((r for r in trace.detect_deadlocks() if r.kind == kind), None)


def stall(*kinds: str):
    return lambda trace: next((r for r in trace.detect_stalls() if r.kind in kinds), None)


def crash(exc_type: str):
    return lambda trace: next(
        (r for r in trace.get_crash_events() if r.exc_type.endswith(exc_type)), None
    )


# -- data races -----------------------------------------------------------------------------
class Counter:
    def __init__(self):
        self.n = 0


def lost_update_bug():
    c = scope.trace_object(Counter(), "counter")
    read, wrote = threading.Event(), threading.Event()

    def slow():
        v = c.n
        read.set()
        wrote.wait()
        c.n = v + 1

    def fast():
        read.wait()
        c.n = c.n + 1
        wrote.set()

    _join(_start(slow, fast))


def lost_update_fixed():
    c = scope.trace_object(Counter(), "counter")
    lock = threading.Lock()
    first = threading.Event()

    def slow():
        with lock:
            v = c.n
            c.n = v + 1
        first.set()

    def fast():
        first.wait()
        with lock:
            c.n = c.n + 1

    _join(_start(slow, fast))


class Resource:
    def __init__(self):
        self.owner = None


def check_then_act_bug():
    r = scope.trace_object(Resource(), "resource")
    bar = threading.Barrier(2)
    done = threading.Event()

    def first():
        if r.owner is None:
            bar.wait()
            done.wait()
            r.owner = "first"

    def second():
        if r.owner is None:
            bar.wait()
            r.owner = "second"
            done.set()

    _join(_start(first, second))


def check_then_act_fixed():
    r = scope.trace_object(Resource(), "resource")
    lock = threading.Lock()
    go = threading.Event()

    def first():
        with lock:
            if r.owner is None:
                r.owner = "first"
        go.set()

    def second():
        go.wait()
        with lock:
            if r.owner is None:
                r.owner = "second"

    _join(_start(first, second))


class Account:
    def __init__(self):
        self.checking = 100
        self.savings = 0


def atomicity_bug():
    a = scope.trace_object(Account(), "account")
    bar = threading.Barrier(2)
    moved = threading.Event()
    seen = []

    def transfer():
        bar.wait()
        a.checking = a.checking - 50
        a.savings = a.savings + 50
        moved.set()

    def audit():
        c = a.checking
        bar.wait()
        moved.wait()
        seen.append(c + a.savings)

    _join(_start(transfer, audit))


def atomicity_fixed():
    a = scope.trace_object(Account(), "account")
    lock = threading.Lock()
    moved = threading.Event()
    seen = []

    def transfer():
        with lock:
            a.checking = a.checking - 50
            a.savings = a.savings + 50
        moved.set()

    def audit():
        moved.wait()
        with lock:
            seen.append(a.checking + a.savings)

    _join(_start(transfer, audit))


class Config:
    def __init__(self):
        self.conn = None
        self.current = None


def order_violation_bug():
    cfg = scope.trace_object(Config(), "config")
    bar = threading.Barrier(2)
    got = []

    def worker():
        got.append(cfg.conn)  # expects main to have connected already
        bar.wait()

    ts = _start(worker)
    bar.wait()
    cfg.conn = "db"
    _join(ts)


def order_violation_fixed():
    cfg = scope.trace_object(Config(), "config")
    got = []

    def worker():
        got.append(cfg.conn)

    cfg.conn = "db"
    _join(_start(worker))


def late_binding_bug():
    cfg = scope.trace_object(Config(), "config")
    bar = threading.Barrier(2)
    handled = []
    ts = []
    for i, job in enumerate(["job-1", "job-2"]):
        cfg.current = job

        def run(first=(i == 0)):
            if first:
                bar.wait()
            handled.append(cfg.current)  # late binding: reads the loop's current value

        t = threading.Thread(target=run)
        t.start()
        ts.append(t)
    bar.wait()
    _join(ts)


def late_binding_fixed():
    scope.trace_object(Config(), "config")
    handled = []
    ts = []
    for job in ["job-1", "job-2"]:
        t = threading.Thread(target=handled.append, args=(job,))
        t.start()
        ts.append(t)
    _join(ts)


# -- deadlocks ------------------------------------------------------------------------------------
def ab_ba_bug():
    a, b = threading.Lock(), threading.Lock()
    first_done = threading.Event()

    def one():
        with a, b:
            pass
        first_done.set()

    def two():
        first_done.wait()
        with b, a:
            pass

    _join(_start(one, two))


def ab_ba_fixed():
    a, b = threading.Lock(), threading.Lock()
    first_done = threading.Event()

    def one():
        with a, b:
            pass
        first_done.set()

    def two():
        first_done.wait()
        with a, b:
            pass

    _join(_start(one, two))


def _philosophers(ordered: bool):
    forks = [threading.Lock() for _ in range(3)]
    turns = [threading.Event() for _ in range(4)]
    turns[0].set()

    def philosopher(i):
        a, b = i, (i + 1) % 3
        if ordered:  # the fix: every philosopher takes the lower-numbered fork first
            a, b = min(a, b), max(a, b)
        left, right = forks[a], forks[b]
        turns[i].wait()
        with left, right:
            pass
        turns[i + 1].set()

    ts = [threading.Thread(target=philosopher, args=(i,)) for i in range(3)]
    for t in ts:
        t.start()
    _join(ts)


def philosophers_bug():
    _philosophers(ordered=False)


def philosophers_fixed():
    _philosophers(ordered=True)


def self_deadlock_bug():
    lock = threading.Lock()

    def helper():
        if lock.acquire(timeout=0.05):  # the same, non-reentrant lock again: never granted
            lock.release()

    def work():
        with lock:
            helper()

    _join(_start(work))


def self_deadlock_fixed():
    lock = threading.RLock()

    def helper():
        if lock.acquire(timeout=0.05):
            lock.release()

    def work():
        with lock:
            helper()

    _join(_start(work))


def lock_leak_bug():
    lock = threading.Lock()

    def work():
        lock.acquire()
        raise ValueError("bad input")  # leaves before releasing: the lock stays taken

    _join(_start(work))
    if lock.acquire(timeout=0.05):
        lock.release()


def lock_leak_fixed():
    lock = threading.Lock()

    def work():
        try:
            with lock:
                raise ValueError("bad input")
        except ValueError:
            pass

    _join(_start(work))
    if lock.acquire(timeout=0.05):
        lock.release()


def real_deadlock_bug():
    a, b = threading.Lock(), threading.Lock()
    bar = threading.Barrier(2)
    stop = threading.Event()

    def one():
        with a:
            bar.wait()
            while not b.acquire(timeout=1.0):
                if stop.is_set():
                    return
            b.release()

    def two():
        with b:
            bar.wait()
            while not a.acquire(timeout=1.0):
                if stop.is_set():
                    return
            a.release()

    ts = _start(one, two)
    wait_for_kind("deadlock")
    stop.set()
    _join(ts)


def real_deadlock_fixed():
    a, b = threading.Lock(), threading.Lock()
    bar = threading.Barrier(2)

    def one():
        bar.wait()
        with a, b:
            pass

    def two():
        bar.wait()
        with a, b:
            pass

    _join(_start(one, two))


# -- hangs and queues ------------------------------------------------------------------------------
def lost_wakeup_bug():
    cond = threading.Condition()
    notified = threading.Event()

    def waiter():
        notified.wait()
        with cond:
            cond.wait()  # the notify already happened: waits forever

    def notifier():
        with cond:
            cond.notify()
        notified.set()

    ts = _start(waiter, notifier)
    wait_for_kind("hang")
    with cond:
        cond.notify_all()
    _join(ts)


def lost_wakeup_fixed():
    cond = threading.Condition()
    state = {"ready": False}
    notified = threading.Event()

    def waiter():
        notified.wait()
        with cond:
            cond.wait_for(lambda: state["ready"])

    def notifier():
        with cond:
            state["ready"] = True
            cond.notify()
        notified.set()

    _join(_start(waiter, notifier))


def consumer_death_bug():
    q = queue.Queue(maxsize=2)

    def consumer():
        q.get()
        raise RuntimeError("consumer failed")

    def producer():
        for i in range(5):
            q.put(i)

    ts = _start(consumer, producer)
    wait_for_kind("hang")
    while True:  # unblock the producer
        try:
            q.get_nowait()
        except queue.Empty:
            if not ts[1].is_alive():
                break
    _join(ts)


def consumer_death_fixed():
    q = queue.Queue(maxsize=2)

    def consumer():
        for _ in range(5):
            q.get()

    def producer():
        for i in range(5):
            q.put(i)

    _join(_start(consumer, producer))


def backlog_bug():
    q = queue.Queue()
    produced = threading.Event()

    def producer():
        for i in range(100):
            q.put(i)
        produced.set()

    def consumer():  # too slow to keep up: half the work is still queued at the end
        produced.wait()
        for _ in range(50):
            q.get()

    _join(_start(producer, consumer))


def backlog_fixed():
    q = queue.Queue(maxsize=4)

    def producer():
        for i in range(100):
            q.put(i)

    def consumer():
        for _ in range(100):
            q.get()

    _join(_start(producer, consumer))


def missing_task_done_bug():
    q = queue.Queue()

    def worker():
        for _ in range(3):
            q.get()  # no task_done()

    for i in range(3):
        q.put(i)
    ts = _start(worker)
    joiner = threading.Thread(target=q.join, name="joiner")
    joiner.start()
    wait_for_kind("hang")
    _join(ts)
    for _ in range(3):
        q.task_done()
    joiner.join(DEADLINE)


def missing_task_done_fixed():
    q = queue.Queue()

    def worker():
        for _ in range(3):
            q.get()
            q.task_done()

    for i in range(3):
        q.put(i)
    ts = _start(worker)
    q.join()
    _join(ts)


def lock_across_get_bug():
    q = queue.Queue()
    lock = threading.Lock()
    holding = threading.Event()

    def consumer():
        with lock:
            holding.set()
            q.get()  # blocks while holding the lock the producer needs

    def producer():
        holding.wait()
        with lock:
            q.put("item")

    ts = _start(consumer, producer)
    wait_for_kind("hang")
    q.put("rescue")
    _join(ts)


def lock_across_get_fixed():
    q = queue.Queue()
    lock = threading.Lock()

    def consumer():
        item = q.get()
        with lock:
            del item

    def producer():
        with lock:
            pass
        q.put("item")

    _join(_start(consumer, producer))


def dict_iteration_bug():
    registry = {"a": 1, "b": 2}
    inside, added = threading.Event(), threading.Event()

    def reader():
        for _key in registry:
            inside.set()
            added.wait()

    def writer():
        inside.wait()
        registry["c"] = 3
        added.set()

    _join(_start(reader, writer))


def dict_iteration_fixed():
    registry = {"a": 1, "b": 2}
    inside, added = threading.Event(), threading.Event()

    def reader():
        for _key in list(registry):
            inside.set()
            added.wait()

    def writer():
        inside.wait()
        registry["c"] = 3
        added.set()

    _join(_start(reader, writer))


def silent_crash_bug():
    results = {}

    def worker():
        results["x"] = {}["missing"]

    _join(_start(worker))


def silent_crash_fixed():
    results = {}

    def worker():
        results["x"] = {}.get("missing")

    _join(_start(worker))


# -- asyncio ---------------------------------------------------------------------------------------
def asyncio_blocking_bug():
    async def handler():
        time.sleep(0.5)  # blocks the loop
        await asyncio.sleep(0)

    async def main():
        await asyncio.gather(handler(), asyncio.sleep(0))

    asyncio.run(main())


def asyncio_blocking_fixed():
    async def handler():
        await asyncio.sleep(0.5)

    async def main():
        await asyncio.gather(handler(), asyncio.sleep(0))

    asyncio.run(main())


class Cache:
    def __init__(self):
        self.value = None


def asyncio_check_then_act_bug():
    cache = scope.trace_object(Cache(), "cache")

    async def get(who):
        if cache.value is None:
            await asyncio.sleep(0)  # fetch
            cache.value = who

    async def main():
        await asyncio.gather(get("a"), get("b"))

    asyncio.run(main())


def asyncio_check_then_act_fixed():
    cache = scope.trace_object(Cache(), "cache")

    async def main():
        lock = asyncio.Lock()

        async def get(who):
            async with lock:
                if cache.value is None:
                    await asyncio.sleep(0)
                    cache.value = who

        await asyncio.gather(get("a"), get("b"))

    asyncio.run(main())


def exc_unretrieved_bug():
    async def job():
        raise KeyError("lost")

    async def main():
        t = asyncio.create_task(job())
        await asyncio.sleep(0)
        del t
        gc.collect()

    asyncio.run(main())
    gc.collect()


def exc_unretrieved_fixed():
    async def job():
        raise KeyError("lost")

    async def main():
        t = asyncio.create_task(job())
        await asyncio.sleep(0)
        try:
            await t
        except KeyError:
            pass

    asyncio.run(main())


def cancel_swallowed_bug():
    async def job():
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            return "ignored"

    async def main():
        t = asyncio.create_task(job())
        await asyncio.sleep(0)
        t.cancel()
        await t

    asyncio.run(main())


def cancel_swallowed_fixed():
    async def job():
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            raise

    async def main():
        t = asyncio.create_task(job())
        await asyncio.sleep(0)
        t.cancel()
        try:
            await t
        except asyncio.CancelledError:
            pass

    asyncio.run(main())


def task_lost_bug():
    async def main():
        fut = asyncio.get_running_loop().create_future()

        async def waiter(f):
            await f

        asyncio.create_task(waiter(fut))  # no reference kept
        del fut
        await asyncio.sleep(0)
        gc.collect()

    asyncio.run(main())
    gc.collect()


def task_lost_fixed():
    async def main():
        fut = asyncio.get_running_loop().create_future()

        async def waiter(f):
            await f

        t = asyncio.create_task(waiter(fut))
        await asyncio.sleep(0)
        fut.set_result(None)
        await t

    asyncio.run(main())


WATCHDOG = {"watchdog": 0.2}

CASES = [
    Case("lost update", lost_update_bug, lost_update_fixed, races("lost_update", "counter", "n")),
    Case(
        "check-then-act",
        check_then_act_bug,
        check_then_act_fixed,
        races("lost_update", "resource", "owner"),
    ),
    Case(
        "multi-attribute atomicity violation",
        atomicity_bug,
        atomicity_fixed,
        races("atomicity", "account"),
    ),
    Case(
        "order violation",
        order_violation_bug,
        order_violation_fixed,
        races("data_race", "config", "conn"),
    ),
    Case(
        "late-binding closure in a thread loop",
        late_binding_bug,
        late_binding_fixed,
        races("data_race", "config", "current"),
    ),
    Case("AB-BA lock order", ab_ba_bug, ab_ba_fixed, deadlock("potential")),
    Case("dining philosophers", philosophers_bug, philosophers_fixed, deadlock("potential")),
    Case("self-deadlock on Lock", self_deadlock_bug, self_deadlock_fixed, deadlock("self")),
    Case("lock leaked on exception", lock_leak_bug, lock_leak_fixed, deadlock("leaked")),
    Case(
        "AB-BA deadlock that hangs",
        real_deadlock_bug,
        real_deadlock_fixed,
        deadlock("deadlock"),
        WATCHDOG,
    ),
    Case("lost wakeup on Condition", lost_wakeup_bug, lost_wakeup_fixed, stall("hang"), WATCHDOG),
    Case(
        "consumer death with a full bounded queue",
        consumer_death_bug,
        consumer_death_fixed,
        stall("orphaned_queue", "hang"),
        WATCHDOG,
    ),
    Case("unbounded backlog", backlog_bug, backlog_fixed, stall("backlog")),
    Case(
        "missing task_done with Queue.join",
        missing_task_done_bug,
        missing_task_done_fixed,
        stall("hang"),
        WATCHDOG,
    ),
    Case(
        "lock held across a blocking queue get",
        lock_across_get_bug,
        lock_across_get_fixed,
        stall("hang"),
        WATCHDOG,
    ),
    Case(
        "dict changed during iteration",
        dict_iteration_bug,
        dict_iteration_fixed,
        crash("RuntimeError"),
    ),
    Case("silent worker crash", silent_crash_bug, silent_crash_fixed, crash("KeyError")),
    Case(
        "asyncio blocking call",
        asyncio_blocking_bug,
        asyncio_blocking_fixed,
        stall("blocked_loop"),
        {"slow_callback": 0.2},
    ),
    Case(
        "asyncio check-then-act across await",
        asyncio_check_then_act_bug,
        asyncio_check_then_act_fixed,
        races("lost_update", "cache", "value"),
    ),
    Case(
        "task exception never retrieved",
        exc_unretrieved_bug,
        exc_unretrieved_fixed,
        stall("exc_unretrieved"),
    ),
    Case(
        "cancellation swallowed",
        cancel_swallowed_bug,
        cancel_swallowed_fixed,
        stall("cancel_swallowed"),
    ),
    Case("task lost while pending", task_lost_bug, task_lost_fixed, stall("task_lost")),
]
