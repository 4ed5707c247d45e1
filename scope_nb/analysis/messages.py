"""Messages: sends paired with their receives (by message id), the flow between two
actors, what an actor (or a traced object) was sent before a moment, and per-queue
depth and latency."""

from __future__ import annotations

from typing import Any

import polars as pl

from .common import resolve_actor_or_object

# msg ids at or above this carry the sender's pid (cross-process channels); below it
# they are counted per process, so a send pairs only with a receive of the same pid
_GLOBAL_IDS = 1 << 32

PAIRS: dict[str, Any] = {
    "msg_id": pl.Int64,
    "queue": pl.String,
    "sender": pl.String,
    "receiver": pl.String,
    "sent_ts": pl.Int64,
    "received_ts": pl.Int64,
    "latency_ns": pl.Int64,
    "detail": pl.String,
    "send_seq": pl.Int64,
    "receive_seq": pl.Int64,
}


def message_pairs(events: pl.DataFrame) -> pl.DataFrame:
    """One row per message received whose send was recorded (columns: PAIRS)."""
    sends = events.filter((pl.col("kind") == "send") & pl.col("msg_id").is_not_null()).select(
        "msg_id",
        pl.col("target").alias("queue"),
        pl.col("actor").alias("sender"),
        pl.col("pid").alias("_spid"),
        pl.col("ts").alias("sent_ts"),
        "detail",
        pl.col("seq").alias("send_seq"),
    )
    receives = events.filter((pl.col("kind") == "receive") & pl.col("msg_id").is_not_null()).select(
        "msg_id",
        pl.col("target").alias("queue"),
        pl.col("actor").alias("receiver"),
        pl.col("pid").alias("_rpid"),
        pl.col("ts").alias("received_ts"),
        pl.col("duration_ns").alias("latency_ns"),
        pl.col("seq").alias("receive_seq"),
    )
    pairs = sends.join(receives, on=["msg_id", "queue"], how="inner", maintain_order="left").filter(
        (pl.col("msg_id") >= _GLOBAL_IDS) | (pl.col("_spid") == pl.col("_rpid"))
    )
    pairs = pairs.with_columns(
        pl.col("latency_ns").fill_null(pl.col("received_ts") - pl.col("sent_ts"))
    )
    return pairs.select([pl.col(c).cast(t) for c, t in PAIRS.items()]).sort(
        "send_seq", "receive_seq"
    )


def message_flow(events: pl.DataFrame, a: str, b: str, both: bool = False) -> pl.DataFrame:
    """The messages actor `a` sent that actor `b` received (and b -> a with both=True),
    in send order: queue, sender, receiver, times, latency, the message."""
    if not isinstance(both, bool):
        raise TypeError(f"both must be True or False; got {type(both).__name__}")
    pairs = message_pairs(events)
    ab = (pl.col("sender") == a) & (pl.col("receiver") == b)
    if both:
        ab = ab | ((pl.col("sender") == b) & (pl.col("receiver") == a))
    return pairs.filter(ab)


TO: dict[str, Any] = {
    "seq": pl.Int64,
    "ts": pl.Int64,
    "kind": pl.String,  # receive (a message) or call (a method call of a traced object)
    "sender": pl.String,
    "receiver": pl.String,
    "via": pl.String,  # the queue / future, or the traced object
    "function": pl.String,
    "msg_id": pl.Int64,
    "detail": pl.String,
    "duration_ns": pl.Int64,  # time the message waited, or the call's duration
}


def get_messages_to(trace, obj_or_actor, before_ns: int | None) -> pl.DataFrame:
    """What was delivered to an actor (messages it received) or to a traced object (its
    method calls, with the calling actor as sender), before `before_ns` when given."""
    if before_ns is not None and (isinstance(before_ns, bool) or not isinstance(before_ns, int)):
        raise TypeError(f"before must be epoch ns (int); got {type(before_ns).__name__}")
    events = trace.events()
    if before_ns is not None:
        events = events.filter(pl.col("ts") < before_ns)
    what, name = resolve_actor_or_object(trace, obj_or_actor)
    if what == "obj":
        calls = events.filter((pl.col("kind") == "call") & (pl.col("obj") == name)).select(
            "seq",
            "ts",
            "kind",
            pl.col("actor").alias("sender"),
            pl.lit(name).alias("receiver"),
            pl.col("obj").alias("via"),
            "function",
            "msg_id",
            "detail",
            "duration_ns",
        )
        return calls.select([pl.col(c).cast(t) for c, t in TO.items()]).sort("seq")
    received = events.filter((pl.col("kind") == "receive") & (pl.col("actor") == name))
    senders = events.filter((pl.col("kind") == "send") & pl.col("msg_id").is_not_null()).select(
        "msg_id",
        pl.col("target").alias("via"),
        pl.col("actor").alias("sender"),
        pl.col("pid").alias("_spid"),
    )
    out = (
        received.select(
            "seq",
            "ts",
            "kind",
            pl.col("actor").alias("receiver"),
            pl.col("target").alias("via"),
            "function",
            "msg_id",
            "detail",
            "duration_ns",
            "pid",
        )
        .join(senders, on=["msg_id", "via"], how="left", maintain_order="left")
        .filter(
            pl.col("_spid").is_null()
            | (pl.col("msg_id") >= _GLOBAL_IDS)
            | (pl.col("_spid") == pl.col("pid"))
        )
    )
    return out.select([pl.col(c).cast(t) for c, t in TO.items()]).sort("seq")


QUEUES: dict[str, Any] = {
    "queue": pl.String,
    "sends": pl.UInt32,
    "receives": pl.UInt32,
    "in_flight": pl.Int64,  # sent and not received (by the end of the trace)
    "max_depth": pl.Int64,
    "mean_depth": pl.Float64,  # time-weighted over the queue's recorded life
    "final_depth": pl.Int64,
    "producers": pl.List(pl.String),
    "consumers": pl.List(pl.String),
    "latency_p50_ns": pl.Float64,
    "latency_p95_ns": pl.Float64,
    "latency_max_ns": pl.Int64,
    "first_ts": pl.Int64,
    "last_ts": pl.Int64,
    "depth_ts": pl.List(pl.Int64),  # depth over time: when...
    "depth": pl.List(pl.Int64),  # ...and how deep, after each send / receive
}


def message_queue_analysis(events: pl.DataFrame) -> pl.DataFrame:
    """One row per queue (or future / channel): traffic, depth over time (max, mean,
    final, the series), producers, consumers and the wait latency percentiles.

    Cost: O(n) to pick the m send/receive rows of n events, O(m log m) for the rest
    (one sort, one join of the receives, one group_by per queue)."""
    msgs = events.filter(
        pl.col("kind").is_in(["send", "receive"]) & pl.col("target").is_not_null()
    ).sort("seq")
    if msgs.height == 0:
        return pl.DataFrame(schema=QUEUES)
    got = (
        msgs.filter((pl.col("kind") == "receive") & pl.col("msg_id").is_not_null())
        .select("target", "msg_id", pl.lit(True).alias("_got"))
        .unique()
    )
    msgs = (
        msgs.join(got, on=["target", "msg_id"], how="left", maintain_order="left")
        .sort("seq")
        .with_columns(
            (pl.col("ts").shift(-1).over("target") - pl.col("ts")).alias("_dt"),
        )
    )
    is_send, is_recv = pl.col("kind") == "send", pl.col("kind") == "receive"
    weighted = (pl.col("qsize") * pl.col("_dt")).sum() / pl.col("_dt").filter(
        pl.col("qsize").is_not_null()
    ).sum()
    out = msgs.group_by("target").agg(
        is_send.sum().alias("sends"),
        is_recv.sum().alias("receives"),
        (is_send & pl.col("_got").is_null()).sum().cast(pl.Int64).alias("in_flight"),
        pl.col("qsize").max().alias("max_depth"),
        pl.when(pl.col("_dt").filter(pl.col("qsize").is_not_null()).sum() > 0)
        .then(weighted)
        .otherwise(pl.col("qsize").mean())
        .alias("mean_depth"),
        pl.col("qsize").drop_nulls().last().alias("final_depth"),
        pl.col("actor").filter(is_send).unique().sort().alias("producers"),
        pl.col("actor").filter(is_recv).unique().sort().alias("consumers"),
        pl.col("duration_ns").filter(is_recv).quantile(0.5, "linear").alias("latency_p50_ns"),
        pl.col("duration_ns").filter(is_recv).quantile(0.95, "linear").alias("latency_p95_ns"),
        pl.col("duration_ns").filter(is_recv).max().alias("latency_max_ns"),
        pl.col("ts").min().alias("first_ts"),
        pl.col("ts").max().alias("last_ts"),
        pl.col("ts").filter(pl.col("qsize").is_not_null()).alias("depth_ts"),
        pl.col("qsize").drop_nulls().alias("depth"),
    )
    out = out.rename({"target": "queue"}).sort("first_ts", "queue")
    return out.select([pl.col(c).cast(t) for c, t in QUEUES.items()])
