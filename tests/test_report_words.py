"""Reports speak people's words: actors by name with a short id, times from the start
of the recording, locations relative to the program; the frames keep ids and paths."""

from __future__ import annotations

import os
import queue
import re
import threading

import scope_nb as scope

PID = os.getpid()


class Counter:
    def __init__(self):
        self.n = 0


def test_race_headline_names_the_threads_and_the_frame_keeps_ids():
    c = Counter()
    read, wrote = threading.Event(), threading.Event()

    def slow():
        v = c.n
        read.set()
        wrote.wait()
        c.n = v + 1

    def fast():
        read.wait()
        c.n = c.n + 1
        wrote.set()

    with scope.record() as trace:
        scope.trace_object(c, name="counter")
        ts = [
            threading.Thread(target=f, name=n) for f, n in ((slow, "bumper-1"), (fast, "bumper-2"))
        ]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    (race,) = [r for r in trace.detect_race_conditions() if r.kind == "lost_update"]
    assert re.search(
        r"bumper-1 \(T\d+\) wrote a value based on a stale read \(read at "
        r"tests/test_report_words\.py:\d+\) after bumper-2 \(T\d+\) wrote it",
        race.headline,
    ), race.headline
    text = repr(race)
    assert f":{PID}" not in text and os.path.dirname(__file__) not in text
    assert re.search(r"\(\+\d+\.\d{4} s\)", text), text
    frame = race.to_frame()
    assert all(a.endswith(f":{PID}") for a in frame["actor"])
    assert all(loc.startswith(__file__) for loc in frame["location"])


def test_backlog_stall_names_writer_and_reader():
    q = queue.Queue()
    half = threading.Event()

    def writer():
        for i in range(20):
            q.put(i)
        half.set()

    def reader():
        half.wait()
        for _ in range(10):
            q.get()

    with scope.record() as trace:
        ts = [
            threading.Thread(target=writer, name="writer"),
            threading.Thread(target=reader, name="reader"),
        ]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    (stall,) = trace.detect_stalls(backlog_depth=10)
    assert re.search(r"reader \(T\d+\) took [\d.]+/s while writer \(T\d+\) put", stall.headline), (
        stall.headline
    )
    assert f":{PID}" not in repr(stall)
    assert stall.to_frame()["actor"][0].endswith(f":{PID}")


def test_crash_in_a_notebook_cell_says_cell_and_time_from_start():
    cell = compile(
        "def work():\n    raise KeyError('carol')\n", "/tmp/ipykernel_4242/1234567.py", "exec"
    )
    space: dict = {}
    exec(cell, space)
    with scope.record() as trace:
        t = threading.Thread(target=space["work"], name="payer")
        t.start()
        t.join()
    report = trace.analyze_crash("payer")
    text = repr(report)
    assert re.fullmatch(r"payer \(T\d+\) crashed: KeyError: carol", report.headline), (
        report.headline
    )
    assert "at: cell:2" in text and "ipykernel" not in text.split("traceback:")[0], text
    assert re.search(r"at time: \+\d+\.\d{4} s", text), text
    assert report.crash.location == "/tmp/ipykernel_4242/1234567.py:2"


def test_summary_names_crashed_actors():
    def work():
        raise ValueError("boom")

    with scope.record() as trace:
        t = threading.Thread(target=work, name="cruncher")
        t.start()
        t.join()
    text = repr(trace)
    assert re.search(r"cruncher \(T\d+\): ValueError", text), text
