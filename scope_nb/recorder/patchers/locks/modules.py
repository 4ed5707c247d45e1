"""The locks of a module named to be traced that was imported before recording: those
the recorder can trace without touching what the program holds. A Semaphore,
BoundedSemaphore or Event (and asyncio's Lock, Event, Semaphore) is a Python object
whose patched methods look it up by identity: registering it changes nothing the
program can see. A `threading.Lock` / `RLock` (and a Condition over one) is a C object
that only a wrapper can trace; putting one in the module's place would change the
object the program holds, so those stay untraced (`trace_lock` says how)."""

from __future__ import annotations

import asyncio
import threading
import types

from .state import LockState

_BY_IDENTITY = (
    threading.Semaphore,
    threading.Event,
    asyncio.Lock,
    asyncio.Event,
    asyncio.Semaphore,
)


def adopt_globals(st: LockState, module: types.ModuleType) -> int:
    """Register the module's global lock objects that can be traced in place, under
    their global's name, as `trace_lock` would; returns how many. Only their types are
    looked at: no attribute of the program's objects is read."""
    n = 0
    try:
        for var, value in list(vars(module).items()):
            if issubclass(type(value), _BY_IDENTITY) and st.instances.lookup(value) is None:
                st.instances.register(value, st.names.name_after(var))
                n += 1
    except Exception as e:
        st.rec.fault("locks:module", e)
    return n
