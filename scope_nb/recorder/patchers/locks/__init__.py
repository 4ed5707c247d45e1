"""Traced locks: wait / acquire / release events, the locks each actor holds, and
live lock-order (lockdep) detection.

Only locks created by user code after `start()` are traced: the factories
(`threading.Lock`, `threading.RLock`) and the constructors of the Python lock
classes (`Condition`, `Semaphore`, `BoundedSemaphore`, `Event` and their asyncio
namesakes, `asyncio.Lock`) look at the creating frame, so the stdlib's own locks (a
queue's mutex, a Condition's inner lock) stay untouched originals and cost nothing.
`_thread.allocate_lock` and `_thread.RLock` are patched alike, so a program calling
them while recording (or binding them then: `from _thread import RLock`) is seen too;
a name bound before recording still holds the untraced original, and so does
`_thread.LockType()` (the type itself, callable from 3.13 on).

The package, by concern: `naming` (which frame made a lock, the name it gets),
`state` (who holds what, the events; `releases`: the two-step release) and `order`
(the lock-order graph), `traced` (the traced Lock / RLock types and their disguise),
`stdlib` and `aio` (the Python lock classes of threading and asyncio), `handlers` (a
logging Handler's own lock), `modules` (the locks of a module imported before recording
that can be traced in place), `api` (`trace_lock`), `renaming` (a lock named after a
traced object's attribute, or renamed by the program), `forks` (the locks other threads
hold at a fork).
"""

from __future__ import annotations

import _thread
import threading
from typing import Any

from ...patching import original, patch, unpatch
from .aio import asyncio_patches
from .api import trace_lock
from .forks import at_fork
from .handlers import handler_patches
from .modules import adopt_globals
from .naming import where
from .renaming import adopt, renamed_locks
from .state import LockState, held_locks
from .stdlib import condition_patches, event_patches, semaphore_patches
from .traced import (
    PyTracedLock,
    PyTracedRLock,
    TracedLock,
    TracedRLock,
    _Factory,
    _lock_types,
    _Traced,
    wrap,
)

__all__ = [
    "LockState",
    "PyTracedLock",
    "PyTracedRLock",
    "TracedLock",
    "TracedRLock",
    "adopt",
    "adopt_globals",
    "at_fork",
    "held_locks",
    "install",
    "renamed_locks",
    "trace_lock",
    "uninstall",
    "where",
    "_Traced",
]

_PATCHED: list[tuple[Any, str]] = []


def install(rec) -> None:
    st = LockState(rec)
    rec.parts.locks = st
    _, rlock_type, orig_lock, orig_rlock = _lock_types()

    def make_lock(frame, args, kwargs):
        lock = orig_lock(*args, **kwargs)
        if st.user_frame(frame):
            return wrap(st, lock, st.name_for(frame, "Lock"), False)
        return lock

    def make_rlock(frame, args, kwargs):
        lock = orig_rlock(*args, **kwargs)
        if st.user_frame(frame):
            return wrap(st, lock, st.name_for(frame, "RLock"), True)
        return lock

    todo: list[tuple[Any, str, Any]] = [
        (threading, "Lock", _Factory(orig_lock, make_lock, TracedLock)),
        (threading, "RLock", _Factory(orig_rlock, make_rlock, TracedRLock)),
        # the same factories where a program may reach them under their C names
        (
            _thread,
            "allocate_lock",
            _Factory(original(_thread, "allocate_lock"), make_lock, TracedLock),
        ),
        (_thread, "RLock", _Factory(original(_thread, "RLock"), make_rlock, TracedRLock)),
    ]
    todo += condition_patches(st, orig_rlock)
    todo += semaphore_patches(st)
    todo += event_patches(st)
    todo += asyncio_patches(st)
    todo += handler_patches(st, rlock_type)
    for owner, attr, new in todo:
        patch(owner, attr, new)
        _PATCHED.append((owner, attr))


def uninstall(rec) -> None:
    while _PATCHED:
        owner, attr = _PATCHED.pop()
        unpatch(owner, attr)
