"""Loading a raw tree (what the flusher writes while programs run) in bounded memory:
each process paired once into a cache, the merge done window by window. The trees
here are written by real child processes; the merged trace must equal the one a
single sort and join of every process's frame gives, and answer the same queries as
that frame held in memory. The cache lives outside the trace directory and goes with
the trace."""

from __future__ import annotations

import asyncio
import gc
import os
import queue
import stat
import subprocess
import sys
import threading
from pathlib import Path

import polars as pl
import pytest

import scope_nb as scope
from scope_nb.model.frames import SITES, pair_calls, spill_to_raw
from scope_nb.model.raw_pairing import pair_raw
from scope_nb.model.spill import SPILL
from scope_nb.schema import polars_schema
from scope_nb.store import load, merge
from scope_nb.trace import Trace

HERE = Path(__file__).parent


# -- a member: what each child process runs ------------------------------------------------
def leaf(x):
    return x + 1


def branch(n):
    return sum(leaf(i) for i in range(n))


def ticks(n):
    yield from range(n)


def work(rounds: int, lock: threading.Lock, q: queue.Queue, start: threading.Barrier) -> None:
    start.wait()
    for _ in range(rounds):
        branch(5)
        for _ in ticks(2):
            pass
        with lock:
            q.put(1)
        q.get()


async def hop(n: int) -> int:
    for _ in range(n):
        await asyncio.sleep(0)
    if n == 3:
        raise ValueError(n)
    return n


async def hops() -> list:
    return await asyncio.gather(*(hop(n) for n in range(4)), return_exceptions=True)


def member(root: str) -> None:
    """Three threads calling traced code, sharing a lock and a queue, asyncio tasks, and
    a queue left full, recorded into `root`."""
    scope.start(persist_to_disk=True, persist_path=root, flush_interval=0.02, modules=[__name__])
    lock, q = threading.Lock(), queue.Queue()
    start = threading.Barrier(3)
    threads = [threading.Thread(target=work, args=(40, lock, q, start)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    asyncio.run(hops())  # tasks: switches, coroutine segments, an exception
    backlog = queue.Queue()  # left 40 deep with no consumer: a stall
    for i in range(40):
        backlog.put(i)
    scope.stop().wait_written()


def write_tree(root: Path, members: int) -> list[Path]:
    """`members` processes recorded into `root`, one after another; their directories."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), str(HERE)])}
    code = f"import test_store_bounded as m; m.member({str(root)!r})"
    for _ in range(members):
        subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    dirs = sorted(p for p in root.iterdir() if p.is_dir())
    assert len(dirs) == members and all((d / "metadata.json").exists() for d in dirs)
    assert all(list(d.glob("raw-*.parquet")) for d in dirs)
    return dirs


# -- the reference: every process's frame sorted and joined together, in memory ------------
def merged_in_memory(frames: list[pl.DataFrame]) -> pl.DataFrame:
    ev = pl.concat(
        [f.with_columns(pl.lit(i, dtype=pl.Int64).alias("_u")) for i, f in enumerate(frames)]
    )
    ev = ev.sort(["ts", "_u", "seq"]).with_row_index("_new")
    ev = ev.with_columns(pl.col("_new").cast(pl.Int64))
    keys = ev.select("_u", "seq", "_new")
    for col in ("parent_seq", "call_seq"):
        ev = ev.join(
            keys.rename({"seq": col, "_new": f"_{col}"}),
            on=["_u", col],
            how="left",
            maintain_order="left",
        )
    ev = ev.sort("_new").with_columns(
        pl.col("_new").alias("seq"),
        pl.col("_parent_seq").alias("parent_seq"),
        pl.col("_call_seq").alias("call_seq"),
    )
    return ev.select(frames[0].columns)


def queries(trace) -> dict[str, pl.DataFrame]:
    lo, hi = trace.time_range()
    return {
        "events_between": trace.events_between(lo + (hi - lo) // 3, lo + (hi - lo) // 2),
        "performance_hotspots": trace.performance_hotspots(),
        "function_calls": trace.function_calls(),
        "message_queue_analysis": trace.message_queue_analysis(),
        "lock_contention": trace.lock_contention(),
        "detect_stalls": pl.DataFrame({"report": [str(r) for r in trace.detect_stalls()]}),
    }


@pytest.mark.parametrize("rows_per_window", [merge.ROWS_PER_WINDOW, 97])
def test_a_raw_tree_of_child_processes_loads_as_one_in_memory_merge(
    tmp_path, monkeypatch, rows_per_window
):
    dirs = write_tree(tmp_path / "tree", 3)
    frames = [scope.load(d).events() for d in dirs]
    reference = merged_in_memory(frames)
    # with 97 rows per window the merge runs over many windows, each cutting every process
    monkeypatch.setattr(merge, "ROWS_PER_WINDOW", rows_per_window)
    loaded = scope.load(tmp_path / "tree")
    assert reference.height == sum(f.height for f in frames) > 3 * 1000
    assert loaded.events().equals(reference)
    in_memory = Trace(
        events=reference, actors=loaded.actors(), states=loaded.states(), meta=loaded.meta
    )
    fresh = scope.load(tmp_path / "tree")  # answered from the scan, not a collected frame
    got, want = queries(fresh), queries(in_memory)
    assert not fresh._source.whole
    assert want["lock_contention"].height and want["message_queue_analysis"].height
    assert want["detect_stalls"].height
    for name, frame in want.items():
        assert got[name].equals(frame), name


def test_a_window_holds_about_its_rows_however_many_processes_record_at_once(monkeypatch):
    # 40 processes over the same stretch of time, at different rates, one with a burst
    # of equal timestamps: the windows' row counts, all processes together, stay near
    # the bound (per process, they would grow with the number of processes)
    monkeypatch.setattr(merge, "ROWS_PER_WINDOW", 4000)
    frames = []
    for p in range(40):
        n = 1000 + 50 * p  # fewer rows than a window each: cut per process, none would be
        ts = pl.int_range(0, n, dtype=pl.Int64, eager=True) * (10_000_000 // n) + p
        if p == 7:
            ts = ts.append(pl.repeat(5_000_000, 3000, dtype=pl.Int64, eager=True))
        frames.append(pl.DataFrame({"ts": ts.shuffle(seed=p)}).lazy())
    frames.append(pl.DataFrame({"ts": [None, 3, None]}, schema={"ts": pl.Int64}).lazy())
    total = sum(f.select(pl.len()).collect().item() for f in frames)
    counts = [
        sum(f.filter(w).select(pl.len()).collect().item() for f in frames)
        for w in merge._windows(frames)
    ]
    assert sum(counts) == total  # every row in exactly one window
    assert len(counts) >= total // 4000
    # the window's rows, plus at most one sample's worth per process
    bound = 4000 + len(frames) * merge._sample(len(frames))
    assert bound <= 4000 * 9 // 8
    assert max(counts) <= 3000 + bound  # the equal timestamps stay together
    assert sorted(counts)[-2] <= bound


def test_the_cache_is_outside_a_read_only_tree_and_goes_with_the_trace(tmp_path):
    tree = tmp_path / "tree"
    write_tree(tree, 2)
    listing = sorted(p.relative_to(tree) for p in tree.rglob("*"))
    for p in [tree, *tree.rglob("*")]:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        trace = scope.load(tree)
        n = trace.events().height
        cache = trace._source._owner.path
        assert cache is not None and cache.is_dir() and list(cache.glob("*.parquet"))
        assert tree.resolve() not in cache.resolve().parents
        assert sorted(p.relative_to(tree) for p in tree.rglob("*")) == listing
        # the last trace loaded is kept (for the notebook's magics) until the next one
        del trace
        again = scope.load(tree)
        gc.collect()
        assert not cache.exists()
        assert again.events().height == n and again._source._owner.path.is_dir()
        # and a trace still held at exit takes its cache with it
        code = (
            "import scope_nb as scope, sys; t = scope.load(sys.argv[1]); t.events(); "
            "print(t._source._owner.path)"
        )
        env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
        out = subprocess.run(
            [sys.executable, "-c", code, str(tree)], env=env, check=True, capture_output=True
        )
        left = Path(out.stdout.decode().strip())
        assert left.name.startswith("scope_nb-load-") and not left.exists()
    finally:
        for p in [tree, *tree.rglob("*")]:
            p.chmod(p.stat().st_mode | stat.S_IWUSR)


def test_the_c_pass_pairs_raw_rows_as_the_polars_reference(tmp_path):
    if (
        pair_raw(pl.DataFrame(schema=polars_schema(SPILL)), pl.DataFrame(schema=SITES), 1, 0)
        is None
    ):
        pytest.skip("the C extension is not built")
    for d in write_tree(tmp_path / "tree", 2):
        meta = load.read_metadata(d)
        segments = [pl.read_parquet(f) for f in sorted(d.glob("raw-*.parquet"))]
        spill = pl.concat(segments).select(list(polars_schema(SPILL)))
        sites = pl.read_parquet(d / "sites.parquet")
        got = pair_raw(spill, sites, meta["pid"], meta["clock_offset"])
        want = pair_calls(spill_to_raw(spill), sites, meta["pid"], meta["clock_offset"])
        kinds = set(want["kind"])
        assert {"call", "return", "exception", "spawn", "send", "lock_acquire"} <= kinds
        assert want.filter(kind="call")["function"].is_in(["hop", "ticks", "leaf"]).sum() > 100
        assert got.equals(want)
