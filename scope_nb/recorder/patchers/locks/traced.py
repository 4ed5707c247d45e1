"""The traced lock types: `threading.Lock`/`RLock` objects are C types whose methods
cannot be patched, so a traced one is a wrapper that delegates to a real lock. Its hot
methods (acquire, release, `with`) are C (`_fasthooks.LockCore`, native/locks.c) when
the extension is built: whatever runs while a lock is held delays every thread
waiting for it. The Python methods (`_PyLockMethods`) are the reference, used without
the extension, when sampling, and with SCOPE_NB_PURE.

A traced type answers as the interpreter's where programs look (`_disguise`): module,
name, `type(lock)()`, pickling. `_Factory` stands in for a lock factory while
recording."""

from __future__ import annotations

import sys
import threading
import weakref
from typing import Any

from ....clock import perf_ns
from ...patching import original
from .state import _TIMEOUT_MAX, C_CORE, LockState

_getframe = sys._getframe


def _valid(blocking, timeout) -> bool:
    """Arguments the fast path may handle (timeout == -1 is checked first by the
    callers); anything else goes to the real lock untouched, so it raises exactly what
    the original raises."""
    return bool(blocking) and type(timeout) in (int, float) and 0 <= timeout <= _TIMEOUT_MAX


class _PyCore:
    """The layout of a traced lock when the C core (`_fasthooks.LockCore`) is not built;
    its methods are then the Python ones of `_PyLockMethods` / `_PyRLockMethods`."""

    __slots__ = ("_lock", "name", "_st", "_hub", "_depth", "_reentrant", "__weakref__")

    def __init__(self, lock, name: str, st: LockState, hub=None, reentrant: bool = False):
        self._lock = lock
        self.name = name
        self._st = st
        self._hub = hub
        self._depth = 0  # reentrant: acquisitions by the owner; only the owner changes it
        self._reentrant = reentrant


# an extension built from older sources has no LockCore: the Python methods then serve
_Core: Any = C_CORE or _PyCore


class _Traced(_Core):
    """What traced Lock and RLock share: they delegate to a real lock. The hot methods
    (acquire, release, `with`) come from the C core when the recording has a LockHub,
    else from the Python mixins below: same events, same behaviour."""

    __slots__ = ()

    def _wait(self, timeout, f) -> bool:
        """The lock is taken by someone else: wait for it, recorded."""
        lock = self._lock
        st = self._st
        try:
            b, actor, loc, before = st.context(f)
        except Exception as e:
            st.rec.fault("locks:wait", e)
            ok = lock.acquire(True, timeout)
            if ok:
                self._got(None, None, 0, None, ())
            return ok
        st.waiting(b, self.name, actor, loc, before)
        t0 = perf_ns()
        ok = lock.acquire(True, timeout)
        waited = perf_ns() - t0
        if ok:
            self._got(b, actor, waited, loc, before)
        else:
            st.timed_out(b, self.name, actor, waited, loc, before, timeout)
        return ok

    def _at_fork_reinit(self):
        self._lock._at_fork_reinit()
        self._st.owners.get(self.name, []).clear()
        self._depth = 0

    def __getattr__(self, attr):
        if attr == "_lock":
            raise AttributeError(attr)
        return getattr(self._lock, attr)

    def __repr__(self):
        return repr(self._lock)

    def __reduce_ex__(self, protocol):
        return self._lock.__reduce_ex__(protocol)


class TracedLock(_Traced):
    """A `threading.Lock` that records what happens to it; behaves as the lock it wraps."""

    __slots__ = ()

    def _got(self, b, actor, waited, loc, before) -> None:
        if b is not None:
            self._st.took(b, self.name, actor, waited, loc, before)

    def locked(self):
        return self._lock.locked()

    def acquire_lock(self, blocking=True, timeout=-1):
        return self.acquire(blocking, timeout)

    def release_lock(self):
        return self.release()

    locked_lock = locked


class TracedRLock(_Traced):
    """A reentrant lock: only the outermost acquire / release are events."""

    __slots__ = ()

    def _got(self, b, actor, waited, loc, before) -> None:
        self._depth += 1
        if self._depth == 1 and b is not None:
            self._st.took(b, self.name, actor, waited, loc, before)

    def _is_owned(self):
        return self._lock._is_owned()

    def _release_save(self):
        lock = self._lock
        if self._st.rec.running and self._depth > 0 and lock._is_owned():
            self._depth = 0
            self._st.dropped(self._st.dropping(self.name, _getframe(1)))
        return lock._release_save()

    def _acquire_restore(self, state):
        st = self._st
        if not st.rec.running:
            return self._lock._acquire_restore(state)
        try:
            b, actor, loc, before = st.context(_getframe(1))
        except Exception as e:
            st.rec.fault("locks:wait", e)
            self._lock._acquire_restore(state)
            self._depth = state[0]
            return
        t0 = perf_ns()
        self._lock._acquire_restore(state)
        self._depth = state[0]
        st.took(b, self.name, actor, perf_ns() - t0, loc, before)


class _PyLockMethods:
    """TracedLock's hot methods in Python (no C core, sampling, SCOPE_NB_PURE)."""

    __slots__ = ()

    def acquire(self, blocking=True, timeout=-1):
        lock = self._lock
        st = self._st
        if not st.rec.running or (timeout != -1 and not _valid(blocking, timeout)):
            return lock.acquire(blocking, timeout)
        if lock.acquire(False):
            st.took_at(self.name, _getframe(1), tried=not blocking)
            return True
        if not blocking:
            return False
        return self._wait(timeout, _getframe(1))

    def release(self):
        if self._st.rec.running and self._lock.locked():
            left = self._st.dropping(self.name, _getframe(1))
            try:
                self._lock.release()
            finally:
                self._st.dropped(left)
        else:
            self._lock.release()

    def __exit__(self, *exc):
        self.release()  # its location skips this file: the `with` statement's line

    __enter__ = acquire  # `with lock:` returns what acquire() returns (True)


class _PyRLockMethods:
    """TracedRLock's hot methods in Python (no C core, sampling, SCOPE_NB_PURE)."""

    __slots__ = ()

    def acquire(self, blocking=True, timeout=-1):
        lock = self._lock
        st = self._st
        if not st.rec.running or (timeout != -1 and not _valid(blocking, timeout)):
            return lock.acquire(blocking, timeout)
        if lock.acquire(False):
            self._depth += 1
            if self._depth == 1:
                st.took_at(self.name, _getframe(1), tried=not blocking)
            return True
        if not blocking:
            return False
        return self._wait(timeout, _getframe(1))

    def release(self):
        lock = self._lock
        if self._st.rec.running and self._depth > 0 and lock._is_owned():
            self._depth -= 1
            if self._depth == 0:
                left = self._st.dropping(self.name, _getframe(1))
                try:
                    lock.release()
                finally:
                    self._st.dropped(left)
                return
        lock.release()

    def __exit__(self, *exc):
        self.release()  # its location skips this file: the `with` statement's line

    __enter__ = acquire


class PyTracedLock(_PyLockMethods, TracedLock):
    __slots__ = ()


class PyTracedRLock(_PyRLockMethods, TracedRLock):
    __slots__ = ()


def _refusal(real_type) -> str | None:
    """The TypeError text the interpreter gives for `real_type()`, or None when the
    interpreter's type can be called (`_thread.RLock`; `_thread.lock` from 3.13 on)."""
    try:
        real_type()
    except TypeError as e:
        return str(e)
    return None


def _disguise(traced: type, real_type: type) -> None:
    """Make a traced lock type answer where programs look at a lock's type as the
    interpreter's does: its module, name and qualified name (trio asserts that its
    lock's class lives in `_thread`), and `type(lock)()`: refused with the
    interpreter's TypeError where the interpreter refuses it, else a new real lock,
    as calling the interpreter's type gives. Instances made by the recorder (with their
    delegate and state) are built as usual."""
    refusal = _refusal(real_type)
    base_new = _Core.__new__

    def __new__(cls, *args, **kwargs):
        if len(args) >= 5 and type(args[2]) is LockState:
            return base_new(cls)
        if refusal is not None:
            raise TypeError(refusal)
        return real_type(*args, **kwargs)

    traced.__new__ = __new__
    traced.__module__ = real_type.__module__
    traced.__name__ = real_type.__name__
    traced.__qualname__ = real_type.__qualname__


def _disguise_all() -> None:
    lock_type, rlock_type = (
        type(original(threading, "Lock")()),
        type(original(threading, "RLock")()),
    )
    for traced in (TracedLock, PyTracedLock):
        _disguise(traced, lock_type)
    for traced in (TracedRLock, PyTracedRLock):
        _disguise(traced, rlock_type)


_disguise_all()


class _Factory:
    """Stands in for `threading.Lock` / `threading.RLock` while recording: calls make a
    traced lock when user code calls; everything else is the original's."""

    def __init__(self, original, make, traced_type):
        self._original = original
        self._make = make
        self._traced = traced_type
        for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
            if hasattr(original, attr):
                setattr(self, attr, getattr(original, attr))

    def __call__(self, *args, **kwargs):
        return self._make(sys._getframe(1), args, kwargs)

    def __instancecheck__(self, obj):
        return isinstance(obj, self._original) or (
            isinstance(self._original, type) and isinstance(obj, self._traced)
        )

    def __subclasscheck__(self, cls):
        return issubclass(cls, self._original)

    def __getattr__(self, attr):
        return getattr(self._original, attr)

    def __mro_entries__(self, bases):
        return (self._original,)  # subclassing fails (or not) as it does for the original

    def __or__(self, other):
        return self._original | other

    def __ror__(self, other):
        return other | self._original

    def __repr__(self):
        return repr(self._original)


def _lock_types():
    orig_lock = original(threading, "Lock")
    orig_rlock = original(threading, "RLock")
    return type(orig_lock()), type(orig_rlock()), orig_lock, orig_rlock


def wrap(st: LockState, lock, name: str, reentrant: bool):
    """A traced Lock (or RLock, `reentrant`) delegating to the real `lock`."""
    if st.hub is None:
        return (PyTracedRLock if reentrant else PyTracedLock)(lock, name, st, None, reentrant)
    # the core and the Python paths share the lock's list of owners
    core = (TracedRLock if reentrant else TracedLock)(
        lock, name, st, st.hub, reentrant, st.owners.setdefault(name, [])
    )
    st.cores[name] = weakref.ref(core)
    return core
