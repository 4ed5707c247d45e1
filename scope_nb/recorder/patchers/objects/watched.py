"""Which instances of the hooked classes (own_classes.py) are watched, and the accesses
recorded for them.

Apart from own_classes.py, which chooses the classes and puts the hooks on them, because
this is what the hooks call on every access: the instance's name at its first write,
the cap per class, and the event of each read, write or key-level access.

Which accesses: only those made by the program's own code (a frame of its files), to
an attribute the instance holds (its `__dict__` or a slot), of an instance of exactly
the hooked class (an instance traced with `trace_object` is left to it). An instance
is watched from its first such write (usually in `__init__`), named `<Class>-<n>`; at
most `MAX_PER_CLASS` instances per class are watched in one recording, so a class with
many instances costs the hook call on each access but records the first ones only.
An instance is followed through a weak reference, so its lifetime is the program's:
an instance that takes no weak references (`__slots__` without `__weakref__`) is not
watched. The dicts, sets and lists an instance holds are watched key by key once the
program reads the attribute (`self.d[k] += 1`, `self.seen.add(x)`; see items.py: a
container nothing else refers to becomes a substitute at that first read, put back
plain at stop). Not watched: class attributes (`Cls.n += 1`), instances of a class
defined before recording in a function body or a module that is not imported.

A part of OwnClasses (its attributes: `rec`, `table`, `counts`, `names`, `reads`,
`writes`, `lock`)."""

from __future__ import annotations

import sys
import weakref
from typing import Any

from ....values import ATOMIC, REDACTED
from .events import _K_READ, _push, _text

MAX_PER_CLASS = 100  # instances watched per class and recording

_getframe = sys._getframe
_type_name = type.__dict__["__name__"].__get__
_obj_get = object.__getattribute__


class WatchedInstances:
    """OwnClasses' watched instances and their accesses."""

    def watch(self, obj: Any, cls: type) -> tuple | None:
        """Start watching `obj` at its first write, if its class is under the cap."""
        rec = self.rec
        if not rec.running or not rec.is_user_code(_getframe(2).f_code):
            return None
        with self.lock:
            n = self.counts.get(cls, 0)
            if n >= MAX_PER_CLASS:
                return None
            try:
                key = id(obj)
                ref = weakref.ref(obj, lambda _r, table=self.table, key=key: table.pop(key, None))
            except TypeError:
                return None  # takes no weak references: watching it would keep it alive
            self.counts[cls] = n + 1
            base = _type_name(cls)
            i = self.names.get(base, 0)
            while True:
                i += 1
                name = f"{base}-{i}"
                if name not in rec.objects:
                    break
            self.names[base] = i
            entry = self.table[key] = (name, ref, _Holder(self, name))
            return entry

    def access(self, code: int, obj: Any, entry: tuple, attr: str, value: Any, slots) -> None:
        """One read or write by the program's code (3 frames up: here, the hook, it)."""
        rec = self.rec
        try:
            if not rec.running:
                return
            f = _getframe(2)
            if not rec.is_user_code(f.f_code):
                return
            if slots is None or not _holds(obj, attr, slots):
                if value is not _DELETED:
                    return  # a method, a property, a class attribute: not the instance's state
            self._push(code, f, attr, self.shown(attr, value), entry[0])
        except Exception as e:
            rec.fault("races:access", e)

    def item(self, code: int, name: str, target: str, detail: str) -> None:
        """A key-level access (items.py) of a container instance `name` holds, recorded
        when the program's own code made it (4 frames up: here, the holder, the
        container's hook, its method)."""
        rec = self.rec
        if not rec.running or not (self.reads if code == _K_READ else self.writes):
            return
        f = _getframe(4)
        if not rec.is_user_code(f.f_code):
            return
        self._push(code, f, target, detail, name)

    def _push(self, code: int, f, target: str, detail: str, name: str) -> None:
        """The access event (`code`) of `target` of the instance `name`, made by the
        program's frame `f`, in the running actor's buffer with the locks it holds."""
        rec = self.rec
        try:
            b = rec.local.b
        except AttributeError:
            b = rec.buffer()
        if not b.on:
            return
        actor = rec.current_actor(b) if b.loopy else b.actor
        st = rec.parts.locks
        h = st.held.get(actor) if st is not None else None
        loc = f"{f.f_code.co_filename}:{f.f_lineno}"
        ev = (actor, target, detail, None, name, loc, None, None, None, tuple(h) if h else (), None)
        _push(rec, b, code, ev)

    def shown(self, attr: str, value: Any) -> str:
        if value is _DELETED:
            return "<deleted>"
        fmt = self.rec.fmt
        if fmt.is_secret(attr):
            return REDACTED
        t = type(value)
        if t in ATOMIC:
            return _text(fmt, fmt.max_len, value, t)
        return f"<{_type_name(t)}>"


_DELETED = object()


class _Holder:
    """The owner of the container substitutes one watched instance holds (items.py)."""

    __slots__ = ("own", "rec", "name", "items", "live")

    def __init__(self, own: WatchedInstances, name: str):
        self.own, self.rec, self.name = own, own.rec, name
        self.items: dict[str, Any] = {}  # attr -> its substitute
        self.live = True

    def is_secret(self, attr: str) -> bool:
        return self.rec.fmt.is_secret(attr)

    def item(self, code: int, target: str, detail: str) -> None:
        self.own.item(code, self.name, target, detail)


def _holds(obj: Any, attr: str, slots: frozenset[str]) -> bool:
    """`attr` is part of obj's own state (its __dict__ or a slot), read without its code."""
    try:
        d = _obj_get(obj, "__dict__")
    except AttributeError:
        return attr in slots
    return attr in d or attr in slots
