"""The events frame of a persisted raw trace, paired by the C pass.

What the flusher wrote (model.spill's columns, one row per buffered event) is the
buffers' content in columns: each buffer's rows in position order, the critical lane
apart (position -1). So the C pairing that builds a live trace's frame from the buffers
(native/pairing.c, through `fast_events`) can read it as it is: each buffer's run of
consecutive positions is one part of its stream (the flusher's segments continue the
positions; a gap, where retention dropped a segment, starts a new part), the ts and ks
columns are handed over as the Arrow buffers polars holds them in, and so are the
generator frame ids (a generator-heavy program has one on most rows); only the sparse
values (explicit actors, emitted events' durations) go as Python objects. Then each
column of the frame is gathered once, in its final order.

The polars reference (`frames.pair_calls`) sorts and joins a frame of every row and
column several times and peaked about 1.4 KB per event; here the narrow columns and
the frame are what is held (tests compare the two frames on real runs). Without the
C extension, None is returned and the reference is used.
"""

from __future__ import annotations

import polars as pl

from ..recorder.buffer import KIND_BITS, KIND_MASK, RICH
from ..schema import EVENT_KINDS, EVENTS, polars_schema
from .fast_events import _CODES, _COLUMNS, native_pairing


def pair_raw(
    spill: pl.DataFrame, sites: pl.DataFrame, pid: int, offset: int
) -> pl.DataFrame | None:
    """The events frame (schema.EVENTS) of one process's spill rows and its sites
    frame (frames.SITES), or None without the C extension."""
    pair = native_pairing()
    if pair is None:
        return None
    schema = polars_schema(EVENTS)
    if spill.height == 0:
        return pl.DataFrame(schema=schema)
    critical = pl.col("pos") < 0
    spill = spill.with_columns(
        pl.col("ks").cast(pl.Int64), pl.col("ts").cast(pl.Int64), pl.col("pos").cast(pl.Int64)
    )
    # rows are numbered as they were written; each emitted row's index counts the
    # emitted rows before it
    is_rich = (pl.col("ks") & KIND_MASK) == RICH
    rich_index = is_rich.cast(pl.Int64).cum_sum() - is_rich.cast(pl.Int64)
    narrow = spill.select("buf", "pos", "ts", rich_index.alias("_ri")).with_row_index("_row")
    streams = _streams(narrow, _words(spill["ts"]), _words(spill["ks"]))
    # the critical lane in (ts, buffer) order
    lane = (
        narrow.with_columns(spill["ks"]).filter(critical).sort(["ts", "buf"], maintain_order=True)
    )
    lane_args = tuple(_words(lane[c].cast(pl.Int64)) for c in ("ks", "ts", "buf", "_row", "_ri"))
    thread_actor = dict(
        spill.filter(~critical)
        .group_by("buf")
        .agg(pl.col("thread_actor").first())
        .select(pl.col("buf").cast(pl.Int64), "thread_actor")
        .iter_rows()
    )
    # a task switch's task by row; an emitted event's actor beside its fields
    actors_of = _sparse(spill.with_columns(pl.when(~is_rich).then(pl.col("actor"))), "actor")
    fids = _words(spill["fid"].fill_null(0))  # one per row (a frame's id is never 0)
    rich = spill.filter(is_rich)
    if rich["actor"].null_count():
        raise ValueError("raw rows: an emitted event without its actor")
    rich_actors = rich["actor"].to_list()
    durations = rich["duration_ns"].to_list()
    labels = _site_labels(sites, spill)
    *cols, m, _, actors = pair(
        streams,
        lane_args,
        thread_actor,
        actors_of,
        rich_actors,
        fids,
        durations,
        labels.height,
        _CODES,
        False,
    )
    del actors_of, rich_actors, fids, durations, streams, lane_args, narrow, lane
    out = _narrow(cols, m)
    return _wide(out, actors, spill, rich, labels, pid, offset)


def _words(s: pl.Series) -> memoryview:
    """An Int64 Series' values as a buffer of int64 (polars' own memory, not copied)."""
    arr = s.cast(pl.Int64).rechunk().to_arrow()
    if arr.null_count:
        raise ValueError(f"raw column {s.name!r} holds nulls")
    view = memoryview(arr.buffers()[1]).cast("q")
    return view[arr.offset : arr.offset + len(arr)]


def _streams(narrow: pl.DataFrame, ts: memoryview, ks: memoryview) -> list:
    """Per buffer, its parts in position order: runs of rows of one buffer with
    consecutive positions, as (ks, ts, pos0, row0, rich0) with the number and emitted
    index of the run's first row."""
    rows = narrow.filter(pl.col("pos") >= 0)
    first = (
        (pl.col("_row") != pl.col("_row").shift(1) + 1)
        | (pl.col("buf") != pl.col("buf").shift(1))
        | (pl.col("pos") != pl.col("pos").shift(1) + 1)
    ).fill_null(True)
    last = first.shift(-1).fill_null(True)
    runs = (
        rows.with_columns(first.alias("_first"), last.alias("_last"))
        .filter(pl.col("_first") | pl.col("_last"))
        .select("buf", "pos", "_row", "_ri", "_first", "_last")
    )
    streams: dict[int, list] = {}
    start = None
    for b, pos, row, ri, is_first, is_last in runs.iter_rows():
        if is_first:
            start = (int(pos), int(row), int(ri))
        if is_last:
            pos0, row0, rich0 = start
            part = (ks[row0 : row + 1], ts[row0 : row + 1], pos0, row0, rich0)
            streams.setdefault(int(b), []).append(part)
    return [(b, sorted(parts, key=lambda p: p[2])) for b, parts in streams.items()]


def _sparse(spill: pl.DataFrame, col: str) -> dict:
    """row -> value of a column that is mostly null."""
    found = spill.with_row_index("_row").filter(pl.col(col).is_not_null())
    return dict(zip(found["_row"].cast(pl.Int64).to_list(), found[col].to_list(), strict=True))


def _site_labels(sites: pl.DataFrame, spill: pl.DataFrame) -> pl.DataFrame:
    """module, function and location by site index (null for a site the sites file
    lacks, as the reference's join leaves them)."""
    low = pl.col("ks") & KIND_MASK
    used = spill.select(pl.when(low != RICH).then(pl.col("ks") // (1 << KIND_BITS)).max()).item()
    n = max(int(sites["site"].max()) + 1 if sites.height else 0, (used or -1) + 1)
    index = pl.DataFrame({"site": pl.int_range(n, dtype=pl.Int64, eager=True)})
    return index.join(
        sites.unique("site", keep="first"), on="site", how="left", maintain_order="left"
    ).select("site_module", "site_function", "site_location")


def _narrow(cols: list, m: int) -> dict[str, pl.Series]:
    import pyarrow as pa

    return {
        name: pl.from_arrow(
            pa.Array.from_buffers(pa.int64(), m, [pa.py_buffer(valid), pa.py_buffer(data)])
        ).alias(name)
        for name, (data, valid) in zip(_COLUMNS, cols, strict=True)
    }


def _wide(
    narrow: dict[str, pl.Series],
    actors: list[str],
    spill: pl.DataFrame,
    rich: pl.DataFrame,
    labels: pl.DataFrame,
    pid: int,
    offset: int,
) -> pl.DataFrame:
    """Every column of the frame, each gathered once in the frame's order (as
    `fast_events` does from the buffers: texts by row, names by index, the emitted
    events' fields by their index, module/function/location by label)."""
    n = len(narrow["key"])
    seq = pl.int_range(n, dtype=pl.Int64, eager=True)
    key = narrow.pop("key")
    cols: dict[str, pl.Series] = {"seq": seq, "detail": spill["detail"].gather(key)}
    cols["ts"] = spill["ts"].gather(key) + offset
    lut = pl.repeat(None, spill.height, dtype=pl.Int64, eager=True).scatter(key, seq)
    del key
    cols["parent_seq"] = lut.gather(narrow.pop("parent"))
    cols["call_seq"] = lut.gather(narrow.pop("call"))
    del lut
    cols["kind"] = pl.Series(list(EVENT_KINDS), dtype=pl.String).gather(narrow.pop("kind"))
    cols["actor"] = pl.Series(actors, dtype=pl.String).gather(narrow.pop("actor"))
    label = narrow.pop("label")
    for attr in ("module", "function", "location"):
        values = labels[f"site_{attr}"].cast(pl.String).append(rich[attr].cast(pl.String))
        cols[attr] = values.gather(label)
    del label
    index = narrow.pop("rich")
    for name in ("target", "msg_id", "obj", "locks_held", "qsize"):
        cols[name] = rich[name].gather(index)
    cols["pid"] = pl.repeat(pid, n, dtype=pl.Int64, eager=True)
    cols["duration_ns"] = narrow.pop("duration")
    cols["depth"] = narrow.pop("depth")
    schema = polars_schema(EVENTS)
    return pl.DataFrame([cols.pop(c).alias(c).cast(t) for c, t in schema.items()])
