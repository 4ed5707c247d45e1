"""A fleet's trace at scale: many recorded processes, one tree, three engines.

1. Build: `--members` processes really record (4 threads each: 51 traced calls, a
   lock and a queue message per round; storage="disk", so each process holds only
   what waits for its flusher), `--jobs` at a time, each naming its host with
   SCOPE_NB_HOST (node-0 .. node-3), into TREE/raw. Per member: events, time, peak RSS.
2. scope_nb: each step in a fresh process with its peak RSS (VmHWM), killed past
   `--cap-gb`: `load` of the raw tree and of one member, then on the loaded trace
   `events_between` (1% of the run), `performance_hotspots`, `message_queue_analysis`,
   `lock_contention`, `detect_stalls`, `function_calls`; with `--in-one` the whole tree
   is loaded once and asked each query but `function_calls` in turn, in one process.
3. The same dataset as it is, read by DuckDB and by Spark in local mode (skipped, with
   a message, without pyspark or Java): events per kind over TREE/raw/*/raw-*.parquet.

    python benchmarks/bench_fleet.py [--members 50] [--calls 1000000] [--jobs 2]
        [--cap-gb 8] [--tree DIR] [--keep] [--only build|query] [--in-one]

The tree goes to a temporary directory (deleted at the end unless --keep).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ENGINE_QUERY = (
    "SELECT kind, count(*) AS n FROM {src} WHERE kind NOT IN ('suspend', 'resume', 'switch') "
    "GROUP BY kind ORDER BY kind"
)


# -- a member of the fleet ------------------------------------------------------------------
def leaf(x):
    return x + 1


def branch(n):
    s = 0
    for i in range(n):
        s += leaf(i)
    return s


def work(rounds: int, lock: threading.Lock, q: queue.Queue) -> None:
    for _ in range(rounds):
        branch(50)  # 51 calls
        with lock:
            q.put(1)
        q.get()


def member(root: str, calls: int) -> None:
    """Record `calls` traced calls (and a lock and a message per 51) into `root`; the
    interpreter's exit waits for the last flush."""
    import scope_nb as scope

    rounds = calls // 4 // 51
    t = time.perf_counter()
    scope.start(
        modules=[__name__],
        storage="disk",
        persist_path=root,
        flush_interval=0.5,
        max_events=500_000_000,
    )
    lock, q = threading.Lock(), queue.Queue()  # made while recording: their events are too
    threads = [threading.Thread(target=work, args=(rounds, lock, q)) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    scope.stop()
    from scope_nb import _control

    _control.settle_all()
    print(json.dumps({"s": time.perf_counter() - t, "rss": peak_rss()}))


def peak_rss() -> int:
    """VmHWM: the process's own peak (ru_maxrss would carry over a parent's)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


# -- running steps in fresh processes ----------------------------------------------------
def run(argv: list[str], env: dict | None = None, cap: int | None = None) -> dict:
    """A child's JSON answer, or {"error": ...}, with "tree_rss": the peak RSS of it and
    its own children (Spark's JVM), sampled every 0.1 s; killed past `cap` bytes of it."""
    import psutil

    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak, killed = 0, False
    proc = psutil.Process(p.pid)
    while p.poll() is None:
        try:
            rss = sum(q.memory_info().rss for q in [proc, *proc.children(recursive=True)])
        except psutil.Error:
            continue
        peak = max(peak, rss)
        if cap is not None and rss > cap:
            p.kill()
            killed = True
            break
        time.sleep(0.1)
    out, err = p.communicate()
    if killed:
        return {"error": f"killed at {peak / 2**30:.1f} GiB RSS (over the cap)"}
    if p.returncode:
        return {"error": (err.strip().splitlines() or ["?"])[-1][:160]}
    return {**json.loads(out.strip().splitlines()[-1]), "tree_rss": peak}


def build(raw: str, members: int, calls: int, jobs: int) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(HERE), HERE])}
    out: list[dict] = []
    pending = list(range(members))
    while pending:
        batch, pending = pending[:jobs], pending[jobs:]
        threads, got = [], {}
        for k in batch:
            e = {**env, "SCOPE_NB_HOST": f"node-{k % 4}"}
            argv = [sys.executable, __file__, "--member", raw, "--calls", str(calls)]
            th = threading.Thread(target=lambda k=k, a=argv, e=e, g=got: g.update({k: run(a, e)}))
            th.start()
            threads.append(th)
        for th in threads:
            th.join()
        for k in batch:
            if "error" in got[k]:
                raise SystemExit(f"member {k} failed: {got[k]['error']}")
            out.append(got[k])
    return out


STEPS = (
    "load",
    "events_between",
    "performance_hotspots",
    "message_queue_analysis",
    "lock_contention",
    "detect_stalls",
    "function_calls",
)


IN_ONE = r"""
import json, sys, time
sys.path.insert(0, {here!r})
from bench_fleet import peak_rss
import scope_nb as scope
t = time.perf_counter()
trace = scope.load(sys.argv[1])
steps = [["load", time.perf_counter() - t, None, peak_rss()]]
lo, hi = trace.time_range()
for step in sys.argv[2:]:
    t = time.perf_counter()
    if step == "events_between":
        mid = lo + (hi - lo) // 2
        rows = trace.events_between(mid, mid + (hi - lo) // 100).height
    else:
        found = getattr(trace, step)()
        rows = len(found) if isinstance(found, list) else found.height
    steps.append([step, time.perf_counter() - t, rows, peak_rss()])
print(json.dumps({{"steps": steps}}))
"""


def in_one_rows(path: str, label: str, cap: int) -> list[tuple[str, str]]:
    """The tree loaded once, then every query but `function_calls` (one row per call)
    asked of it in turn: each step's time and the process's peak RSS after it."""
    steps = [s for s in STEPS if s not in ("load", "function_calls")]
    r = run([sys.executable, "-c", IN_ONE.format(here=HERE), path, *steps], cap=cap)
    if "error" in r:
        return [(f"scope_nb {label}, one process: load and queries", r["error"])]
    return [
        (
            f"scope_nb {label}, one process: {step}",
            describe({"s": s, "rows": rows, "rss": rss}),
        )
        for step, s, rows, rss in r["steps"]
    ]


def scope_rows(path: str, label: str, cap: int) -> list[tuple[str, str]]:
    """Each step in a fresh process that loads `path` first (its peak includes the load)."""
    rows = []
    for step in STEPS:
        argv = [sys.executable, "-c", IN_ONE.format(here=HERE), path]
        r = run(argv if step == "load" else [*argv, step], cap=cap)
        if "error" not in r:
            _, s, n, rss = r["steps"][-1]
            r = {"s": s, "rows": n, "rss": rss}
        rows.append((f"scope_nb {label}: {step}", describe(r)))
        if "error" in r and step == "load":
            break
    return rows


def describe(r: dict) -> str:
    if "error" in r:
        return r["error"]
    n = "" if r.get("rows") is None else f"{r['rows']:,} rows, "
    return f"{r['s']:.2f} s, {n}peak RSS {r['rss'] / 2**20:,.0f} MiB"


ENGINES = r"""
import json, sys, time
sys.path.insert(0, {here!r})
from bench_fleet import ENGINE_QUERY, peak_rss
engine, glob = sys.argv[1], sys.argv[2]
t = time.perf_counter()
if engine == "duckdb":
    import duckdb
    rows = duckdb.sql(ENGINE_QUERY.format(src=f"read_parquet('{{glob}}')")).fetchall()
else:
    from pyspark.sql import SparkSession
    spark = (SparkSession.builder.master("local[2]").appName("scope_nb")
             .config("spark.ui.enabled", "false").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    t = time.perf_counter()  # the JVM's start apart
    spark.read.parquet(glob).createOrReplaceTempView("raw")
    rows = [tuple(r) for r in spark.sql(ENGINE_QUERY.format(src="raw")).collect()]
    spark.stop()
print(json.dumps({{"s": time.perf_counter() - t, "rows": len(rows), "rss": peak_rss(),
                  "events": sum(n for _, n in rows)}}))
"""


def engine_rows(raw: str) -> list[tuple[str, str]]:
    rows = []
    glob = f"{raw}/*/raw-*.parquet"
    for engine in ("duckdb", "spark"):
        package = "duckdb" if engine == "duckdb" else "pyspark"
        try:
            __import__(package)
        except ImportError:
            rows.append((engine, f"skipped: {package} is not installed (pip install {package})"))
            continue
        if engine == "spark" and shutil.which("java") is None:
            rows.append((engine, "skipped: no java on PATH (Spark needs a JVM)"))
            continue
        r = run([sys.executable, "-c", ENGINES.format(here=HERE), engine, glob])
        text = describe(r)
        if "error" not in r:
            text = f"{r['events']:,} events counted by kind, {text}"
            if engine == "spark":
                text += f"; with the JVM {r['tree_rss'] / 2**20:,.0f} MiB (JVM start apart)"
        rows.append((f"{engine}: events per kind over the raw tree", text))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--members", type=int, default=50)
    ap.add_argument("--calls", type=int, default=1_000_000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--cap-gb", type=float, default=8.0)
    ap.add_argument("--tree", default=None)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--only", choices=["build", "query"], default=None)
    ap.add_argument(
        "--in-one",
        action="store_true",
        help="load the whole tree once and ask every query of it (not one process a step)",
    )
    ap.add_argument("--member", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.member:
        member(args.member, args.calls)
        return
    tree = args.tree or tempfile.mkdtemp(prefix="scope_nb-fleet-")
    raw = os.path.join(tree, "raw")
    cap = int(args.cap_gb * 2**30)
    rows: list[tuple[str, str]] = []
    try:
        if args.only != "query":
            t = time.perf_counter()
            built = build(raw, args.members, args.calls, args.jobs)
            wall = time.perf_counter() - t
            rows.append(
                (
                    f"build: {args.members} members x {args.calls:,} calls, {args.jobs} at a time",
                    f"{wall:.0f} s; per member {min(b['s'] for b in built):.1f}-"
                    f"{max(b['s'] for b in built):.1f} s, peak RSS up to "
                    f"{max(b['rss'] for b in built) / 2**20:,.0f} MiB",
                )
            )
        metas = [
            json.load(open(os.path.join(raw, d, "metadata.json"))) for d in sorted(os.listdir(raw))
        ]
        events = sum(m["rows_written"] for m in metas)
        disk = sum(
            os.path.getsize(os.path.join(raw, d, f))
            for d in os.listdir(raw)
            for f in os.listdir(os.path.join(raw, d))
        )
        dropped = sum(sum(m["dropped"].values()) for m in metas)
        rows.append(
            (
                f"tree: {len(metas)} processes on {len({m['host'] for m in metas})} hosts",
                f"{events:,} raw rows written, {dropped:,} dropped, "
                f"{disk / 2**20:,.0f} MiB on disk",
            )
        )
        if args.only != "build":
            one = os.path.join(raw, sorted(os.listdir(raw))[0])
            rows += scope_rows(one, "one member", cap)
            if args.in_one:
                rows += in_one_rows(raw, "the whole tree", cap)
            else:
                rows += scope_rows(raw, "the whole tree", cap)
            rows += engine_rows(raw)
    finally:
        if not args.keep:
            shutil.rmtree(tree, ignore_errors=True)
    width = max(len(k) for k, _ in rows)
    from scope_nb.recorder.buffer import backend_status

    status = backend_status()
    print(
        f"Python {sys.version.split()[0]}, {os.cpu_count()} cores, cap {args.cap_gb:g} GiB, "
        f"recorder back-end {status.backend} {status.reason}".rstrip()
    )
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


if __name__ == "__main__":
    main()
