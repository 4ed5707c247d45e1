"""What an answer costs after the recording: stop(), the first events() and the first
performance_hotspots(), and the process's peak memory, side by side with VizTracer's
stop() + save() (what it does before anything can be read) on the same workload.

Each variant runs in a process of its own (peak memory is per process): the call-heavy
workload (`callheavy.fib`, its module traced with arguments and return values) sized to
about N events. Variants:

* scope_nb: the C extension's path (events frame built by native/pairing.c), events()
  first, then performance_hotspots() and detect_race_conditions() (in the peak, not
  timed);
* scope_nb hotspots first: the same, performance_hotspots() as the first query (no
  frame built before it: it answers from the buffers, model/call_stats.py);
* scope_nb polars path: the same recording with the polars reference pairing
  (`frames.pair_calls`), as frames were built before the C pass;
* VizTracer args+retval: `log_func_args` + `log_func_retval`, then `save()` to JSON.

Memory is the growth of the peak RSS (VmHWM) over the process before recording, per
event. The first answer's CPU time (the process's, all threads) is shown beside its wall
time: on a machine shared with other jobs it is the steadier of the two.
Usage: python benchmarks/bench_stop.py [--events N ...] [--out FILE]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VARIANTS = (
    "scope_nb",
    "scope_nb hotspots first",
    "scope_nb polars path",
    "VizTracer args+retval",
)


def _hwm() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _calls(depth: int) -> int:
    """fib(depth) makes 2 * F(depth + 1) - 1 calls (F the Fibonacci numbers)."""
    a, b = 0, 1
    for _ in range(depth + 1):
        a, b = b, a + b
    return 2 * a - 1


def _depth_for(events: int) -> int:
    """The depth whose calls make at least `events` events (two per call)."""
    d = 1
    while 2 * _calls(d) < events:
        d += 1
    return d


def child(variant: str, events: int) -> dict:
    sys.path.insert(0, str(HERE))
    import callheavy

    depth = _depth_for(events)
    import polars  # noqa: F401 - loaded before the baseline in every variant

    if variant.startswith("VizTracer"):
        from viztracer import VizTracer

        base = _hwm()
        tracer = VizTracer(
            verbose=0,
            register_global=False,
            tracer_entries=events + 1000,
            log_func_args=True,
            log_func_retval=True,
        )
        t0 = time.perf_counter()
        tracer.start()
        callheavy.fib(depth)
        t1 = time.perf_counter()
        tracer.stop()
        t2, c2 = time.perf_counter(), time.process_time()
        with tempfile.TemporaryDirectory() as tmp:
            tracer.save(os.path.join(tmp, "trace.json"))
        t3, c3 = time.perf_counter(), time.process_time()
        n = 2 * _calls(depth)  # its entries are whole calls: per event of ours, same program
        return _result((t0, t1, t2, t3), c3 - c2, None, n, _hwm() - base)
    import scope_nb
    from scope_nb.model import frames

    if variant.endswith("polars path"):
        frames.native_pairing = lambda: None  # the reference path, as built before the C pass
    base = _hwm()
    t0 = time.perf_counter()
    scope_nb.start(modules=["callheavy"], max_events=events * 2)
    callheavy.fib(depth)
    t1 = time.perf_counter()
    trace = scope_nb.stop()
    t2, c2 = time.perf_counter(), time.process_time()
    if variant.endswith("hotspots first"):
        trace.performance_hotspots()
        t3, c3 = time.perf_counter(), time.process_time()
        peak = _hwm() - base
        n = trace.events().height  # counted after the peak is read: the query's, not the frame's
        return _result((t0, t1, t2, t3), c3 - c2, None, n, peak)
    n = trace.events().height
    t3, c3 = time.perf_counter(), time.process_time()
    trace.performance_hotspots()
    t4 = time.perf_counter()
    trace.detect_race_conditions()  # the first answers: its memory is in the peak
    return _result((t0, t1, t2, t3), c3 - c2, t4 - t3, n, _hwm() - base)


def _result(times: tuple, first_cpu: float, hotspots: float | None, n: int, peak: int) -> dict:
    """One variant's row: `times` the clock at the recording's start, its end, after
    stop() and after the first answer; `peak` the growth of the peak RSS, in bytes."""
    t0, t1, t2, t3 = times
    return {
        "record_s": t1 - t0,
        "stop_s": t2 - t1,
        "first_s": t3 - t2,
        "first_cpu_s": first_cpu,
        "hotspots_s": hotspots,
        "events": n,
        "peak_b": peak / n,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--out", type=Path)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]))))
        return
    have_viz = importlib.util.find_spec("viztracer") is not None
    lines = [
        f"Python {sys.version.split()[0]}; `python benchmarks/bench_stop.py --events "
        f"{' '.join(map(str, args.events))}`",
        "",
        "| events | variant | record s | stop() s | first answer s | hotspots s | peak B/event |",
        "|---|---|---|---|---|---|---|",
    ]
    for n in args.events:
        for variant in VARIANTS:
            if variant.startswith("VizTracer") and not have_viz:
                continue
            out = subprocess.run(
                [sys.executable, __file__, "--child", variant, str(n)],
                capture_output=True,
                text=True,
                check=True,
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            hot = "-" if r["hotspots_s"] is None else f"{r['hotspots_s']:.2f}"
            first = (
                "save() "
                if variant.startswith("VizTracer")
                else "hotspots() "
                if variant.endswith("hotspots first")
                else "events() "
            )
            lines.append(
                f"| {r['events']:,} | {variant} | {r['record_s']:.2f} | {r['stop_s']:.4f} | "
                f"{first}{r['first_s']:.2f} (CPU {r['first_cpu_s']:.2f}) | {hot} | "
                f"{r['peak_b']:.0f} |"
            )
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
