"""Child processes recorded into their own directories and merged by `load`:
multiprocessing (fork, spawn, forkserver), ProcessPoolExecutor, subprocess; messages
through multiprocessing queues and pipes paired across processes; a child killed
with SIGKILL keeps everything it flushed."""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys
import textwrap
import warnings
from concurrent.futures import ProcessPoolExecutor

import polars as pl
import pytest

import scope_nb as scope
from scope_nb.store.load import TraceLoadWarning


def produce(q, conn, n):
    for i in range(n):
        q.put(("item", i))
    conn.send({"done": n})


def cube(x):
    return x * x * x


def child_dirs(root):
    return sorted(p.name for p in root.iterdir() if p.is_dir())


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_children_merged_and_messages_paired(tmp_path, method):
    ctx = mp.get_context(method)
    scope.start(persist_to_disk=True, persist_path=str(tmp_path), flush_interval=0.1)
    q = ctx.Queue()
    parent_end, child_end = ctx.Pipe()
    p = ctx.Process(target=produce, args=(q, child_end, 3), name=f"producer-{method}")
    p.start()
    got = [q.get(timeout=60) for _ in range(3)]
    done = parent_end.recv()
    p.join(60)
    scope.stop()
    assert got == [("item", 0), ("item", 1), ("item", 2)] and done == {
        "done": 3
    }  # untouched by tracing
    assert p.exitcode == 0
    assert len(child_dirs(tmp_path)) == 2  # the parent's and the child's (not the fork server's)
    trace = scope.load(tmp_path)
    ev = trace.events()
    sends = ev.filter((pl.col("kind") == "send") & (pl.col("pid") == p.pid))
    recvs = ev.filter(
        (pl.col("kind") == "receive")
        & (pl.col("pid") == os.getpid())
        & pl.col("msg_id").is_not_null()
    )
    assert sends.height == 4
    pairs = sends.join(recvs, on="msg_id", suffix="_r")
    assert pairs.height == 4
    assert (pairs["target"] == pairs["target_r"]).all()
    assert (pairs["detail"] == pairs["detail_r"]).all()
    assert all(m >> 32 == p.pid for m in pairs["msg_id"])  # the id names the sending process
    assert (pairs["ts_r"] >= pairs["ts"]).all()  # one time axis
    actors = trace.actors()
    child = actors.filter(pl.col("actor") == f"P{p.pid}").row(0, named=True)
    assert (
        child["kind"] == "process"
        and child["name"] == f"producer-{method}"
        and child["outcome"] == "ok"
    )
    assert child["parent"] in set(actors.filter(pl.col("pid") == os.getpid())["actor"])
    tree = trace.supervision_tree()
    assert tree.has_edge(child["parent"], f"P{p.pid}")
    sender = sends["actor"][0]
    assert tree.has_edge(f"P{p.pid}", sender) or sender in tree.successors(f"P{p.pid}")


def test_process_pool_workers_recorded(tmp_path):
    scope.start(
        persist_to_disk=True, persist_path=str(tmp_path), flush_interval=0.1, modules=[__name__]
    )
    with ProcessPoolExecutor(max_workers=2, mp_context=mp.get_context("spawn")) as ex:
        results = list(ex.map(cube, range(6)))
    scope.stop()
    assert results == [x**3 for x in range(6)]
    trace = scope.load(tmp_path)
    calls = trace.events("call").filter(pl.col("function") == "cube")
    assert calls.height == 6
    assert os.getpid() not in set(calls["pid"])  # they ran in the workers
    workers = trace.actors().filter((pl.col("kind") == "process") & (pl.col("pid") != os.getpid()))
    assert set(calls["pid"]) <= set(workers["pid"])
    assert workers["parent"].null_count() == 0


CHILD = textwrap.dedent("""
    import sys, time
    from scope_nb.recorder import session
    from scope_nb.store.flusher import flusher_of

    def step(i):
        return i * 2

    for i in range(200):
        step(i)
    flusher_of(session.ACTIVE).flush()
    print("flushed", flush=True)
    i = 200
    while True:
        step(i)
        i += 1
        if i % 50 == 0:
            time.sleep(0.001)
""")


def test_child_killed_keeps_what_it_flushed(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    root = tmp_path / "trace"
    scope.start(
        persist_to_disk=True,
        persist_path=str(root),
        storage="disk",
        flush_interval=0.05,
        segment_bytes=4096,
        trace_all=True,
    )
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "flushed"
    # wait until the child has flushed more on its own timer, then kill it mid-run
    child_dir = next(p for p in root.iterdir() if p.name.endswith(f"-{proc.pid}"))
    first = len(list(child_dir.glob("raw-*.parquet")))
    while len(list(child_dir.glob("raw-*.parquet"))) < first + 2:
        os.sched_yield()
    proc.kill()
    assert proc.wait() == -9
    scope.stop()
    with warnings.catch_warnings():
        warnings.simplefilter("error", TraceLoadWarning)  # no segment was left damaged
        trace = scope.load(root)
    steps = trace.events("call").filter(
        (pl.col("function") == "step") & (pl.col("pid") == proc.pid)
    )
    seen = sorted(int(d.removeprefix("i=")) for d in steps["detail"])
    # nothing missing before the last flush
    assert len(seen) > 200 and seen == list(range(len(seen)))
    row = trace.actors().filter(pl.col("actor") == f"P{proc.pid}").row(0, named=True)
    assert row["outcome"] == "crashed" and "SIGKILL" in row["exception"]


def test_subprocess_with_explicit_env(tmp_path):
    scope.start(persist_to_disk=True, persist_path=str(tmp_path), flush_interval=0.1)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/")}
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import threading; t = threading.Thread(target=print, args=('x',)); "
            "t.start(); t.join()",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    scope.stop()
    assert out.stdout == "x\n" and out.stderr == ""
    trace = scope.load(tmp_path)
    spawned = trace.events("spawn")
    child_pids = set(trace.actors().filter(pl.col("kind") == "process")["pid"]) - {os.getpid()}
    assert len(child_pids) == 1
    (pid,) = child_pids
    # its thread, recorded by the child itself
    assert spawned.filter(pl.col("pid") == pid).height == 1
    assert "SCOPE_NB_CHILD" not in os.environ and "boot" not in os.environ.get("PYTHONPATH", "")
