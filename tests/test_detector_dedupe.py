"""One finding, one report: a real deadlock is not reported again as the lock-order
inversion behind it, and a plain Future's never-retrieved exception is reported like a
Task's. Interleavings are forced with Barriers (untraced)."""

from __future__ import annotations

import asyncio
import gc
import threading

import pytest
from programs import threads

import scope_nb as scope

pytestmark = pytest.mark.timeout(60)


# -- a real deadlock is not also a potential one -------------------------------------------
def test_real_deadlock_is_reported_once_and_other_inversions_still_are():
    both_hold = threading.Barrier(2)
    c_then_d = threading.Event()
    with scope.record(watchdog=0.2) as trace:
        a, b = threading.Lock(), threading.Lock()  # made while recording, so traced
        c, d = threading.Lock(), threading.Lock()

        def t1():
            with a:
                both_hold.wait()
                # the watchdog sees both waiting long before this times out
                if b.acquire(timeout=2):
                    b.release()
            with c, d:
                c_then_d.set()

        def t2():
            with b:
                both_hold.wait()
                if a.acquire(timeout=2):
                    a.release()
            c_then_d.wait(10)
            with d, c:  # an inversion on another cycle, never a real deadlock here
                pass

        threads(t1, t2)
    reports = trace.detect_deadlocks()
    real = [r for r in reports if r.kind == "deadlock"]
    potential = [r for r in reports if r.kind == "potential"]
    assert len(real) == 1
    assert sorted(real[0].edges["taking"]) == ["lock a", "lock b"]
    assert [set(r.cycle) for r in potential] == [{"c", "d"}], [r.headline for r in reports]


# -- a plain Future's exception never retrieved ---------------------------------------------
class Lost(Exception):
    pass


def _future_exception(retrieve: bool):
    async def main():
        fut = asyncio.get_running_loop().create_future()
        fut.set_exception(Lost("nobody looked"))
        if retrieve:
            assert isinstance(fut.exception(), Lost)
        del fut
        gc.collect()

    with scope.record() as trace:
        asyncio.run(main())
        gc.collect()
    return [r for r in trace.detect_stalls() if r.kind == "exc_unretrieved"]


def test_future_exception_never_retrieved_is_reported():
    reports = _future_exception(retrieve=False)
    assert len(reports) == 1
    r = reports[0]
    # no debug mode, so no creation site: pinned on the loop's thread
    assert r.summary.startswith(f"a future in MainThread ({r.actor.split(':')[0]}) failed"), (
        r.summary
    )
    assert "Lost: nobody looked" in r.summary and r.location is None


def test_future_exception_retrieved_is_not_reported():
    assert _future_exception(retrieve=True) == []


def test_future_created_in_debug_mode_says_where():
    async def main():
        fut = asyncio.get_running_loop().create_future()
        line = main.__code__.co_firstlineno + 1
        fut.set_exception(Lost("nobody looked"))
        del fut
        gc.collect()
        return line

    with scope.record() as trace:
        line = asyncio.run(main(), debug=True)
        gc.collect()
    (r,) = [r for r in trace.detect_stalls() if r.kind == "exc_unretrieved"]
    # the report says the file relative to the program; the location column keeps the path
    assert f"test_detector_dedupe.py:{line} failed" in r.summary and __file__ not in r.summary
    assert r.location == f"{__file__}:{line}"
