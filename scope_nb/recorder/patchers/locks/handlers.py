"""The lock a `logging.Handler` makes for itself (`Handler.createLock`, called by its
constructor): made inside the standard library, it would stay untraced, yet every
`log.info()` through the handler takes it, so a program that logs while holding its
own locks (or takes them in a handler's `emit`, a `__str__` it formats) orders them
against it. It is traced when the handler is made by the program's code, as a lock the
program made itself is."""

from __future__ import annotations

import logging
import sys

from .naming import creator
from .state import LockState
from .traced import wrap

_getframe = sys._getframe


def handler_patches(st: LockState, rlock_type: type):
    """`logging.Handler.createLock`, tracing the RLock it made when the handler's maker
    (up through the constructors' chain) is the program's code. A handler class with
    its own `createLock` (or its own kind of lock) keeps it untouched."""
    cls = logging.Handler
    orig_create = cls.createLock

    def createLock(self):  # noqa: N802 - the method's name
        orig_create(self)
        if not st.rec.running:
            return
        try:
            frame = creator(_getframe(1), self)
            # past any __getattribute__ / __setattr__ of the program's handler class
            lock = object.__getattribute__(self, "lock")
            if type(lock) is rlock_type and st.user_frame(frame):
                traced = wrap(
                    st, lock, st.names.name_of_part(frame, type(self).__name__, "lock"), True
                )
                object.__setattr__(self, "lock", traced)
        except Exception as e:
            st.rec.fault("locks:handler", e)

    createLock.__wrapped__ = orig_create
    for attr in ("__doc__", "__qualname__", "__module__"):
        setattr(createLock, attr, getattr(orig_create, attr))
    return [(cls, "createLock", createLock)]
