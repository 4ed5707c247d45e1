"""Real thread bugs: executors and queues that wait forever, shared dicts and caches
changed by two threads at once. Hangs are diagnosed by the watchdog and then released by
the program itself, so every run ends."""

from __future__ import annotations

import concurrent.futures as cf
import queue
import threading

import scope_nb as scope

from .harness import (
    WATCHDOG,
    Case,
    both,
    crash,
    join,
    race,
    stall,
    start,
    wait_for_hang,
    wait_for_kind,
)


# -- python/cpython gh-141617 (the executor deadlock the docs describe) ------------------------
def _pool_self_wait(workers: int):
    ex = cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pool")
    inner: dict[str, cf.Future] = {}

    def outer():  # a task that submits to its own pool and waits for the result
        inner["f"] = ex.submit(pow, 2, 10)
        try:
            return inner["f"].result()
        except cf.CancelledError:
            return None

    f = ex.submit(outer)
    if workers == 1:  # the only worker waits for a task queued behind itself
        wait_for_kind("hang")
        inner["f"].cancel()
    f.result()
    ex.shutdown()


def pool_self_wait_bug():
    _pool_self_wait(workers=1)


def pool_self_wait_fixed():
    _pool_self_wait(workers=2)


# -- huggingface/smolagents #2464 (fixed by #2711) ---------------------------------------------
def _executor_shutdown(wait_on_exit: bool):
    release = threading.Event()

    def hung_tool():
        release.wait()

    def rescuer():  # ends the run once the watchdog has named the hang
        wait_for_hang("MainThread", "join")
        release.set()

    ts = start(rescuer) if wait_on_exit else []
    ex = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="tool")
    fut = ex.submit(hung_tool)
    try:
        fut.result(timeout=0.05)
    except cf.TimeoutError:
        pass
    if wait_on_exit:  # leaving `with ThreadPoolExecutor()` joins the worker that never returns
        ex.shutdown(wait=True)
    else:  # the fix: do not wait for a worker that timed out
        ex.shutdown(wait=False, cancel_futures=True)
        release.set()
        ex.shutdown(wait=True)
    join(ts)


def executor_shutdown_bug():
    _executor_shutdown(wait_on_exit=True)


def executor_shutdown_fixed():
    _executor_shutdown(wait_on_exit=False)


# -- MISP/misp-takedown #4 ---------------------------------------------------------------------
def _takedown(guarded: bool):
    tasks = queue.Queue()
    results = []

    def check_url():
        raise ValueError("unreachable host")

    def consumer():
        while True:
            task = tasks.get()
            if task is None:
                tasks.task_done()
                return
            if guarded:  # the fix: the error becomes a result, task_done always runs
                try:
                    results.append(task())
                except ValueError as e:
                    results.append(e)
                finally:
                    tasks.task_done()
            else:
                results.append(task())
                tasks.task_done()

    for t in (lambda: "ok", check_url, None):
        tasks.put(t)
    ts = start(consumer)
    joiner = threading.Thread(target=tasks.join, name="joiner")
    joiner.start()
    if not guarded:
        wait_for_kind("hang")
        join(ts)
        tasks.task_done()  # release the joiner: the two items nobody finished
        tasks.task_done()
    joiner.join()
    join(ts)


def takedown_bug():
    _takedown(guarded=False)


def takedown_fixed():
    _takedown(guarded=True)


# -- tilezen/tilequeue #131 --------------------------------------------------------------------
def _tilequeue(always_stop: bool):
    jobs, results = queue.Queue(), queue.Queue()
    errors = []

    def enqueuer():
        try:
            for z in (1, 2, -1):
                if z < 0:
                    raise AssertionError(f"bad zoom {z}")
                jobs.put(z)
        except AssertionError as e:
            if not always_stop:
                raise
            errors.append(e)  # the fix: record the failure and always tell the worker to stop
        jobs.put(None)

    def worker():
        while (z := jobs.get()) is not None:
            results.put(z * z)
        results.put(None)

    def rescuer():
        wait_for_hang("MainThread", "queue get")
        jobs.put(None)

    ts = start(enqueuer, worker) + ([] if always_stop else start(rescuer))
    while results.get() is not None:  # the main thread waits for the end marker
        pass
    join(ts)


def tilequeue_bug():
    _tilequeue(always_stop=False)


def tilequeue_fixed():
    _tilequeue(always_stop=True)


# -- srand/jolt #84 ----------------------------------------------------------------------------
def _jolt(copy_under_lock: bool):
    futures = {"build": 1}
    lock = threading.Lock()
    inside, added = threading.Event(), threading.Event()

    def timer():  # logs the running time of every task in flight
        if copy_under_lock:  # the fix: iterate a copy taken under the scheduler's lock
            with lock:
                running = list(futures.items())
        else:
            running = futures.items()
        for _name, _f in running:
            inside.set()
            added.wait()

    def scheduler():
        inside.wait()
        with lock:
            futures["test"] = 2
        added.set()

    join(start(timer, scheduler))


def jolt_bug():
    _jolt(copy_under_lock=False)


def jolt_fixed():
    _jolt(copy_under_lock=True)


# -- mahmoud/boltons #52 -----------------------------------------------------------------------
def _lru(locked: bool):
    link_map = {0: 0, 1: 1}  # full at max_size 2; insertion order is age
    lock = threading.RLock()
    both_read = threading.Barrier(2)
    evicted = threading.Event()

    def insert(key):
        oldest = next(iter(link_map))
        del link_map[oldest]
        link_map[key] = key

    def fill_a():
        if locked:  # the fix: every mutation of the LRU under its lock
            with lock:
                insert(2)
            evicted.set()
            return
        oldest = next(iter(link_map))
        both_read.wait()
        del link_map[oldest]
        link_map[2] = 2
        evicted.set()

    def fill_b():
        if locked:
            evicted.wait()
            with lock:
                insert(3)
            return
        oldest = next(iter(link_map))  # both threads picked the same oldest key
        both_read.wait()
        evicted.wait()
        del link_map[oldest]
        link_map[3] = 3

    join(start(fill_a, fill_b))


def lru_bug():
    _lru(locked=False)


def lru_fixed():
    _lru(locked=True)


# -- tkem/cachetools #80 -----------------------------------------------------------------------
class _Cache:
    def __init__(self):
        self.currsize = 0


def cachetools_bug():
    cache = scope.trace_object(_Cache(), "cache")
    read, wrote = threading.Event(), threading.Event()

    def store_a():  # the bookkeeping of a cache insert, with no lock around it
        size = cache.currsize
        read.set()
        wrote.wait()
        cache.currsize = size + 1

    def store_b():
        read.wait()
        cache.currsize = cache.currsize + 1
        wrote.set()

    join(start(store_a, store_b))


def cachetools_fixed():
    cache = scope.trace_object(_Cache(), "cache")
    lock = threading.Lock()  # the maintainer's answer: share the cache only under a lock
    first = threading.Event()

    def store_a():
        with lock:
            cache.currsize = cache.currsize + 1
        first.set()

    def store_b():
        first.wait()
        with lock:
            cache.currsize = cache.currsize + 1

    join(start(store_a, store_b))


# -- NVIDIA-NeMo/Guardrails #1803 ---------------------------------------------------------------
class _Registry:
    """A name -> item registry that refuses a second registration of a name."""

    def __init__(self, locked: bool):
        self.items = {}
        self.lock = threading.RLock() if locked else None

    def add(self, name, item, between=None):
        if self.lock is not None:  # the fix: the check and the insert under one lock
            with self.lock:
                self._add(name, item, between)
        else:
            self._add(name, item, between)

    def _add(self, name, item, between):
        if name in self.items:
            raise ValueError(f"{name} is already registered")
        if between is not None:
            between()
        self.items[name] = item


def _guardrails(locked: bool):
    reg = scope.trace_object(_Registry(locked), "registry")
    both_checked = threading.Barrier(2)
    refused = []

    def register(item):
        try:
            # unlocked, both threads pass the check before either inserts: the second
            # insert silently replaces the first instead of raising ValueError
            reg.add("x", item, None if locked else both_checked.wait)
        except ValueError:
            refused.append(item)

    def register_a():
        register("pool-a")

    def register_b():
        register("pool-b")

    join(start(register_a, register_b))


def guardrails_bug():
    _guardrails(locked=False)


def guardrails_fixed():
    _guardrails(locked=True)


# -- RagnarGrootKoerkamp/BAPCtools #268 --------------------------------------------------------
class _Parallel:
    def __init__(self):
        self.stopping = False


def _bapc(mutex: bool):
    pool = scope.trace_object(_Parallel(), "parallel")
    q = queue.Queue()
    lock = threading.Lock()
    both_checked = threading.Barrier(2)
    done = threading.Event()

    def stop(first: bool):
        if mutex:  # the fix: check and set the flag under one mutex
            if not first:
                done.wait()
            with lock:
                if not pool.stopping:
                    pool.stopping = True
                    q.put(None)
            if first:
                done.set()
            return
        if not pool.stopping:
            both_checked.wait()
            if not first:
                done.wait()
            pool.stopping = True
            q.put(None)  # each thread pushes its own stop marker: twice as many as workers
            if first:
                done.set()

    def worker_a():
        stop(first=True)

    def worker_b():
        stop(first=False)

    join(start(worker_a, worker_b))


def bapc_bug():
    _bapc(mutex=False)


def bapc_fixed():
    _bapc(mutex=True)


# -- OPM/opm-models #304 (C++; the same mechanism with threading.Condition) --------------------
def _barrier_tasklet(predicate: bool):
    cond = threading.Condition()
    state = {"arrived": False}
    notified = threading.Event()

    def waiter():
        notified.wait()  # it was still preparing to wait when the notification went out
        with cond:
            if predicate:  # the fix: wait under the mutex for a predicate, not for a notification
                cond.wait_for(lambda: state["arrived"])
            else:
                cond.wait()

    def notifier():
        with cond:
            state["arrived"] = True
            cond.notify_all()
        notified.set()

    ts = start(waiter, notifier)
    if not predicate:
        wait_for_kind("hang")
        with cond:
            cond.notify_all()
    join(ts)


def barrier_tasklet_bug():
    _barrier_tasklet(predicate=False)


def barrier_tasklet_fixed():
    _barrier_tasklet(predicate=True)


CASES = [
    Case(
        "pool task waits on a task queued behind it in the same one-worker pool",
        "python/cpython gh-141617",
        pool_self_wait_bug,
        pool_self_wait_fixed,
        stall("hang", "pool_0", "future result"),
        "detect_stalls: hang, worker pool_0 waits on the inner future's result",
        WATCHDOG,
    ),
    Case(
        "leaving a ThreadPoolExecutor block joins a worker that never returns",
        "huggingface/smolagents #2464",
        executor_shutdown_bug,
        executor_shutdown_fixed,
        stall("hang", "MainThread", "join", "tool_0", "release"),
        "detect_stalls: hang, MainThread waits on join of tool_0, which waits on event release",
        WATCHDOG,
    ),
    Case(
        "worker dies before task_done, the parent waits in Queue.join forever",
        "MISP/misp-takedown #4",
        takedown_bug,
        takedown_fixed,
        both(stall("hang", "joiner", "queue join tasks"), crash("ValueError", "consumer")),
        "detect_stalls: hang, joiner waits on queue join tasks; get_crash_events: consumer "
        "ValueError",
        WATCHDOG,
    ),
    Case(
        "enqueuer thread crashes, the main thread waits for results forever",
        "tilezen/tilequeue #131",
        tilequeue_bug,
        tilequeue_fixed,
        both(
            stall("hang", "MainThread", "queue get results", "queue get jobs"),
            crash("AssertionError", "enqueuer"),
        ),
        "detect_stalls: hang, MainThread waits on queue get results, worker on jobs; "
        "get_crash_events: enqueuer AssertionError",
        WATCHDOG,
    ),
    Case(
        "timer thread iterates a dict the scheduler thread changes",
        "srand/jolt #84",
        jolt_bug,
        jolt_fixed,
        crash("RuntimeError", "timer"),
        "get_crash_events: timer RuntimeError (dictionary changed size)",
    ),
    Case(
        "two threads evict the same oldest key from an unlocked LRU",
        "mahmoud/boltons #52",
        lru_bug,
        lru_fixed,
        crash("KeyError", "fill_b"),
        "get_crash_events: fill_b KeyError",
    ),
    Case(
        "cache size bookkeeping updated by two threads without a lock",
        "tkem/cachetools #80",
        cachetools_bug,
        cachetools_fixed,
        race("lost_update", "cache", "currsize"),
        "detect_race_conditions: lost update on cache.currsize",
    ),
    Case(
        "two threads both find a name unregistered and both register it",
        "NVIDIA-NeMo/Guardrails #1803",
        guardrails_bug,
        guardrails_fixed,
        race("lost_update", "registry", "items['x']"),
        "detect_race_conditions: lost update on registry.items['x']",
    ),
    Case(
        "two workers both see stopping unset and both push stop markers",
        "RagnarGrootKoerkamp/BAPCtools #268",
        bapc_bug,
        bapc_fixed,
        race("lost_update", "parallel", "stopping"),
        "detect_race_conditions: lost update on parallel.stopping",
    ),
    Case(
        "notify_all before the other thread waits: the wait locks up",
        "OPM/opm-models #304",
        barrier_tasklet_bug,
        barrier_tasklet_fixed,
        stall("hang", "waiter", "condition cond"),
        "detect_stalls: hang, waiter waits on condition cond",
        WATCHDOG,
    ),
]
