"""False alarms on healthy programs: each test runs correct concurrent code through the
public API and checks that no analysis reports a bug it does not have."""

import concurrent.futures as cf
import logging
import logging.handlers
import queue
import threading

import polars as pl

import scope_nb
from scope_nb.analysis.summary import summarize


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


class Box:
    def take(self):
        raise KeyError("empty")


def test_a_failed_method_call_handled_by_its_caller_is_no_crash_of_the_caller():
    with scope_nb.record() as trace:
        box = scope_nb.trace_object(Box(), "box")

        def worker():
            try:
                box.take()
            except KeyError:
                pass

        t = threading.Thread(target=worker, name="worker")
        t.start()
        t.join()
    assert trace.get_crash_events("worker") is None
    assert trace.get_crash_events() == []
    failed = trace.get_crash_events("box")
    assert (failed.kind, failed.obj, failed.exc_type) == ("exception", "box", "KeyError")
    assert "crashed" not in failed.headline and "failed" in failed.headline


def test_a_logging_burst_that_drains_is_shown_but_no_stall():
    """200 records logged before the QueueListener starts: the queue is 200 deep for a
    moment, then the listener drains it all before stop() returns."""
    records = queue.Queue()
    seen = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    log = logging.getLogger("precision.burst")
    log.propagate = False
    log.setLevel(logging.INFO)
    handler = logging.handlers.QueueHandler(records)
    log.addHandler(handler)
    listener = logging.handlers.QueueListener(records, Keep())
    try:
        with scope_nb.record() as trace:
            for i in range(200):
                log.info("line %d", i)
            listener.start()
            listener.stop()  # drains every record, then joins its thread
    finally:
        log.removeHandler(handler)
    assert len(seen) == 200
    [q] = trace.message_queue_analysis().filter(pl.col("max_depth") >= 32).rows(named=True)
    assert q["final_depth"] == 0
    assert [r for r in trace.detect_stalls() if r.kind == "backlog"] == []
    # it was deep for a moment: a threshold of no time at all names it
    [burst] = [r for r in trace.detect_stalls(backlog_s=0.0) if r.kind == "backlog"]
    assert "deep for" in burst.headline


class Counter:
    def __init__(self):
        self.n = 0


def test_the_summary_says_races_were_not_watched_when_no_object_was_traced():
    with scope_nb.record() as bare:
        t = threading.Thread(target=lambda: None, name="idle")
        t.start()
        t.join()
    [races] = [s for s in summarize(bare) if s.name == "races"]
    assert races.headline.startswith("not watched (no objects traced")
    assert "races           not watched" in str(bare)

    with scope_nb.record() as watched:
        counter = scope_nb.trace_object(Counter(), "counter")
        counter.n += 1
    [races] = [s for s in summarize(watched) if s.name == "races"]
    assert races.headline == "none in 1 traced object (counter)"


class _Tally:
    def __init__(self):
        self.n = 0


def test_analyze_race_condition_returns_what_detect_race_conditions_reports():
    tally = _Tally()
    read, wrote = threading.Event(), threading.Event()

    def slow():
        v = tally.n
        read.set()
        wrote.wait()
        tally.n = v + 1

    def fast():
        read.wait()
        tally.n = tally.n + 1
        wrote.set()

    with scope_nb.record() as trace:
        scope_nb.trace_object(tally, name="tally")
        threads = [
            threading.Thread(target=slow, name="slow"),
            threading.Thread(target=fast, name="fast"),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    found = trace.detect_race_conditions()
    (lost,) = [r for r in found if r.kind == "lost_update"]
    # the stale read and the write are both slow's; fast's write in between makes it a race
    assert set(lost.actors) == {trace.resolve_actor("slow")}
    assert [r.headline for r in trace.analyze_race_condition("slow", threads[1])] == [
        r.headline for r in found
    ]
    assert [r.headline for r in trace.analyze_race_condition("fast", "slow", 3600)] == [
        r.headline for r in found
    ]
    assert trace.analyze_race_condition("slow", "MainThread") == []


def test_silent_deadlock_and_stall_sections_say_what_they_watched():
    q = queue.Queue()
    with scope_nb.record() as bare:
        t = threading.Thread(target=lambda: None)
        t.start()
        t.join()
    with scope_nb.record() as busy:
        lock = threading.Lock()
        with lock:
            q.put(1)
            q.get()
    said = {s.name: s.headline for s in summarize(bare)}
    assert (
        said["deadlocks"].startswith("none: no locks seen") and "watchdog off" in said["deadlocks"]
    )
    assert said["stalls"].startswith("none: no queues or event loops seen")
    said = {s.name: s.headline for s in summarize(busy)}
    assert said["deadlocks"].startswith("none in 1 lock (") and said["stalls"].startswith(
        "none in 1 queue ("
    )
