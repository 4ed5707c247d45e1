"""`trace_lock` as a convenience: naming a lock traced already renames it (its whole
history under the new name, everywhere a query looks), not recording it returns the
lock, and only what is not a lock is refused."""

import contextlib
import threading

import polars as pl
import pytest

import scope_nb as scope


class Account:
    def __init__(self):
        self._lock = threading.Lock()


def _rows(trace, name):
    ev = trace.events().filter(
        pl.col("kind").str.starts_with("lock_") & (pl.col("kind") != "lock_order")
    )
    return ev.filter(pl.col("target") == name)


@pytest.mark.parametrize("pure", [False, True], ids=["c_core", "pure"])
def test_naming_an_auto_named_lock_renames_its_whole_history(monkeypatch, pure):
    if pure:
        monkeypatch.setenv("SCOPE_NB_PURE", "1")
    with scope.record() as trace:
        acct = Account()
        assert acct._lock.name == "Account._lock"
        with acct._lock:
            pass
        assert scope.trace_lock(acct._lock, name="ledger") is acct._lock
        assert acct._lock.name == "ledger"
        with acct._lock:
            pass
    assert trace.errors == {}
    assert _rows(trace, "ledger")["kind"].to_list() == ["lock_acquire", "lock_release"] * 2
    assert _rows(trace, "Account._lock").height == 0
    assert trace.lock_contention()["lock"].to_list() == ["ledger"]


def _inversion(first, second, ready):
    """Another thread takes first then second; once it is done, this one takes them the
    other way round: an inversion the recorder reports live."""

    def forwards():
        with first, second:
            pass
        ready.wait()

    t = threading.Thread(target=forwards)
    t.start()
    ready.wait()
    t.join()
    with second, first:
        pass


def test_a_lock_renamed_after_its_inversion_was_reported_is_one_lock_everywhere():
    with scope.record() as trace:
        left, right = threading.Lock(), threading.Lock()
        _inversion(left, right, threading.Barrier(2))
        scope.trace_lock(left, "ledger")  # after the live report named it "left"
    assert trace.errors == {}
    live = trace.events("lock_order")
    assert live["target"].to_list() == ["right -> ledger"]
    assert "left" not in live["detail"][0].split() and "ledger" in live["detail"][0]
    assert live["locks_held"].to_list() == [["right"]]
    assert set(trace.lock_graph().nodes) == {"ledger", "right"}
    reports = trace.detect_deadlocks()
    assert len(reports) == 1 and sorted(reports[0].cycle) == ["ledger", "right"]
    held = trace.events("lock_acquire").filter(pl.col("target") == "right")["locks_held"].to_list()
    assert ["ledger"] in held
    assert sorted(trace.lock_contention()["lock"].to_list()) == ["ledger", "right"]


def test_renaming_a_held_lock_keeps_one_lock_in_the_order_graph():
    a, b = threading.Lock(), threading.Lock()
    with scope.record() as trace:
        la, lb = scope.trace_lock(a, "a"), scope.trace_lock(b, "b")
        first = threading.Barrier(2)

        def ab():
            with la:
                scope.trace_lock(la, "first")  # renamed while this thread holds it
                with lb:
                    pass
            first.wait()

        t = threading.Thread(target=ab)
        t.start()
        first.wait()
        t.join()
        with lb, la:  # the other order: an inversion between "b" and "first"
            pass
    assert trace.errors == {}
    assert set(trace.lock_graph().nodes) == {"first", "b"}
    held = trace.events("lock_acquire").filter(pl.col("target") == "b")["locks_held"].to_list()
    assert ["first"] in held
    reports = trace.detect_deadlocks()
    assert len(reports) == 1 and sorted(reports[0].cycle) == ["b", "first"]


def test_python_lock_classes_are_renamed_with_their_history():
    with scope.record() as trace:
        pool = threading.Semaphore(2)
        cond = threading.Condition()
        with pool, cond:
            pass
        assert scope.trace_lock(pool, "slots") is pool
        assert scope.trace_lock(cond, "ready") is cond
        with pool, cond:
            pass
    assert trace.errors == {}
    taken = _rows(trace, "slots").filter(pl.col("kind") == "lock_acquire")
    assert taken["detail"].to_list() == ["2", "2"]  # its initial value follows the name
    assert _rows(trace, "ready")["kind"].to_list() == ["lock_acquire", "lock_release"] * 2
    assert _rows(trace, "pool").height == _rows(trace, "cond").height == 0


def test_a_name_taken_by_another_lock_gets_a_suffix_and_a_lock_may_take_its_old_name_back():
    with scope.record() as trace:
        x, y = threading.Lock(), threading.Lock()
        assert x.name == "x"
        assert scope.trace_lock(y, "x") is y and y.name == "x-2"
        with x:
            pass
        scope.trace_lock(x, "z")
        scope.trace_lock(x, "x")  # back: its rows under "x" and "z" are one lock's
        with x:
            pass
        assert x.name == "x"
    assert _rows(trace, "x")["kind"].to_list() == ["lock_acquire", "lock_release"] * 2
    assert _rows(trace, "z").height == 0


def test_not_recording_returns_the_lock_itself():
    lock = threading.Lock()
    assert scope.trace_lock(lock, "free") is lock
    sem = threading.Semaphore()
    assert scope.trace_lock(sem) is sem
    with scope.record(tracing_level="off") as trace:
        assert scope.trace_lock(lock, "free") is lock
        with lock:
            pass
    assert trace.events().filter(pl.col("kind").str.starts_with("lock_")).height == 0


@pytest.mark.parametrize("recording", [False, True])
def test_only_what_is_not_a_lock_is_refused(recording):
    with scope.record() if recording else contextlib.nullcontext():
        with pytest.raises(TypeError, match=r"lock must be one of threading\.Lock.*; got dict"):
            scope.trace_lock({})
        with pytest.raises(TypeError, match="name must be a str or None, got int"):
            scope.trace_lock(threading.Lock(), 3)
