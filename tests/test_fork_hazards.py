"""A fork while another thread holds a lock (CPython bpo-6721): the child inherits the lock
locked with nobody to release it. Real threads hold real traced locks while the main
thread forks; `detect_deadlocks()` names the lock, its holder and where it was taken, and
nothing when the forking thread holds the lock itself, when nobody holds it, when what
another thread holds is a semaphore (a signal, not a lock), or a logging handler's lock
(logging frees it in the child)."""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import threading

import pytest

import scope_nb as scope

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="a fork needs os.fork (POSIX only)"),
    pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning"),
    pytest.mark.timeout(60),
]

KIND = "fork_with_held_lock"


def _fork() -> None:
    """Fork; the child leaves at once, touching nothing."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)


def _held_by_a_thread(make, fork=_fork) -> tuple[object, int]:
    """Record a thread called `holder` holding what `make()` made while the main thread
    calls `fork()`; returns the trace and the line where the holder took it."""
    taken = []
    with scope.record() as trace:
        lock = make()
        held, done = threading.Event(), threading.Event()

        def holder():
            taken.append(sys._getframe().f_lineno + 1)
            with lock:
                held.set()
                done.wait()

        t = threading.Thread(target=holder, name="holder")
        t.start()
        held.wait()
        try:
            fork()
        finally:
            done.set()
            t.join()
    return trace, taken[0]


def _fork_reports(trace) -> list:
    return [r for r in trace.detect_deadlocks() if r.kind == KIND]


# looked up while recording: a factory bound before it is the interpreter's, untraced
MAKERS = {
    "Lock": lambda: threading.Lock(),
    "RLock": lambda: threading.RLock(),
    "Condition": lambda: threading.Condition(),
}


@pytest.mark.parametrize("make", MAKERS.values(), ids=MAKERS.keys())
def test_a_fork_while_another_thread_holds_a_lock_names_the_lock_and_its_holder(make):
    trace, line = _held_by_a_thread(make)
    [r] = _fork_reports(trace)
    [lock] = r.cycle
    names = dict(trace.actors().select("actor", "name").iter_rows())
    assert [names[a] for a in r.actors] == ["holder", "MainThread"]
    assert r.headline == (
        f"fork by MainThread ({r.actors[1].split(':')[0]}) while {lock} was held by holder "
        f"({r.actors[0].split(':')[0]}) (taken at tests/test_fork_hazards.py:{line}): the child "
        "process inherits it locked and its first acquire waits forever"
    )
    assert r.child is None  # a bare os.fork(): its pid is the program's to know
    text = repr(r)
    assert "forked by: MainThread" in text and "at time: +" in text and r._repr_html_()
    assert "fork by MainThread" in repr(trace)  # the summary's deadlocks section
    assert trace.errors == {}


def test_the_lock_of_a_fork_that_takes_it_first_is_no_hazard():
    """The fix: the forking thread holds the lock across the fork (as a before-fork hook
    does), so no other thread is inside it when the child is made."""
    with scope.record() as trace:
        lock = threading.Lock()
        with lock:
            _fork()
    assert _fork_reports(trace) == []
    [fork] = trace.events("fork").select("detail", "locks_held").to_dicts()
    assert fork == {"detail": '{"held": []}', "locks_held": ["lock"]}


def test_a_lock_released_before_the_fork_is_no_hazard():
    with scope.record() as trace:
        lock = threading.Lock()
        t = threading.Thread(target=lambda: lock.acquire() and lock.release(), name="holder")
        t.start()
        t.join()
        _fork()
    assert trace.events("fork").height == 1
    assert trace.detect_deadlocks() == []


def test_a_semaphore_held_by_another_thread_is_a_signal_not_a_hazard():
    trace, _ = _held_by_a_thread(lambda: threading.BoundedSemaphore(1))
    assert _fork_reports(trace) == []


def test_a_logging_handler_lock_is_no_hazard_logging_frees_it_in_the_child():
    """logging's own after-fork hook re-initialises every handler's lock in the child
    (since 3.9), so a handler another thread is inside at the fork is no deadlock."""
    inside, leave = threading.Event(), threading.Event()

    class Slow(logging.Handler):
        def emit(self, record):
            inside.set()
            leave.wait()

    exits = []

    def fork_and_take_the_lock():
        pid = os.fork()
        if pid == 0:
            os._exit(0 if handler.lock.acquire(timeout=5) else 3)
        exits.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))

    with scope.record() as trace:
        handler = Slow()
        log = logging.getLogger("test_fork_hazards")
        log.propagate = False
        log.addHandler(handler)
        t = threading.Thread(target=log.error, args=("x",), name="emitter")
        t.start()
        inside.wait()
        try:
            fork_and_take_the_lock()
        finally:
            leave.set()
            t.join()
            log.removeHandler(handler)
    assert exits == [0]
    # the handler's lock is traced, taken by the emitter, held at the fork: not reported
    assert trace.events("lock_acquire")["target"].to_list() == [handler.lock.name]
    assert _fork_reports(trace) == []


def test_the_child_a_multiprocessing_fork_started_is_named():
    ctx = multiprocessing.get_context("fork")
    started = []

    def start_child():
        p = ctx.Process(target=int, name="kid")
        p.start()
        p.join()
        started.append(p.pid)

    trace, _ = _held_by_a_thread(MAKERS["Lock"], fork=start_child)
    [r] = _fork_reports(trace)
    assert r.child == f"P{started[0]}"
    assert f"the child process kid (P{started[0]}) inherits it locked" in r.headline


def test_a_lock_renamed_after_the_fork_is_reported_under_its_new_name():
    def fork_then_rename():
        _fork()
        scope.trace_lock(renamed.pop(), "handler_lock")

    renamed = []

    def make():
        renamed.append(threading.Lock())
        return renamed[-1]

    trace, _ = _held_by_a_thread(make, fork=fork_then_rename)
    [r] = _fork_reports(trace)
    assert r.cycle == ["handler_lock"]
