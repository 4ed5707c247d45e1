"""A lock wait given up records the timeout the program passed, in its detail."""

import threading

import polars as pl
import pytest

import scope_nb as scope


@pytest.mark.parametrize("pure", [False, True], ids=["c_core", "pure"])
@pytest.mark.parametrize("kind", ["Lock", "RLock", "Semaphore", "Condition"])
def test_lock_timeout_carries_the_timeout_passed(monkeypatch, kind, pure):
    if pure:
        monkeypatch.setenv("SCOPE_NB_PURE", "1")
    with scope.record() as trace:
        guard = getattr(threading, kind)()
        guard.acquire()  # held by this thread until the other one has given up
        gave_up = []
        t = threading.Thread(target=lambda: gave_up.append(guard.acquire(timeout=0.05)))
        t.start()
        t.join()
        guard.release()
    assert gave_up == [False]
    timeouts = trace.events("lock_timeout").filter(pl.col("target") == "guard")
    assert timeouts["detail"].to_list() == ["0.05"]
    assert trace.errors == {}
