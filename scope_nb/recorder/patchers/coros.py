"""How a report says where an asyncio task is: its coroutine's name and the line it
is at (where it awaits now, or where it starts when it has not run yet). Shared by the
reports made while a task waits (await cycles, stranded lock waits, stalled steps)."""

from __future__ import annotations

import traceback

from ..sites import is_recorder_file


def coro_location(task) -> str | None:
    coro = task.get_coro()
    frame = getattr(coro, "cr_frame", None)
    if frame is not None:
        return f"{frame.f_code.co_filename}:{frame.f_lineno}"
    code = getattr(coro, "cr_code", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code is not None else None


def coro_name(task) -> str:
    coro = task.get_coro()
    return getattr(coro, "__qualname__", None) or type(coro).__name__


def coro_stack(task, limit: int = 12) -> str:
    """The task's await chain, outermost first, as traceback text (so a report shortens
    it like any stack): each coroutine it awaits down to the one parked on a future,
    without the recorder's own wrappers. Read from the suspended coroutines' frames."""
    entries = []
    coro = task.get_coro()
    while coro is not None and len(entries) < limit:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            break
        code = frame.f_code
        if not is_recorder_file(code.co_filename):
            entries.append(traceback.FrameSummary(code.co_filename, frame.f_lineno, code.co_name))
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return "".join(traceback.format_list(entries)) or f"{coro_name(task)}\n"
