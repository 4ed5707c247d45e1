"""Supervisors: a ThreadPoolExecutor, ProcessPoolExecutor or TaskGroup is an actor of
its own, the supervisor of the threads, processes and tasks it starts."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import functools

from ...patching import patch, unpatch
from .state import ctx, exc_text, state


def supervisor(rec, owner, kind: str, name: str | None) -> str:
    """The actor of an executor / TaskGroup, registered (with a spawn) at first sight."""
    st = state(rec)
    actor = st.supervisors.get(owner)
    if actor is None:
        parent = rec.current_actor()
        label = name or f"{type(owner).__name__}-{next(st.numbers)}"
        with rec.actors.lock:
            actor = rec.actors.new(kind, label, parent)
        st.supervisors[owner] = actor
        rec.emit("spawn", actor, label, actor=parent, raw=True)
    return actor


def end_supervisor(rec, owner, failure: BaseException | None) -> None:
    actor = state(rec).supervisors.get(owner)
    if actor is None or rec.actors.rows[actor]["ended"] is not None:
        return
    if failure is None:
        rec.actors.end(actor, "ok")
        rec.emit("exit", None, None, actor=actor)
    elif isinstance(failure, asyncio.CancelledError):
        rec.actors.end(actor, "cancelled")
        rec.emit("cancel", None, None, actor=actor)
    else:  # raised into the code that awaited the group: its to handle, not a crash
        short, detail, location = exc_text(rec, failure)
        rec.actors.end(actor, "failed", short)
        rec.emit("exit", None, detail, actor=actor, location=location, raw=True)


class supervising:
    """Within this block, workers started in this thread belong to `actor`."""

    def __init__(self, actor: str | None):
        self.actor = actor

    def __enter__(self):
        self.prev = getattr(ctx, "supervisor", None)
        ctx.supervisor = self.actor

    def __exit__(self, *exc):
        ctx.supervisor = self.prev


def taskgroup_patches(rec) -> None:
    TG = asyncio.TaskGroup
    orig_create, orig_exit = TG.create_task, TG.__aexit__

    def create_task(self, coro, *args, **kwargs):
        group = None
        try:
            if getattr(self, "_entered", False) and not getattr(self, "_exiting", False):
                group = supervisor(rec, self, "taskgroup", None)
        except Exception as e:
            rec.fault("taskgroup", e)
        with supervising(group):
            task = orig_create(self, coro, *args, **kwargs)
        actor = rec.actors._tasks.get(id(task))
        if actor is not None:  # before 3.13 the task is named after it was created
            rec.actors.rows[actor]["name"] = task.get_name()
        return task

    async def __aexit__(self, et, exc, tb):
        failure = None
        try:
            return await orig_exit(self, et, exc, tb)
        except BaseException as e:
            failure = e
            raise
        finally:
            et = exc = tb = None
            try:
                end_supervisor(rec, self, failure)
            except Exception as e:
                rec.fault("taskgroup", e)
            failure = None

    patch(TG, "create_task", create_task)
    patch(TG, "__aexit__", __aexit__)


def executor_patches(rec) -> None:
    TPE, PPE = cf.ThreadPoolExecutor, cf.ProcessPoolExecutor

    def supervised(cls, name, label):
        orig = getattr(cls, name)

        @functools.wraps(orig)
        def method(self, *args, **kwargs):
            try:
                actor = supervisor(rec, self, "executor", label(self))
            except Exception as e:
                rec.fault("executor", e)
                actor = None
            with supervising(actor):
                return orig(self, *args, **kwargs)

        patch(cls, name, method)

    def ended(cls):
        orig = cls.shutdown

        @functools.wraps(orig)
        def shutdown(self, *args, **kwargs):
            result = orig(self, *args, **kwargs)
            try:
                end_supervisor(rec, self, None)
            except Exception as e:
                rec.fault("executor", e)
            return result

        patch(cls, "shutdown", shutdown)

    supervised(TPE, "_adjust_thread_count", lambda ex: getattr(ex, "_thread_name_prefix", None))
    supervised(PPE, "_spawn_process", lambda ex: None)
    supervised(PPE, "_start_executor_manager_thread", lambda ex: None)
    ended(TPE)
    ended(PPE)


_PATCHED = (
    (asyncio.TaskGroup, ("create_task", "__aexit__")),
    (cf.ThreadPoolExecutor, ("_adjust_thread_count", "shutdown")),
    (cf.ProcessPoolExecutor, ("_spawn_process", "_start_executor_manager_thread", "shutdown")),
)


def unpatch_supervisors() -> None:
    for cls, names in _PATCHED:
        for name in names:
            unpatch(cls, name)
