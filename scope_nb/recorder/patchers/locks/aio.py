"""asyncio's lock classes, traced: `Lock`, `Semaphore` / `BoundedSemaphore`,
`Condition` (its own lock, made inside asyncio, is named after the Condition) and
`Event`. Patched at class level like the threading classes (stdlib.py), tracing only
the instances user code made."""

from __future__ import annotations

import asyncio
import asyncio.locks
import sys

from ....clock import perf_ns
from .naming import creator, where
from .state import LockState
from .stdlib import registering_init, semaphore_init

_getframe = sys._getframe


def _async_acquire(st: LockState, orig_acquire, semaphore: bool):
    """asyncio.Lock / Semaphore.acquire, traced: a wait when it will wait (given up
    when the waiting task is cancelled), then the acquisition."""

    async def acquire(self):
        name = st.instances.lookup(self)
        if name is None:
            return await orig_acquire(self)
        b, actor, loc, before = st.context(_getframe())
        waits = self.locked() if semaphore else self._locked or bool(self._waiters)
        if waits:
            st.waiting(b, name, actor, loc, before)
        t0 = perf_ns()
        try:
            r = await orig_acquire(self)
        except BaseException:
            if waits:
                st.timed_out(b, name, actor, perf_ns() - t0, loc, before)
            raise
        st.took(
            b,
            name,
            actor,
            perf_ns() - t0 if waits else 0,
            loc,
            before,
            st.initial.get(name) if semaphore else None,
        )
        return r

    return acquire


def asyncio_patches(st: LockState):
    lock_cls = asyncio.locks.Lock
    orig_acquire = lock_cls.acquire
    orig_release = lock_cls.release
    sem_cls = asyncio.locks.Semaphore
    orig_sem_acquire = sem_cls.acquire
    orig_sem_release = sem_cls.release
    ev_cls = asyncio.locks.Event
    orig_set = ev_cls.set
    orig_wait = ev_cls.wait
    cond_cls = asyncio.locks.Condition
    orig_cond_init = cond_cls.__init__
    acquire = _async_acquire(st, orig_acquire, False)
    sem_acquire = _async_acquire(st, orig_sem_acquire, True)
    sem_init = semaphore_init(st, sem_cls, "AsyncSemaphore")

    def release(self):
        name = st.instances.lookup(self)
        if name is not None and self._locked:
            st.dropped(st.dropping(name, _getframe(1)))
        return orig_release(self)

    def sem_release(self):
        # BoundedSemaphore.release raises before calling this when it would overflow
        name = st.instances.lookup(self)
        if name is not None:
            st.dropped(st.dropping(name, _getframe(1), True))
        return orig_sem_release(self)

    def cond_init(self, lock=None):
        # its own lock is made inside asyncio: named after the Condition instead
        if lock is None and st.rec.running:
            frame = creator(sys._getframe(1), self)
            if st.user_frame(frame):
                lock = asyncio.Lock()
                st.instances.register(lock, st.name_for(frame, "AsyncCondition"))
        orig_cond_init(self, lock)

    def set(self):  # noqa: A001 - the method's name
        name = st.instances.lookup(self)
        if name is not None:
            st.rec.emit("event_set", name, location=where())
        return orig_set(self)

    async def wait(self):
        name = st.instances.lookup(self)
        if name is None:
            return await orig_wait(self)
        t0 = perf_ns()
        r = await orig_wait(self)
        st.rec.emit("event_wait", name, r, duration_ns=perf_ns() - t0, location=where())
        return r

    for f, o in (
        (acquire, orig_acquire),
        (release, orig_release),
        (set, orig_set),
        (wait, orig_wait),
        (sem_acquire, orig_sem_acquire),
        (sem_release, orig_sem_release),
        (cond_init, orig_cond_init),
    ):
        f.__wrapped__ = o
        f.__qualname__ = o.__qualname__
    return [
        (lock_cls, "__init__", registering_init(st, lock_cls, "AsyncLock")),
        (lock_cls, "acquire", acquire),
        (lock_cls, "release", release),
        (sem_cls, "__init__", sem_init),
        (sem_cls, "acquire", sem_acquire),
        (sem_cls, "release", sem_release),
        (cond_cls, "__init__", cond_init),
        (ev_cls, "__init__", registering_init(st, ev_cls, "AsyncEvent")),
        (ev_cls, "set", set),
        (ev_cls, "wait", wait),
    ]
