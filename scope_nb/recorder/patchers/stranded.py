"""asyncio Lock waits that nothing but a cancellation can end: stranded waiters.

A waiter of an `asyncio.Lock` is woken only by a release or by its own cancellation.
With no wake-up in flight (no waiter's future already done: woken, or cancelled, and
its task yet to run), a task waiting on a traced asyncio Lock is stranded when the lock
is free (a waiter woken by the last release was cancelled before it ran and took the
wake-up with it: bpo-27585) or is held only by tasks that have ended (an acquire
cancelled after it took the lock: anyio #398). A lock held by a live task is not
judged: that task may still release it.

Looked for when a loop stops running (`run_forever` returns: the state between two
steps, read by the loop's own thread) and, with the watchdog on, at each of its ticks
(a wait found stranded at every tick for the hang threshold; one look could fall
between the two statements of a release). Only the lock's and its futures' own state
is read (instance dicts, `Future.done`), never the program's code. Each stranded wait
is recorded once, as a `hang` whose JSON detail is the watchdog's, each wait marked
"free": true, or "ended": {holder: epoch ns} naming when each holder ended.
"""

from __future__ import annotations

import asyncio
import collections
import json
import threading
from typing import Any

from ..own_events import emit_own
from ..patching import original
from .coros import coro_location, coro_stack

# the future types a loop makes (the C one and its Python twin): their `done` is asyncio's
_FUTURES = frozenset({asyncio.Future, getattr(asyncio.futures, "_PyFuture", asyncio.Future)})


class Stranded:
    """One recording's stranded waits: those already recorded, and since when each wait
    the watchdog sees has been stranded at every tick."""

    def __init__(self, rec):
        self.rec = rec
        self.lock = original(threading, "Lock")()
        self.reported: set[tuple[int, int]] = set()  # (id(task), id(its future))
        self.since: dict[tuple[int, int], int] = {}  # perf ns

    def at_loop_end(self, loop) -> None:
        """`loop` stopped running: its stranded waits are recorded now."""
        with self.lock:
            fresh = [(task, w) for key, task, w in self._find(loop) if self._first(key)]
        self._report(fresh)

    def tick(self, now: int, threshold: int) -> None:
        """A watchdog look: waits stranded at every look for `threshold` ns are recorded."""
        with self.lock:
            found = self._find(None)
            self.since = {key: self.since.get(key, now) for key, _, _ in found}
            fresh = []
            for key, task, w in found:
                if now - self.since[key] >= threshold and self._first(key):
                    w["blocked_ns"] = now - self.since[key]
                    fresh.append((task, w))
        self._report(fresh)

    def _first(self, key: tuple[int, int]) -> bool:
        if key in self.reported:
            return False
        self.reported.add(key)
        return True

    # -- what the live state says ------------------------------------------------------
    def _find(self, loop) -> list[tuple[tuple[int, int], Any, dict]]:
        """(key, task, wait row) of every stranded waiter of a traced asyncio Lock (of `loop`'s
        tasks only, when given)."""
        st = self.rec.parts.locks
        if st is None or "hang" not in self.rec.kinds:
            return []
        locks = []
        for ref, name in list(st.instances.registry.values()):
            lock = ref()
            if not isinstance(lock, asyncio.Lock):
                continue
            state = lock.__dict__
            waiters = state.get("_waiters")
            if type(waiters) is not collections.deque:
                continue  # nobody waits yet, or a subclass keeps them its own way
            waiters = list(waiters)
            if not waiters or any(type(w) not in _FUTURES for w in waiters):
                continue  # only asyncio's own futures are asked whether they are done
            if any(w.done() for w in waiters):
                continue  # a wake-up is in flight
            if loop is not None and waiters[0].get_loop() is not loop:
                continue
            holders = list(st.owners.get(name, ())) if state.get("_locked") else []
            ended = self._ended(holders)
            if state.get("_locked") and (not holders or ended is None):
                continue  # held by a live task, or taken where the recording did not see it
            locks.append((name, waiters, holders, ended))
        if not locks:
            return []
        waiting = {}  # id(future) -> the task awaiting it
        for lp in {ws[0].get_loop() for _, ws, _, _ in locks}:
            for task in asyncio.all_tasks(lp):
                fut = getattr(task, "_fut_waiter", None)
                if fut is not None:
                    waiting[id(fut)] = task
        out = []
        for name, waiters, holders, ended in locks:
            for fut in waiters:
                task = waiting.get(id(fut))
                actor = self.rec.actors._tasks.get(id(task)) if task is not None else None
                if actor is None:
                    continue  # not a task of this recording
                row = {
                    "actor": actor,
                    "on": f"lock {name}",
                    "holders": holders,
                    "holds": list(st.held.get(actor, ())),
                    "blocked_ns": None,  # None: since when is not known
                    "location": coro_location(task),
                }
                row.update({"ended": ended} if holders else {"free": True})
                out.append(((id(task), id(fut)), task, row))
        return out

    def _ended(self, holders: list[str]) -> dict[str, int] | None:
        """{holder: when it ended (epoch ns)} if every holder has ended, else None."""
        rows = self.rec.actors.rows
        ends = {h: (rows.get(h) or {}).get("ended") for h in holders}
        return None if any(t is None for t in ends.values()) else ends

    def _report(self, fresh: list[tuple[Any, dict]]) -> None:
        """One `hang` for the waits first found stranded now (each with its task)."""
        if not fresh:
            return
        stacks = {w["actor"]: coro_stack(task) for task, w in fresh}
        waits = [w for _, w in fresh]
        known = [w["blocked_ns"] for w in waits if w["blocked_ns"] is not None]
        detail = {"type": "hang", "cycle": [], "waits": waits, "stacks": stacks}
        emit_own(
            self.rec,
            "hang",
            waits[0]["actor"],
            waits[0]["on"],
            json.dumps(detail),
            location=waits[0]["location"],
            duration_ns=max(known, default=None),
        )
