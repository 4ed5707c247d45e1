"""What stopped progress: an event loop blocked by one step, task or future exceptions
never retrieved, tasks lost while pending, swallowed cancellations, await cycles, hangs
seen by the watchdog (threads parked in a wait; asyncio tasks stranded on a Lock nothing
can wake), queues left without a consumer, and backlogs that hurt.

A backlog is a stall only when it hurt: a queue that backed up to `backlog_depth` and
was left non-empty at the end (still growing, or never drained), stayed that deep for
longer than `backlog_s`, or kept a message waiting in it longer than `wait_s`. A burst
that drained in time (a logging QueueListener catching up) is no stall:
message_queue_analysis() and queue_bottlenecks() still show it."""

from __future__ import annotations

import polars as pl

from .crashes import _split
from .deadlocks import parse_watchdog
from .labels import Labels, attach, labels_of
from .performance import BACKLOG_DEPTH, queue_bottlenecks
from .reports import StallReport

BACKLOG_SECONDS = 1.0  # a queue at least backlog_depth deep for this long is a backlog that hurt
WAIT_SECONDS = 1.0  # a message that waited this long in a backed-up queue hurt
STALL_ROWS = ("stall", "exc_unretrieved", "task_lost", "hang", "deadlock")
# every kind detect_stalls reads (and the trace's first and last events, for its span):
# a loaded trace reads only these rows from disk
KINDS_READ = (*STALL_ROWS, "send", "receive", "crash", "exit", "cancel")


def detect_stalls(
    events: pl.DataFrame,
    actors: pl.DataFrame,
    backlog_depth: int = BACKLOG_DEPTH,
    backlog_s: float = BACKLOG_SECONDS,
    wait_s: float = WAIT_SECONDS,
) -> list[StallReport]:
    """Every stall, in the order it happened, then orphaned queues and backlogs (see
    the module docstring for what makes a backlog a stall).

    Cost, for n events, m send/receive rows and r stall rows: O(n) to find the stall
    rows (read one by one, there are few), O(m log m) for the queues (orphaned ones:
    joins of receives, crashes and sends; backlogs: `queue_bottlenecks`)."""
    labels = labels_of(actors, events)
    who = labels.actor

    out: list[StallReport] = []
    rows = events.filter(pl.col("kind").is_in(STALL_ROWS)).sort("seq")
    for r in rows.iter_rows(named=True):
        kind, a = r["kind"], r["actor"]
        if kind == "stall" and r["target"] == "cancel_swallowed":
            out.append(
                StallReport(
                    "cancel_swallowed",
                    a,
                    r["ts"],
                    f"task {who(a)} swallowed its cancellation: it was cancelled "
                    f"but finished normally",
                    location=r["location"],
                    detail=r["detail"],
                )
            )
        elif kind == "stall":
            ms = (r["duration_ns"] or 0) / 1e6
            out.append(
                StallReport(
                    "blocked_loop",
                    a,
                    r["ts"],
                    f"event loop blocked {ms:.0f} ms by {r['function'] or 'a callback'} "
                    f"in {who(a)} at {labels.location(r['location'])}",
                    duration_ns=r["duration_ns"],
                    location=r["location"],
                    detail=r["detail"],
                    target=r["function"],
                )
            )
        elif kind == "exc_unretrieved":
            # a plain future's row has no target (no coroutine); its location, if known, is
            # where it was made
            what = (
                f"task {who(a)}"
                if r["target"] is not None
                else (
                    f"future created at {labels.location(r['location'])}"
                    if r["location"]
                    else f"a future in {who(a)}"
                )
            )
            out.append(
                StallReport(
                    "exc_unretrieved",
                    a,
                    r["ts"],
                    f"{what} failed and nobody retrieved its exception: {_exc(r['detail'])}",
                    location=r["location"],
                    detail=r["detail"],
                )
            )
        elif kind == "task_lost":
            out.append(
                StallReport(
                    "task_lost",
                    a,
                    r["ts"],
                    f"task {who(a)} was destroyed while still pending (no reference kept to it)",
                    location=r["location"],
                    detail=r["detail"],
                )
            )
        else:
            data = parse_watchdog(r["detail"])
            if kind == "deadlock" and data.get("type") != "await":
                continue  # lock/queue deadlocks are detect_deadlocks' business
            waits = data.get("waits", [])
            involved = [w.get("actor") for w in waits] or [a]
            text = "; ".join(_wait_text(w, labels) for w in waits) or data.get("summary", "")
            rkind = "await_cycle" if kind == "deadlock" else "hang"
            head = (
                "await cycle: tasks wait on each other forever: "
                if rkind == "await_cycle"
                else "hang: "
            )
            out.append(
                StallReport(
                    rkind,
                    a,
                    r["ts"],
                    head + text,
                    duration_ns=r["duration_ns"],
                    location=r["location"],
                    detail=r["detail"],
                    actors=involved,
                    stacks=data.get("stacks", {}),
                    target=waits[0].get("on") if waits else None,
                )
            )
    out += _orphaned_queues(events, labels)
    out += _backlogs(events, labels, backlog_depth, backlog_s, wait_s)
    return attach(out, labels)


def _backlogs(
    events: pl.DataFrame, labels: Labels, depth: int, backlog_s: float, wait_s: float
) -> list[StallReport]:
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"detect_stalls: backlog_depth must be an int >= 1; got {depth!r}")
    for name, value in (("backlog_s", backlog_s), ("wait_s", wait_s)):
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(
                f"detect_stalls: {name} must be a number of seconds >= 0; got {value!r}"
            )
    hurt = queue_bottlenecks(events, depth).filter(
        (pl.col("final_depth") > 0)
        | (pl.col("above_ns") > int(backlog_s * 1e9))
        | (pl.col("wait_max_ns") > int(wait_s * 1e9))
    )
    out = []
    for r in hurt.iter_rows(named=True):
        if r["final_depth"] > 0:
            why = "left non-empty at the end"
        elif r["above_ns"] > backlog_s * 1e9:
            why = f"at least {depth} deep for {r['above_ns'] / 1e9:.3f} s"
        else:
            why = f"a message waited {r['wait_max_ns'] / 1e9:.3f} s in it"
        took = labels.actors(r["consumers"]) or "no consumer"
        said = (
            f"queue {r['queue']} backed up to {r['peak_depth']} items (left {r['final_depth']}): "
            f"{took} took "
            f"{round(r['get_per_s'], 1)}/s while {labels.actors(r['producers'])} put "
            f"{round(r['put_per_s'], 1)}/s"
        )
        out.append(
            StallReport(
                "backlog",
                (r["consumers"] or [None])[0],
                r["peak_ts"],
                f"{said}; {why}",
                target=r["queue"],
                actors=list(r["consumers"]),
            )
        )
    return out


def _wait_text(w: dict, labels: Labels) -> str:
    """One wait of a hang or an await cycle in words. A stranded asyncio lock wait also
    says why nothing will wake it: the lock is free, or its holders have ended."""
    text = f"{labels.actor(w.get('actor'))} waits on {w.get('on')}"
    if w.get("free"):
        return f"{text}, which is free: nobody will wake it"
    if w.get("holders"):
        text += f" held by {labels.actors(w['holders'])}"
    if w.get("ended"):
        text += f", which ended at {labels.time(max(w['ended'].values()))}: nobody will wake it"
    return text


def _exc(detail: str | None) -> str:
    return _split(detail)[0]


def _orphaned_queues(events: pl.DataFrame, labels: Labels) -> list[StallReport]:
    """A queue whose every consumer crashed, with messages sent that nobody received."""
    recv = events.filter(pl.col("kind") == "receive").select("target", "actor").unique()
    crashed = events.filter(pl.col("kind") == "crash").select(
        "actor",
        pl.col("seq").alias("crash_seq"),
        pl.col("ts").alias("crash_ts"),
        pl.col("detail").alias("exc"),
    )
    ended = (
        events.filter(pl.col("kind").is_in(["exit", "crash", "cancel"])).select("actor").unique()
    )
    consumers = (
        recv.join(
            ended.with_columns(pl.lit(True).alias("gone")),
            on="actor",
            how="left",
            maintain_order="left",
        )
        .group_by("target")
        .agg(
            pl.col("gone").fill_null(False).all().alias("all_gone"),
            pl.col("actor").alias("consumers"),
        )
    )
    dead = (
        consumers.filter(pl.col("all_gone"))
        .explode("consumers")
        .rename({"consumers": "actor"})
        .join(crashed, on="actor", maintain_order="left")
    )
    if dead.height == 0:
        return []
    received = events.filter(pl.col("kind") == "receive").select("msg_id").drop_nulls()
    left = (
        events.filter((pl.col("kind") == "send") & pl.col("msg_id").is_not_null())
        .join(received, on="msg_id", how="anti", maintain_order="left")
        .group_by("target")
        .agg(pl.len().alias("unread"), pl.col("actor").unique().sort().alias("producers"))
    )
    out = []
    for r in (
        dead.join(left, on="target", maintain_order="left")
        .unique("target", keep="first")
        .sort("crash_seq")
        .iter_rows(named=True)
    ):
        out.append(
            StallReport(
                "orphaned_queue",
                r["actor"],
                r["crash_ts"],
                f"queue {r['target']} lost its consumer: {labels.actor(r['actor'])} crashed "
                f"({_exc(r['exc'])}); {r['unread']} message(s) from "
                f"{labels.actors(r['producers'])} "
                "never consumed",
                target=r["target"],
                actors=[r["actor"], *r["producers"]],
                detail=r["exc"],
            )
        )
    return out
