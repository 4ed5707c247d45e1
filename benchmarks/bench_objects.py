"""Traced-object benchmarks; prints a table.

The same object (an int attribute `n` and a 10,000-element list `items`) is run
untraced and traced at three tracing levels:

* `minimal`: the object's state history only (states rows + `state` events), no
  read/write events: tracing the object without race tracking;
* `states_only`: the same plus `read` / `write` events with actor, location and the
  locks held: what the race detector works on (race tracking);
* `full`: everything (calls of traced code as well), for reference.

Workloads: 100,000 writes of an int attribute from 2 threads; 100,000 reads;
100,000 read-modify-writes (`obj.n += 1`, one read and one write); 100,000 of a dict
item the object holds (`counts["k"] += 1` on a local name for `obj.counts`: one
key-level read and write each, through the recorder's substitute dict); 10,000 method
calls that each change one element of the 10,000-element list. Each is timed best
of `--repeat` runs; the table gives µs per operation and the ratio race tracking /
state history only. Then the memory of the list's history (10,000 changes) against
one full copy, and `get_state_at` on the 100,000 changes of `n`.

    python benchmarks/bench_objects.py [--ops 100000] [--calls 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import pickle
import sys
import threading
import time

import scope_nb
from scope_nb.recorder import session

LEVELS = ("minimal", "states_only", "full")


class Box:
    def __init__(self, size: int):
        self.n = 0
        self.items = list(range(size))

    def bump(self, i):
        self.items[i % len(self.items)] = -i


def writes(box, n):
    for i in range(n):
        box.n = i


def reads(box, n):
    s = 0
    for _ in range(n):
        s += box.n
    return s


def rmw(box, n):
    for _ in range(n):
        box.n += 1


def item_rmw(box, n):
    counts = box.counts
    for _ in range(n):
        counts["k"] += 1


def calls(box, n):
    for i in range(n):
        box.bump(i)


def two_threads(fn, box, n):
    ts = [threading.Thread(target=fn, args=(box, n // 2)) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


WORKLOADS = {
    "write (2 threads)": lambda box, a: two_threads(writes, box, a.ops),
    "read": lambda box, a: reads(box, a.ops),
    "read-modify-write": lambda box, a: rmw(box, a.ops),
    "item read-modify-write": lambda box, a: item_rmw(box, a.ops),
    "method call, 10k list": lambda box, a: calls(box, a.calls),
}


def per_op(name: str, a) -> int:
    return a.calls if name.startswith("method") else a.ops


def run_once(name: str, level: str | None, a) -> float:
    """Seconds for one workload on a fresh object, untraced (level None) or traced."""
    box = Box(a.size)
    if name.startswith("item"):
        box.counts = {"k": 0}  # only here: the other workloads' object keeps its shape
    if level is not None:
        scope_nb.start(tracing_level=level, max_events=10_000_000)
        scope_nb.trace_object(box, "box")
    try:
        t0 = time.perf_counter()
        WORKLOADS[name](box, a)
        return time.perf_counter() - t0
    finally:
        if level is not None:
            rec = scope_nb._control.recorder()
            errors = dict(rec.store.errors)
            session.ACTIVE = None  # stop without building frames (not timed anyway)
            rec.stop()
            scope_nb._control._live = None
            if errors:
                raise RuntimeError(f"recorder faults: {errors}")


def timings(a) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name in WORKLOADS:
        row = {}
        for level in (None, *LEVELS):
            best = min(run_once(name, level, a) for _ in range(a.repeat))
            row[level or "untraced"] = best / per_op(name, a) * 1e6
        out[name] = row
    return out


def history_memory(a) -> tuple[int, int, int, int]:
    """(history bytes of `items`, one full copy, changes, keyframes) after `calls` changes."""
    box = Box(a.size)
    with scope_nb.record(tracing_level="minimal", max_events=10_000_000) as trace:
        scope_nb.trace_object(box, "box")
        calls(box, a.calls)
    states = trace.states()
    total = changes = keyframes = 0
    for attrs, blobs, keyframe in states.select("attrs", "blobs", "keyframe").iter_rows():
        for n, b in zip(attrs, blobs, strict=True):
            if n == "items":
                total += len(b or b"")
        changes += 1
        keyframes += bool(keyframe)
    full = len(pickle.dumps(box.items, protocol=pickle.HIGHEST_PROTOCOL))
    return total, full, changes - 1, keyframes  # the first row is the initial keyframe


def state_query(a) -> tuple[int, float]:
    """(changes, ms) for get_state_at in the middle of `ops` recorded changes of `n`."""
    box = Box(16)
    with scope_nb.record(tracing_level="minimal", max_events=10_000_000) as trace:
        scope_nb.trace_object(box, "box")
        writes(box, a.ops)
    states = trace.states()
    mid = int(states["ts"][states.height // 2])
    trace.get_state_at("box", mid)  # warm
    best = min(_timed(lambda: trace.get_state_at("box", mid)) for _ in range(5))
    return states.height - 1, best * 1e3


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--ops", type=int, default=100_000, help="writes / reads / read-modify-writes")
    ap.add_argument("--calls", type=int, default=10_000, help="method calls changing the list")
    ap.add_argument("--size", type=int, default=10_000, help="elements in the list")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()

    print(f"Python {sys.version.split()[0]}; µs per operation (best of {a.repeat})")
    t = timings(a)
    head = (
        f"{'workload':<24}{'untraced':>10}"
        + "".join(f"{lv:>13}" for lv in LEVELS)
        + f"{'race/states':>13}"
    )
    print(head)
    print("-" * len(head))
    for name, row in t.items():
        ratio = row["states_only"] / row["minimal"] if row["minimal"] else float("nan")
        print(
            f"{name:<24}{row['untraced']:>10.3f}"
            + "".join(f"{row[lv]:>13.3f}" for lv in LEVELS)
            + f"{ratio:>12.2f}x"
        )
    print(
        "  minimal = state history only; states_only = + read/write events with locks held (race "
        "tracking)"
    )

    total, full, changes, keyframes = history_memory(a)
    print(
        f"\nhistory of a {a.size:,}-element list changed {changes:,} times: {total / 1e6:.2f} MB "
        f"({keyframes} keyframes); one full copy {full / 1e3:.1f} kB"
    )
    print(
        f"  = {total / full:.1f} full copies in all, {total / (full * changes):.4f} of one full "
        "copy per change"
    )

    n, ms = state_query(a)
    print(f"\nget_state_at on {n:,} changes: {ms:.2f} ms")


if __name__ == "__main__":
    main()
