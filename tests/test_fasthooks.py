"""The C callbacks (scope_nb.recorder._fasthooks) record exactly what the Python ones do:
the same recordings, made once each way, give identical frames (timestamps and
durations aside)."""

import asyncio
import contextlib
import os
import queue
import re
import subprocess
import sys
import threading
from array import array
from pathlib import Path

import calls_sample as cs
import fasthooks_sample as fs
import polars as pl
import pytest
from both_ways import c_then_pure

import scope_nb as scope
from scope_nb.recorder import session
from scope_nb.recorder.patchers import locks

fast = pytest.importorskip("scope_nb.recorder._fasthooks", reason="the C extension is not built")

TIMING = ["ts", "duration_ns"]
_ADDR = re.compile(r"0x[0-9a-f]+")
_TASK = re.compile(r"Task-\d+")


class Hostile:
    def __repr__(self):
        raise RuntimeError("no repr for you")


def _normalise(frame: pl.DataFrame, order_free: bool = False) -> list:
    """Rows without timing; actors renamed by first appearance (thread idents and task
    numbers differ between two runs), object addresses and task numbers in texts masked."""
    frame = frame.drop([c for c in TIMING if c in frame.columns])
    names: dict = {}
    rows = []
    for row in frame.iter_rows(named=True):
        for k, v in row.items():
            if isinstance(v, str):
                row[k] = _TASK.sub("Task-?", _ADDR.sub("0x?", v))
        if row.get("actor") is not None:
            row["actor"] = names.setdefault(row["actor"], f"A{len(names)}")
        rows.append(row)
    if order_free:  # threads interleave differently: compare what each actor did
        for row in rows:
            row.pop("seq", None)
            row.pop("parent_seq", None)
            row.pop("call_seq", None)
            row["actor"] = None
        rows.sort(key=repr)
    return rows


def _both(monkeypatch, workload, **options):
    """Run `workload` under a recording with the C callbacks, then with SCOPE_NB_PURE=1."""

    def run(pure):
        with scope.record(**options) as trace:
            uses_c = session.ACTIVE.backend.fast is not None
            workload()
        return trace, uses_c

    (c_trace, c_used), (py_trace, py_used) = c_then_pure(monkeypatch, run)
    assert not py_used
    return c_trace, py_trace, c_used


def _single_thread_workload():
    loop = []
    loop.append(loop)
    assert cs.fib(12) == 144
    with pytest.raises(ValueError):
        cs.fail(3)
    with pytest.raises(ValueError):
        cs.fail("x", password="pw")
    for v in (
        Hostile(),
        loop,
        list(range(100_000)),
        {"token": "abc", "user": "bob"},
        "y" * 10_000,
        b"z" * 10,
        1.5,
        2j,
        True,
        None,
        (1, "a"),
        fs.Shown("s"),
    ):
        cs.echo(v)
    c = cs.Counter()
    c.bump()
    c.bump(by=3)
    assert cs.Counter.Inner.twice(4) == 8
    assert list(cs.countdown(3)) == [3, 2, 1]
    assert asyncio.run(cs.main(4)) == [0, 2, 4, 6]
    fs.pair([1], {"k": Hostile()})
    fs.login("ann", "tok", 1, 2, mode="x")
    assert fs.captured([5]) == [5]
    fs.nothing()
    assert fs.raises_caught(7) == 7
    with pytest.raises(ZeroDivisionError):
        fs.boom(3)
    fs.Shown("a").rename("b")


@pytest.mark.parametrize("capture_args", [True, False])
def test_same_calls_single_thread(monkeypatch, capture_args):
    c_trace, py_trace, c_used = _both(
        monkeypatch, _single_thread_workload, modules=[cs, fs], capture_args=capture_args
    )
    assert c_used
    c_calls, py_calls = c_trace.function_calls(), py_trace.function_calls()
    assert c_calls.height > 100
    assert _normalise(c_calls) == _normalise(py_calls)
    assert _normalise(c_trace.events()) == _normalise(py_trace.events())
    assert c_trace.errors == py_trace.errors == {}
    assert c_trace.dropped == py_trace.dropped == 0
    if capture_args:
        fail = c_calls.filter(pl.col("function") == "fail")["args"].to_list()
        assert fail == ["x=3, password='<redacted>'", "x='x', password='<redacted>'"]
        login = c_calls.filter(pl.col("function") == "login").row(0, named=True)
        assert "api_token='<redacted>'" in login["args"] and "user='ann'" in login["args"]
        assert c_calls.filter(pl.col("function") == "captured")["args"].to_list() == ["x=[5]"]


def test_same_calls_many_chunks_and_a_bound(monkeypatch):
    """A small max_events: chunks of 64 are sealed from C and the oldest dropped."""

    def work():
        for _ in range(30):
            cs.fib(7)

    c_trace, py_trace, c_used = _both(monkeypatch, work, modules=[cs], max_events=2_000)
    assert c_used
    assert c_trace.dropped == py_trace.dropped > 0
    assert _normalise(c_trace.function_calls()) == _normalise(py_trace.function_calls())


def test_same_calls_in_threads(monkeypatch):
    def work():
        barrier = threading.Barrier(4)

        def run(n):
            barrier.wait()
            for _ in range(5):
                cs.fib(n)
                cs.echo([n])
                with contextlib.suppress(ValueError):
                    cs.fail(n)

        threads = [threading.Thread(target=run, args=(n,)) for n in (6, 7, 8, 9)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    c_trace, py_trace, c_used = _both(monkeypatch, work, modules=[cs])
    assert c_used
    c_calls, py_calls = c_trace.function_calls(), py_trace.function_calls()
    assert c_calls["actor"].n_unique() == py_calls["actor"].n_unique() == 4
    assert _normalise(c_calls, order_free=True) == _normalise(py_calls, order_free=True)


def test_same_calls_tracing_all_user_code(monkeypatch):
    def work():
        import json

        scope.trace_all_processes()
        cs.fib(5)
        fs.pair(1, 2)
        json.dumps({"a": [1, 2]})

    c_trace, py_trace, c_used = _both(monkeypatch, work)
    assert c_used
    c_calls = c_trace.function_calls()
    assert {"fib", "pair"} <= set(c_calls["function"].to_list())
    assert not any(m.startswith("json") for m in c_calls["module"].to_list())
    strip = ["work"]  # the workload itself is user code, seen from its first call on
    a = [r for r in _normalise(c_calls) if r["function"] not in strip]
    b = [r for r in _normalise(py_trace.function_calls()) if r["function"] not in strip]
    assert a == b


def _lock_workload():
    """Every path of a traced Lock / RLock: a loop (repeated events), nesting both ways
    (an order inversion), reentrancy, non-blocking and timed acquires that fail, a wait
    for a lock another thread holds, a release by another thread, Condition, errors."""
    a, b, r = threading.Lock(), threading.Lock(), threading.RLock()
    for _ in range(50):
        with a:
            pass
    with a:
        with b:
            assert not a.acquire(False)
            assert not a.acquire(timeout=0.001)
    with b:
        with a:
            pass
    with r:
        with r:
            assert r.acquire(blocking=True, timeout=1)
            r.release()
    with pytest.raises(RuntimeError):
        a.release()
    with pytest.raises(ValueError):
        a.acquire(False, 1)
    held, go = threading.Event(), threading.Event()

    def holder():
        a.acquire()
        held.set()
        go.wait()
        a.release()

    t = threading.Thread(target=holder)
    t.start()
    held.wait()
    assert not a.acquire(timeout=0.01)  # waits for the holder: a wait, then a timeout
    go.set()
    t.join()
    c = threading.Lock()
    c.acquire()
    t = threading.Thread(target=c.release)  # released by another thread
    t.start()
    t.join()
    cond = threading.Condition()
    box = []

    def waiter():
        with cond:
            cond.wait_for(lambda: box)

    t = threading.Thread(target=waiter)
    t.start()
    with cond:
        box.append(1)
        cond.notify_all()
    t.join()
    return a, r


def test_same_lock_events(monkeypatch):
    """The C lock core (record/_fastlocks.c) records what the Python methods do."""
    kinds = ["lock_wait", "lock_acquire", "lock_release", "lock_timeout", "lock_order"]

    def run(pure):
        with scope.record(tracing_level="messages_only") as trace:
            a, r = _lock_workload()
        assert (type(a), type(r)) == (
            (locks.PyTracedLock, locks.PyTracedRLock)
            if pure
            else (locks.TracedLock, locks.TracedRLock)
        )
        return trace

    c_trace, py_trace = c_then_pure(monkeypatch, run)
    c_ev, py_ev = c_trace.events(kinds), py_trace.events(kinds)
    assert c_ev.height > 100
    assert _normalise(c_ev, order_free=True) == _normalise(py_ev, order_free=True)
    assert c_trace.errors == py_trace.errors == {}
    assert c_trace.events("lock_order").height == 1
    assert c_trace.events("lock_timeout").height == c_trace.events("lock_wait").height == 2


class _SizedQueue(queue.Queue):
    def _qsize(self):  # the C hook calls an overridden _qsize, as Python does
        return len(self.queue) * 10


class _HugeQueue(queue.Queue):
    def _qsize(self):  # more than a MessageEvent holds: the event keeps the int itself
        return len(self.queue) + 2**40


class _FloatQueue(queue.Queue):
    def _qsize(self):  # not an int at all: the depth is unknown
        return len(self.queue) + 0.5


class _HugerQueue(queue.Queue):
    def _qsize(self):  # beyond int64: unknown too
        return len(self.queue) + 2**70


def _message_workload(early):
    jobs, sized = queue.Queue(maxsize=3), _SizedQueue()
    lifo, prio = queue.LifoQueue(), queue.PriorityQueue()
    go = threading.Barrier(2)

    def producer():
        go.wait()
        for i in range(40):
            jobs.put((i, "job", None))
        jobs.put(None)

    t = threading.Thread(target=producer)
    t.start()
    go.wait()
    got = []
    while (item := jobs.get()) is not None:
        got.append(item)
    t.join()
    early.put({"a": [1, 2]})  # formatted now, not kept by reference
    assert early.get() == "waiting" and early.get() == {"a": [1, 2]}
    sized.put(1.5)
    queue.Queue._put(sized, item=2)  # an unusual call: the Python closure takes it
    assert sized.get() == 1.5 and sized.get() == 2
    sized.put(3)  # and the other way round: sent by the C hook, received by the closure
    assert queue.Queue._get(self=sized) == 3
    for odd in (_HugeQueue(), _FloatQueue(), _HugerQueue()):
        odd.put(4)
        assert odd.get() == 4
    for v in (3, 1, 2):
        lifo.put(v)
        prio.put(v)
    assert [lifo.get() for _ in range(3)] == [2, 1, 3] and [prio.get() for _ in range(3)] == [
        1,
        2,
        3,
    ]

    async def pipe():
        aq = asyncio.Queue()
        for i in range(5):
            await aq.put(i)
        return [await aq.get() for _ in range(5)]

    assert asyncio.run(pipe()) == list(range(5))
    return len(got)


def test_c_events_share_the_python_clock():
    """The C lock and queue paths stamp events on the clock of clock.now(), so they
    sort with everything the Python paths record."""
    from scope_nb import clock

    with scope.record(tracing_level="messages_only") as trace:
        lock, jobs = threading.Lock(), queue.Queue()
        assert type(lock) is locks.TracedLock
        t0 = clock.now()
        with lock:
            jobs.put(1)
        assert jobs.get() == 1
        t1 = clock.now()
    ev = trace.events(["lock_acquire", "lock_release", "send", "receive"])
    assert ev["kind"].to_list() == ["lock_acquire", "send", "lock_release", "receive"]
    assert ev["ts"].is_sorted() and t0 <= ev["ts"].min() and ev["ts"].max() <= t1


def test_same_message_events(monkeypatch):
    """The C queue hooks (record/_fastqueues.c) record what the Python closures do."""

    def run(pure):
        early = queue.Queue()
        early.put("waiting")  # before start: received without a send
        with scope.record(tracing_level="messages_only") as trace:
            hooks = {type(c.__dict__["_put"]).__name__ for c in (queue.Queue, asyncio.Queue)}
            assert _message_workload(early) == 40
        assert hooks == ({"function"} if pure else {"QueueHook"})
        return trace

    c_trace, py_trace = c_then_pure(monkeypatch, run)
    kinds = ["send", "receive"]
    c_ev, py_ev = c_trace.events(kinds), py_trace.events(kinds)
    assert c_ev.height == py_ev.height == 2 * 41 + 3 + 6 + 6 + 2 * 6 + 10
    assert _normalise(c_ev.drop("msg_id"), order_free=True) == _normalise(
        py_ev.drop("msg_id"), order_free=True
    )
    for ev in (c_ev, py_ev):  # every receive but the item waiting before start pairs with its send
        sends, receives = ev.filter(kind="send"), ev.filter(kind="receive")
        assert receives["msg_id"].null_count() == 1
        pairs = sends.join(receives, on="msg_id", suffix="_r")
        assert pairs.height == sends.height and (pairs["detail"] == pairs["detail_r"]).all()
        odd = ev.filter(pl.col("qsize").is_null() | (pl.col("qsize") > 2**32))["qsize"].to_list()
        assert odd == [2**40 + 1, 2**40, None, None, None, None]
    assert c_trace.errors == py_trace.errors == {}


def test_sampling_uses_c_and_stays_deterministic(monkeypatch):
    def work():
        for i in range(300):
            cs.echo(i)

    c_trace, py_trace, c_used = _both(monkeypatch, work, modules=[cs], sample_rate=0.3, seed=11)
    assert c_used  # the C hooks make the same seeded decisions (tests/test_sampling_native.py)
    assert c_trace.dropped == py_trace.dropped > 0
    assert _normalise(c_trace.function_calls()) == _normalise(py_trace.function_calls())


def test_a_fault_in_c_is_counted_not_raised(monkeypatch):
    with scope.record(modules=[cs]) as trace:
        rec = session.ACTIVE
        assert rec.backend.fast is not None

        def broken(value):
            raise RuntimeError("formatter broke")

        monkeypatch.setattr(rec.fmt, "capture", broken)
        assert cs.echo([1]) == [1]
        assert cs.echo(2) == 2  # atomic values need no formatter
        monkeypatch.undo()
    assert trace.errors.get("capture") == 2
    assert trace.function_calls().filter(pl.col("function") == "echo")["result"].to_list() == [
        "<list>",
        "2",
    ]


def test_a_fault_in_lock_or_queue_bookkeeping_is_counted_not_raised(monkeypatch):
    """The lock-order check and a message's formatting fail inside the recorder: the
    program sees nothing, the locks and the queue work, the faults are counted (C
    core and Python methods alike)."""
    from scope_nb.recorder.patchers import locks, messages

    def broken(*args):
        raise RuntimeError("recorder broke")

    monkeypatch.setattr(locks.LockState, "_order", broken)
    monkeypatch.setattr(messages, "_detail", broken)

    def run(pure):
        q = queue.Queue()
        with scope.record(tracing_level="messages_only") as trace:
            a, b = threading.Lock(), threading.Lock()
            with a, b:  # b taken while holding a: the order check runs
                assert a.locked() and b.locked()
            assert not a.locked() and not b.locked()
            q.put({"k": 1})  # not atomic: formatted, which fails
            assert q.get() == {"k": 1}
        return trace

    for trace in c_then_pure(monkeypatch, run):
        assert trace.errors == {"locks:took": 1, "queue.put": 1, "queue.get": 1}
        assert trace.events("lock_acquire").height == 2 and trace.events("lock_release").height == 2


def test_buffers_use_c_columns_and_chunks_stay_arrays():
    with scope.record(modules=[cs], max_events=2_000) as trace:
        b = session.ACTIVE.buffer()
        assert type(b.ts) is fast.Col and type(b.ks) is fast.Col
        cs.fib(10)
        sealed = list(session.ACTIVE.store.sealed)
    assert sealed and all(
        type(c.ts) is array and c.ts.typecode == "q" and c.ks.typecode == "I" for c in sealed
    )
    assert trace.function_calls().height == 177


def test_col_behaves_like_the_array_it_replaces():
    ts, ks = fast.Col("q"), fast.Col("I")
    for i in range(1000):
        ts.append(-(i << 40))
        ks.append(i * 7)
    assert len(ts) == len(ks) == 1000
    assert ts[:] == array("q", [-(i << 40) for i in range(1000)])
    assert ks[10:20] == array("I", [i * 7 for i in range(10, 20)])
    assert ks[::100] == array("I", [i * 7 for i in range(0, 1000, 100)])
    assert ts[-1] == -(999 << 40) and ks[3] == 21
    assert list(ks)[:3] == [0, 7, 14]
    m = memoryview(ks)
    assert m.format == "I" and m.itemsize == 4 and m.tolist()[:3] == [0, 7, 14]
    assert pl.Series(ts[:]).dtype == pl.Int64
    grow = fast.Col("q")
    view = memoryview(grow)
    with pytest.raises(BufferError):
        for i in range(1000):
            grow.append(i)
    view.release()
    grow.append(1)
    with pytest.raises(OverflowError):
        ks.append(-1)
    with pytest.raises(OverflowError):
        ks.append(1 << 32)
    with pytest.raises(TypeError):
        ts.append("1")
    with pytest.raises(IndexError):
        ts[5000]
    with pytest.raises(ValueError):
        fast.Col("d")


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="the profile function is the 3.11 back-end")
def test_profile_function_is_c_and_restored():
    with scope.record(modules=[cs]) as trace:
        hooks = session.ACTIVE.backend.fast
        assert sys.getprofile() is hooks
        box = []
        t = threading.Thread(target=lambda: box.append(cs.fib(4)))
        t.start()
        t.join()
    assert sys.getprofile() is None
    assert box == [3] and trace.function_calls().height == 9


@pytest.mark.parametrize("suite", ["test_recorder.py", "test_locks.py"])
def test_suite_passes_with_the_python_callbacks(suite):
    """These suites run with the C callbacks and C lock core in this process; here they
    run again with SCOPE_NB_PURE=1."""
    here = Path(__file__).parent
    env = dict(os.environ, SCOPE_NB_PURE="1")
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", str(here / suite)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        cwd=here.parent,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


def test_long_text_is_not_pinned_by_the_trace(monkeypatch):
    """A call argument, a return value or a message holding text longer than
    values.MAX_ATOMIC_STR is kept as a cut copy, not by reference: the trace must not
    keep a huge string alive (C paths and Python paths alike)."""
    from scope_nb.values import MAX_ATOMIC_STR

    def work(big, small):  # its own frame: naming a lock reads the locals of the frame that made it
        jobs, done = queue.Queue(), threading.Event()
        with scope.record(modules=["calls_sample"]) as trace:
            cs.echo(big)
            cs.echo(small)

            def consumer():
                for _ in range(2):
                    jobs.get()
                done.set()

            t = threading.Thread(target=consumer)
            t.start()
            jobs.put((big, 1))
            jobs.put((small, 2))
            done.wait()
            t.join()
        return trace

    def run(pure):
        big, small = "x" * (MAX_ATOMIC_STR + 1), "y" * MAX_ATOMIC_STR
        before = sys.getrefcount(big), sys.getrefcount(small)
        trace = work(big, small)
        # short text is kept by reference (an argument, a return, a message: 3 more, and
        # the copies of the threads' unsealed chunks stop() took), long text is not
        assert sys.getrefcount(big) == before[0] and sys.getrefcount(small) >= before[1] + 3
        calls = trace.events(["call", "return"])
        assert calls.height == 4 and calls["detail"].str.len_chars().max() <= 220
        sent = trace.events("send")["detail"].to_list()
        assert len(sent) == 2 and sent[0].startswith("('xxx") and max(map(len, sent)) <= 220
        return trace

    c_trace, py_trace = c_then_pure(monkeypatch, run)
    assert c_trace.errors == py_trace.errors == {}
