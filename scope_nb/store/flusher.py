"""The disk flusher: a recorder-internal thread that persists what the recorder
buffered, every `flush_interval` seconds, as Parquet under `DIR/<host>-<pid>/`.

Layout of one process directory (the "raw" layout; `load` pairs the calls):

    metadata.json         schema version, host, pid, clock offset, options, dropped...
    raw-000001.parquet    decoded buffer rows (spill.SPILL), perf-ns timestamps
    sites.parquet         the traced code sites the raw rows refer to
    actors.parquet        the actors frame, rewritten when it changes
    states-000001.parquet rows of the states frame (values as typed JSON, see
                          scope_nb.typed, and as pickles for a trusted load)

Every file is replaced atomically (temp + rename). The current segment is rewritten
with the new rows appended until it reaches `segment_bytes`, then a new one starts;
so a SIGKILL loses at most the rows since the last flush and never an earlier
segment. `retention_segments` bounds the number of segments kept (oldest deleted,
their rows counted as dropped). Only pyarrow is used here, never polars (see spill).
"""

from __future__ import annotations

import dataclasses
import os
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa

from .. import clock
from ..model.spill import rows_table, sites_table, spill_table
from ..schema import ACTORS, SCHEMA_VERSION, STATES
from . import files


class Segments:
    """One rotating series of Parquet segments (raw-*, states-*)."""

    def __init__(self, directory: Path, prefix: str, max_bytes: int, retention: int | None):
        self.dir, self.prefix, self.max_bytes, self.retention = (
            directory,
            prefix,
            max_bytes,
            retention,
        )
        self.number = 1
        self.current: list[pa.Table] = []
        self.sealed: list[tuple[str, int]] = []  # (file name, rows)
        self.rows = 0  # rows written, all segments
        self.deleted_rows = 0
        self.size = 0  # bytes of the current segment on disk
        self.row_bytes = 0.0  # of the last write

    def name(self, n: int) -> str:
        return f"{self.prefix}-{n:06d}.parquet"

    def add(self, table: pa.Table) -> None:
        """Rewrite the current segment with `table` appended; when that would take it
        past `max_bytes` (judged by the bytes per row written so far), the current one
        is complete as it is and `table` starts the next: rows are rewritten only
        while their segment is small."""
        if table.num_rows == 0:
            return
        if self.current and self.size + table.num_rows * self.row_bytes >= self.max_bytes:
            self._seal()
        self.current.append(table)
        self.rows += table.num_rows
        frame = pa.concat_tables(self.current) if len(self.current) > 1 else table
        self.current = [frame]
        self.size = files.write_arrow(frame, self.dir / self.name(self.number))
        self.row_bytes = self.size / frame.num_rows
        if self.size >= self.max_bytes:
            self._seal()

    def _seal(self) -> None:
        self.sealed.append((self.name(self.number), self.current[0].num_rows))
        self.number += 1
        self.current = []
        self.size = 0
        self._retain()

    def _retain(self) -> None:
        if self.retention is None:
            return
        while self.sealed and len(self.sealed) + 1 > self.retention:
            name, rows = self.sealed.pop(0)
            try:
                os.unlink(self.dir / name)
            except FileNotFoundError:
                pass
            self.deleted_rows += rows

    def listing(self) -> list[dict[str, Any]]:
        out = [{"file": n, "rows": r} for n, r in self.sealed]
        if self.current:
            out.append({"file": self.name(self.number), "rows": self.current[0].num_rows})
        return out


class Flusher:
    def __init__(self, rec):
        self.rec = rec
        opts = rec.options
        self.root = files.private_dir(opts.persist_path)
        self.dir = files.private_dir(self.root / f"{files.host_name()}-{rec.pid}")
        self.drain = opts.storage == "disk"
        self.cursor: dict = {}
        self.base: dict[int, int] = {}  # buffer index -> rows of it written so far
        self.raw = Segments(self.dir, "raw", opts.segment_bytes, opts.retention_segments)
        self.states = Segments(self.dir, "states", opts.segment_bytes, None)
        self.states_done = 0
        self.sites_done = -1
        self.actors_key: tuple | None = None
        self.lock = threading.Lock()  # one flush at a time (thread vs stop)
        self.stopping = threading.Event()
        self.stopped_at: int | None = None
        self.flushes = 0
        self.thread = rec.own_thread(self._loop, "flusher", self.stopping)
        self.last = None  # the last flush, when stop() left it running

    def settle(self) -> None:
        """Wait for the last flush, if stop() left it running."""
        if self.last is not None:
            self.last.join()

    # -- the thread -------------------------------------------------------------------
    def _loop(self) -> None:
        interval = self.rec.options.flush_interval
        while not self.stopping.wait(interval):
            self.flush()

    def flush(self) -> None:
        """Write everything new; a failure is counted in the trace's errors, never raised."""
        with self.lock:
            try:
                self._flush()
            except Exception as e:
                self.rec.fault("flusher", e)
                self._failed()

    def _failed(self) -> None:
        """The metadata written after a failed flush too: its errors tell the trace's reader
        that events were lost, which a failure before the metadata write would hide."""
        try:
            files.write_json(self.metadata(), self.dir / files.METADATA)
        except Exception as e:
            self.rec.fault("flusher.metadata", e)

    def _flush(self) -> None:
        rec = self.rec
        chunks, critical = rec.store.take_unflushed(self.cursor, self.drain)
        n_sites = len(rec.sites)
        if n_sites != self.sites_done:
            files.write_arrow(sites_table(rec.sites[:n_sites]), self.dir / "sites.parquet")
            self.sites_done = n_sites
        if chunks or critical:
            self.raw.add(spill_table(chunks, critical, rec.sites, rec.fmt, self.base))
        recorded = rec.parts.states
        if recorded is not None and len(recorded) > self.states_done:
            from ..recorder.patchers.objects import states_rows

            rows = states_rows(rec, self.states_done)
            self.states.add(rows_table(rows, STATES))
            self.states_done += len(rows)
        actors = list(rec.actors.rows.values())
        key = (len(actors), sum(1 for r in actors if r["ended"] is not None))
        if key != self.actors_key:
            files.write_arrow(rows_table(actors, ACTORS), self.dir / "actors.parquet")
            self.actors_key = key
        files.write_json(self.metadata(), self.dir / files.METADATA)
        self.flushes += 1

    def metadata(self) -> dict[str, Any]:
        rec = self.rec
        dropped = dict(rec.store.dropped)
        dropped["retention"] = self.raw.deleted_rows
        child = rec.child
        return {
            "format": files.TRACE_FORMAT,
            "layout": "raw",
            "schema_version": SCHEMA_VERSION,
            "host": files.host_name(),
            "pid": rec.pid,
            "ppid": os.getppid(),
            "parent_actor": child.parent_actor if child is not None else None,
            "clock_offset": rec.offset,
            "options": _options(rec.options),
            "dropped": dropped,
            "errors": dict(rec.store.errors),
            "error_samples": dict(rec.store.error_samples),
            "started": clock.to_epoch(rec.started_perf),
            "stopped": self.stopped_at,
            "updated": clock.now(),
            "rows_written": self.raw.rows,
            "segments": self.raw.listing(),
            "state_segments": self.states.listing(),
        }

    @property
    def events_written(self) -> int:
        return self.raw.rows


def _options(options) -> dict[str, Any]:
    return {
        k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(options).items()
    }


def start_flusher(rec) -> Flusher:
    """Start persisting `rec` (called by `scope_nb.start` when persisting)."""
    fl = Flusher(rec)
    rec.flusher = fl
    fl.flush()  # the directory and its metadata exist from the start
    fl.thread.start()
    return fl


def flusher_of(rec) -> Flusher | None:
    return rec.flusher


def stop_flusher(rec, wait: bool = True) -> Flusher | None:
    """Final flush after the recorder stopped; returns the flusher (its `dir`, and
    `drain`: whether the memory only held what waited for it). With `wait=False` the
    flush runs on a recorder thread of its own and `Flusher.settle()` waits for it."""
    fl: Flusher | None = rec.flusher
    if fl is None:
        return None
    fl.thread.finish()
    fl.stopped_at = clock.to_epoch(rec.stopped_perf) if rec.stopped_perf else clock.now()
    if wait:
        fl.flush()
    else:
        fl.last = rec.own_thread(fl.flush, "last-flush")
        fl.last.start()
    return fl
