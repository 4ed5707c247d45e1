"""More of the program behaving exactly as it does untraced: multiprocessing queues
whose messages do not pickle, children that exec another program, the recorder's
process-waiter thread stopped while it reads an exit code."""

import concurrent.futures as cf
import multiprocessing as mp
import multiprocessing.queues
import os
import select
import shutil
import threading
from multiprocessing.connection import wait

import pytest

import scope_nb as scope
from scope_nb.recorder import session

# fork from a process with threads (the test runner's, the recorder's) is what is tested
_FORK_WARNING = pytest.mark.filterwarnings(
    "ignore:This process .* is multi-threaded:DeprecationWarning"
)


def _identity(x):
    return x


class _NoPickle:
    def __reduce__(self):
        raise TypeError("no pickle for you")


def _both_ways(run):
    """(run() untraced, run() recorded, the recording's errors)."""
    plain = run()
    with scope.record() as trace:
        traced = run()
    return plain, traced, trace.errors


# -- multiprocessing queues --------------------------------------------------------------------


class _ReportingQueue(multiprocessing.queues.Queue):
    """A queue that reports what its feeder thread could not send (the documented hook)."""

    def __init__(self):
        super().__init__(ctx=mp.get_context())
        self.failed = []

    def _on_queue_feeder_error(self, e, obj):
        self.failed.append((type(e).__name__, str(e), type(obj).__name__))


def test_feeder_error_handler_gets_the_programs_object():
    def run():
        q = _ReportingQueue()
        q.put(_NoPickle())
        q.put("after")
        got = q.get(timeout=30)  # the feeder sends in order: the failure came first
        q.close()
        q.join_thread()
        return got, q.failed

    plain, traced, errors = _both_ways(run)
    assert plain == ("after", [("TypeError", "no pickle for you", "_NoPickle")])
    assert traced == plain
    assert errors == {}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("used_before_start", [False, True])
def test_process_pool_fails_the_future_of_an_argument_that_does_not_pickle(used_before_start):
    # the fork server is one per process: started here untraced, it would not trace later
    # tests' children
    ctx = mp.get_context("spawn")
    ex = cf.ProcessPoolExecutor(1, mp_context=ctx)
    try:
        if used_before_start:  # its call queue's feeder thread runs already
            assert ex.submit(_identity, 1).result(timeout=60) == 1

        def run():
            f = ex.submit(_identity, _NoPickle())
            try:
                return "ok", f.result(timeout=60)  # recorded, it was never resolved
            except Exception as e:
                return type(e).__name__, str(e), ex.submit(_identity, 2).result(timeout=60)

        plain, traced, errors = _both_ways(run)
    finally:
        ex.shutdown(cancel_futures=True)
    assert plain == ("TypeError", "no pickle for you", 2)
    assert traced == plain
    assert errors == {}


# -- child processes -----------------------------------------------------------------------------


@_FORK_WARNING
@pytest.mark.timeout(120)
@pytest.mark.skipif(shutil.which("sleep") is None, reason="needs the sleep program")
def test_a_child_that_execs_hangs_neither_the_next_start_nor_stop():
    """exec closes the child's end of its sentinel while the program it became runs on:
    the recorder must not wait for that program to end."""
    ctx = mp.get_context("fork")
    traces = []

    def run(record):
        if record:
            scope.start()
        p = ctx.Process(target=os.execv, args=(shutil.which("sleep"), ["sleep", "60"]))
        p.start()
        try:
            assert wait([p.sentinel], 30)
            started = threading.Event()

            def second():
                q = ctx.Process(target=int)
                q.start()
                q.join()
                started.set()

            threading.Thread(target=second, daemon=True).start()
            did_start = started.wait(20)
            if record:  # stop() while the child runs
                stopper = threading.Thread(target=lambda: traces.append(scope.stop()), daemon=True)
                stopper.start()
                stopper.join(20)
            alive = p.is_alive()
        finally:
            p.kill()
            p.join()
        return did_start, alive, p.exitcode, p.pid

    *plain, _ = run(False)
    *traced, pid = run(True)
    assert plain == [True, True, -9]
    assert traced == plain
    assert len(traces) == 1 and traces[0].errors == {}
    outcome = traces[0].actors().filter(actor=f"P{pid}").get_column("outcome").to_list()
    assert outcome == ["running"]  # it still ran when the recording stopped


@_FORK_WARNING
@pytest.mark.timeout(120)
def test_waiter_stopped_while_it_reads_an_exit_code_closes_no_fd_twice(monkeypatch):
    """stop() while the recorder's process-waiter thread is reading a child's exit code:
    the waiter must not close the wake-up pipe that stop() already closed (a closed fd,
    or a program's file that got its number meanwhile)."""
    real_waitid = os.waitid
    reading = threading.Event()

    def waitid(*args):
        waiter = session.ACTIVE.parts.actors.waiter if session.ACTIVE is not None else None
        running = waiter.thread if waiter is not None else None
        if running is not None and running.ident == threading.get_ident() and not reading.is_set():
            wake_r = waiter.wake_r
            reading.set()
            select.select([wake_r], [], [], 30)  # until stop() has woken and released it
        return real_waitid(*args)

    monkeypatch.setattr(os, "waitid", waitid)
    ctx = mp.get_context("fork")
    scope.start()
    p = ctx.Process(target=int)
    p.start()
    p.join()
    assert reading.wait(30)
    trace = scope.stop()
    assert trace.errors == {}
    assert p.exitcode == 0
    assert trace.actors().filter(actor=f"P{p.pid}").get_column("outcome").to_list() == ["ok"]
