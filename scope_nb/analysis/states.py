"""State queries over the states frame: the history of a traced object, its full state
at any instant (rebuilt from the nearest keyframe plus the diffs after it), what
changed between two instants and why, and a snapshot of the whole system."""

from __future__ import annotations

import pickle
from typing import Any

import polars as pl

from ..typed import decode
from ..values import Unpicklable
from .labels import Labels, labels_of
from .state_reports import Change, Snapshot, StateDiff

_TIMELINE = ["ts", "seq", "actor", "cause", "changed", "removed", "state", "location"]
_WINDOW = 256  # rows searched back for a keyframe before scanning the whole history
_OPS = ("set", "splice", "dict")


def state_timeline(states: pl.DataFrame, obj: str) -> pl.DataFrame:
    """Every state of obj, oldest first: ts, actor, cause, changed, state (repr)."""
    rows = states.filter(pl.col("obj") == obj)
    cols = [c for c in _TIMELINE if c in rows.columns]
    return rows.sort("ts", maintain_order=True).select(cols)


def _positions(states: pl.DataFrame, obj: str) -> tuple[pl.Series, pl.Series]:
    """Row positions of obj's rows in time order, and their ts."""
    idx = (states["obj"] == obj).arg_true()
    if idx.len() == 0:
        raise ValueError(
            f"obj: {obj!r} has no recorded state; traced: {', '.join(_names(states)) or 'none'}"
        )
    ts = states["ts"].gather(idx)
    if not ts.is_sorted():
        order = ts.arg_sort(maintain_order=True)
        idx, ts = idx.gather(order), ts.gather(order)
    return idx, ts


def _names(states: pl.DataFrame) -> list[str]:
    return sorted(states["obj"].unique().drop_nulls().to_list())


def _replay(states: pl.DataFrame, idx: pl.Series, i: int, trusted: bool) -> dict[str, Any]:
    """The state after obj's i-th row: from the last keyframe at or before it."""
    kf = states["keyframe"].gather(idx.slice(max(0, i - _WINDOW + 1), min(i + 1, _WINDOW)))
    hits = kf.fill_null(False).arg_true()
    if hits.len():
        start = max(0, i - _WINDOW + 1) + int(hits[-1])
    else:
        hits = states["keyframe"].gather(idx.slice(0, i + 1)).fill_null(False).arg_true()
        start = int(hits[-1]) if hits.len() else 0
    typed = (
        pl.col("json")
        if "json" in states.columns
        else pl.lit(None, dtype=pl.List(pl.String)).alias("json")
    )
    rows = states.select("attrs", "ops", "blobs", "values", typed, "removed", "keyframe")[
        idx.slice(start, i - start + 1)
    ]
    state: dict[str, Any] = {}
    for attrs, ops, blobs, texts, jsons, removed, keyframe in rows.iter_rows():
        if keyframe:
            state = {}
        for n in removed or ():
            state.pop(n, None)
        for n, op, blob, text, js in zip(
            attrs, ops, blobs, texts, jsons or [None] * len(attrs), strict=True
        ):
            if op not in _OPS:
                raise ValueError(f"states frame: unknown op {op!r} for {n!r}")
            try:
                _apply(state, n, op, _payload(blob if trusted else None, js))
            except Exception:
                # kept neither way (a lying __reduce__, a class gone, no typed form), or
                # patches such a value: marked as a stand-in of its recorded text; the other
                # attributes keep their real values
                state[n] = Unpicklable.from_text(text)
    return state


def _payload(blob: bytes | None, typed: str | None) -> Any:
    """An op's payload: unpickled when trusted (the program's own classes come back),
    else from its typed JSON (built-in values and stand-ins only, see scope_nb.typed)."""
    if blob is not None:
        try:
            return pickle.loads(blob)
        except Exception:
            if typed is None:
                raise
    if typed is None:
        raise ValueError("no payload kept")
    return decode(typed)


def _apply(state: dict[str, Any], n: str, op: str, payload: Any) -> None:
    """One op of a states row (see schema.STATES) on attribute n."""
    if op == "set":
        state[n] = payload
    elif op == "splice":
        s, e, items = payload
        state[n][s:e] = items
    else:
        upd, rem = payload
        for k in rem:
            state[n].pop(k, None)
        state[n].update(upd)


def get_state_at(states: pl.DataFrame, obj: str, ts: int, trusted: bool = True) -> dict:
    """The full state of obj as it was at ts, as real values: unpickled when the trace
    is trusted (instances of the program's classes too), else read from their typed
    JSON (built-in values; an instance of a program class is a stand-in of its type).
    Attributes that could not be copied or kept come back as `values.Unpicklable`
    stand-ins, secrets as "<redacted>"."""
    idx, times = _positions(states, obj)
    i = int(times.search_sorted(ts, side="right")) - 1
    if i < 0:
        raise ValueError(
            f"ts={ts} is before {obj!r} was traced (first state at {int(times[0])}); "
            f"accepted: a time at or after {int(times[0])}"
        )
    return _replay(states, idx, i, trusted)


def analyze_state_change(
    states: pl.DataFrame,
    events: pl.DataFrame,
    obj: str,
    t0: int,
    t1: int,
    trusted: bool = True,
    labels: Labels | None = None,
) -> StateDiff:
    """Attribute-level diff of obj between t0 and t1, each change linked to the event
    that caused it (the attribute write, else the method call, else the state event)
    and to the method call on obj that was running when it happened."""
    if t1 < t0:
        raise ValueError(f"analyze_state_change: t1 ({t1}) is before t0 ({t0})")
    idx, times = _positions(states, obj)
    i0 = int(times.search_sorted(t0, side="right")) - 1
    i1 = int(times.search_sorted(t1, side="right")) - 1
    before = _replay(states, idx, i0, trusted) if i0 >= 0 else {}
    after = _replay(states, idx, i1, trusted) if i1 >= 0 else {}
    window = states[idx.slice(i0 + 1, max(i1 - i0, 0))] if i1 > i0 else states.clear()
    changes = []
    for name in list(before) + [n for n in after if n not in before]:
        if name not in after:
            kind = "removed"
        elif name not in before:
            kind = "added"
        elif _equal(before[name], after[name]):
            continue
        else:
            kind = "changed"
        changes.append(
            _explain(Change(name, kind, before.get(name), after.get(name)), window, events, obj)
        )
    history = window.select([c for c in _TIMELINE if c in window.columns])
    return StateDiff(obj, t0, t1, before, after, changes, history, labels=labels or Labels())


def _equal(a: Any, b: Any) -> bool:
    try:
        if a == b:
            return True
    except Exception:
        pass
    try:
        return pickle.dumps(a) == pickle.dumps(b)
    except Exception:
        return False


def _explain(change: Change, window: pl.DataFrame, events: pl.DataFrame, obj: str) -> Change:
    """Fill in the last state row in the window that touched the attribute, and the
    event behind it."""
    touched = window.filter(pl.col("changed").list.contains(change.attribute))
    if touched.height == 0:
        return change
    row = touched.row(-1, named=True)
    change.ts, change.actor, change.cause, change.location = (
        row["ts"],
        row["actor"],
        row["cause"],
        row["location"],
    )
    mine = events.filter(
        (pl.col("obj") == obj) & (pl.col("actor") == row["actor"]) & (pl.col("ts") <= row["ts"])
    )
    write = mine.filter((pl.col("kind") == "write") & (pl.col("target") == change.attribute))
    call = mine.filter(
        (pl.col("kind") == "call") & pl.col("function").str.ends_with("." + (row["cause"] or ""))
    )
    state = mine.filter((pl.col("kind") == "state") & (pl.col("ts") == row["ts"]))
    if write.height and _cause_is_write(row["cause"], change.attribute):
        change.event_seq, change.event_kind = int(write["seq"][-1]), "write"
    elif call.height:
        change.event_seq, change.event_kind = int(call["seq"][-1]), "call"
    elif state.height:
        change.event_seq, change.event_kind = int(state["seq"][-1]), "state"
    at = change.event_seq if change.event_seq is not None else int(row["seq"])
    call = _open_call(mine.filter(pl.col("seq") <= at))
    if call is not None:
        change.call, change.call_seq = _call_text(call["function"], call["detail"]), call["seq"]
    return change


def _open_call(mine: pl.DataFrame) -> dict | None:
    """The outermost call on the object still running at the end of `mine` (one actor's
    events on it, up to the change): the method the program called."""
    stack: list[dict] = []
    for r in (
        mine.filter(pl.col("kind").is_in(["call", "return", "exception"]))
        .sort("seq")
        .iter_rows(named=True)
    ):
        if r["kind"] == "call":
            stack.append(r)
        elif stack:
            stack.pop()
    return stack[0] if stack else None


def _call_text(function: str | None, args: str | None) -> str:
    """`Basket.rename` and `('bob',)` -> `rename('bob')`."""
    name = (function or "?").rsplit(".", 1)[-1]
    if not args:
        return f"{name}()"
    if args.startswith("(") and args.endswith(")"):
        return name + (args[:-2] + ")" if args.endswith(",)") else args)
    return f"{name}({args})"


def _cause_is_write(cause: str | None, attribute: str) -> bool:
    return bool(cause) and (cause.startswith(f"{attribute} = ") or cause == f"del {attribute}")


def system_snapshot_at(trace, ts: int) -> Snapshot:
    """Live actors, every traced object's state, queue depths and locks at ts."""
    actors = trace.actors().filter(
        (pl.col("started").is_null() | (pl.col("started") <= ts))
        & (pl.col("ended").is_null() | (pl.col("ended") > ts))
    )
    states = trace.states()
    objects: dict[str, dict[str, Any]] = {}
    if states.height:
        first = (
            states.group_by("obj").agg(pl.col("ts").min()).filter(pl.col("ts") <= ts).sort("obj")
        )
        trusted = trace.meta.get("trusted", True)
        for name in first["obj"].to_list():
            objects[name] = get_state_at(states, name, ts, trusted=trusted)
    events = trace.events()
    before = events.filter(pl.col("ts") <= ts)
    queues = (
        before.filter(pl.col("kind").is_in(["send", "receive"]) & pl.col("qsize").is_not_null())
        .group_by("target", maintain_order=True)
        .agg(pl.col("qsize").last().alias("depth"), pl.col("ts").last())
        .sort("target")
    )
    return Snapshot(
        ts, actors, objects, queues, locks_at(before), labels=labels_of(trace.actors(), events)
    )


def locks_at(events: pl.DataFrame) -> pl.DataFrame:
    """From the lock events up to an instant: which actor holds which lock (acquires
    minus releases) and which waits (its last event on the lock is a wait)."""
    lk = events.filter(
        pl.col("kind").is_in(["lock_wait", "lock_acquire", "lock_release", "lock_timeout"])
    )
    per = lk.group_by(["actor", "target"], maintain_order=True).agg(
        (
            (pl.col("kind") == "lock_acquire").sum().cast(pl.Int64)
            - (pl.col("kind") == "lock_release").sum().cast(pl.Int64)
        ).alias("n"),
        pl.col("kind").last().alias("last"),
        pl.col("ts")
        .filter(pl.col("kind").is_in(["lock_acquire", "lock_wait"]))
        .last()
        .alias("since"),
    )
    held = per.filter(pl.col("n") > 0).select(
        "actor", pl.col("target").alias("lock"), pl.lit("held").alias("status"), "since"
    )
    waiting = per.filter(pl.col("last") == "lock_wait").select(
        "actor", pl.col("target").alias("lock"), pl.lit("waiting").alias("status"), "since"
    )
    return pl.concat([held, waiting]).sort(["actor", "status", "lock"])
