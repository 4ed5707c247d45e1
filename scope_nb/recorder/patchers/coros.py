"""How a report says where an asyncio task is: its coroutine's name and the line it
is at (where it awaits now, or where it starts when it has not run yet). Shared by the
reports made while a task waits (await cycles, stranded lock waits, stalled steps)."""

from __future__ import annotations


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
