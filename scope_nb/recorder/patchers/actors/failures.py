"""A task that ended by an exception waits for a verdict: it crashed only if nobody
retrieves the exception (`await`, `.result()`, `.exception()`, `gather`, a TaskGroup,
each of which clears the task's `_log_traceback` flag).

asyncio says so itself when it collects a task whose exception was never retrieved
(the loop's exception handler, seen by the stalls patcher, calls `unretrieved`); a
task still referenced at stop is judged by that same flag, read from asyncio's own
descriptor so that no program code runs. Until the verdict the actor's row says it
`failed`; the verdict's row (`crash`, or `exit` with the retrieved exception) carries
the time the task ended. A freed task asyncio did not complain about was retrieved.
"""

from __future__ import annotations

import weakref

_ASYNCIO_MODULES = frozenset({"_asyncio", "asyncio.futures", "asyncio.tasks"})


class Failure:
    """One failed task's ending, kept as text (never the exception or the task)."""

    __slots__ = ("actor", "coro", "detail", "location", "name", "ref", "short", "ts")

    def __init__(
        self, actor: str, name: str, coro: str, ts: int, text: tuple[str, str, str | None]
    ):
        self.actor, self.name, self.coro, self.ts = actor, name, coro, ts
        self.short, self.detail, self.location = text
        self.ref: weakref.ref | None = None


class Failures:
    """The failed tasks of one recording that have no verdict yet."""

    def __init__(self, rec):
        self.rec = rec
        self.waiting: dict[int, Failure] = {}  # id(task) -> its failure, the task alive
        # the task freed: retrieved, unless asyncio complains now
        self.gone: dict[int, Failure] = {}

    def ended(self, actor: str, task, ts: int, text: tuple[str, str, str | None]) -> None:
        coro = task.get_coro()
        f = Failure(
            actor,
            task.get_name(),
            getattr(coro, "__qualname__", None) or type(coro).__name__,
            ts,
            text,
        )
        key = id(task)
        f.ref = weakref.ref(task, lambda _, key=key, f=f: self._freed(key, f))
        self.waiting[key] = f
        self.rec.actors.end(actor, "failed", f.short)

    def _freed(self, key: int, f: Failure) -> None:
        if self.waiting.get(key) is f:
            del self.waiting[key]
            self.gone[key] = f  # a collector frees weak references before finalizers run

    def unretrieved(self, task) -> bool:
        """asyncio is collecting `task` with its exception never retrieved: a crash
        (True if the task was one of this recording's failures)."""
        key = id(task)
        f = self.waiting.get(key)
        alive = f.ref() if f is not None else None
        if f is not None and (alive is task or alive is None):
            del self.waiting[key]
        else:
            f = self.gone.get(key)
            if f is None or f.name != task.get_name():
                return False
            del self.gone[key]
        self._crash(f)
        return True

    def close(self) -> None:
        """At stop: a task still referenced whose exception was never retrieved
        crashed (and its exception is reported as never retrieved); every other
        failure was retrieved by the program."""
        waiting, self.waiting = self.waiting, {}
        gone, self.gone = self.gone, {}
        for f in list(waiting.values()) + list(gone.values()):
            task = f.ref() if f.ref is not None else None
            if task is not None and _log_traceback(task):
                self._crash(f)
                self.rec.emit(
                    "exc_unretrieved",
                    f.coro,
                    f.detail,
                    actor=f.actor,
                    location=f.location,
                    ts=f.ts,
                    raw=True,
                )
            else:
                self.rec.emit(
                    "exit", None, f.detail, actor=f.actor, location=f.location, ts=f.ts, raw=True
                )

    def _crash(self, f: Failure) -> None:
        row = self.rec.actors.rows.get(f.actor)
        if row is not None:
            row["outcome"] = "crashed"
        self.rec.emit(
            "crash", None, f.detail, actor=f.actor, location=f.location, ts=f.ts, raw=True
        )


def _log_traceback(task) -> bool:
    """asyncio's flag "this exception was never retrieved", read through asyncio's
    own descriptor; a class that redefines it is not asked (False)."""
    for klass in type(task).__mro__:
        d = klass.__dict__.get("_log_traceback")
        if d is not None:
            return klass.__module__ in _ASYNCIO_MODULES and d.__get__(task, type(task)) is True
    return False
