"""Sampling (`sample_rate < 1`) on the C call hooks: the same seeded decisions as the
Python callbacks, so a recording with a fixed seed keeps the same calls either way,
counts the same drops, and never keeps the end of a call it dropped."""

import asyncio
import contextlib
import re
import threading

import calls_sample as cs
import fasthooks_sample as fs
import pytest
from both_ways import c_then_pure

import scope_nb as scope
from scope_nb.recorder import session

pytest.importorskip("scope_nb.recorder._fasthooks", reason="the C extension is not built")

_ADDR = re.compile(r"0x[0-9a-f]+")
_ENDS = ("return", "exception")


def _both(monkeypatch, workload, **options):
    """(trace, C hooks in use) with the C extension, then with SCOPE_NB_PURE=1."""

    def run(pure):
        with scope.record(**options) as trace:
            uses_c = session.ACTIVE.backend.fast is not None
            workload()
        return trace, uses_c

    (c_trace, c_used), (py_trace, py_used) = c_then_pure(monkeypatch, run)
    assert c_used and not py_used
    return c_trace, py_trace


def _per_thread(trace) -> list:
    """What each actor recorded, in its own order (kind, function, arguments or value),
    as a sorted list of sequences: threads interleave differently from run to run, and
    their actor names depend on which one started first."""
    calls = trace.events(["call", "return", "exception"]).sort("seq")
    by_actor: dict = {}
    for row in calls.iter_rows(named=True):
        detail = _ADDR.sub("0x?", row["detail"] or "")
        by_actor.setdefault(row["actor"], []).append((row["kind"], row["function"], detail))
    return sorted(by_actor.values())


_GENERATORS = {"countdown", "double", "main", "main.<locals>.<genexpr>", "spin"}


def _assert_paired(trace) -> None:
    """Every end belongs to a call recorded in the same actor, of the same function, and
    every such call has its one end: generators and coroutines too, whose resumes follow
    their call's decision (kept whole, or not at all)."""
    ev = trace.events(["call", "return", "exception"])
    assert set(ev["function"]) & _GENERATORS
    calls = {r["seq"]: r for r in ev.filter(ev["kind"] == "call").iter_rows(named=True)}
    ended: set = set()
    for end in ev.filter(ev["kind"].is_in(_ENDS)).iter_rows(named=True):
        call = calls.get(end["call_seq"])
        assert call is not None, f"an end without its call: {end}"
        assert (call["actor"], call["function"]) == (end["actor"], end["function"])
        assert end["call_seq"] not in ended
        ended.add(end["call_seq"])
    assert ended and set(calls) == ended


def spin(n):
    """A generator, resumed by next() and once by throw() (PY_THROW)."""
    for i in range(n):
        try:
            yield i
        except KeyError:
            yield -i


def _threads_and_coroutines():
    """Four threads of recursion, exceptions and generators, one of them running an
    event loop, then coroutines in the main thread: thousands of decisions per thread,
    more than the mask holds."""
    barrier = threading.Barrier(4)

    def worker(n):
        barrier.wait()
        for _ in range(3):
            cs.fib(n)
            cs.echo([n])
            with contextlib.suppress(ValueError):
                cs.fail(n)
            g = spin(4)
            next(g)
            g.throw(KeyError("k"))
            list(g)
            assert list(cs.countdown(3)) == [3, 2, 1]
        if n == 13:
            assert asyncio.run(cs.main(5)) == [0, 2, 4, 6, 8]

    threads = [threading.Thread(target=worker, args=(n,)) for n in (11, 12, 13, 14)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert asyncio.run(cs.main(6)) == [0, 2, 4, 6, 8, 10]
    with pytest.raises(ZeroDivisionError):
        fs.boom(5)


def test_threads_and_coroutines_keep_the_same_calls_both_ways(monkeypatch):
    c_trace, py_trace = _both(
        monkeypatch, _threads_and_coroutines, modules=[cs, fs, __name__], sample_rate=0.3, seed=5
    )
    c_seq, py_seq = _per_thread(c_trace), _per_thread(py_trace)
    assert len(c_seq) >= 5  # four threads and the main thread's tasks at least
    assert c_seq == py_seq
    assert c_trace.dropped_by_reason == py_trace.dropped_by_reason
    kept = c_trace.function_calls().height
    assert kept > 1_000 and c_trace.dropped_by_reason["sampled"] > 2 * kept
    assert c_trace.errors == py_trace.errors == {}
    _assert_paired(c_trace)
    _assert_paired(py_trace)


def test_sealed_chunks_and_the_bound_keep_the_decisions(monkeypatch):
    """A small max_events: chunks are sealed from C many times over and the oldest
    dropped; the decisions of open calls live on in the thread's buffer."""

    def work():
        for _ in range(40):
            cs.fib(8)
            with contextlib.suppress(ValueError):
                cs.fail(1)

    c_trace, py_trace = _both(
        monkeypatch, work, modules=[cs], max_events=2_000, sample_rate=0.5, seed=2
    )
    assert c_trace.dropped_by_reason == py_trace.dropped_by_reason
    assert c_trace.dropped_by_reason["bound"] > 0 and c_trace.dropped_by_reason["sampled"] > 0
    assert _per_thread(c_trace) == _per_thread(py_trace)  # (the bound cut calls from their ends)


def test_each_call_takes_the_next_decision_of_the_mask():
    """Call i of a thread that does nothing else is kept exactly when the mask says so
    at position i + 1 (the mask is replayed cyclically past its 4096 decisions)."""
    n = 5_000

    def work():
        for i in range(n):
            cs.echo(i)

    with scope.record(modules=[cs], sample_rate=0.25, seed=9) as trace:
        rec = session.ACTIVE
        assert rec.backend.fast is not None
        mask = rec.store.mask
        t = threading.Thread(target=work)
        t.start()
        t.join()
    expected = [str(i) for i in range(n) if mask[(i + 1) % len(mask)]]
    calls = trace.function_calls()
    assert calls["args"].to_list() == [f"value={i}" for i in expected]
    assert calls["result"].to_list() == expected
    # each dropped call counts at its start and its end; the thread's own end is a
    # sampled event too
    assert trace.dropped_by_reason["sampled"] - 2 * (n - len(expected)) in (0, 1)


def test_sampling_everything_out_records_no_call():
    with scope.record(modules=[cs], sample_rate=0.0) as trace:
        assert session.ACTIVE.backend.fast is not None
        cs.fib(10)
        list(cs.countdown(4))
    assert trace.function_calls().height == 0
    assert trace.dropped_by_reason["sampled"] > 0
    assert trace.errors == {}
