"""Cost of the detectors on a large recorded trace: records a real program of 100
threads sharing 1,000 locks (pairs taken nested in one order, a few in the other),
queues between producers and consumers, traced objects written by several threads
and a small asyncio part, sized to about `--events` events; then times
`trace.events()` and `trace.actors()` (the frames are built at the first query) and
each detector on them, and
measures each one's peak memory (the growth of the process's VmHWM, reset before
each by writing 5 to /proc/self/clear_refs; Linux only). Prints a markdown table.

    python benchmarks/bench_detectors.py [--events 1000000] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import queue
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import scope_nb  # noqa: E402

THREADS = 100
LOCKS = 1_000
QUEUES = 10
EVENTS_PER_ROUND = 5.4  # what one thread's round records, about (see worker)


class Account:
    """A traced object: its attributes are read and written by several threads."""

    def __init__(self) -> None:
        self.balance = 0
        self.count = 0


def worker(
    i: int,
    rounds: int,
    locks: list,
    queues: list,
    accounts: list,
    start: threading.Barrier,
    phase: threading.Barrier,
) -> None:
    """One thread's rounds: a nested pair of locks taken low index first (so the lock
    order graph has edges and no cycle), a queue put or get, and now and then an
    unlocked read-modify-write of a shared traced object (the races' content)."""
    rng = (i * 7919) % LOCKS
    q = queues[(i // 2) % QUEUES]  # each queue gets producers and consumers alike
    producer = i % 2 == 0
    acct = accounts[i % len(accounts)]
    start.wait()
    for r in range(rounds):
        a = (rng + r * 13) % LOCKS
        b = (a + 1 + (r % 7)) % LOCKS
        lo, hi = min(a, b), max(a, b)
        with locks[lo], locks[hi]:
            pass
        if producer:
            q.put(r)
        else:
            q.get()
        if r % 10 == 0:
            acct.balance = acct.balance + 1
    phase.wait()
    # a few inverted orders, one thread at a time so none can deadlock: potential
    # deadlocks for the lock order check
    if i < 5:
        for k in range(THREADS):
            phase.wait()
            if k == i:
                with locks[LOCKS - 1 - i], locks[i]:
                    pass
    else:
        for _ in range(THREADS):
            phase.wait()


async def async_part(n: int) -> None:
    """A producer and a consumer task through an asyncio.Queue under an asyncio.Lock."""
    q: asyncio.Queue = asyncio.Queue(maxsize=64)
    lock = asyncio.Lock()

    async def produce():
        for k in range(n):
            async with lock:
                await q.put(k)

    async def consume():
        for _ in range(n):
            await q.get()

    await asyncio.gather(produce(), consume())


def record(events: int):
    """Record the program, sized to about `events` events; returns the stopped Trace."""
    rounds = max(10, int(events / THREADS / EVENTS_PER_ROUND))
    rounds -= rounds % 2  # producers and consumers of a queue do the same number of rounds
    start = threading.Barrier(THREADS)
    phase = threading.Barrier(THREADS)
    with scope_nb.record(max_events=50_000_000) as trace:
        # made while recording: the primitives made before are not traced
        locks = [threading.RLock() if k % 10 == 0 else threading.Lock() for k in range(LOCKS)]
        queues = [queue.Queue() for _ in range(QUEUES)]
        accounts = [scope_nb.trace_object(Account(), f"account{k}") for k in range(2)]
        threads = [
            threading.Thread(
                target=worker,
                args=(i, rounds, locks, queues, accounts, start, phase),
                name=f"worker-{i}",
            )
            for i in range(THREADS)
        ]
        for t in threads:
            t.start()
        asyncio.run(async_part(max(10, events // 1000)))
        for t in threads:
            t.join()
    return trace


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def measure(fn):
    """(seconds, peak bytes above the memory in use before, result) of one call."""
    gc.collect()
    _reset_peak()
    before = _status("VmRSS")
    t = time.perf_counter()
    out = fn()
    took = time.perf_counter() - t
    return took, max(0, _status("VmHWM") - before), out  # RSS is counted coarsely: never below 0


def _size(out) -> str:
    if hasattr(out, "height"):
        return f"{out.height} rows"
    if hasattr(out, "number_of_edges"):
        return f"{out.number_of_edges()} edges"
    return f"{len(out)} reports"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--quick", action="store_true", help="100,000 events")
    args = ap.parse_args(argv)
    n = 100_000 if args.quick else args.events

    # imported first, so that no detector's time is the import of networkx
    import scope_nb.analysis.deadlocks  # noqa: F401
    import scope_nb.analysis.races  # noqa: F401
    import scope_nb.analysis.stalls  # noqa: F401

    t = time.perf_counter()
    trace = record(n)
    recorded = time.perf_counter() - t
    rows = [("trace.events()", *measure(trace.events)), ("trace.actors()", *measure(trace.actors))]
    ev = trace.events()
    locks = ev.filter(ev["kind"].is_in(["lock_acquire", "lock_wait"]))["target"].n_unique()
    threads = trace.actors().filter(trace.actors()["kind"] == "thread").height
    detectors = [
        ("detect_race_conditions", trace.detect_race_conditions),
        ("detect_deadlocks", trace.detect_deadlocks),
        ("lock_graph", trace.lock_graph),
        ("detect_stalls", trace.detect_stalls),
        ("message_queue_analysis", trace.message_queue_analysis),
        ("lock_contention", trace.lock_contention),
    ]
    rows += [(name, *measure(fn)) for name, fn in detectors]

    print(
        f"{len(trace):,} events, {locks:,} locks, {threads} threads; recorded in {recorded:.1f} s "
        f"(Python {sys.version.split()[0]}, {os.cpu_count()} cores)\n"
    )
    print("| query | s | peak MB | result |")
    print("|---|---:|---:|---|")
    for name, took, peak, out in rows:
        print(f"| {name} | {took:.2f} | {peak / 1e6:.0f} | {_size(out)} |")


if __name__ == "__main__":
    main()
