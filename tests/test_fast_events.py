"""The events frame built with the C pairing (scope_nb.model.fast_events) is the frame
the polars reference (scope_nb.model.frames.pair_calls) makes from the same buffers:
on real recordings (threads, tasks, generators, coroutines, failures, locks, queues,
a bound) and on hand-made call streams with orphans and generator segments."""

import asyncio
import contextlib
import queue
import threading
from array import array
from types import SimpleNamespace

import calls_sample as cs
import polars as pl
import pytest

import scope_nb as scope
from scope_nb.model.fast_events import events_frame, native_pairing
from scope_nb.model.frames import pair_calls, raw_events, sites_frame
from scope_nb.recorder.buffer import (
    CALL,
    EXCEPTION,
    KIND_BITS,
    RESUME,
    RETURN,
    SUSPEND,
    SWITCH,
    Chunk,
)
from scope_nb.values import Formatter

pytestmark = pytest.mark.skipif(native_pairing() is None, reason="the C extension is not built")


def _both(
    chunks, critical, sites, fmt, limit=None, pid=7, offset=1000
) -> tuple[pl.DataFrame, pl.DataFrame]:
    fast = events_frame(chunks, critical, sites, fmt, pid, offset, limit)
    ref = pair_calls(
        raw_events(chunks, critical, sites, fmt), sites_frame(sites), pid, offset, limit
    )
    return fast, ref


def _same(fast: pl.DataFrame, ref: pl.DataFrame) -> None:
    assert fast.schema == ref.schema
    assert fast.height == ref.height
    for c in fast.columns:
        assert fast[c].to_list() == ref[c].to_list(), c


def _check_trace(trace, limit=None) -> pl.DataFrame:
    rec = trace._rec
    chunks, critical = rec.snapshot()
    fast, ref = _both(chunks, critical, list(rec.sites), rec.fmt, limit)
    _same(fast, ref)
    return fast


def test_threads_tasks_generators_and_failures():
    def worker(n, q, lock):
        for i in range(30):
            with lock:
                cs.fib(n)
            q.put((n, i))
            with contextlib.suppress(ValueError):
                cs.fail(i)
        assert list(cs.countdown(4)) == [4, 3, 2, 1]

    async def tasks():
        aq = asyncio.Queue()

        async def produce(n):
            for i in range(10):
                await aq.put((n, i))
                await cs.double(i)

        async def consume(k):
            return [await aq.get() for _ in range(k)]

        got = await asyncio.gather(*(produce(n) for n in range(3)), consume(30))
        return got[-1]

    with scope.record(modules=[cs]) as trace:
        q: queue.Queue = queue.Queue()
        lock = threading.Lock()
        start = threading.Barrier(3)

        def run(n):
            start.wait()
            worker(n, q, lock)

        threads = [threading.Thread(target=run, args=(n,)) for n in (5, 6, 7)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(asyncio.run(tasks())) == 30
        assert cs.Counter.Inner.twice(3) == 6
        frame = _check_trace(trace)
    kinds = set(frame["kind"].to_list())
    assert {"call", "return", "exception", "spawn", "send", "receive", "lock_acquire"} <= kinds
    calls = frame.filter(kind="call")
    assert calls["duration_ns"].null_count() < calls.height and calls["depth"].min() == 1
    assert frame.filter(pl.col("function") == "double")["actor"].str.starts_with("A").all()


def test_a_bound_keeps_the_critical_events():
    with scope.record(modules=[cs], max_events=2_000) as trace:
        for i in range(60):
            cs.fib(7)
            cs.echo(i)
        t = threading.Thread(target=cs.fib, args=(5,))
        t.start()
        t.join()
        rec = trace._rec
        chunks, critical = rec.snapshot()
        sites, fmt = list(rec.sites), rec.fmt
    for limit in (None, 2_000, 500, 3):
        fast, ref = _both(chunks, critical, sites, fmt, limit)
        _same(fast, ref)
        if limit is not None:
            assert fast.height <= max(
                limit, fast.filter(kind="spawn").height + fast.filter(kind="exit").height
            )


def _site(name, *, is_gen=False):
    return SimpleNamespace(
        argnames=("x",), is_gen=is_gen, module="m", function=name, location=f"m.py:{len(name)}"
    )


def test_hand_made_streams_with_orphans_and_segments():
    """A close before any open (its call dropped), a generator resumed after a task
    switch, a resume of a frame whose call was never seen, a suspend with nothing
    open, an exception end, a call still running at the end."""
    sites = [_site("f"), _site("g", is_gen=True), _site("h")]
    call = [CALL | (s << KIND_BITS) for s in range(3)]
    ret = [RETURN | (s << KIND_BITS) for s in range(3)]
    stream = [
        (ret[0], 1),  # orphan
        (SUSPEND, 555),  # orphan suspend
        (call[0], 1),
        (call[1], (77, 2)),  # generator g, frame 77
        (SUSPEND, 77),
        (SWITCH, "A1"),
        (RESUME, 77),
        (call[2], 3),
        (EXCEPTION | (2 << KIND_BITS), "ValueError|ValueError('x')"),
        (RETURN | (1 << KIND_BITS), None),
        (SWITCH, "T1"),
        (RESUME, 99),  # a frame whose call was not recorded
        (RETURN | (1 << KIND_BITS), 5),
        (ret[0], 2),
        (call[2], 4),  # still running
    ]
    ks = array("I", [k for k, _ in stream])
    ts = array("q", range(100, 100 + 10 * len(stream), 10))
    chunk = Chunk(ts, ks, [v for _, v in stream], "T1", 0)
    other = Chunk(array("q", [105, 135]), array("I", [call[0], ret[0]]), [9, 10], "T2", 1)
    fast, ref = _both([chunk, other], [], sites, Formatter())
    _same(fast, ref)
    assert fast.filter(kind="call").height == 5
    assert fast.filter(pl.col("function") == "g")["actor"].to_list()[-1] == "T1"
