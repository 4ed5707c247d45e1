"""The hang watchdog (option `watchdog=N` seconds; off by default).

A recorder thread looks at every thread's stack a few times per threshold. A thread
whose stack is parked in a blocking primitive (a traced lock's acquire, a queue's
get/put/join, an Event or Condition wait, a Thread.join, a Semaphore) for longer than
N seconds is waiting. The waits form a wait-for graph between actors: a traced lock
waits for its holders, a thread join for that thread, a queue get for the actors that
put on that queue before. A cycle is a `deadlock`; otherwise the waiting actors are a
`hang`. Either is recorded once per episode as a critical event whose detail is JSON:
{"type", "cycle", "waits": [{"actor", "on", "holders", "holds", "blocked_ns",
"location"}], "stacks": {actor: text}}, so a hung program can be diagnosed from its trace.
An asyncio task waits in no thread's stack: each look also asks for the asyncio Lock
waits nothing can end (stranded.py), recorded as hangs of the same shape. The graph and
the event it makes are in wait_for.py.
"""

from __future__ import annotations

import queue
import sys
import threading

from ...clock import perf_ns
from ..naming import bound_name
from ..sites import UserCodeFilter
from . import locks
from .wait_for import WaitForGraph


def _blockers() -> dict:
    """code object -> what kind of wait a frame running it is (the outermost one a stack
    is parked in names the wait: a future's result, not the condition inside it)."""
    from concurrent.futures import Future

    out = {}
    for fn, kind in (
        (Future.result, "future result"),
        (queue.Queue.get, "queue get"),
        (queue.Queue.put, "queue put"),
        (queue.Queue.join, "queue join"),
        (threading.Event.wait, "event"),
        (threading.Condition.wait, "condition"),
        (threading.Condition.wait_for, "condition"),
        (threading.Thread.join, "join"),
        (threading.Semaphore.acquire, "semaphore"),
        (locks._Traced._wait, "lock"),
        (locks.TracedRLock._acquire_restore, "lock"),
    ):
        fn = getattr(fn, "__wrapped__", fn)
        out[fn.__code__] = kind
    return out


class Watchdog(WaitForGraph):
    """The watchdog's thread loop, and its reading of what each stack is parked in."""

    def __init__(self, rec, threshold_s: float):
        self.rec = rec
        self.threshold = int(threshold_s * 1e9)
        self.blockers = _blockers()
        self.is_user = UserCodeFilter()
        # thread ident -> (what it waits on, since perf ns)
        self.since: dict[int, tuple[tuple, int]] = {}
        self.reported: set[tuple] = set()
        self.stop = threading.Event()
        self.thread = None  # its own thread, when it watches while recording

    def _loop(self) -> None:
        period = min(max(self.threshold / 4e9, 0.01), 1.0)
        while not self.stop.wait(period):
            try:
                self.tick()
            except Exception as e:
                self.rec.fault("watchdog", e)

    # -- one look at every thread --------------------------------------------------------
    def look_now(self) -> int:
        """Record every thread parked in a blocking primitive right now, however long
        it has waited (what `scope-nb run --timeout` keeps before it ends a program):
        how long, where the watchdog has been watching it, else unknown. The number of
        waiting threads recorded."""
        now = perf_ns()
        me = threading.get_ident()
        waits = {}
        for ident, frame in sys._current_frames().items():
            if ident == me or ident in self.rec.own_idents:
                continue
            found = self._blocked_on(frame)
            if found is None:
                continue
            seen = self.since.get(ident)
            waits[ident] = (found, now - seen[1] if seen and seen[0] == found[:2] else None, frame)
        if waits:
            self._report(waits)
        return len(waits)

    def tick(self) -> None:
        now = perf_ns()
        frames = sys._current_frames()
        me = threading.get_ident()
        waits = {}
        for ident, frame in frames.items():
            if ident == me or ident in self.rec.own_idents:
                continue
            found = self._blocked_on(frame)
            if found is None:
                self.since.pop(ident, None)
                continue
            key = found[:2]
            prev = self.since.get(ident)
            if prev is None or prev[0] != key:
                self.since[ident] = (key, now)
                continue
            if now - prev[1] >= self.threshold:
                waits[ident] = (found, now - prev[1], frame)
        for ident in list(self.since):
            if ident not in frames:
                del self.since[ident]
        fresh = {
            i for i, w in waits.items() if (i, w[0][:2], self.since[i][1]) not in self.reported
        }
        if fresh:
            for i in waits:
                self.reported.add((i, waits[i][0][:2], self.since[i][1]))
            self._report(waits)
        stalls = self.rec.parts.stalls
        if stalls is not None:  # asyncio tasks wait in no thread's stack: their locks say
            stalls.stranded.tick(now, self.threshold)

    def _blocked_on(self, frame):
        """(kind, resource name, resource object) of the outermost blocking call this
        stack is parked in, looking outward until the first user frame."""
        found = None
        f = frame
        while f is not None:
            kind = self.blockers.get(f.f_code)
            if kind is not None:
                found = (kind, f)
            elif self.is_user(f.f_code):
                break
            f = f.f_back
        return None if found is None else (found[0], *self._resource(found[0], found[1], f))

    def _resource(self, kind: str, frame, user=None):
        """The name and object a blocking call waits on: a traced lock's or queue's name,
        else the variable the program's frame `user` holds it in (`jobs`), else its type
        and address."""
        obj = frame.f_locals.get("self")
        name = getattr(obj, "name", None) if kind in ("lock", "join") else None
        st = self.rec.parts.locks
        if name is None and st is not None:
            target = obj._lock if kind == "condition" and hasattr(obj, "_lock") else obj
            name = (
                getattr(target, "name", None)
                if isinstance(target, locks._Traced)
                else st.instances.lookup(target)
            )
        if name is None and kind.startswith("queue"):
            name = next((n for n, q in list(self.rec.queues.items()) if q is obj), None)
        if name is None and obj is not None:
            try:  # compares by identity only
                name = (bound_name(obj, user) if user is not None else None) or self._held_as(obj)
            except Exception as e:
                self.rec.fault("watchdog:name", e)
        return (name or f"{type(obj).__name__}@{id(obj):x}"), obj

    def _held_as(self, obj, depth: int = 20) -> str | None:
        """The variable some program frame of any thread holds `obj` in: a thread whose
        target is `queue.join` itself has no frame of the program, but the one that made
        the queue may still hold it (`tasks`)."""
        for frame in sys._current_frames().values():
            f, n = frame, 0
            while f is not None and n < depth:
                if self.is_user(f.f_code):
                    name = bound_name(obj, f)
                    if name is not None:
                        return name
                f, n = f.f_back, n + 1
        return None


def install(rec) -> None:
    if rec.options.watchdog is None:
        return
    w = Watchdog(rec, rec.options.watchdog)
    rec.parts.watchdog = w
    w.thread = rec.own_thread(w._loop, "watchdog", w.stop)
    w.thread.start()


def look_now(rec) -> int:
    """One look at every thread now, recorded as a hang or deadlock if some wait (with
    the watchdog's own view of how long, when it runs; without it, once)."""
    w = rec.parts.watchdog or Watchdog(rec, 0.0)
    try:
        return w.look_now()
    except Exception as e:
        rec.fault("watchdog:look_now", e)
        return 0


def uninstall(rec) -> None:
    w, rec.parts.watchdog = rec.parts.watchdog, None
    if w is not None and w.thread is not None:
        w.thread.finish(5)
