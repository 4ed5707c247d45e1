"""Per-function call statistics of a recording, from its buffers, without the events frame.

The first `performance_hotspots()` of a recording would otherwise build the whole
events frame (every argument and result formatted as text, every column gathered) to
read five of its columns. Here the buffers are decoded without the texts, paired by
the C pass the frame is built from (so the rows, order and links are the frame's),
and native/callstats.c aggregates the paired rows per (module, function): the
statistics `analysis.performance.hotspots_from_stats` ranks into the same answer as
`performance_hotspots(events)` (tests compare the two on real runs). The frame's own
build reads them too (`paired_stats`, from the pairing it is gathered from), so the
hotspots asked after `events()` need no query on the frame: that query's join of every
call to its children's time was the largest transient of the first answers. Without
the C extension there is no such path: the frame answers.
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING

import polars as pl

from ..recorder.buffer import fast_module
from ..schema import KIND_CODE
from .decode import RICH_FIELDS, Decoded, decode
from .fast_events import kept_rows, narrow_frame, native_pairing, paired, text_series

if TYPE_CHECKING:
    from .source import Capture

# per (module, function): `calls` counts every call row (what called_modules reads),
# `count` those performance_hotspots counts (a traced object's message left out where
# function tracing saw the function); the rest as performance_hotspots names them
STATS_SCHEMA = {
    "module": pl.String,
    "function": pl.String,
    "calls": pl.UInt32,
    "count": pl.UInt32,
    "total_ns": pl.Int64,
    "self_ns": pl.Int64,
    "mean_ns": pl.Int64,
    "max_ns": pl.Int64,
    "actors": pl.UInt32,
    "location": pl.String,
    "exceptions": pl.Int64,
    "p50_ns": pl.Int64,
    "p95_ns": pl.Int64,
}
_NATIVE = ("calls", "count", "total_ns", "self_ns", "mean_ns", "max_ns", "actors")
_AFTER = ("exceptions", "p50_ns", "p95_ns")


def available() -> bool:
    """Whether this path exists here (the C extension is built and in use)."""
    return fast_module() is not None and native_pairing() is not None


def call_stats(cap: Capture) -> pl.DataFrame:
    """The per-function statistics (STATS_SCHEMA) of what the capture holds (see
    `available`)."""
    rec, sites = cap.rec, cap.sites
    d = decode(cap.chunks, cap.critical, sites, rec.fmt, texts=False)
    *cols, m, rows, _ = paired(d, len(sites), calls_only=True)
    limit = rec.options.max_events
    keep = None
    if limit is not None and rows > limit:  # which rows the bound keeps: read them all
        *cols, m, rows, _ = paired(d, len(sites))
        narrow = narrow_frame(cols, m)
        keep = kept_mask(narrow.select(kept_rows(narrow, limit)).to_series())
    return paired_stats(d, cols, m, keep, sites)


def kept_mask(kept: pl.Series) -> bytes:
    """A boolean Series of the paired rows as the one byte a row `paired_stats` reads."""
    mask = kept.cast(pl.UInt8).to_arrow()
    return bytes(mask.buffers()[1])[mask.offset : mask.offset + len(kept)]


def paired_stats(d: Decoded, cols: list, m: int, keep: bytes | None, sites) -> pl.DataFrame:
    """The statistics of decoded rows as the C pass paired them (`fast_events.paired`:
    all of its rows, or only the call and exception rows), of the rows `keep` marks
    (every row when None). The events frame's build calls it too, while the pairing's
    columns exist: the buffers are let go once the frame is built."""
    fast = fast_module()
    groups: dict[tuple, int] = {}
    site_group = array("q", [groups.setdefault((s.module, s.function), len(groups)) for s in sites])
    rich = {name: d.rich_cols[RICH_FIELDS.index(name)] for name in ("module", "function", "obj")}
    *numbers, first, exceptions, p50, p95 = fast.call_stats(
        tuple(cols),
        m,
        keep,
        site_group,
        groups,
        rich["module"],
        rich["function"],
        rich["obj"],
        (KIND_CODE["call"], KIND_CODE["exception"]),
    )
    keys = list(groups)
    locations = [s.location for s in sites]
    rich_locations = d.rich_cols[RICH_FIELDS.index("location")]
    columns = {
        "module": text_series([k[0] for k in keys]),
        "function": text_series([k[1] for k in keys]),
        **dict(zip(_NATIVE, numbers, strict=True)),
        "location": text_series(
            [
                None
                if i is None
                else locations[i]
                if i < len(sites)
                else rich_locations[i - len(sites)]
                for i in first
            ]
        ),
        **dict(zip(_AFTER, (exceptions, p50, p95), strict=True)),
    }
    return pl.DataFrame(
        [pl.Series(c, v, dtype=STATS_SCHEMA[c]) for c, v in columns.items()]
    ).filter(pl.col("calls") > 0)
