"""asyncio tasks: `BaseEventLoop.create_task` (so a task factory already set still
runs) records the spawn of a task and, by a done callback, its exit or cancel; an
exception it ended by waits for a verdict (`failures`).
`BaseEventLoop.run_forever` marks the thread as an event-loop thread so events are
attributed to the running task, and when it returns, the loop's stranded lock waits are
looked for (stranded.py). Before 3.13 a task is named after it was created, so
its name is read again when it ends and at stop."""

from __future__ import annotations

import asyncio
import asyncio.base_events
import functools
import sys

from .... import clock
from ...patching import patch, unpatch
from .state import ctx, exc_text, state

_NAMED_LATE = sys.version_info < (3, 13)


def task_patches(rec) -> None:
    Loop = asyncio.base_events.BaseEventLoop
    orig_create, orig_run = Loop.create_task, Loop.run_forever

    def create_task(self, coro, *args, **kwargs):
        sup = getattr(ctx, "supervisor", None)
        ctx.supervisor = None  # an eager first step must not inherit it
        parent = None
        try:
            t0 = clock.perf_ns()
            b = rec.buffer()
            if not b.loopy and asyncio._get_running_loop() is self:
                b.loopy = True
            parent = rec.current_actor(b)
        except Exception as e:
            rec.fault("task.create", e)
        try:
            task = orig_create(self, coro, *args, **kwargs)
        finally:
            ctx.supervisor = sup
        if parent is not None and hasattr(task, "add_done_callback"):
            try:
                _task_spawned(rec, task, parent, sup, t0)
            except Exception as e:
                rec.fault("task.create", e)
        return task

    def run_forever(self):
        b = rec.buffer()
        was, b.loopy = b.loopy, True
        try:
            return orig_run(self)
        finally:
            try:
                # the loop stopped: what the thread does next is its own again (or the
                # task of a loop still running around it), not the last task that ran
                rec.sync_task(b)
                stalls = rec.parts.stalls
                if stalls is not None and rec.running:  # between two steps: a settled state
                    stalls.stranded.at_loop_end(self)
            except Exception as e:
                rec.fault("task.loop_end", e)
            b.loopy = was

    patch(Loop, "create_task", create_task)
    patch(Loop, "run_forever", run_forever)
    if asyncio._get_running_loop() is not None:  # installed from inside a loop (a notebook cell)
        rec.buffer().loopy = True


def _task_spawned(rec, task, parent: str, sup: str | None, t0: int) -> None:
    actor = rec.actors.task_actor(task, rec, parent=parent, supervisor=sup)
    row = rec.actors.rows[actor]
    if row["parent"] is None:  # first seen while its eager first step ran
        row["parent"], row["supervisor"] = parent, sup
    rec.emit("spawn", actor, task.get_name(), actor=parent, ts=t0, raw=True)
    task.add_done_callback(functools.partial(_task_done, rec, actor))
    if _NAMED_LATE:
        state(rec).live_tasks[actor] = task


def _rename(rec, actor: str, task) -> None:
    """Before 3.13, asyncio.create_task names a task after the loop created it."""
    if _NAMED_LATE:
        rec.actors.rows[actor]["name"] = task.get_name()


def _task_done(rec, actor: str, task) -> None:
    try:
        _rename(rec, actor, task)
        if task.cancelled():
            rec.actors.end(actor, "cancelled")
            rec.emit("cancel", None, None, actor=actor)
            return
        exc = task._exception  # read without marking it retrieved
        if exc is None:
            rec.actors.end(actor, "ok")
            rec.emit("exit", None, task.result(), actor=actor)
        else:  # a crash only if nobody retrieves it (failures.py)
            state(rec).failures.ended(actor, task, clock.perf_ns(), exc_text(rec, exc))
    except Exception as e:
        rec.fault("task.done", e)


def unpatch_tasks(rec) -> None:
    for name in ("create_task", "run_forever"):
        unpatch(asyncio.base_events.BaseEventLoop, name)
    state(rec).failures.close()
    for actor, task in list(state(rec).live_tasks.items()):
        _rename(rec, actor, task)
