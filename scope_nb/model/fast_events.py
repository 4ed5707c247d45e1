"""The events frame built straight from the buffers, with the C pairing.

`frames.pair_calls` (polars) pairs calls on a frame of every buffered row and every
column, sorting and joining it several times: on a call-heavy trace that peaked above
1 KB per event. Here the rows stay where the buffers hold them and only narrow integer
columns move: the C extension pairs the call stream in one pass (`pair_calls` in
native/pairing.c), the call and end rows are merged with the few emitted events on
(ts, buffer, position), and each column of the frame is then gathered once, in its
final order, from the decoded values (texts, sites, emitted events' fields).

The result is the frame `frames.pair_calls` makes from the same rows (tests compare
the two on real runs); without the C extension that path is the one used.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

import polars as pl
import pyarrow as pa

from ..recorder.buffer import (
    CALL,
    EXCEPTION,
    KIND_BITS,
    KIND_MASK,
    RESUME,
    RETURN,
    RICH,
    SUSPEND,
    SWITCH,
    fast_module,
)
from ..schema import CRITICAL_KINDS, EVENT_KINDS, EVENTS, KIND_CODE, polars_schema
from ..values import Formatter
from .decode import RICH_FIELDS, Decoded, decode
from .spill import SPILL_SCHEMA, encodable, int64_array, text_array

_CODES = (
    CALL,
    RETURN,
    EXCEPTION,
    SUSPEND,
    RESUME,
    SWITCH,
    RICH,
    KIND_MASK,
    KIND_BITS,
    KIND_CODE["call"],
    KIND_CODE["return"],
    KIND_CODE["exception"],
)
_CRITICAL = sorted(KIND_CODE[k] for k in CRITICAL_KINDS)
_COLUMNS = ("key", "kind", "actor", "depth", "parent", "call", "duration", "label", "rich")


def native_pairing() -> Any:
    """The C pairing function, or None when the extension is not built."""
    return getattr(fast_module(), "pair_calls", None)


def events_frame(
    chunks,
    critical,
    sites,
    fmt: Formatter,
    pid: int,
    offset: int,
    limit: int | None = None,
    paired_hook: Callable[[Decoded, list, int, pl.Series | None], None] | None = None,
) -> pl.DataFrame:
    """The events frame (schema.EVENTS) of buffered chunks and the critical lane: calls
    paired, markers gone, `seq` set, at most `limit` rows (the critical kinds kept).
    `paired_hook(d, cols, m, kept)` is called with the decoded rows and the pairing's
    columns before the frame is gathered from them (`kept` the rows the limit keeps, or
    None for all): the call statistics are read there (model.call_stats)."""
    d = decode(chunks, critical, sites, fmt)
    *cols, m, _, actors = paired(d, len(sites))
    narrow = narrow_frame(cols, m)
    kept = None
    if limit is not None and narrow.height > limit:
        kept = narrow.select(kept_rows(narrow, limit)).to_series()
    if paired_hook is not None:
        paired_hook(d, cols, m, kept)
    del cols
    if kept is not None:
        narrow = narrow.filter(kept)
        del kept
    # handed over column by column: each narrow column is let go once gathered from
    columns = narrow.to_dict()
    del narrow
    return _wide(d, columns, actors, sites, pid, offset)


def narrow_frame(cols: list[tuple[bytearray, bytearray]], m: int) -> pl.DataFrame:
    """The C pairing's columns (data and validity bytes each) as a frame of `m` rows."""
    arrays = [
        pa.Array.from_buffers(pa.int64(), m, [pa.py_buffer(valid), pa.py_buffer(data)])
        for data, valid in cols
    ]
    return pl.from_arrow(pa.table(dict(zip(_COLUMNS, arrays, strict=True))))


def paired(d: Decoded, nsites: int, calls_only: bool = False) -> tuple:
    """The C pairing of decoded rows (native/pairing.c): the (data, validity) bytes of
    each of its columns (`_COLUMNS`), the rows written, the frame's rows, and the
    actors that the actor column indexes. `calls_only` writes only the call and
    exception rows (what call statistics read), half the memory of a call-heavy trace.
    The buffers' chunks go as streams, one per buffer."""
    streams: dict[int, list] = {}
    thread_actor: dict[int, str] = {}
    row = 0
    for (b, actor, pos0, n), ts, ks in zip(d.segments, d.ts_parts, d.ks_parts, strict=False):
        if n:
            streams.setdefault(b, []).append(
                (_ints(ks, "I"), _ints(ts, "q"), pos0, row, bisect_left(d.rich_rows, row))
            )
        thread_actor[b] = actor
        row += n
    # the critical lane, in (ts, buffer) order; its rows keep their numbers
    ts_c, ks_c, first_rich = d.ts_parts[-1], d.ks_parts[-1], len(d.rich_rows) - len(d.critical_buf)
    crit = sorted(range(len(d.critical_buf)), key=lambda i: (ts_c[i], d.critical_buf[i]))
    lane = (
        array("q", [ks_c[i] for i in crit]),
        array("q", [ts_c[i] for i in crit]),
        array("q", [d.critical_buf[i] for i in crit]),
        array("q", [row + i for i in crit]),
        array("q", [first_rich + i for i in crit]),
    )
    durations = d.rich_cols[RICH_FIELDS.index("duration_ns")]
    return native_pairing()(
        list(streams.items()),
        lane,
        thread_actor,
        d.actor,
        d.rich_actor,
        d.fid,
        durations,
        nsites,
        _CODES,
        calls_only,
    )


def kept_rows(narrow: pl.DataFrame, limit: int) -> pl.Expr:
    """Which narrow rows the `limit` keeps: every critical event, and the latest of the
    others."""
    crit = pl.col("kind").is_in(_CRITICAL) & pl.col("rich").is_not_null()
    n_crit = int(narrow.select(crit.sum()).item())
    keep = max(limit - n_crit, 0)
    rank = (~crit).cast(pl.Int64).cum_sum()
    return crit | (rank > narrow.height - n_crit - keep)


def _wide(
    d: Decoded, narrow: dict[str, pl.Series], actors: list[str], sites, pid: int, offset: int
) -> pl.DataFrame:
    """Every column of the frame, each gathered once in the frame's order: texts by
    row, names by index, the emitted events' fields by their index (null for calls),
    module, function and location by label (a call's site, else an emitted event's).
    The narrow columns and the decoded texts are let go as soon as they are used: the
    peak is the frame, not the frame and its sources."""
    n = len(narrow["key"])
    seq = pl.int_range(n, dtype=pl.Int64, eager=True)
    key = narrow.pop("key")
    cols: dict[str, pl.Series] = {
        "seq": seq,
        "detail": text_series(d.detail).gather(key),
    }
    d.detail.clear()  # the texts' Python objects, now in the frame
    ts = pl.concat([pl.from_arrow(int64_array(p)) for p in d.ts_parts], rechunk=False)
    cols["ts"] = ts.gather(key) + offset
    # a row -> its seq, for the parent and call links (rows not kept have none)
    lut = pl.repeat(None, len(ts), dtype=pl.Int64, eager=True).scatter(key, seq)
    del ts, key
    cols["parent_seq"] = lut.gather(narrow.pop("parent"))
    cols["call_seq"] = lut.gather(narrow.pop("call"))
    del lut
    cols["kind"] = pl.Series(list(EVENT_KINDS), dtype=pl.String).gather(narrow.pop("kind"))
    cols["actor"] = pl.Series(actors, dtype=pl.String).gather(narrow.pop("actor"))
    fields = _rich_fields(d)
    label = narrow.pop("label")
    for attr in ("module", "function", "location"):
        values = text_series([getattr(s, attr) for s in sites])
        cols[attr] = values.append(fields[attr]).gather(label)
    del label
    rich = narrow.pop("rich")
    for name in ("target", "msg_id", "obj", "locks_held", "qsize"):
        cols[name] = fields[name].gather(rich)
    cols["pid"] = pl.repeat(pid, n, dtype=pl.Int64, eager=True)
    cols["duration_ns"] = narrow.pop("duration")
    cols["depth"] = narrow.pop("depth")
    schema = polars_schema(EVENTS)
    return pl.DataFrame([cols.pop(c).alias(c).cast(t) for c, t in schema.items()])


def text_series(values: list) -> pl.Series:
    """A String Series of `values`, with what UTF-8 cannot hold escaped (see
    `spill.text_array`)."""
    try:
        return pl.Series(values, dtype=pl.String)
    except UnicodeEncodeError:
        return pl.Series(encodable(values), dtype=pl.String)


def _rich_fields(d: Decoded) -> dict[str, pl.Series]:
    """The emitted events' fields, one Series each, indexed like `d.rich_rows`."""
    return {
        name: pl.from_arrow(text_array(values, SPILL_SCHEMA.field(name).type)).alias(name)
        for name, values in zip(RICH_FIELDS, d.rich_cols, strict=True)
    }


def _ints(a, typecode: str):
    """A buffer's column as an array of `typecode` (sealed chunks and snapshots already
    are; hand-made chunks may hold lists)."""
    if isinstance(a, array) and (a.typecode == typecode or (typecode == "I" and a.typecode == "q")):
        return a
    return array(typecode, a)
