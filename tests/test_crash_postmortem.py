"""Post-mortem of a child process that died: from the parent's 'exit code 1' to the
exception, the message it was handling and its traceback, recorded by the child."""

from __future__ import annotations

import multiprocessing as mp

import polars as pl

import scope_nb as scope


def fussy_worker(q):
    prices = {"apple": 3}
    while True:
        item, n = q.get()
        if item is None:
            return
        prices[item] * n  # KeyError on an unknown item


def test_analyze_crash_of_a_process_reaches_the_exception_inside_it(tmp_path):
    ctx = mp.get_context("spawn")
    scope.start(persist_to_disk=True, persist_path=str(tmp_path), flush_interval=0.1)
    try:
        q = ctx.Queue()
        p = ctx.Process(target=fussy_worker, args=(q,), name="fussy")
        p.start()
        q.put(("apple", 2))
        q.put(("plum", 2))
        p.join()
    finally:
        scope.stop()
    assert p.exitcode == 1
    trace = scope.load(str(tmp_path))
    child = trace.actors().filter((pl.col("kind") == "process") & (pl.col("pid") == p.pid))
    assert child["outcome"].to_list() == ["crashed"]
    report = trace.analyze_crash(child["actor"][0])
    assert report.crash.exception.startswith("KeyError")
    assert "plum" in report.crash.exception
    assert report.crash.actor != child["actor"][0]  # the child's own thread, not the process row
    received = report.last_messages.filter(pl.col("kind") == "receive")["detail"].to_list()
    assert received[-1] == "('plum', 2)"
    assert "fussy_worker" in report.crash.traceback
