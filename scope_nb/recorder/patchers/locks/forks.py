"""What a fork inherits: at each `os.fork()` the traced locks other threads hold then.

A forked child has only the forking thread, yet it has every lock in the state the
parent's threads left it: a Lock or RLock another thread held at that instant stays
locked in the child with nobody there to release it, so the child's first acquire
waits forever (CPython bpo-6721, a logging handler's lock). The `fork` event says, in
the forking thread just before the fork (`os.register_at_fork`'s `before`, after the
before-hooks registered since scope_nb was imported: they run newest first), which
owned locks were held by other threads, by whom and where they took them. Semaphores
and Events are signals, not held (their names are the in-place instances'), a logging
handler's lock is re-initialised in the child by logging itself, and the recorder's own
locks are never traced. It runs only at a fork, reads the recorder's bookkeeping, and
never the program's code. The event's module and function are the code that called
`os.fork()` (multiprocessing's `popen_fork` for a Process started with the fork
method), its location the program's own line that led there."""

from __future__ import annotations

import json
import sys

from ...sites import location_text
from .naming import user_caller
from .state import LockState
from .traced import _Traced


def at_fork(st: LockState) -> None:
    """Record the `fork` event of the fork the current thread is about to make."""
    rec = st.rec
    if not rec.running or "fork" not in rec.kinds:
        return
    b, actor = st.actor()
    forker = {actor, b.actor}  # the running task, if any, and its thread
    # signals, and the handler locks logging re-initialises in the child itself
    skip = {name for _, name in list(st.instances.registry.values())} | _reinitialised()
    rows = rec.actors.rows
    held = []
    for holder, names in list(st.held.items()):
        if holder in forker or _thread_of(rows, holder) == b.actor:
            continue
        for name in list(names):
            if name in skip:
                continue
            held.append(
                {
                    "lock": name,
                    "actor": holder,
                    "location": location_text(st._taken(holder, name)),
                }
            )
    caller = user_caller(sys._getframe(1))  # what called os.fork()
    f = caller
    while f is not None and not rec.is_user_code(f.f_code):
        f = f.f_back  # the program's own line that led to it (`p.start()`)
    f = f or caller
    rec.emit(
        "fork",
        detail=json.dumps({"held": held}),
        actor=actor,
        location=(f.f_code, f.f_lasti) if f is not None else None,
        module=caller.f_globals.get("__name__") if caller is not None else None,
        function=caller.f_code.co_qualname if caller is not None else None,
        locks_held=st.held_now(actor),
        raw=True,
    )


def _reinitialised() -> set[str]:
    """The traced locks of the logging handlers that logging's own after-fork hook
    re-initialises in the child (since 3.9: every Handler whose `createLock` ran), read
    from the handlers' instance dicts: in the child those locks start free."""
    handlers = getattr(sys.modules.get("logging"), "_at_fork_reinit_lock_weakset", None)
    names = set()
    for ref in list(getattr(handlers, "data", ())):
        handler = ref()
        if handler is None:
            continue
        try:
            lock = object.__getattribute__(handler, "__dict__").get("lock")
        except AttributeError:  # a handler class without instance dicts
            continue
        if isinstance(lock, _Traced):
            names.add(lock.name)
    return names


def _thread_of(rows: dict, actor: str) -> str | None:
    """The thread an asyncio task runs in (its parents up to the first thread: a task
    is made in its loop's thread); a thread is its own."""
    for _ in range(len(rows) + 1):
        row = rows.get(actor)
        if row is None or row["kind"] != "task":
            return actor if row is not None and row["kind"] == "thread" else None
        actor = row["parent"]
    return None
