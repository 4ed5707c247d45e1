"""What one recording's lifecycle patches share: their state, the supervisor being
started in this thread, and how an exception is put into a `crash` row."""

from __future__ import annotations

import itertools
import threading
import traceback
import weakref
from typing import Any

from .failures import Failures
from .waiter import ProcessWaiter

ctx = threading.local()  # .supervisor: the executor / TaskGroup starting a worker right now
_TB_FRAMES = 50


class State:
    """What one recording's lifecycle patches keep between install and uninstall."""

    def __init__(self, rec):
        self.rec = rec
        self.crashed: set[str] = set()  # thread actors whose crash was recorded
        self.supervisors: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.numbers = itertools.count(1)
        self.prev_hook: Any = None
        self.hook: Any = None
        self.hook_active = True
        self.waiter = ProcessWaiter(rec)
        # before 3.13 only
        self.live_tasks: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        self.failures = Failures(rec)
        self.asked: dict[str, int] = {}  # process actor -> the signal its parent sent it to end it


def state(rec) -> State:
    return rec.parts.actors


def exc_text(rec, exc: BaseException) -> tuple[str, str, str | None]:
    """(short "ExcType|repr", detail with the traceback lines, file:line that raised)."""
    short = f"{type(exc).__qualname__}|{rec.fmt.repr(exc)}"
    tb = exc.__traceback__
    location = None
    if tb is not None:
        last = tb
        while last.tb_next is not None:
            last = last.tb_next
        location = f"{last.tb_frame.f_code.co_filename}:{last.tb_lineno}"
        lines = "".join(traceback.format_tb(tb, limit=-_TB_FRAMES))
        return short, f"{short}\n{lines}", location
    return short, short, location


def crashed(rec, exception, where: str) -> None:
    """The running thread's actor ends, crashed by `exception()` (a critical event);
    a failure is counted under `where`."""
    try:
        actor = rec.buffer().actor
        short, detail, location = exc_text(rec, exception())
        state(rec).crashed.add(actor)
        rec.actors.end(actor, "crashed", short)
        rec.emit("crash", None, detail, actor=actor, location=location, raw=True)
    except Exception as e:
        rec.fault(where, e)
