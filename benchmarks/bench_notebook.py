"""Notebook-layer timings against their targets: `%load_ext` time, the `%%scope`
summary on a 100k-event cell, and the explorer's first render and slider step
latency (kernel side) on a 1M-event trace.

    python benchmarks/bench_notebook.py [--events 1000000] [--cell-events 100000]

`%load_ext` is timed in a fresh interpreter (a warm one would hide the imports).
The 1M-event trace is built directly as frames (recording a million events would
time the recorder, not the notebook).
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import subprocess
import sys
import time

TARGETS = {"load_ext": 0.3, "summary_100k": 1.0, "explorer_first_render": 2.0, "slider_step": 0.1}


def synthetic_trace(n_events: int, n_threads: int = 16, n_objects: int = 4):
    """A Trace of n_events: threads calling, messaging, locking and changing objects."""
    import polars as pl

    from scope_nb import clock
    from scope_nb.schema import ACTORS, EVENTS, STATES, polars_schema
    from scope_nb.trace import Trace

    t0 = clock.now()
    actors = [f"T{i}:1" for i in range(n_threads)]
    kinds = ["call", "return", "send", "receive", "lock_acquire", "lock_release", "write", "state"]
    idx = pl.int_range(0, n_events, eager=True, dtype=pl.Int64)
    kind_of = pl.Series(kinds).gather(idx % len(kinds))
    ev = (
        pl.DataFrame(
            {
                "seq": idx,
                "ts": t0 + idx * 1000,
                "kind": kind_of,
                "actor": pl.Series(actors).gather((idx // 8) % n_threads),
            }
        )
        .with_columns(
            pid=pl.lit(1, pl.Int64),
            target=pl.when(pl.col("kind").is_in(["send", "receive"]))
            .then(pl.lit("jobs"))
            .when(pl.col("kind").str.starts_with("lock"))
            .then(pl.lit("L") + (pl.col("seq") % 3).cast(pl.String))
            .when(pl.col("kind") == "write")
            .then(pl.lit("value"))
            .otherwise(None),
            module=pl.lit("app"),
            function=pl.when(pl.col("kind").is_in(["call", "return"])).then(
                pl.lit("work") + (pl.col("seq") % 7).cast(pl.String)
            ),
            detail=pl.col("seq").cast(pl.String),
            duration_ns=pl.when(pl.col("kind") == "call").then(pl.lit(900, pl.Int64)),
            msg_id=pl.when(pl.col("kind").is_in(["send", "receive"])).then(pl.col("seq") // 8),
            obj=pl.when(pl.col("kind").is_in(["write", "state"])).then(
                pl.lit("obj") + ((pl.col("seq") // 8) % n_objects).cast(pl.String)
            ),
            location=pl.lit("app.py:1"),
            depth=pl.lit(0, pl.Int64),
            parent_seq=pl.lit(None, pl.Int64),
            call_seq=pl.when(pl.col("kind").is_in(["call", "return"])).then(
                pl.col("seq") - (pl.col("seq") % 8)
            ),
            locks_held=pl.lit(None, pl.List(pl.String)),
            qsize=pl.when(pl.col("kind").is_in(["send", "receive"])).then(pl.col("seq") % 5),
        )
        .select(list(EVENTS))
        .cast(polars_schema(EVENTS))
    )
    st = (
        ev.filter(pl.col("kind") == "state")
        .select(
            "obj",
            "seq",
            "ts",
            "actor",
            cause=pl.lit("value = ") + pl.col("seq").cast(pl.String),
            changed=pl.concat_list(pl.lit("value")),
            state=pl.lit("{'value': ") + pl.col("seq").cast(pl.String) + pl.lit("}"),
            location=pl.lit("app.py:2"),
            blobs=pl.concat_list(
                pl.col("seq").map_elements(lambda s: pickle.dumps(s), return_dtype=pl.Binary)
            ),
            values=pl.concat_list(pl.col("seq").cast(pl.String)),
            attrs=pl.concat_list(pl.lit("value")),
            ops=pl.concat_list(pl.lit("set")),
            removed=pl.lit([], pl.List(pl.String)),
            keyframe=pl.lit(True),  # every row holds the whole (one-attribute) state
            json=pl.concat_list(pl.col("seq").cast(pl.String)),  # an int's typed JSON: its digits
        )
        .select(list(STATES))
        .cast(polars_schema(STATES))
    )
    ac = pl.DataFrame(
        {
            "actor": actors,
            "kind": ["thread"] * n_threads,
            "name": [f"worker-{i}" for i in range(n_threads)],
            "parent": [None] * n_threads,
            "supervisor": [None] * n_threads,
            "pid": [1] * n_threads,
            "started": [t0] * n_threads,
            "ended": [t0 + n_events * 1000] * n_threads,
            "outcome": ["ok"] * n_threads,
            "exception": [None] * n_threads,
        }
    ).cast(polars_schema(ACTORS))
    return Trace(
        events=ev, actors=ac, states=st, meta={"started": t0, "stopped": t0 + n_events * 1000}
    )


def time_load_ext(runs: int = 5) -> float:
    code = (
        "import time; from IPython.testing.globalipapp import start_ipython; ip = start_ipython(); "
        "t = time.perf_counter(); ip.run_line_magic('load_ext', 'scope'); "
        "print(time.perf_counter() - t)"
    )
    out = [
        float(
            subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            .stdout.strip()
            .splitlines()[-1]
        )
        for _ in range(runs)
    ]
    return min(out)


def time_summary(cell_events: int) -> tuple[float, float, int]:
    """Record a cell of about cell_events events through the magic and time its summary."""
    from IPython.testing.globalipapp import start_ipython

    ip = start_ipython()
    ip.run_line_magic("load_ext", "scope")
    n_items = cell_events // 2  # one send and one receive per item
    ip.run_cell(
        "import threading, queue\n"
        f"def _bench(n={n_items}):\n"
        "    q = queue.Queue()\n"
        "    def produce():\n"
        "        for i in range(n):\n"
        "            q.put(i)\n"
        "    def consume():\n"
        "        for _ in range(n):\n"
        "            q.get()\n"
        "    ts = [threading.Thread(target=produce), threading.Thread(target=consume)]\n"
        "    [t.start() for t in ts]; [t.join() for t in ts]\n"
    )
    ip.run_cell(f"%%scope --quiet --max-events {cell_events * 2}\n_bench()")
    trace = ip.user_ns["_scope"]
    from scope_nb.analysis.summary import summary_html

    t = time.perf_counter()
    trace.events()  # the frames were built by stop(), inside the cell's time; this is a cache hit
    frames = time.perf_counter() - t
    t = time.perf_counter()
    summary_html(trace)
    return time.perf_counter() - t, frames, len(trace)


def time_explorer(n_events: int) -> tuple[float, float, float]:
    trace = synthetic_trace(n_events)
    trace.events()
    from scope_nb.notebook.explorer import Explorer

    t = time.perf_counter()
    ex = Explorer(trace)
    first = time.perf_counter() - t
    steps = []
    for k in range(1, 41):
        t = time.perf_counter()
        ex.slider.value = (k * 24_989) % n_events
        steps.append(time.perf_counter() - t)
    return first, statistics.median(steps), max(steps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--cell-events", type=int, default=100_000)
    args = ap.parse_args()
    rows = []
    rows.append(("load_ext", "%load_ext scope (fresh interpreter, best of 5)", time_load_ext()))
    summary_s, _, recorded = time_summary(args.cell_events)
    rows.append(("summary_100k", f"%%scope summary ({recorded:,} events recorded)", summary_s))
    first, median, worst = time_explorer(args.events)
    rows.append(("explorer_first_render", f"explorer first render ({args.events:,} events)", first))
    rows.append(("slider_step", f"slider step, median of 40 (max {worst * 1e3:.1f} ms)", median))
    print(f"{'measure':<58} {'seconds':>9} {'target':>7}  ok")
    for key, label, value in rows:
        print(
            f"{label:<58} {value:>9.4f} {TARGETS[key]:>7.2f}  "
            f"{'yes' if value <= TARGETS[key] else 'NO'}"
        )


if __name__ == "__main__":
    main()
