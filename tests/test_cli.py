"""The scope-nb command end to end, on real scripts in child processes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import polars as pl

import scope_nb as scope

CRASH = textwrap.dedent("""
    import queue, threading
    q = queue.Queue()
    def worker():
        while (item := q.get()) is not None:
            total = sum(range(item))
    def fail():
        raise RuntimeError("boom in a thread")
    t = threading.Thread(target=worker, name="worker"); t.start()
    for i in range(20):
        q.put(i)
    q.put(None); t.join()
    f = threading.Thread(target=fail, name="failer"); f.start(); f.join()
    raise ValueError("main crashed")
""")

HANG = textwrap.dedent("""
    import threading
    a, b = threading.Lock(), threading.Lock()
    both = threading.Barrier(2)
    def one():
        with a:
            both.wait()
            with b:
                pass
    def two():
        with b:
            both.wait()
            with a:
                pass
    ts = [threading.Thread(target=one, name="one"), threading.Thread(target=two, name="two")]
    for t in ts:
        t.start()
    print("deadlocked", flush=True)
    for t in ts:
        t.join()
""")


def cli(*args, cwd, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "scope_nb", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_run_crashing_script_then_report_and_export(tmp_path):
    (tmp_path / "crash.py").write_text(CRASH)
    r = cli("run", "-o", "trace", "crash.py", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert r.stderr.count("Traceback") == 2 and "ValueError: main crashed" in r.stderr
    assert "scope_nb/cli.py" not in r.stderr  # the program's traceback, as python prints it
    assert "events" in r.stderr and "-> trace" in r.stderr  # the final progress line
    trace = scope.load(tmp_path / "trace")
    crashed = trace.actors().filter(pl.col("outcome") == "crashed")
    assert set(crashed["name"]) == {"failer", "MainThread"}
    assert trace.events("send").height == 21 and trace.events("receive").height == 21

    rep = cli("report", "trace", cwd=tmp_path)
    assert rep.returncode == 0, rep.stderr
    assert (
        "== crashes (2) ==" in rep.stdout
        and "boom in a thread" in rep.stdout
        and "main crashed" in rep.stdout
    )
    for section in ("races", "deadlocks", "stalls", "hotspots", "contention"):
        assert f"== {section} (" in rep.stdout
    # the tables as people read them: milliseconds, every column, no polars scaffolding
    hot = rep.stdout.split("== hotspots (")[1].split("== contention")[0]
    assert "total_ms" in hot and "p95_ms" in hot and "location" in hot and "worker" in hot
    assert "_ns" not in hot and "shape:" not in hot and "…" not in hot

    js = cli("report", "trace", "--json", cwd=tmp_path)
    assert js.returncode == 0, js.stderr
    doc = json.loads(js.stdout)
    assert doc["trace"]["processes"] == 1 and doc["trace"]["events"] == len(trace)
    assert len(doc["crashes"]) == 2 and {"races", "deadlocks", "stalls", "hotspots"} <= set(doc)
    assert any(h["function"] == "worker" for h in doc["hotspots"])

    ex = cli("export", "trace", "--perfetto", "out.json", cwd=tmp_path)
    assert ex.returncode == 0, ex.stderr
    events = json.loads((tmp_path / "out.json").read_text())["traceEvents"]
    assert sum(e["ph"] == "s" for e in events) == 21 and sum(e["ph"] == "f" for e in events) == 21


def test_run_hanging_script_stopped_by_timeout(tmp_path):
    (tmp_path / "hang.py").write_text(HANG)
    r = cli("run", "-o", "trace", "--timeout", "2", "hang.py", cwd=tmp_path, timeout=60)
    assert r.returncode == 124, r.stderr
    assert "deadlocked" in r.stdout and "timeout after 2 s" in r.stderr
    trace = scope.load(tmp_path / "trace")
    names = set(trace.actors()["name"])
    assert {"one", "two"} <= names
    waits = trace.events("lock_wait")
    assert waits.height >= 2  # each thread's wait for the other's lock was kept
    rep = cli("report", "trace", "--json", cwd=tmp_path)
    assert rep.returncode == 0, rep.stderr
    doc = json.loads(rep.stdout)
    assert doc["deadlocks"]
    text = cli("report", "trace", cwd=tmp_path).stdout
    assert '{"type"' not in text  # the watchdog's JSON is not shown as a detail
    # both locks, each with a thread still waiting for it when the recording was stopped
    stuck = [row for row in doc["contention"] if row["waiting"]]
    assert len(stuck) == 2 and all(row["acquisitions"] == 1 for row in stuck)


STUCK_AFTER_MAIN = textwrap.dedent("""
    import threading
    never = threading.Event()
    started = threading.Event()
    def stuck():
        started.set()
        never.wait()
    threading.Thread(target=stuck, name="stuck").start()
    started.wait()
    print("main returns", flush=True)
""")


def test_timeout_ends_a_run_whose_main_thread_returned_before_a_stuck_thread(tmp_path):
    (tmp_path / "stuck.py").write_text(STUCK_AFTER_MAIN)
    r = cli("run", "-o", "trace", "--timeout", "1", "stuck.py", cwd=tmp_path, timeout=60)
    assert r.returncode == 124, r.stderr
    assert "main returns" in r.stdout and "threads still running: stuck" in r.stderr
    trace = scope.load(tmp_path / "trace")
    [row] = trace.actors().filter(pl.col("name") == "stuck").iter_rows(named=True)
    assert row["outcome"] == "running"  # kept, and honest: it never ended
    # who was stuck on what, kept at the timeout (no watchdog was asked for)
    [hang] = [r for r in trace.detect_stalls() if r.kind == "hang"]
    assert "stuck (T" in hang.summary and "waits on event" in hang.summary
    assert hang.location.endswith("stuck.py:7") and "never.wait()" in hang.stacks[hang.actor]


CTRL_C = textwrap.dedent("""
    import threading
    never = threading.Event()
    started = threading.Event()
    def stuck():
        started.set()
        never.wait()
    threading.Thread(target=stuck, name="stuck", daemon=True).start()
    started.wait()
    print("stuck now", flush=True)
    threading.Event().wait()
""")


def test_ctrl_c_on_a_hung_program_keeps_what_its_threads_wait_on(tmp_path):
    (tmp_path / "hung.py").write_text(CTRL_C)
    p = subprocess.Popen(
        [sys.executable, "-m", "scope_nb", "run", "-q", "-o", "trace", "hung.py"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert p.stdout.readline() == "stuck now\n"
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
    finally:
        p.kill()
    assert p.returncode == 130, err
    stalls = scope.load(tmp_path / "trace").detect_stalls()
    [hang] = [r for r in stalls if r.kind == "hang"]
    assert "stuck (T" in hang.summary and "waits on event never" in hang.summary


def test_exit_codes_and_one_line_errors(tmp_path):
    (tmp_path / "bye.py").write_text("import sys\nprint(sys.argv[1:])\nsys.exit(3)\n")
    r = cli("run", "-q", "-o", "t1", "bye.py", "a", "--b", cwd=tmp_path)
    assert r.returncode == 3 and r.stdout == "['a', '--b']\n" and r.stderr == ""
    (tmp_path / "mod_main.py").write_text("import sys\nprint('module', __name__, sys.argv[1:])\n")
    r = cli("run", "-q", "-o", "t2", "-m", "mod_main", "x", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout == "module __main__ ['x']\n", r.stderr
    assert scope.load(tmp_path / "t2").actors().height >= 1
    r = cli("run", "missing.py", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "missing.py" in r.stderr
    r = cli("report", "nowhere", cwd=tmp_path)
    assert r.returncode == 3 and r.stderr.strip().count("\n") == 0 and "nowhere" in r.stderr
    r = cli("export", "t2", cwd=tmp_path)  # --perfetto is required
    assert r.returncode == 2
    r = cli("run", "--level", "loud", "bye.py", cwd=tmp_path)
    assert r.returncode == 2 and "tracing_level" in r.stderr
