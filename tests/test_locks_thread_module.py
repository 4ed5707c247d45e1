"""Locks made through the `_thread` module's own factories are traced while recording,
and the module is restored exactly on stop."""

import _thread
import threading

import polars as pl

import scope_nb as scope


def test_thread_module_factories_are_traced_and_restored():
    before = (_thread.allocate_lock, _thread.RLock)
    with scope.record() as trace:
        from _thread import RLock  # bound while recording: the traced factory

        first, second, third = _thread.allocate_lock(), _thread.RLock(), RLock()
        assert (first.name, second.name, third.name) == ("first", "second", "third")
        inner = threading.Barrier(2)

        def worker():
            with second, first, third:
                inner.wait()

        t = threading.Thread(target=worker)
        t.start()
        inner.wait()
        t.join()
    assert all(a is b for a, b in zip(before, (_thread.allocate_lock, _thread.RLock), strict=True))
    taken = trace.events("lock_acquire").filter(
        pl.col("target").is_in(["first", "second", "third"])
    )
    assert taken["target"].to_list() == ["second", "first", "third"]
    assert trace.lock_graph().has_edge("second", "first") and trace.lock_graph().has_edge(
        "first", "third"
    )
    assert trace.errors == {}
    with first:  # after stop: a lock as the interpreter's, nothing recorded
        assert first.locked()
    assert not first.locked()
    after = _thread.allocate_lock()
    assert type(after) is _thread.LockType


def test_the_patched_factories_answer_as_the_originals():
    plain = _thread.RLock()
    with scope.record():
        traced = _thread.RLock()
        assert isinstance(traced, _thread.RLock) and isinstance(plain, _thread.RLock)
        assert (
            _thread.allocate_lock.__name__ == "allocate_lock"
            and _thread.RLock.__module__ == "_thread"
        )
        assert repr(_thread.allocate_lock) == "<built-in function allocate_lock>"
