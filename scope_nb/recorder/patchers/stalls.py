"""asyncio stalls, seen while they happen.

* Every loop step (`asyncio.events.Handle._run`: a task step or a callback) is timed;
  one longer than `slow_callback` is a `stall` (target "slow_step") naming the task's
  coroutine and the line that blocked, caught by a monitor thread that grabs the loop
  thread's stack while the step is still running.
* A task that finished normally with a cancel request pending swallowed its
  cancellation: a `stall` with target "cancel_swallowed".
* A task whose step leaves it awaiting a chain of tasks that leads back to itself is in
  an await cycle: a `deadlock` whose JSON detail has type "await".
* A task waiting on an asyncio Lock that nothing but a cancellation can wake (free, or
  held by tasks that ended) is stranded: a `hang`, looked for when a loop stops running
  and by the watchdog (stranded.py).
* `BaseEventLoop.call_exception_handler` sees "Task exception was never retrieved"
  and "Future exception was never retrieved" (-> `exc_unretrieved`; a future's has no
  target, and its location is where it was made, known in debug mode only; a task's
  is also the verdict on its end, a crash: actors/failures.py) and "Task was
  destroyed but it is pending!" (-> `task_lost`); the original handler still runs.
"""

from __future__ import annotations

import asyncio
import asyncio.base_events
import asyncio.events
import json
import os
import sys
import threading
import traceback

from ...clock import perf_ns
from ..patching import original, patch, unpatch
from ..sites import program_stack
from .coros import coro_location, coro_name
from .stranded import Stranded

MAX_CHAIN = 16
STACK_LINES = 12
_ASYNCIO = os.path.dirname(asyncio.__file__) + os.sep


def _user_location(frame, is_user) -> str | None:
    f = frame
    while f is not None:
        if is_user(f.f_code):
            return f"{f.f_code.co_filename}:{f.f_lineno}"
        f = f.f_back
    return f"{frame.f_code.co_filename}:{frame.f_lineno}" if frame is not None else None


def _created_at(source_traceback) -> str | None:
    """Where a future was made: the last frame outside asyncio of the stack it keeps
    (only in debug mode)."""
    for f in reversed(source_traceback or ()):
        if not f.filename.startswith(_ASYNCIO):
            return f"{f.filename}:{f.lineno}"
    return None


class StallState:
    def __init__(self, rec):
        self.rec = rec
        self.threshold = int(rec.options.slow_callback * 1e9)
        # loop thread ident -> [t0, handle, (location, stack) | None]
        self.running: dict[int, list] = {}
        self.cycles: set[frozenset[int]] = set()
        self.stranded = Stranded(rec)  # lock waits nothing can end (looked for by others)
        self.stop = threading.Event()
        self.monitor: threading.Thread | None = None
        self._start_lock = threading.Lock()

    # -- the monitor thread: catches the stack of a step while it is slow ----------------
    def ensure_monitor(self) -> None:
        with self._start_lock:
            if self.monitor is None:
                self.monitor = self.rec.own_thread(self._watch, "stalls", self.stop)
                self.monitor.start()

    def _watch(self) -> None:
        period = max(self.threshold / 2e9, 0.005)
        while not self.stop.wait(period):
            self._catch_slow(perf_ns())

    def _catch_slow(self, now: int) -> None:
        """Grab the stack of each step running longer than the threshold. A method of
        its own: its locals hold steps' handles, and so their tasks, and must be gone
        while the monitor sleeps, or a finished task outlives its last reference and
        its never-retrieved exception is reported late, after the recording."""
        for ident, slot in list(self.running.items()):
            if slot is None or slot[1] is not None or now - slot[0] <= self.threshold:
                continue
            frame = sys._current_frames().get(ident)
            if frame is None:
                continue
            seen = (_user_location(frame, self.rec.is_user_code), program_stack(frame, STACK_LINES))
            del frame
            if self.running.get(ident) is slot:
                slot[1] = seen

    # -- after each step ------------------------------------------------------------
    def after(self, handle, slot, duration: int) -> None:
        rec = self.rec
        task = getattr(handle._callback, "__self__", None)
        if not isinstance(task, asyncio.Task):
            task = None
        actor = rec.actors.task_actor(task, rec) if task is not None else None
        if task is not None:
            if task.done():
                if not task.cancelled() and task.cancelling() > 0:
                    rec.emit(
                        "stall",
                        "cancel_swallowed",
                        f"{coro_name(task)} was cancelled but finished normally",
                        actor=actor,
                        location=coro_location(task),
                        function=coro_name(task),
                        raw=True,
                    )
            else:
                self._await_cycle(task)
        if duration > self.threshold:
            seen = slot[1]
            if task is not None:
                name, loc = coro_name(task), coro_location(task)
            else:
                cb = handle._callback
                name = getattr(cb, "__qualname__", None) or type(cb).__qualname__
                code = getattr(cb, "__code__", None)
                loc = f"{code.co_filename}:{code.co_firstlineno}" if code is not None else None
            rec.emit(
                "stall",
                "slow_step",
                seen[1] if seen else None,
                actor=actor,
                duration_ns=duration,
                location=seen[0] if seen else loc,
                function=name,
                raw=True,
            )

    def _await_cycle(self, task) -> None:
        chain = [task]
        nxt = getattr(task, "_fut_waiter", None)
        while isinstance(nxt, asyncio.Task) and len(chain) < MAX_CHAIN:
            if nxt is task:
                key = frozenset(id(t) for t in chain)
                if key not in self.cycles:
                    self.cycles.add(key)
                    self._report_cycle(chain)
                return
            if nxt in chain:
                return  # a cycle that does not pass through this task: its own step reports it
            chain.append(nxt)
            nxt = getattr(nxt, "_fut_waiter", None)

    def _report_cycle(self, chain) -> None:
        rec = self.rec
        actors = [rec.actors.task_actor(t, rec) for t in chain]
        waits = [
            {
                "actor": a,
                "on": f"task {b} ({coro_name(t2)})",
                "holders": [b],
                "location": coro_location(t),
            }
            for a, b, t, t2 in zip(
                actors, actors[1:] + actors[:1], chain, chain[1:] + chain[:1], strict=True
            )
        ]
        detail = {
            "type": "await",
            "cycle": actors,
            "waits": waits,
            "stacks": {
                a: f"{coro_name(t)} at {coro_location(t)}"
                for a, t in zip(actors, chain, strict=True)
            },
        }
        rec.emit(
            "deadlock",
            " -> ".join(actors),
            json.dumps(detail),
            actor=actors[0],
            location=waits[0]["location"],
            raw=True,
        )

    # -- the loop's exception handler -----------------------------------------------------
    def exception_context(self, loop, context: dict) -> None:
        message = str(context.get("message", ""))
        # "Task ...", "Future ..." or a subclass's name
        if message.endswith("exception was never retrieved"):
            fut = context.get("future")
            exc = context.get("exception")
            task = fut if isinstance(fut, asyncio.Task) else None
            actor = self._actor_of(task) if task is not None else self._future_actor(loop)
            if exc is None or (task is not None and actor is None):
                return  # a task of no concern to this recording, collected while it runs
            lifecycle = self.rec.parts.actors
            if task is not None and lifecycle is not None:
                lifecycle.failures.unretrieved(task)  # the verdict on the task's end: a crash
            tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            if task is None:
                loc = _created_at(context.get("source_traceback"))
            else:
                frames = traceback.extract_tb(exc.__traceback__)
                loc = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else None
            text = f"{type(exc).__qualname__}|{self.rec.fmt.repr(exc)}\n{tb}"
            self.rec.emit(
                "exc_unretrieved",
                coro_name(task) if task is not None else None,
                text,
                actor=actor,
                location=loc,
                raw=True,
            )
        elif message.startswith("Task was destroyed but it is pending"):
            task = context.get("task")
            if task is None or self._actor_of(task) is None:
                return
            self.rec.emit(
                "task_lost",
                coro_name(task),
                f"{task.get_name()} destroyed while pending at {coro_location(task)}",
                actor=self._actor_of(task),
                location=coro_location(task),
                raw=True,
            )

    def _future_actor(self, loop) -> str:
        """Who a plain Future's lost exception is pinned on: the thread running its loop
        (else, the loop gone, the thread collecting the future). Knowing who set the
        exception or made the future would cost every future a hook; the C Future has
        no Python-level one to patch."""
        t = threading._active.get(loop._thread_id) if loop._thread_id is not None else None
        t = t or threading.current_thread()
        return self.rec.actors.thread_actor(t, t.ident)

    def _actor_of(self, task) -> str | None:
        """The actor id of a task that may be done (and so forgotten by the registry)."""
        if task is None:
            return None
        reg = self.rec.actors
        actor = reg._tasks.get(id(task))
        if actor is not None:
            return actor
        name = task.get_name()
        found = [
            a for a, row in list(reg.rows.items()) if row["kind"] == "task" and row["name"] == name
        ]
        return found[-1] if found else None


def install(rec) -> None:
    st = StallState(rec)
    rec.parts.stalls = st
    orig_run = original(asyncio.events.Handle, "_run")
    running = st.running

    def _run(self):
        # Like asyncio's own Handle._run, the frame lets go of the handle before it
        # ends: a callback's frame that outlives it (in a traceback) links to this
        # frame, and the handle would keep the task and its exception alive.
        if not rec.running:
            try:
                return orig_run(self)
            finally:
                self = None
        if st.monitor is None:
            st.ensure_monitor()
        ident = threading.get_ident()
        outer = running.get(ident)
        slot = [perf_ns(), None]  # start, the stack seen by the monitor: never the handle
        running[ident] = slot
        try:
            return orig_run(self)
        finally:
            running[ident] = outer
            try:
                st.after(self, slot, perf_ns() - slot[0])
            except Exception as e:
                rec.fault("stalls:step", e)
            self = None

    orig_handler = original(asyncio.base_events.BaseEventLoop, "call_exception_handler")

    def call_exception_handler(self, context):
        if rec.running:
            try:
                st.exception_context(self, context)
            except Exception as e:
                rec.fault("stalls:exception_handler", e)
        return orig_handler(self, context)

    _run.__wrapped__ = orig_run
    call_exception_handler.__wrapped__ = orig_handler
    patch(asyncio.events.Handle, "_run", _run)
    patch(asyncio.base_events.BaseEventLoop, "call_exception_handler", call_exception_handler)


def uninstall(rec) -> None:
    unpatch(asyncio.base_events.BaseEventLoop, "call_exception_handler")
    unpatch(asyncio.events.Handle, "_run")
    st = rec.parts.stalls
    if st is not None:
        st.stop.set()
        if st.monitor is not None:
            st.monitor.finish(5)
