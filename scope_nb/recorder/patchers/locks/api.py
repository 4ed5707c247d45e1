"""`trace_lock`: tracing a lock the program made before recording started (or in a
module the recorder does not look at), under its variable's name or one given."""

from __future__ import annotations

import asyncio
import sys
import threading
import weakref
from typing import Any

from .naming import user_caller
from .renaming import rename
from .state import LockState
from .traced import _lock_types, _Traced, wrap

_ACCEPTED = (
    "threading.Lock, threading.RLock, threading.Condition, threading.Semaphore, "
    "threading.BoundedSemaphore, threading.Event, asyncio.Lock, asyncio.Event, asyncio.Semaphore, "
    "asyncio.BoundedSemaphore, asyncio.Condition"
)


def trace_lock(rec, lock: Any, name: str | None = None) -> Any:
    """Trace a lock created before start(), or name one: returns what to use from now
    on, a wrapper for Lock / RLock (C objects), the same object for the Python lock
    classes. A lock traced already (made while recording, named `Account._lock`) is
    renamed: it stays one lock, and its rows recorded before show the new name too (a
    name another lock has gets a suffix, "x-2"). `name` None or "": the variable's
    name. Not recording (`rec` None or stopped), or lock tracing off in the recording
    (tracing_level="off", patch=False): the lock itself, nothing recorded. Raises
    TypeError only for what it cannot trace: not a lock, a name that is not a str, an
    asyncio.Condition over a lock that is not an asyncio.Lock."""
    if name is not None and not isinstance(name, str):
        raise TypeError(f"trace_lock: name must be a str or None, got {type(name).__name__}")
    if not _is_lock(lock):
        raise TypeError(f"trace_lock: lock must be one of {_ACCEPTED}; got {type(lock).__name__}")
    st = rec.parts.locks if rec is not None and rec.running else None
    if st is None:
        return lock
    name = name or None
    if isinstance(lock, _Traced):
        return _again(st, lock, lock, name)
    lock_type, rlock_type, _, _ = _lock_types()
    frame = user_caller(sys._getframe(1))
    kind = type(lock).__name__
    if type(lock) is lock_type or type(lock) is rlock_type or isinstance(lock, threading._PyRLock):
        known = st.wrapped.get(id(lock))
        known = known() if known is not None else None
        if known is not None and known._lock is lock:
            return _again(st, known, known, name)
        reentrant = type(lock) is not lock_type
        traced = wrap(
            st, lock, st.name_for(frame, "RLock" if reentrant else "Lock", name), reentrant
        )
        st.wrapped[id(lock)] = weakref.ref(traced)
        return traced
    if isinstance(lock, threading.Condition):
        inner = lock._lock
        if isinstance(inner, _Traced):
            return _again(st, lock, inner, name)
        reentrant = type(inner) is rlock_type or isinstance(inner, threading._PyRLock)
        _rebind_condition(lock, wrap(st, inner, st.name_for(frame, "Condition", name), reentrant))
        return lock
    if isinstance(lock, asyncio.Condition):
        if not isinstance(lock._lock, asyncio.Lock):
            raise TypeError(
                f"trace_lock: this asyncio.Condition's lock is a {type(lock._lock).__name__}, "
                "which "
                "is not traced; accepted: a Condition made with its own lock or an asyncio.Lock"
            )
        if st.instances.lookup(lock._lock) is not None:
            return _again(st, lock, lock._lock, name)
        st.instances.register(lock._lock, st.name_for(frame, "AsyncCondition", name))
        # it exported its lock's methods when made: bound before they were patched
        lock.acquire, lock.release = lock._lock.acquire, lock._lock.release
        return lock
    for cls, label in (
        (threading.Semaphore, "Semaphore"),
        (threading.Event, "Event"),
        (asyncio.Lock, "AsyncLock"),
        (asyncio.Event, "AsyncEvent"),
        (asyncio.Semaphore, "AsyncSemaphore"),
    ):
        if isinstance(lock, cls):
            if st.instances.lookup(lock) is not None:
                return _again(st, lock, lock, name)
            st.instances.register(lock, st.name_for(frame, label, name))
            return lock
    raise TypeError(f"trace_lock: lock must be one of {_ACCEPTED}; got {kind}")


def _is_lock(lock) -> bool:
    lock_type, rlock_type, _, _ = _lock_types()
    return isinstance(
        lock,
        _Traced
        | lock_type
        | rlock_type
        | threading._PyRLock
        | threading.Condition
        | threading.Semaphore
        | threading.Event
        | asyncio.Lock
        | asyncio.Event
        | asyncio.Semaphore
        | asyncio.Condition,
    )


def _again(st: LockState, returned, traced, name: str | None):
    """A lock traced again is the same traced lock (`traced`: what carries its name);
    a name given renames it, its history with it."""
    if name is not None:
        rename(st, traced, name)
    return returned


def _rebind_condition(cond, lock: _Traced) -> None:
    """Point a Condition at a traced lock (what Condition.__init__ would have done)."""
    cond._lock = lock
    cond.acquire = lock.acquire
    cond.release = lock.release
    for attr in ("_release_save", "_acquire_restore", "_is_owned"):
        try:
            setattr(cond, attr, getattr(lock, attr))
        except AttributeError:
            pass
