"""Where the time goes: hot functions (count, total, self time, percentiles), the call
tree with inclusive and self time, timing over the run, and queue bottlenecks (the
slow consumer behind a growing queue). All from call rows and send/receive rows."""

from __future__ import annotations

import polars as pl

from .calls import call_rows, call_rows_lazy, in_module
from .cost_reports import CallTree, PerformanceReport

BACKLOG_DEPTH = 32  # a queue whose depth reaches this is a bottleneck worth naming
TIME_BUCKETS = 20


def _calls(events: pl.DataFrame, module: str | None) -> pl.DataFrame:
    calls = call_rows(events)
    if module is not None:
        calls = calls.filter(in_module(module))
    return calls


def _with_self_time(events: pl.DataFrame, calls: pl.DataFrame) -> pl.DataFrame:
    """Self time: a call's duration minus the durations of the calls made directly from it."""
    children = (
        events.filter(pl.col("kind") == "call")
        .filter(pl.col("parent_seq").is_not_null())
        .group_by("parent_seq")
        .agg(pl.col("duration_ns").sum().alias("_child_ns"))
    )
    return (
        calls.join(
            children, left_on="seq", right_on="parent_seq", how="left", maintain_order="left"
        )
        .with_columns(
            (pl.col("duration_ns") - pl.col("_child_ns").fill_null(0))
            .clip(lower_bound=0)
            .alias("self_ns")
        )
        .drop("_child_ns")
    )


# hotspots read a scan as a stream; a plan shared by two branches would be cached whole
_STREAM = pl.QueryOptFlags(comm_subplan_elim=False)
_KEYS = ["module", "function"]


def performance_hotspots(
    events: pl.DataFrame | pl.LazyFrame, module: str | None = None
) -> pl.DataFrame:
    """Per function: count, total/self/mean time, p50/p95/max, exceptions; most self time first.

    Streaming queries, so a scan of a trace larger than memory (a LazyFrame) is
    aggregated without being collected: the percentiles come from `_percentiles`."""
    lf = events.lazy()
    wanted = in_module(module) if module is not None else pl.lit(True)
    module_calls = call_rows_lazy(lf).filter(wanted)  # read twice: here and by _percentiles
    # only what the aggregation reads, the repeated names as categoricals: millions of
    # call rows then take a few bytes each
    calls = module_calls.select(
        "seq",
        "duration_ns",
        *[pl.col(c).cast(pl.Categorical) for c in ("module", "function", "actor", "location")],
    )
    children = (
        lf.filter((pl.col("kind") == "call") & pl.col("parent_seq").is_not_null())
        .group_by("parent_seq")
        .agg(pl.col("duration_ns").sum().alias("_child_ns"))
    )
    calls = calls.join(children, left_on="seq", right_on="parent_seq", how="left").with_columns(
        (pl.col("duration_ns") - pl.col("_child_ns").fill_null(0))
        .clip(lower_bound=0)
        .alias("self_ns")
    )
    # an exception row names its call's function (a call counted above: call_seq set)
    raised = (
        lf.filter((pl.col("kind") == "exception") & pl.col("call_seq").is_not_null() & wanted)
        .group_by(_KEYS)
        .agg(pl.len().alias("exceptions"))
    )
    d = pl.col("duration_ns")
    out = (
        calls.group_by(_KEYS)
        .agg(
            pl.len().alias("count"),
            d.sum().alias("total_ns"),
            pl.col("self_ns").sum().alias("self_ns"),
            d.mean().cast(pl.Int64).alias("mean_ns"),
            d.max().alias("max_ns"),
            pl.col("actor").n_unique().alias("actors"),
            pl.col("seq").min().alias("_first"),
        )
        .with_columns(*[pl.col(c).cast(pl.String) for c in _KEYS])
        .collect(engine="streaming", optimizations=_STREAM)
    )
    # the location of each function's first call (a name may be defined at several
    # places): looked up by seq, which a parallel first() would not say
    first = (
        lf.filter(pl.col("seq").is_in(out["_first"].implode()))
        .select("seq", "location")
        .collect(engine="streaming")
    )
    out = out.join(first, left_on="_first", right_on="seq", how="left").drop("_first")
    pct = _percentiles(module_calls, {"p50_ns": 0.5, "p95_ns": 0.95})
    out = (
        out.join(pct, on=_KEYS, how="left", nulls_equal=True)
        .join(raised.collect(engine="streaming"), on=_KEYS, how="left", nulls_equal=True)
        .with_columns(pl.col("exceptions").fill_null(0).cast(pl.Int64))
    )
    return _ranked(out)


def hotspots_from_stats(stats: pl.DataFrame, module: str | None = None) -> pl.DataFrame:
    """`performance_hotspots`' answer from per-function statistics already aggregated
    (a recording's, straight from its buffers: model/call_stats.py): the functions it
    counted calls of, of `module`, in the same columns and order."""
    out = stats.filter(pl.col("count") > 0)
    if module is not None:
        out = out.filter(in_module(module))
    return _ranked(out)


_HOTSPOT_COLUMNS = (
    "module",
    "function",
    "count",
    "total_ns",
    "self_ns",
    "mean_ns",
    "p50_ns",
    "p95_ns",
    "max_ns",
    "actors",
    "location",
    "exceptions",
)


def _ranked(out: pl.DataFrame) -> pl.DataFrame:
    """The hotspots' columns, most self time first, then most calls; module and function
    order the ties, so that the same trace always lists them the same way."""
    return out.select(_HOTSPOT_COLUMNS).sort(
        ["self_ns", "count", "module", "function"],
        descending=[True, True, False, False],
        nulls_last=True,
    )


_SUB = 16  # histogram buckets per doubling of the duration


def _percentiles(calls: pl.LazyFrame, wanted: dict[str, float]) -> pl.DataFrame:
    """Exact "nearest" percentiles of duration_ns per function, in two streaming passes
    instead of holding every duration: a histogram over log-spaced buckets says which
    bucket holds each wanted rank, then only those buckets' durations are read and sorted."""
    d = pl.col("duration_ns")
    keyed = calls.filter(d.is_not_null()).select(
        *[pl.col(c).cast(pl.Categorical) for c in _KEYS],
        d,
        ((d.clip(lower_bound=0) + 1).log(2) * _SUB).floor().cast(pl.Int32).alias("_bucket"),
    )
    hist = (
        keyed.group_by(*_KEYS, "_bucket")
        .agg(pl.len().cast(pl.Int64).alias("_n"))
        .collect(engine="streaming", optimizations=_STREAM)
        .sort(*_KEYS, "_bucket", nulls_last=True)
        .with_columns(
            pl.col("_n").sum().over(_KEYS).alias("_total"),
            (pl.col("_n").cum_sum().over(_KEYS) - pl.col("_n")).alias("_below"),
        )
    )
    targets = []
    for name, q in wanted.items():
        # round half up, as polars' "nearest"
        rank = ((pl.col("_total") - 1) * q + 0.5).floor().cast(pl.Int64)
        targets.append(
            hist.filter(
                (pl.col("_below") <= rank) & (rank < pl.col("_below") + pl.col("_n"))
            ).select(
                *_KEYS,
                "_bucket",
                (rank - pl.col("_below")).alias("_k"),
                pl.lit(name).alias("_name"),
            )
        )
    target = pl.concat(targets)
    values = (
        keyed.join(
            target.lazy().select(*_KEYS, "_bucket").unique(),
            on=[*_KEYS, "_bucket"],
            how="semi",
            nulls_equal=True,
        )
        .collect(engine="streaming", optimizations=_STREAM)
        .sort(*_KEYS, "_bucket", "duration_ns", nulls_last=True)
        .with_columns(pl.int_range(pl.len()).over([*_KEYS, "_bucket"]).alias("_k"))
    )
    picked = target.join(values, on=[*_KEYS, "_bucket", "_k"], how="left", nulls_equal=True)
    keys = hist.select(_KEYS).unique()
    for name in wanted:
        keys = keys.join(
            picked.filter(pl.col("_name") == name).select(
                *_KEYS, pl.col("duration_ns").alias(name)
            ),
            on=_KEYS,
            how="left",
            nulls_equal=True,
        )
    return keys.with_columns(*[pl.col(c).cast(pl.String) for c in _KEYS])


def performance_analysis(events: pl.DataFrame, module: str | None = None) -> PerformanceReport:
    """Hotspots, the slowest single calls and the queue bottlenecks, in one report."""
    slowest = (
        _calls(events, module)
        .sort("duration_ns", descending=True, nulls_last=True)
        .head(20)
        .select("seq", "ts", "actor", "module", "function", "detail", "duration_ns", "location")
    )
    return PerformanceReport(
        module=module,
        hotspots=performance_hotspots(events, module),
        slowest_calls=slowest,
        bottlenecks=queue_bottlenecks(events),
    )


def call_tree_analysis(events: pl.DataFrame, module: str | None = None) -> CallTree:
    """Calls merged by call path, with count, inclusive and self time, as a frame and a DiGraph
    (node = path, edge = caller path -> callee path)."""
    calls = _with_self_time(events, _calls(events, module)).select(
        "seq",
        "parent_seq",
        pl.concat_str(
            [pl.col("module").fill_null("?"), pl.col("function").fill_null("?")], separator="."
        ).alias("name"),
        "function",
        "module",
        "duration_ns",
        "self_ns",
    )
    known = calls.select("seq")
    roots = calls.join(
        known.rename({"seq": "parent_seq"}), on="parent_seq", how="anti", maintain_order="left"
    )
    level = roots.with_columns(
        pl.col("name").alias("path"),
        pl.lit(None, dtype=pl.String).alias("parent_path"),
        pl.lit(0).alias("depth"),
    )
    done = [level]
    rest = calls.join(roots.select("seq"), on="seq", how="anti", maintain_order="left")
    depth = 0
    while rest.height and level.height:
        depth += 1
        level = rest.join(
            level.select(pl.col("seq").alias("parent_seq"), pl.col("path").alias("parent_path")),
            on="parent_seq",
            maintain_order="left",
        ).with_columns(
            pl.concat_str([pl.col("parent_path"), pl.col("name")], separator=" > ").alias("path"),
            pl.lit(depth).alias("depth"),
        )
        rest = rest.join(level.select("seq"), on="seq", how="anti", maintain_order="left")
        done.append(level)
    cols = [
        "seq",
        "name",
        "function",
        "module",
        "duration_ns",
        "self_ns",
        "path",
        "parent_path",
        "depth",
    ]
    paths = pl.concat([d.select(cols) for d in done], how="vertical_relaxed")
    frame = (
        paths.group_by(["path", "parent_path", "depth", "module", "function"])
        .agg(
            pl.len().alias("count"),
            pl.col("duration_ns").sum().alias("inclusive_ns"),
            pl.col("self_ns").sum().alias("self_ns"),
            pl.col("seq").min().alias("first_seq"),
        )
        .sort("first_seq")
        .drop("first_seq")
    )
    import networkx as nx  # here: the other queries of this module need not load it

    graph = nx.DiGraph()
    for r in frame.iter_rows(named=True):
        graph.add_node(
            r["path"],
            module=r["module"],
            function=r["function"],
            depth=r["depth"],
            count=r["count"],
            inclusive_ns=r["inclusive_ns"],
            self_ns=r["self_ns"],
        )
        if r["parent_path"] is not None:
            graph.add_edge(r["parent_path"], r["path"], count=r["count"])
    return CallTree(frame=_depth_first(frame), graph=graph)


def _depth_first(frame: pl.DataFrame) -> pl.DataFrame:
    """Order paths as a tree reads: each path right after its parent."""
    return (
        frame.with_columns(pl.col("path").str.replace_all(" > ", "\x00").alias("_k"))
        .sort("_k")
        .drop("_k")
    )


def timing_analysis(
    events: pl.DataFrame, module: str | None = None, buckets: int = TIME_BUCKETS
) -> pl.DataFrame:
    """Call durations over the run: per time bucket and function, count and percentiles."""
    calls = _calls(events, module).filter(pl.col("duration_ns").is_not_null())
    if calls.height == 0:
        return pl.DataFrame(
            schema={
                "bucket_start": pl.Int64,
                "module": pl.String,
                "function": pl.String,
                "count": pl.UInt32,
                "total_ns": pl.Int64,
                "p50_ns": pl.Int64,
                "p95_ns": pl.Int64,
                "max_ns": pl.Int64,
            }
        )
    t0, t1 = int(calls["ts"].min()), int(calls["ts"].max())
    width = max((t1 - t0) // buckets + 1, 1)
    d = pl.col("duration_ns")
    return (
        calls.with_columns(
            (pl.lit(t0) + (pl.col("ts") - t0) // width * width).alias("bucket_start")
        )
        .group_by(["bucket_start", "module", "function"])
        .agg(
            pl.len().alias("count"),
            d.sum().alias("total_ns"),
            d.quantile(0.5, "nearest").cast(pl.Int64).alias("p50_ns"),
            d.quantile(0.95, "nearest").cast(pl.Int64).alias("p95_ns"),
            d.max().alias("max_ns"),
        )
        .sort(["bucket_start", "total_ns"], descending=[False, True])
    )


def queue_depths(events: pl.DataFrame) -> pl.DataFrame:
    """send/receive rows of every queue with its depth after each (recorded qsize, else counted)."""
    msgs = events.filter(
        pl.col("kind").is_in(["send", "receive"]) & pl.col("target").is_not_null()
    ).sort("seq")
    return msgs.with_columns(
        pl.coalesce(
            pl.col("qsize"),
            pl.when(pl.col("kind") == "send").then(1).otherwise(-1).cum_sum().over("target"),
        ).alias("depth")
    )


def queue_bottlenecks(events: pl.DataFrame, min_depth: int = BACKLOG_DEPTH) -> pl.DataFrame:
    """Queues whose depth reached `min_depth`: who fills them, who drains them, and how
    fast; `above_ns`, the longest stretch their depth stayed at or above `min_depth`
    (to the end of the recording if it never fell back), and `wait_max_ns`, the longest
    a message waited in them. A burst that drained shows here as well: whether it
    hurt is detect_stalls' judgement."""
    end = events["ts"].max()
    q = queue_depths(events).with_columns((pl.col("depth") >= min_depth).alias("_above"))
    q = q.with_columns(
        (pl.col("_above") != pl.col("_above").shift(1).over("target"))
        .fill_null(True)
        .cum_sum()
        .over("target")
        .alias("_run")
    )
    runs = (
        q.group_by("target", "_run")
        .agg(pl.col("_above").first(), pl.col("ts").first().alias("_start"))
        .sort("target", "_run")
        .with_columns(pl.col("_start").shift(-1).over("target").fill_null(end).alias("_until"))
    )
    stretch = (
        runs.filter(pl.col("_above"))
        .group_by("target")
        .agg((pl.col("_until") - pl.col("_start")).max().alias("above_ns"))
    )
    is_send = pl.col("kind") == "send"
    is_recv = pl.col("kind") == "receive"

    def span(cond: pl.Expr) -> pl.Expr:
        ts = pl.col("ts").filter(cond)
        return (ts.max() - ts.min()).cast(pl.Float64) / 1e9

    per = (
        q.group_by("target")
        .agg(
            pl.col("depth").max().alias("peak_depth"),
            pl.col("depth").last().alias("final_depth"),
            is_send.sum().alias("sent"),
            is_recv.sum().alias("received"),
            pl.col("actor").filter(is_send).unique().sort().alias("producers"),
            pl.col("actor").filter(is_recv).unique().sort().alias("consumers"),
            span(is_send).alias("_put_s"),
            span(is_recv).alias("_get_s"),
            pl.col("duration_ns")
            .filter(is_recv)
            .quantile(0.95, "nearest")
            .cast(pl.Int64)
            .alias("wait_p95_ns"),
            pl.col("duration_ns").filter(is_recv).max().alias("wait_max_ns"),
            pl.col("ts").filter(pl.col("depth") == pl.col("depth").max()).first().alias("peak_ts"),
        )
        .join(stretch, on="target", how="left")
        .rename({"target": "queue"})
        .filter(pl.col("peak_depth") >= min_depth)
    )
    per = per.with_columns(
        (pl.col("sent") / pl.max_horizontal(pl.col("_put_s").fill_null(0.0), pl.lit(1e-3))).alias(
            "put_per_s"
        ),
        (
            pl.col("received") / pl.max_horizontal(pl.col("_get_s").fill_null(0.0), pl.lit(1e-3))
        ).alias("get_per_s"),
    ).drop("_put_s", "_get_s")
    return per.with_columns(
        pl.format(
            "queue {} backed up to {} items (left {}): {} took {}/s while {} put {}/s",
            "queue",
            "peak_depth",
            "final_depth",
            pl.when(pl.col("consumers").list.len() > 0)
            .then(pl.col("consumers").list.join(", "))
            .otherwise(pl.lit("no consumer")),
            pl.col("get_per_s").round(1),
            pl.col("producers").list.join(", "),
            pl.col("put_per_s").round(1),
        ).alias("summary")
    ).sort("peak_depth", descending=True)
