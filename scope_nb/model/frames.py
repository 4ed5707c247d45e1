"""Building the three frames from what the recorder buffered.

With the C extension, `fast_events` builds the events frame from the buffers in one
pass; the polars path below is the reference (and reads what the flusher wrote). Two
steps, so that the disk flusher can persist the first and pair at load time:

* `raw_events(...)` decodes buffered chunks (plus the critical lane) into one row
  per buffered event, formatting kept values with the bounded repr;
* `pair_calls(raw)` turns the call stream into call rows with duration, depth and
  parent (vectorised: depth by cumulative sum per actor, calls matched to their
  ends by rank within (actor, depth), generator/coroutine segments joined by frame
  id), drops the internal markers and assigns the global `seq`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl

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
)
from ..schema import ACTORS, CRITICAL_KINDS, EVENT_KINDS, EVENTS, STATES, polars_schema
from ..values import Formatter
from .call_stats import kept_mask, paired_stats
from .fast_events import events_frame, native_pairing, text_series
from .lock_renames import renamed_lock_rows
from .spill import encodable

if TYPE_CHECKING:
    from ..recorder.session import Recorder
    from .source import Capture, Frames3

RAW: dict[str, Any] = {
    "ts": pl.Int64,  # perf ns
    "buf": pl.Int64,  # buffer (thread) index
    "pos": pl.Int64,  # position within that buffer's stream
    "code": pl.Int64,  # hot-path code (buffer.CALL..RICH) or kind code for rich/critical rows
    "site": pl.Int64,
    "actor": pl.String,  # explicit actor (rich rows, switch markers) else null
    "thread_actor": pl.String,
    "fid": pl.Int64,  # frame id for generator/coroutine segments
    "detail": pl.String,
    "target": pl.String,
    "msg_id": pl.Int64,
    "obj": pl.String,
    "location": pl.String,
    "duration_ns": pl.Int64,
    "module": pl.String,
    "function": pl.String,
    "locks_held": pl.List(pl.String),
    "qsize": pl.Int64,
}
SITES: dict[str, Any] = {
    "site": pl.Int64,
    "site_module": pl.String,
    "site_function": pl.String,
    "site_location": pl.String,
    "is_gen": pl.Boolean,
}


def recording_key(rec: Recorder) -> tuple:
    """Changes whenever anything new was recorded (cheap: no copying)."""
    store = rec.store
    return (
        store.sealed_count,
        sum(store.dropped.values()),
        len(store.critical),
        tuple(len(b.ts) for b in store.buffers),
        len(rec.sites),
        rec.running,
        len(rec.actors.rows),
        _states_len(rec),
    )


def build_frames(cap: Capture) -> tuple[Frames3, pl.DataFrame | None]:
    """The three frames of what a recording held (see `source.Capture`), and its per-
    function call statistics (model.call_stats) where the C pass built the events: read
    from the pairing's columns on the way, so that `performance_hotspots()` still
    answers from them once the buffers are let go (else a query on the frame)."""
    rec, sites, limit = cap.rec, cap.sites, cap.rec.options.max_events
    stats: list[pl.DataFrame] = []
    if native_pairing() is not None:

        def read_stats(d, cols, m, kept) -> None:
            keep = None if kept is None else kept_mask(kept)
            stats.append(paired_stats(d, cols, m, keep, sites))

        events = events_frame(
            cap.chunks, cap.critical, sites, rec.fmt, rec.pid, rec.offset, limit, read_stats
        )
    else:
        raw = raw_events(cap.chunks, cap.critical, sites, rec.fmt)
        events = pair_calls(raw, sites_frame(sites), rec.pid, rec.offset, limit)
    if cap.renamed:
        events = events.with_columns(pl.col("obj").replace(cap.renamed))
    if cap.renamed_locks:
        events = renamed_lock_rows(events, cap.renamed_locks)
    states = link_states(states_frame(rec, cap.n_states), events)
    return (events, _actors_frame(cap.actors), states), stats[0] if stats else None


def _actors_frame(rows: list[dict]) -> pl.DataFrame:
    """The actors' rows; a name UTF-8 cannot hold (a thread named from undecodable bytes)
    is kept escaped."""
    if not rows:
        return pl.DataFrame(schema=polars_schema(ACTORS))
    try:
        return pl.DataFrame(rows, schema=polars_schema(ACTORS))
    except UnicodeEncodeError:
        return pl.DataFrame(encodable(rows), schema=polars_schema(ACTORS))


def link_states(states: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """Give each states row the seq of its `state` event (same object, same instant)."""
    if states.height == 0:
        return states
    marks = (
        events.filter(pl.col("kind") == "state")
        .select("obj", "ts", pl.col("seq").alias("_seq"))
        .unique(["obj", "ts"], keep="first")
    )
    return (
        states.join(marks, on=["obj", "ts"], how="left", maintain_order="left")
        .with_columns(pl.coalesce("seq", "_seq").alias("seq"))
        .select(states.columns)
    )


# -- step 1: decode --------------------------------------------------------------------
def raw_events(chunks, critical, sites, fmt: Formatter) -> pl.DataFrame:
    """One row per buffered event (markers included), values formatted: the disk
    flusher's columns (model.spill), built by Arrow from the buffers' arrays, then
    as RAW rows."""
    from .spill import spill_table

    return spill_to_raw(
        pl.from_arrow(spill_table(chunks, critical, sites, fmt, {}).combine_chunks())
    )


def spill_to_raw(spill: pl.DataFrame) -> pl.DataFrame:
    """The flusher's spill columns as RAW rows: emitted events' kind codes sit in the
    site bits of `ks`, so they are moved to `code`."""
    low = pl.col("ks") & KIND_MASK
    high = pl.col("ks") // (1 << KIND_BITS)
    out = spill.with_columns(
        pl.when(low == RICH).then(high).otherwise(low).alias("code"),
        pl.when(low == RICH).then(None).otherwise(high).alias("site"),
    )
    return out.select([pl.col(c).cast(t) for c, t in RAW.items()])


def sites_frame(sites) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "site": list(range(len(sites))),
            "site_module": text_series([s.module for s in sites]),
            "site_function": text_series([s.function for s in sites]),
            "site_location": text_series([s.location for s in sites]),
            "is_gen": [s.is_gen for s in sites],
        },
        schema=SITES,
    )


# -- step 2: pair ----------------------------------------------------------------------
_KIND_NAMES = pl.Series("kinds", list(EVENT_KINDS), dtype=pl.String)


def pair_calls(
    raw: pl.DataFrame, sites: pl.DataFrame, pid: int, offset: int, limit: int | None = None
) -> pl.DataFrame:
    """Events frame (schema.EVENTS) from raw rows: calls paired, markers gone, seq set."""
    is_call_stream = pl.col("site").is_not_null()
    raw = raw.sort(["ts", "buf", "pos"])
    # the actor running each event: explicit for rich rows, else the last task switch
    # in the same thread (threads with no event loop have none)
    if (raw["code"] == SWITCH).any():
        last_switch = (
            pl.when(pl.col("code") == SWITCH)
            .then(pl.col("actor"))
            .otherwise(None)
            .forward_fill()
            .over("buf", order_by=["ts", "pos"])
            .fill_null(pl.col("thread_actor"))
        )
    else:
        last_switch = pl.col("thread_actor")
    raw = raw.with_columns(
        pl.when(is_call_stream & (pl.col("code") != SWITCH))
        .then(last_switch)
        .otherwise(pl.col("actor"))
        .alias("actor")
    )
    calls = raw.filter(
        is_call_stream & pl.col("code").is_in([CALL, RETURN, EXCEPTION, SUSPEND, RESUME])
    )
    others = raw.filter(~is_call_stream)
    paired = _pair(calls, sites)
    events = pl.concat([paired, _rich(others, sites)], how="diagonal_relaxed")
    events = events.sort(["ts", "buf", "pos"])
    if limit is not None and events.height > limit:
        crit = events["kind"].is_in(sorted(CRITICAL_KINDS))
        keep_n = max(limit - int(crit.sum()), 0)
        noncrit_rank = (~crit).cast(pl.Int64).cum_sum()
        n_noncrit = int((~crit).sum())
        events = events.filter(crit | (noncrit_rank > n_noncrit - keep_n))
    events = events.with_row_index("seq").with_columns(
        pl.col("seq").cast(pl.Int64),
        (pl.col("ts") + offset).alias("ts"),
        pl.lit(pid, dtype=pl.Int64).alias("pid"),
    )
    # parent_seq / call_seq were computed as call-stream row keys: map them to seq
    # through a lookup table indexed by key (a gather, not a join)
    keyed = events.filter(pl.col("_key").is_not_null()).select("_key", "seq")
    if keyed.height:
        size = int(keyed["_key"].max()) + 1
        lut = pl.Series("lut", [None] * size, dtype=pl.Int64).scatter(keyed["_key"], keyed["seq"])
        events = events.with_columns(
            pl.col("parent_key")
            .map_batches(lambda k: lut.gather(k), return_dtype=pl.Int64)
            .alias("parent_seq"),
            pl.col("call_key")
            .map_batches(lambda k: lut.gather(k), return_dtype=pl.Int64)
            .alias("call_seq"),
        )
    schema = polars_schema(EVENTS)
    return events.select(
        [
            pl.col(c).cast(t) if c in events.columns else pl.lit(None, dtype=t).alias(c)
            for c, t in schema.items()
        ]
    )


def _kind_name(code_col: str = "code") -> pl.Expr:
    return pl.col(code_col).replace_strict(
        list(range(len(EVENT_KINDS))), list(EVENT_KINDS), default=None, return_dtype=pl.String
    )


def _rich(others: pl.DataFrame, sites: pl.DataFrame) -> pl.DataFrame:
    return others.with_columns(
        _kind_name().alias("kind"),
        pl.lit(None, dtype=pl.Int64).alias("_key"),
        pl.lit(None, dtype=pl.Int64).alias("parent_key"),
        pl.lit(None, dtype=pl.Int64).alias("call_key"),
        pl.lit(None, dtype=pl.Int64).alias("depth"),
    ).drop("code", "site", "fid", "thread_actor")


def _pair(calls: pl.DataFrame, sites: pl.DataFrame) -> pl.DataFrame:
    if calls.height == 0:
        return pl.DataFrame()
    c = calls.with_row_index("_key").with_columns(pl.col("_key").cast(pl.Int64))
    opening = pl.col("code").is_in([CALL, RESUME])
    c = c.with_columns(pl.when(opening).then(1).otherwise(-1).alias("_d"))
    # closes with no open before them (their call was dropped by the bound) are orphans:
    # each takes the running depth to a new low
    # (rows are in _key order, so the windows below need no order_by)
    c = c.with_columns(pl.col("_d").cum_sum().over("actor").alias("_c"))
    c = c.with_columns(
        pl.min_horizontal(
            pl.col("_c").cum_min().shift(1).over("actor").fill_null(0), pl.lit(0)
        ).alias("_low")
    )
    orphan = (pl.col("_d") == -1) & (pl.col("_c") < pl.col("_low"))
    if c.select(orphan.any()).item():
        c = c.filter(~orphan).with_columns(pl.col("_d").cum_sum().over("actor").alias("_c"))
    c = c.with_columns(
        pl.when(opening).then(pl.col("_c")).otherwise(pl.col("_c") + 1).alias("depth")
    )
    # within (actor, depth) opens and closes alternate: an open's close is the next
    # close of its group (a backward fill, not a join)
    is_close = pl.col("_d") == -1

    def next_close(col: str) -> pl.Expr:
        return (
            pl.when(is_close)
            .then(pl.col(col))
            .otherwise(None)
            .backward_fill()
            .over(["actor", "depth"])
        )

    seg = c.with_columns(
        next_close("_key").alias("close_key"),
        next_close("ts").alias("close_ts"),
        next_close("code").alias("close_code"),
        next_close("site").alias("close_site"),
    ).filter(pl.col("_d") == 1)
    # parent: the latest open one level up in the same actor
    parents = seg.select(
        "actor",
        (pl.col("depth") + 1).alias("depth"),
        pl.col("_key").alias("parent_open"),
        pl.col("fid").alias("parent_fid"),
        pl.col("code").alias("parent_code"),
    )
    seg = seg.sort("_key").join_asof(
        parents.sort("parent_open"),
        left_on="_key",
        right_on="parent_open",
        by=["actor", "depth"],
        strategy="backward",
        check_sortedness=False,
    )
    if seg["fid"].null_count() == seg.height:  # no generator or coroutine: one segment per call
        seg = seg.with_columns(
            pl.col("_key").alias("call_key"), pl.col("parent_open").alias("parent_key")
        )
    else:
        # generator/coroutine segments: join them to the call (CALL row) of the same frame
        gen_calls = seg.filter(pl.col("fid").is_not_null() & (pl.col("code") == CALL)).select(
            pl.col("fid"), pl.col("_key").alias("gen_call")
        )
        seg = seg.join_asof(
            gen_calls.sort("gen_call"),
            left_on="_key",
            right_on="gen_call",
            by="fid",
            strategy="backward",
            check_sortedness=False,
        )
        seg = seg.with_columns(
            pl.when(pl.col("fid").is_not_null())
            .then(pl.col("gen_call"))
            .otherwise(pl.col("_key"))
            .alias("call_key")
        )
        # a segment's parent call: map a RESUME open to its generator's CALL
        resume_to_call = seg.select(
            pl.col("_key").alias("parent_open"), pl.col("call_key").alias("parent_key")
        )
        seg = seg.join(resume_to_call, on="parent_open", how="left")
    # the end of each call: its last segment's close when that close is a return/exception
    ends = (
        seg.filter(pl.col("close_code").is_in([RETURN, EXCEPTION]))
        .group_by("call_key")
        .agg(pl.col("close_key").max(), pl.col("close_ts").max().alias("end_ts"))
    )
    call_rows = (
        seg.filter(pl.col("code") == CALL)
        .join(ends.select("call_key", "end_ts"), on="call_key", how="left")
        .with_columns(
            (pl.col("end_ts") - pl.col("ts")).alias("duration_ns"), pl.lit("call").alias("kind")
        )
    )
    end_rows = (
        c.filter(pl.col("code").is_in([RETURN, EXCEPTION]))
        .join(
            ends.select("close_key", "call_key"), left_on="_key", right_on="close_key", how="inner"
        )
        .join(
            call_rows.select(
                "call_key",
                "duration_ns",
                pl.col("depth").alias("call_depth"),
                pl.col("parent_key").alias("call_parent"),
            ),
            on="call_key",
            how="left",
        )
        .with_columns(
            pl.when(pl.col("code") == RETURN)
            .then(pl.lit("return"))
            .otherwise(pl.lit("exception"))
            .alias("kind"),
            pl.col("call_depth").alias("depth"),
            pl.col("call_parent").alias("parent_key"),
        )
    )
    keep = [
        "_key",
        "ts",
        "buf",
        "pos",
        "kind",
        "actor",
        "site",
        "detail",
        "duration_ns",
        "depth",
        "parent_key",
        "call_key",
    ]
    out = pl.concat([call_rows.select(keep), end_rows.select(keep)], how="vertical_relaxed")
    out = out.join(sites, on="site", how="left").with_columns(
        pl.col("site_module").alias("module"),
        pl.col("site_function").alias("function"),
        pl.col("site_location").alias("location"),
        pl.col("depth").cast(pl.Int64),
    )
    return out.drop("site", "site_module", "site_function", "site_location", "is_gen")


# -- states ------------------------------------------------------------------------------
def _states_len(rec: Recorder) -> int:
    rows = rec.parts.states
    return len(rows) if rows is not None else 0


def states_frame(rec: Recorder, n: int) -> pl.DataFrame:
    """The first `n` states rows recorded (one per state change)."""
    from ..recorder.patchers.objects import states_rows

    schema = polars_schema(STATES)
    rows = states_rows(rec)[:n]
    if not rows:
        return pl.DataFrame(schema=schema)
    # column by column through Arrow: polars builds list columns from Python lists one
    # Series per cell, Arrow in one pass
    from .spill import rows_table

    return pl.from_arrow(rows_table(rows, STATES)).cast(schema)
