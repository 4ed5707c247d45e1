"""Several processes' events on one time axis, in memory bounded by the largest process
and a window of rows, whatever the size of the whole.

A loaded trace's events are one stream ordered by `ts`, numbered by a new global `seq`
(ties by process, then by the process's own seq), with the links between rows
(`parent_seq`, `call_seq`) renumbered with them. Sorting the members' events together
and joining the links back, as one query, holds every member's rows at once: a
100M-event tree does not fit. So the merge runs once, at load, into a `Cache` of
Parquet files, in three passes that each hold little:

1. the global order: the time axis is cut into windows of about `ROWS_PER_WINDOW` rows
   of all processes together, however many record at once (every `_sample(n)`-th ts
   of each process stands for the rows after it; the samples of all, sorted, are cut
   every so many), and each window's keys (ts, process, seq) alone are sorted
   together: the new seq is the window's first number plus the row's rank in it;
2. each process in turn, its frame renumbered (seq and both links) from the keys of
   pass 1 and written sorted by the new seq;
3. each window in turn, its rows (a range of the new seq) read from every process's
   file of pass 2 (the files' row-group statistics skip the rest) and written in
   order: the trace scans those files lazily, in order.

The result is the frame a single sort and join over everything would give (tests
compare the two). The cache is a temporary directory of this process, never the trace
directory the user named (which may be read-only or shared), and it is removed when its
owner (the loaded trace's source) is collected, or at exit.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from ..schema import EVENTS, polars_schema

if TYPE_CHECKING:
    from .load import Unit

ROWS_PER_WINDOW = 1 << 21  # rows of all processes in a window: what passes 1 and 3 hold
ROW_GROUP = 1 << 16  # rows per Parquet row group: what a filtered scan skips by


class Cache:
    """A temporary directory for the files a load makes, made at the first file asked
    for and removed with everything in it when this object is collected (or at exit)."""

    def __init__(self) -> None:
        self._dir: Path | None = None
        self._n = 0

    @property
    def path(self) -> Path | None:
        """The directory, once a file was asked for."""
        return self._dir

    def file(self, stem: str) -> Path:
        """A new file's path in the cache (named `stem`-<n>.parquet)."""
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="scope_nb-load-"))
            weakref.finalize(self, shutil.rmtree, str(self._dir), True)
        self._n += 1
        return self._dir / f"{stem}-{self._n:06d}.parquet"

    def drop(self, stem: str) -> None:
        """Remove the files made as `stem`."""
        if self._dir is not None:
            for path in self._dir.glob(f"{stem}-*.parquet"):
                path.unlink()


def write(frame: pl.DataFrame, path: Path) -> pl.LazyFrame:
    """`frame` written to `path`, as a lazy scan of it."""
    frame.write_parquet(path, row_group_size=ROW_GROUP, statistics=True)
    return pl.scan_parquet(path)


def merge_events(units: list[Unit], cache: Cache) -> pl.LazyFrame:
    """All units' events on one time axis (see the module doc), as a scan of the cache."""
    schema = polars_schema(EVENTS)
    if len(units) == 1:
        return units[0].events
    windows = _windows([u.events for u in units])
    order, starts = _order(units, windows, cache)
    renumbered = [_renumbered(i, u.events, order, cache) for i, u in enumerate(units)]
    cache.drop("order")
    cache.drop("paired")  # the units' own frames (load.read_unit), renumbered now
    scans = [pl.scan_parquet(path) for path in renumbered]
    out: list[Path] = []
    for lo, hi in zip(starts, starts[1:], strict=False):
        rows = pl.concat(
            [f.filter(pl.col("seq").is_between(lo, hi, closed="left")) for f in scans]
        ).collect()
        if rows.height:
            path = cache.file("events")
            write(rows.sort("seq"), path)
            out.append(path)
    cache.drop("unit")
    if not out:
        return pl.DataFrame(schema=schema).lazy()
    return pl.scan_parquet(out)


def _windows(events: list[pl.LazyFrame]) -> list[pl.Expr]:
    """Filters cutting the time axis into windows, in order; the first takes null ts
    (sorted first, as polars sorts them). A window holds at most `ROWS_PER_WINDOW` rows
    plus one sample's worth per process: the samples between two cuts are a fixed
    number, and each process's rows there are its samples' rows plus the ones before
    its first sample in the window. Rows of one ts are never cut apart."""
    every = _sample(len(events))
    samples = [
        ev.select(pl.col("ts").drop_nulls().sort().gather_every(every)).collect()["ts"]
        for ev in events
    ]
    per_cut = max(ROWS_PER_WINDOW // every, 1)
    ts_all = pl.concat(samples).sort()
    bounds = ts_all.gather_every(per_cut, offset=per_cut).unique(maintain_order=True).to_list()
    ts = pl.col("ts")
    if not bounds:
        return [pl.lit(True)]
    return [
        (ts < bounds[0]) | ts.is_null(),
        *[ts.is_between(a, b, closed="left") for a, b in zip(bounds, bounds[1:], strict=False)],
        ts >= bounds[-1],
    ]


def _sample(processes: int) -> int:
    """Rows per sampled ts: what a window may hold beyond `ROWS_PER_WINDOW` is this many
    per process, kept to about an eighth of it in all."""
    return max(1, min(1 << 14, ROWS_PER_WINDOW // (8 * max(processes, 1))))


def _order(units: list[Unit], windows: list[pl.Expr], cache: Cache) -> tuple[list[Path], list[int]]:
    """Pass 1: files of (_u, seq, _new), window by window, and each window's first new
    seq (with the total last)."""
    files: list[Path] = []
    starts = [0]
    for window in windows:
        keys = (
            pl.concat(
                [
                    u.events.filter(window).select(
                        "ts", pl.lit(i, dtype=pl.Int64).alias("_u"), pl.col("seq").cast(pl.Int64)
                    )
                    for i, u in enumerate(units)
                ]
            )
            .collect()
            .sort(["ts", "_u", "seq"])
        )
        first = starts[-1]
        keys = keys.select(
            "_u", "seq", pl.int_range(first, first + keys.height, dtype=pl.Int64).alias("_new")
        )
        starts.append(first + keys.height)
        if keys.height:  # by process: pass 2 reads one process's row groups of each file
            path = cache.file("order")
            write(keys.sort("_u", "seq"), path)
            files.append(path)
    return files, starts


def _renumbered(i: int, events: pl.LazyFrame, order: list[Path], cache: Cache) -> Path:
    """Pass 2: unit `i`'s frame with the new seq and links, sorted by it, in a file."""
    schema = polars_schema(EVENTS)
    keys = (
        pl.scan_parquet(order).filter(pl.col("_u") == i).select("seq", "_new").collect()
        if order
        else pl.DataFrame(schema={"seq": pl.Int64, "_new": pl.Int64})
    )
    ev = events.collect().with_columns(pl.col("seq").cast(pl.Int64))
    ev = ev.join(keys, on="seq", how="left", maintain_order="left")
    for col in ("parent_seq", "call_seq"):
        ev = ev.with_columns(pl.col(col).cast(pl.Int64)).join(
            keys.rename({"seq": col, "_new": f"_{col}"}),
            on=col,
            how="left",
            maintain_order="left",
        )
    ev = ev.with_columns(
        pl.col("_new").alias("seq"),
        pl.col("_parent_seq").alias("parent_seq"),
        pl.col("_call_seq").alias("call_seq"),
    ).sort("seq")
    del keys
    path = cache.file("unit")
    write(ev.select([pl.col(c).cast(t) for c, t in schema.items()]), path)
    return path
