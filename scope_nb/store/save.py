"""`Trace.save(path)`: write a live or loaded trace as one directory in the "final"
layout (the events frame itself, calls already paired), which `load` scans lazily."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import polars as pl

from .. import clock
from ..config import some
from ..schema import SCHEMA_VERSION
from . import files, kernel_meta

_OURS = {files.METADATA, "actors.parquet", "states.parquet"}
_ACCEPTED = (
    "accepted: a new or empty directory, or one a trace was saved to before (it is replaced)"
)


def _jsonable(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(value).items()
        }
    return value


def save_trace(trace, path) -> str:
    """Write `trace` to the directory `path` (created 0700; files 0600). An existing
    directory must be empty or a trace saved before (it is replaced)."""
    target = Path(os.fspath(path)).expanduser()
    refuse = f"scope_nb: cannot save to {target}: path"
    if target.exists():
        if not target.is_dir():
            raise FileExistsError(f"{refuse} is an existing file; {_ACCEPTED}")
        present = {p.name for p in target.iterdir()}
        foreign = sorted(
            n
            for n in present
            if n not in _OURS and not (n.startswith("events-") and n.endswith(".parquet"))
        )
        if foreign:
            raise FileExistsError(
                f"{refuse} is a directory holding other files ({some(foreign)}); {_ACCEPTED}"
            )
        if files.METADATA in present:
            try:  # refuse to overwrite what is not a trace
                files.read_json(target / files.METADATA)
            except ValueError as e:
                raise ValueError(
                    f"{refuse} is a directory that is not a saved trace ({e}); {_ACCEPTED}"
                ) from None
    files.private_dir(target)
    lazy = trace.events_lazy()
    first = target / "events-000001.parquet"
    # the scan may read the very files being replaced (a loaded trace saved in place):
    # the new file is complete before it is renamed over the old one
    files.write_atomic(
        first, lambda tmp: lazy.sink_parquet(tmp, compression="zstd", statistics=True)
    )
    for old in target.glob("events-*.parquet"):
        if old != first:
            old.unlink()
    files.write_parquet(trace.actors(), target / "actors.parquet")
    files.write_parquet(trace.states(), target / "states.parquet")
    meta = {**trace.meta, **(trace._recorder_meta() if trace._rec is not None else {})}
    pids = pl.Series(trace.actors()["pid"]).drop_nulls().unique().sort().to_list()
    files.write_json(
        {
            "format": files.TRACE_FORMAT,
            "layout": "final",
            "schema_version": SCHEMA_VERSION,
            "host": files.host_name(),
            "pid": pids[0] if len(pids) == 1 else pids,
            "options": _jsonable(meta.get("options")),
            "dropped": trace.dropped_by_reason,
            "errors": trace.errors,
            "started": meta.get("started"),
            "stopped": meta.get("stopped"),
            "saved": clock.now(),
            "sources": meta.get("paths", []),
            "modules": sorted(meta.get("modules") or ()),
            **kernel_meta.saved(meta),  # which actors are the kernel's own
        },
        target / files.METADATA,
    )
    return str(target)
