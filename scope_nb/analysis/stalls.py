"""What stopped progress: an event loop blocked by one step, task or future exceptions
never retrieved, tasks lost while pending, swallowed cancellations, await cycles, hangs
seen by the watchdog, queues left without a consumer, queues growing without bound."""

from __future__ import annotations

import polars as pl

from .crashes import _split
from .deadlocks import parse_watchdog
from .performance import BACKLOG_DEPTH, queue_bottlenecks
from .reports import StallReport


def detect_stalls(events: pl.DataFrame, actors: pl.DataFrame, backlog_depth: int = BACKLOG_DEPTH) -> list[StallReport]:
    names = dict(actors.select("actor", "name").iter_rows())

    def who(a: str | None) -> str:
        return f"{a} ({names[a]})" if a in names and names[a] else str(a)

    out: list[StallReport] = []
    rows = events.filter(pl.col("kind").is_in(["stall", "exc_unretrieved", "task_lost", "hang", "deadlock"])).sort("seq")
    for r in rows.iter_rows(named=True):
        kind, a = r["kind"], r["actor"]
        if kind == "stall" and r["target"] == "cancel_swallowed":
            out.append(StallReport("cancel_swallowed", a, r["ts"], f"task {who(a)} swallowed its cancellation: it was cancelled "
                                   f"but finished normally", location=r["location"], detail=r["detail"]))
        elif kind == "stall":
            ms = (r["duration_ns"] or 0) / 1e6
            out.append(StallReport("blocked_loop", a, r["ts"], f"event loop blocked {ms:.0f} ms by {r['function'] or 'a callback'} "
                                   f"in {who(a)} at {r['location']}", duration_ns=r["duration_ns"], location=r["location"],
                                   detail=r["detail"], target=r["function"]))
        elif kind == "exc_unretrieved":
            # a plain future's row has no target (no coroutine); its location, if known, is where it was made
            what = f"task {who(a)}" if r["target"] is not None else (
                f"future created at {r['location']}" if r["location"] else f"a future in {who(a)}")
            out.append(StallReport("exc_unretrieved", a, r["ts"], f"{what} failed and nobody retrieved its exception: "
                                   f"{_exc(r['detail'])}", location=r["location"], detail=r["detail"]))
        elif kind == "task_lost":
            out.append(StallReport("task_lost", a, r["ts"], f"task {who(a)} was destroyed while still pending "
                                   f"(no reference kept to it)", location=r["location"], detail=r["detail"]))
        else:
            data = parse_watchdog(r["detail"])
            if kind == "deadlock" and data.get("type") != "await":
                continue  # lock/queue deadlocks are detect_deadlocks' business
            waits = data.get("waits", [])
            involved = [w.get("actor") for w in waits] or [a]
            text = "; ".join(f"{who(w.get('actor'))} waits on {w.get('on')}" + (f" held by {', '.join(w['holders'])}" if w.get("holders") else "")
                             for w in waits) or data.get("summary", "")
            rkind = "await_cycle" if kind == "deadlock" else "hang"
            head = "await cycle: tasks wait on each other forever: " if rkind == "await_cycle" else "hang: "
            out.append(StallReport(rkind, a, r["ts"], head + text, duration_ns=r["duration_ns"], location=r["location"],
                                   detail=r["detail"], actors=involved, stacks=data.get("stacks", {}),
                                   target=waits[0].get("on") if waits else None))
    out += _orphaned_queues(events, who)
    for r in queue_bottlenecks(events, backlog_depth).iter_rows(named=True):
        out.append(StallReport("backlog", (r["consumers"] or [None])[0], r["peak_ts"], r["summary"], target=r["queue"],
                               actors=list(r["consumers"])))
    return out


def _exc(detail: str | None) -> str:
    return _split(detail)[0]


def _orphaned_queues(events: pl.DataFrame, who) -> list[StallReport]:
    """A queue whose every consumer crashed, with messages sent that nobody received."""
    recv = events.filter(pl.col("kind") == "receive").select("target", "actor").unique()
    crashed = events.filter(pl.col("kind") == "crash").select("actor", pl.col("seq").alias("crash_seq"), pl.col("ts").alias("crash_ts"),
                                                            pl.col("detail").alias("exc"))
    ended = events.filter(pl.col("kind").is_in(["exit", "crash", "cancel"])).select("actor").unique()
    consumers = recv.join(ended.with_columns(pl.lit(True).alias("gone")), on="actor", how="left", maintain_order="left").group_by("target").agg(
        pl.col("gone").fill_null(False).all().alias("all_gone"), pl.col("actor").alias("consumers"))
    dead = consumers.filter(pl.col("all_gone")).explode("consumers").rename({"consumers": "actor"}).join(crashed, on="actor", maintain_order="left")
    if dead.height == 0:
        return []
    received = events.filter(pl.col("kind") == "receive").select("msg_id").drop_nulls()
    left = (events.filter((pl.col("kind") == "send") & pl.col("msg_id").is_not_null()).join(received, on="msg_id", how="anti", maintain_order="left")
            .group_by("target").agg(pl.len().alias("unread"), pl.col("actor").unique().sort().alias("producers")))
    out = []
    for r in dead.join(left, on="target", maintain_order="left").unique("target", keep="first").sort("crash_seq").iter_rows(named=True):
        out.append(StallReport("orphaned_queue", r["actor"], r["crash_ts"],
                               f"queue {r['target']} lost its consumer: {who(r['actor'])} crashed ({_exc(r['exc'])}); "
                               f"{r['unread']} message(s) from {', '.join(r['producers'])} never consumed",
                               target=r["target"], actors=[r["actor"], *r["producers"]], detail=r["exc"]))
    return out
