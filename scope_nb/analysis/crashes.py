"""Crashes: actors that ended by an exception nobody handled (a thread's uncaught
exception, a task's never retrieved, a process's non-zero exit its parent did not ask
for: the recorder decides, and writes a `crash` row only then), and failed calls: a
traced object's method that raised; and the context a person needs to understand
one: what it handled last, its state, who it left waiting.

A failed call is not a crash of its caller: the caller may handle the exception and
go on (it crashed only if a `crash` row ends it). So an actor's crashes are its
`crash` rows, an object's are its failed calls."""

from __future__ import annotations

from typing import Any

import polars as pl

from .common import resolve_actor_or_object
from .labels import Labels, labels_of
from .reports import CrashEvent, CrashReport

LAST_N = 10


def _split(detail: str | None) -> tuple[str, str]:
    """'ExcType|repr\\ntraceback' -> ('ExcType: message', traceback)."""
    if not detail:
        return "unknown", ""
    head, _, tb = detail.partition("\n")
    typ, sep, rep = head.partition("|")
    if not sep:
        return head, tb
    short = typ.rsplit(".", 1)[-1]
    if rep.startswith(short + "(") and rep.endswith(")"):
        rep = rep[len(short) + 1 : -1]
        if len(rep) >= 2 and rep[0] == rep[-1] and rep[0] in "'\"":
            rep = rep[1:-1]
    return (f"{typ}: {rep}" if rep else typ), tb


def crash_rows(events: pl.DataFrame) -> pl.DataFrame:
    """Actors that ended by an exception (or a non-zero exit code)."""
    return events.filter(pl.col("kind") == "crash").sort("seq")


def _rows_of(trace, obj_or_actor) -> tuple[pl.DataFrame, str]:
    """The crash rows of obj_or_actor: an actor's crashes, a traced object's failed
    calls; with None, every actor's crashes. And what was asked for, for messages."""
    ev = trace.events()
    if obj_or_actor is None:
        return crash_rows(ev), "crash"
    what, name = resolve_actor_or_object(trace, obj_or_actor)
    if what == "obj":
        failed = ev.filter((pl.col("kind") == "exception") & (pl.col("obj") == name)).sort("seq")
        return failed, "failed call"
    return crash_rows(ev).filter(pl.col("actor") == name), "crash"


def _event(r: dict, labels: Labels) -> CrashEvent:
    exc, tb = _split(r["detail"])
    return CrashEvent(
        ts=r["ts"],
        actor=r["actor"],
        exception=exc,
        traceback=tb,
        location=r["location"],
        seq=r["seq"],
        obj=r["obj"] if r["kind"] == "exception" else None,
        kind=r["kind"],
        labels=labels,
    )


def get_crash_events(trace, obj_or_actor=None) -> CrashEvent | list[CrashEvent] | None:
    """The crash of an actor (None if it did not crash), or the last failed call of a
    traced object (None if none failed); with no argument, every actor's crash in the
    trace, in order."""
    rows, _ = _rows_of(trace, obj_or_actor)
    labels = labels_of(trace.actors(), trace.events())
    if obj_or_actor is None:
        return [_event(r, labels) for r in rows.iter_rows(named=True)]
    return _event(rows.row(-1, named=True), labels) if rows.height else None


def analyze_crash(trace, obj_or_actor=None, ts_ns: int | None = None) -> CrashReport:
    """A crash (of an actor, or the last of the whole trace) or a traced object's last
    failed call (the last at or before ts_ns if given) with its context."""
    rows, said = _rows_of(trace, obj_or_actor)
    if ts_ns is not None:
        rows = rows.filter(pl.col("ts") <= ts_ns)
    if rows.height == 0:
        raise ValueError(
            f"analyze_crash: no {said} recorded for {obj_or_actor!r}"
            + (f" at or before ts={ts_ns}" if ts_ns is not None else "")
        )
    crash = _event(rows.row(-1, named=True), labels_of(trace.actors(), trace.events()))
    ev = trace.events()
    inner = _crash_inside_process(trace, ev, crash)
    if inner is not None:
        return analyze_crash(trace, inner, ts_ns)
    actor = crash.actor
    before = ev.filter((pl.col("actor") == actor) & (pl.col("seq") < crash.seq))
    msgs = before.filter(pl.col("kind").is_in(["send", "receive"]))
    calls = before.filter(pl.col("kind") == "call")
    if crash.obj is not None:
        msgs = ev.filter(
            (pl.col("seq") < crash.seq) & (pl.col("obj") == crash.obj) & (pl.col("kind") == "call")
        )
    actors = trace.actors()
    name_row = actors.filter(pl.col("actor") == actor)
    held = _locks_held(ev, actor, crash.seq)
    consumed = (
        before.filter(pl.col("kind") == "receive")["target"]
        .drop_nulls()
        .unique(maintain_order=True)
        .to_list()
    )
    waiting = ev.filter(
        (pl.col("seq") > crash.seq)
        & (pl.col("actor") != actor)
        & (
            (pl.col("kind").is_in(["lock_wait", "lock_timeout"]) & pl.col("target").is_in(held))
            | ((pl.col("kind") == "send") & pl.col("target").is_in(consumed))
            | ((pl.col("kind") == "join") & (pl.col("target") == actor))
        )
    ).select("seq", "ts", "actor", "kind", "target")
    objects = (
        [crash.obj]
        if crash.obj
        else before.filter(pl.col("kind").is_in(["state", "write"]))["obj"]
        .drop_nulls()
        .unique(maintain_order=True)
        .to_list()
    )
    state_before, state_after = _states(trace, objects, _handling_since(before, msgs, crash))
    states = trace.states()
    changes = (
        states.filter(pl.col("obj").is_in(objects) & (pl.col("seq") < crash.seq)).tail(LAST_N)
        if states.height
        else None
    )
    return CrashReport(
        crash=crash,
        actor_name=name_row["name"][0] if name_row.height else None,
        last_messages=msgs.tail(LAST_N).select(
            "seq", "ts", "actor", "kind", "target", "detail", "msg_id"
        ),
        last_calls=calls.tail(LAST_N).select(
            "seq", "ts", "actor", "kind", "module", "function", "detail", "duration_ns"
        ),
        state_before=state_before,
        state_after=state_after,
        last_changes=changes,
        locks_held=held,
        queues_consumed=consumed,
        waiting=waiting,
    )


def _crash_inside_process(trace, ev: pl.DataFrame, crash) -> str | None:
    """A process that died of a crash in one of its own threads (recorded by the child
    itself): that thread is where the exception, messages and calls are."""
    process = trace.actors().filter(
        (pl.col("actor") == crash.actor) & (pl.col("kind") == "process")
    )
    if process.height == 0:
        return None
    pid = process["pid"][0]
    inner = crash_rows(ev).filter(
        (pl.col("pid") == pid) & (pl.col("actor") != crash.actor) & (pl.col("kind") == "crash")
    )
    return inner["actor"][-1] if inner.height else None


def _locks_held(ev: pl.DataFrame, actor: str, seq: int) -> list[str]:
    lk = ev.filter(
        (pl.col("actor") == actor)
        & (pl.col("seq") < seq)
        & pl.col("kind").is_in(["lock_acquire", "lock_release"])
    )
    bal = lk.group_by("target").agg(
        (pl.when(pl.col("kind") == "lock_acquire").then(1).otherwise(-1)).sum().alias("n"),
        pl.col("seq").min().alias("first"),
    )
    return bal.filter(pl.col("n") > 0).sort("first")["target"].to_list()


def _handling_since(before: pl.DataFrame, msgs: pl.DataFrame, crash) -> int:
    """When the actor began handling what killed it: the last message it received (or,
    for a traced object, the method call that failed); else just before the crash."""
    started = msgs.filter(pl.col("kind").is_in(["receive", "call"])) if msgs.height else msgs
    if started.height == 0:
        started = before.filter(pl.col("kind") == "receive")
    return int(started["ts"][-1]) if started.height else crash.ts


def _states(
    trace, objects: list[str], ts: int
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Each object's state just before the actor began handling what crashed it, and
    at the end of the trace."""
    if not objects or trace.states().height == 0:
        return None, None
    end = trace.time_range()[1]
    before, after = {}, {}
    for obj in objects:
        try:
            before[obj] = trace.get_state_at(obj, ts - 1)
            after[obj] = trace.get_state_at(obj, max(end, ts))
        except (ValueError, ImportError):
            continue
    if len(objects) == 1 and objects[0] in before:
        return before[objects[0]], after[objects[0]]
    return before or None, after or None
