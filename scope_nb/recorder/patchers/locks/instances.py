"""The instances of the lock classes patched in place (asyncio's Lock, Condition,
Semaphore...): their names by identity, for as long as each lives, so a patched method
called on one knows which lock it is."""

from __future__ import annotations

import weakref


class Instances:
    """id(instance) -> (a weak reference to it, its name)."""

    def __init__(self, rec):
        self.rec = rec
        self.registry: dict[int, tuple[weakref.ref, str]] = {}

    def register(self, obj, name: str) -> None:
        key = id(obj)
        reg = self.registry

        def gone(ref, key=key):
            if reg.get(key, (None,))[0] is ref:
                reg.pop(key, None)

        reg[key] = (weakref.ref(obj, gone), name)

    def lookup(self, obj) -> str | None:
        e = self.registry.get(id(obj))
        if e is not None and e[0]() is obj and self.rec.running:
            return e[1]
        return None
