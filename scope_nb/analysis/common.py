"""Small shared pieces of the analyses: filtering by kind and time, and turning the
user's actor / object arguments into the ids used in the frames."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import polars as pl

from ..config import some
from ..schema import EVENT_KINDS


def kinds_filter(kind: str | list[str] | tuple[str, ...]) -> pl.Expr:
    if not isinstance(kind, str | list | tuple | set | frozenset):
        raise TypeError(
            f"kind must be an event kind (str) or a list of them; got {type(kind).__name__}; "
            f"accepted: {', '.join(EVENT_KINDS)}"
        )
    kinds = [kind] if isinstance(kind, str) else list(kind)
    unknown = [k for k in kinds if k not in EVENT_KINDS]
    if unknown:
        raise ValueError(
            f"kind: unknown event kind(s) {unknown}; accepted: {', '.join(EVENT_KINDS)}"
        )
    return pl.col("kind").is_in(kinds)


def events_between(events: pl.DataFrame, t0: int, t1: int) -> pl.DataFrame:
    if t1 < t0:
        raise ValueError(f"events_between: t1 ({t1}) is before t0 ({t0})")
    return events.filter(pl.col("ts").is_between(t0, t1))


def resolve_actor(trace, actor: Any) -> str:
    """Thread, Task, OS pid, actor id or unique name -> actor id."""
    actors = trace.actors()
    ids = actors["actor"]
    if isinstance(actor, str):
        if actor in ids:
            return actor
        named = actors.filter(pl.col("name") == actor)
        if named.height == 1:
            return named["actor"][0]
        if named.height > 1:
            raise ValueError(
                f"actor: the name {actor!r} is ambiguous ({', '.join(named['actor'])}); pass an "
                "actor id"
            )
        raise ValueError(f"actor: no actor named or with id {actor!r}; known: {_some(actors)}")
    if isinstance(actor, bool):
        raise TypeError("actor: expected a Thread, Task, pid, actor id or name; got bool")
    if isinstance(actor, int):
        found = actors.filter((pl.col("kind") == "process") & (pl.col("pid") == actor))
        if found.height:
            return found["actor"][0]
        raise ValueError(
            f"actor: no process with pid {actor} in this trace; known: {_some(actors)}"
        )
    if isinstance(actor, threading.Thread):
        rec = trace._rec
        if rec is not None:
            aid = rec.actors._threads.get(id(actor))
            if aid is not None:
                return aid
        named = actors.filter((pl.col("kind") == "thread") & (pl.col("name") == actor.name))
        if named.height >= 1:
            return named["actor"][-1]
        raise ValueError(f"actor: thread {actor.name!r} was not seen in this trace")
    if hasattr(actor, "get_coro") and hasattr(actor, "get_name"):  # an asyncio Task
        rec = trace._rec
        if rec is not None:
            aid = rec.actors._tasks.get(id(actor))
            if aid is not None:
                return aid
        named = actors.filter((pl.col("kind") == "task") & (pl.col("name") == actor.get_name()))
        if named.height >= 1:
            return named["actor"][-1]
        raise ValueError(f"actor: task {actor.get_name()!r} was not seen in this trace")
    raise TypeError(
        "actor: expected a Thread, an asyncio Task, an OS pid, an actor id or a name; got "
        f"{type(actor).__name__}"
    )


def _some(actors: pl.DataFrame, n: int = 8) -> str:
    return some([f"{a} ({nm})" for a, nm in zip(actors["actor"], actors["name"], strict=True)], n)


def resolve_object(trace, obj: Any) -> str:
    """A traced object or the name it was traced under -> that name."""
    names = set(trace.states()["obj"].unique().to_list())
    rec = trace._rec
    if rec is not None:
        names |= set(rec.objects)
    if isinstance(obj, str):
        if obj in names:
            return obj
        raise ValueError(f"obj: no traced object named {obj!r}; traced: {some(sorted(names))}")
    if rec is not None:
        for name, live in rec.objects.items():
            if live is obj:
                return name
    for name, live in trace.meta.get("objects", {}).items():
        if live is obj:
            return name
    name = getattr(obj, "_scope_name", None)
    if isinstance(name, str) and name in names:
        return name
    raise ValueError(
        f"obj: {type(obj).__name__} object is not traced in this trace; pass a traced object or "
        "one of: "
        f"{some(sorted(names))}"
    )


def resolve_actor_or_object(trace, x: Any, name: str = "obj_or_actor") -> tuple[str, str]:
    """("actor", id) or ("obj", name) for an argument that may be either."""
    try:
        return "actor", resolve_actor(trace, x)
    except (ValueError, TypeError) as actor_err:
        try:
            return "obj", resolve_object(trace, x)
        except ValueError as obj_err:
            raise ValueError(
                f"{name}: {x!r} is neither an actor ({actor_err}) nor a traced object ({obj_err})"
            ) from None


def interleaved_timeline(trace, items) -> pl.DataFrame:
    """The events of several actors and/or traced objects (or of one), in global order."""
    name = "actors_or_objects"
    try:  # one actor or object first: a Task or a traced container is iterable too
        found = [resolve_actor_or_object(trace, items, name)]
    except ValueError:
        if isinstance(items, str | bytes) or not isinstance(items, Iterable):
            raise
        found = [resolve_actor_or_object(trace, it, name) for it in items]
    actors = [v for what, v in found if what == "actor"]
    objects = [v for what, v in found if what == "obj"]
    ev = trace.events()
    return ev.filter(pl.col("actor").is_in(actors) | pl.col("obj").is_in(objects)).sort("seq")
