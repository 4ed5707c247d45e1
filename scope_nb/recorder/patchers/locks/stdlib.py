"""The standard library's Python lock classes, traced: `Condition`, `Semaphore`,
`BoundedSemaphore`, `Event` (and through them `Barrier`, built on a Condition). They
are patched at class level, method by method, and trace only instances registered
when user code made them, which keeps `isinstance`, `type()` and subclassing exactly
as they were; the stdlib's own instances (a Thread's Event) stay untouched."""

from __future__ import annotations

import sys
import threading

from ....clock import perf_ns
from .naming import creator, where
from .state import LockState
from .traced import wrap

_getframe = sys._getframe


def registering_init(st: LockState, cls, kind: str):
    """A constructor that registers instances created by user code."""
    orig_init = cls.__init__

    def __init__(self, *args, **kwargs):
        orig_init(self, *args, **kwargs)
        if st.rec.running:
            frame = creator(sys._getframe(1), self)
            if st.user_frame(frame):
                st.instances.register(self, st.name_for(frame, kind))

    __init__.__wrapped__ = orig_init
    return __init__


def condition_patches(st: LockState, orig_rlock):
    cls = threading.Condition
    orig_init = cls.__init__

    def __init__(self, lock=None):
        if lock is None and st.rec.running:
            frame = creator(sys._getframe(1), self)
            if st.user_frame(frame):
                lock = wrap(st, orig_rlock(), st.name_for(frame, "Condition"), True)
        orig_init(self, lock)

    __init__.__wrapped__ = orig_init
    return [(cls, "__init__", __init__)]


def semaphore_init(st: LockState, cls, kind: str):
    """A semaphore class's constructor that registers instances made by user code and
    keeps their initial value (their acquires' detail)."""
    init = registering_init(st, cls, kind)

    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        name = st.instances.lookup(self)
        if name is not None:
            st.initial[name] = str(self._value)

    __init__.__wrapped__ = init.__wrapped__
    return __init__


def semaphore_patches(st: LockState):
    cls = threading.Semaphore
    orig_acquire = cls.acquire
    orig_release = cls.release
    orig_brelease = threading.BoundedSemaphore.release
    __init__ = semaphore_init(st, cls, "Semaphore")

    def acquire(self, blocking=True, timeout=None):
        name = st.instances.lookup(self)
        if name is None or (not blocking and timeout is not None):
            return orig_acquire(self, blocking, timeout)
        value = st.initial.get(name)
        if orig_acquire(self, False):
            st.took_at(name, _getframe(1), value, tried=not blocking)
            return True
        if not blocking:
            return False
        b, actor, loc, before = st.context(_getframe(1))
        st.waiting(b, name, actor, loc, before)
        t0 = perf_ns()
        ok = orig_acquire(self, True, timeout)
        if ok:
            st.took(b, name, actor, perf_ns() - t0, loc, before, value)
        else:
            st.timed_out(b, name, actor, perf_ns() - t0, loc, before, timeout)
        return ok

    def _drops(self, n):
        name = st.instances.lookup(self)
        if name is not None and type(n) is int and n >= 1:
            f = _getframe(1)
            for _ in range(n):
                st.dropped(st.dropping(name, f, True))

    def release(self, n=1):
        _drops(self, n)
        return orig_release(self, n)

    def brelease(self, n=1):
        if type(n) is int and self._value + n <= self._initial_value:
            _drops(self, n)
        return orig_brelease(self, n)

    acquire.__wrapped__ = orig_acquire
    release.__wrapped__ = orig_release
    brelease.__wrapped__ = orig_brelease
    return [
        (cls, "__init__", __init__),
        (cls, "acquire", acquire),
        (cls, "__enter__", acquire),
        (cls, "release", release),
        (threading.BoundedSemaphore, "release", brelease),
    ]


def event_patches(st: LockState):
    cls = threading.Event
    orig_set = cls.set
    orig_wait = cls.wait

    def set(self):  # noqa: A001 - the method's name
        name = st.instances.lookup(self)
        if name is not None:
            st.rec.emit("event_set", name, location=where())
        return orig_set(self)

    def wait(self, timeout=None):
        name = st.instances.lookup(self)
        if name is None:
            return orig_wait(self, timeout)
        t0 = perf_ns()
        r = orig_wait(self, timeout)
        st.rec.emit("event_wait", name, r, duration_ns=perf_ns() - t0, location=where())
        return r

    set.__wrapped__ = orig_set
    wait.__wrapped__ = orig_wait
    return [
        (cls, "__init__", registering_init(st, cls, "Event")),
        (cls, "set", set),
        (cls, "wait", wait),
    ]
