"""False alarms on healthy programs: each test runs correct concurrent code through the
public API and checks that no analysis reports a bug it does not have."""

import concurrent.futures as cf
import threading

import scope_nb


def test_a_busy_thread_pool_is_no_deadlock_and_its_idle_semaphore_no_timeout():
    """The pool polls its idle semaphore (a Semaphore(0) released by idle workers) with
    acquire(timeout=0) at every submit: a signal, not a lock it holds."""
    gate = threading.Barrier(4)
    with scope_nb.record(modules=["concurrent.futures.thread"]) as trace:
        with cf.ThreadPoolExecutor(4) as ex:
            list(ex.map(lambda _: gate.wait(), range(4)))
            list(ex.map(lambda x: x * x, range(300)))
    assert trace.detect_deadlocks() == []
    lk = {r["lock"]: r for r in trace.lock_contention().iter_rows(named=True)}
    idle = lk["ThreadPoolExecutor._idle_semaphore"]
    assert idle["timeouts"] == 0
    assert all(r["timeouts"] == 0 for r in lk.values())
    assert not any("_idle_semaphore" in n for n in trace.lock_graph().nodes)
