"""A recording's first `performance_hotspots()`, answered from its buffers before any
frame is built (model.call_stats), is the answer the events frame gives
(`analysis.performance.performance_hotspots(trace.events())`): on real runs with
threads and locks, asyncio tasks, generators and coroutines suspended and resumed,
exceptions raised and caught, traced objects' method calls, one function name at
two places, a bound that drops calls, sampling, and while the recording runs. Once the
frame is built first, the statistics read from its pairing answer the same."""

import asyncio
import contextlib
import importlib
import sys
import threading

import calls_sample as cs
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import scope_nb as scope
from scope_nb.analysis import performance
from scope_nb.analysis.performance import performance_hotspots
from scope_nb.model.fast_events import native_pairing

# one function name at two places, an exception raised and caught one level down
_TWICE = """
def work(n):
    return n


first_work = work


def work(n):
    return n + 1


def guarded(n):
    try:
        return deep(n)
    except KeyError:
        return -1


def deep(n):
    if n % 3 == 0:
        raise KeyError(n)
    return n
"""


@pytest.fixture
def twice(tmp_path, monkeypatch):
    (tmp_path / "hot_twice.py").write_text(_TWICE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module("hot_twice")
    sys.modules.pop("hot_twice", None)


class Untraced:
    """A class whose module function tracing does not see: its traced instance's
    method calls are the only calls of those functions."""

    def poke(self, n):
        return n


def _program(mod) -> None:
    lock = threading.Lock()
    start = threading.Barrier(3)
    counter = scope.trace_object(cs.Counter(), "counter")  # its module is traced too
    other = scope.trace_object(Untraced(), "other")

    def worker(n):
        start.wait()
        for i in range(20):
            with lock:
                cs.fib(n)
            with contextlib.suppress(ValueError):
                cs.fail(i)
            mod.guarded(i)
            mod.first_work(i)
            mod.work(i)
            counter.bump(i)
            other.poke(i)
        assert list(cs.countdown(3)) == [3, 2, 1]

    async def tasks():
        q = asyncio.Queue()

        async def produce(n):
            for i in range(5):
                await q.put(i)
                await cs.double(i)

        async def consume(k):
            return [await q.get() for _ in range(k)]

        got = await asyncio.gather(*(produce(n) for n in range(3)), consume(15))
        return got[-1]

    threads = [threading.Thread(target=worker, args=(n,), name=f"w{n}") for n in (4, 5, 6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(asyncio.run(tasks())) == 15


def _same_answers(trace, modules) -> pl.DataFrame:
    """The fast answers first (no frame built), then the frame's, compared."""
    fast = {m: trace.performance_hotspots(module=m) for m in (None, *modules)}
    if native_pairing() is not None:
        assert trace._source._built is None, "the hotspots built the frames"
    events = trace.events()
    for m, answer in fast.items():
        assert_frame_equal(answer, performance_hotspots(events, m))
        assert_frame_equal(trace.performance_hotspots(module=m), answer)
    return fast[None]


def test_first_hotspots_are_the_frames(twice):
    with scope.record(modules=[cs, twice]) as trace:
        _program(twice)
    hot = _same_answers(trace, ["calls_sample", "hot_twice", "test_first_hotspots"])
    names = set(hot["function"].to_list())
    assert {"fib", "fail", "countdown", "double", "work", "guarded", "deep"} <= names
    assert {"Counter.bump", "Untraced.poke"} <= names
    row = hot.filter(function="deep").row(0, named=True)
    assert row["exceptions"] > 0 and row["count"] == 60
    assert hot.filter(function="fib")["actors"].item() == 3
    assert hot.filter(function="work")["count"].item() == 120  # both places, one row
    # the traced object's calls are counted once where function tracing saw them
    assert hot.filter(function="Counter.bump")["count"].item() == 60


@pytest.mark.parametrize("bound", [300, 50])
def test_a_bound_and_sampling(bound):
    """300: calls dropped while recording; 50: more threads' starts and ends (kept
    whatever the bound) than the bound, so the frame keeps only the latest calls."""
    with scope.record(modules=[cs], max_events=bound) as trace:
        threads = [threading.Thread(target=cs.fib, args=(n,)) for n in (6, 7, 8, 9)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with contextlib.suppress(ValueError):
            cs.fail(1)
    assert trace.dropped > 0
    _same_answers(trace, ["calls_sample"])
    assert len(trace.events()) <= max(bound, 16)
    with scope.record(modules=[cs], sample_rate=0.5) as trace:
        for i in range(40):
            cs.fib(i % 6)
            assert list(cs.countdown(2)) == [2, 1]
    _same_answers(trace, ["calls_sample"])


@pytest.mark.parametrize("bound", [None, 50])
def test_the_frame_first_then_the_hotspots_from_its_pairing(twice, monkeypatch, bound):
    """events() first lets the buffers go; the hotspots that follow are the statistics
    read from the pairing the frame was built from, not a query on the frame."""
    bounded = {"max_events": bound} if bound else {}
    with scope.record(modules=[cs, twice], **bounded) as trace:
        _program(twice)
    events = trace.events()
    modules = (None, "calls_sample", "hot_twice")
    want = {m: performance_hotspots(events, m) for m in modules}
    assert want[None].height > (0 if bound else 5)
    if native_pairing() is not None:

        def on_the_frame(*args, **kwargs):
            raise AssertionError("the hotspots were asked of the frame")

        monkeypatch.setattr(performance, "performance_hotspots", on_the_frame)
    for m in modules:
        assert_frame_equal(trace.performance_hotspots(module=m), want[m])


def test_while_recording_and_without_calls():
    with scope.record(modules=[cs]) as trace:
        cs.fib(8)
        first = trace.performance_hotspots()
        assert_frame_equal(first, performance_hotspots(trace.events()))
        cs.fib(9)  # recorded after: the next answer counts it
        later = trace.performance_hotspots()
        assert later["count"].item() > first["count"].item()
        assert_frame_equal(later, performance_hotspots(trace.events()))
    with scope.record(modules=[cs]) as trace:
        lock = threading.Lock()
        with lock:
            pass
    assert _same_answers(trace, ["calls_sample"]).height == 0


def test_a_module_never_traced_is_refused_before_any_frame():
    with scope.record(modules=[cs]) as trace:
        cs.fib(3)
    with pytest.raises(ValueError, match="was not traced"):
        trace.performance_hotspots(module="json")
    assert trace._source._built is None or native_pairing() is None
