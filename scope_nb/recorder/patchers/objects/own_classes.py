"""Races out of the box (`races=True`): the attribute reads and writes of instances of
the program's own classes, recorded with no `trace_object` in the code.

Which classes: those defined in the program's files (what `Recorder.is_user_code`
counts as the program: not the stdlib, site-packages or scope_nb) -- every class whose
body runs while recording (the `builtins.__build_class__` hook sees it made) and the
module-level classes of the program's modules already imported when recording starts
(the notebook's `__main__` included). Left alone: classes implemented in C, enums,
exceptions, classes with a metaclass other than `type` / `ABCMeta` (an ORM model, say:
its metaclass gives attributes meanings a hook would misread), scope_nb's own.

How: the class itself gets a `__getattribute__`, `__setattr__` and `__delattr__` that
call what it had and then record, put back at stop. Instances keep their class, so
`type(obj) is Cls` stays true (unlike `trace_object`, which swaps in a subclass). What
this gives up while recording: `Cls.__dict__` shows the three hooks, and attribute
access on every instance of the class pays a Python call. No program code runs in the
hooks: they read the instance's `__dict__` the way `object` does, name types through
`type`'s own descriptors, and show a value that is not a built-in atomic one as
`<Type>` (never its repr).

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
"""

from __future__ import annotations

import _thread
import builtins
import sys
import weakref
from typing import Any

from ....values import ATOMIC, REDACTED
from ...sites import is_recorder_module
from .events import _HEAPTYPE, _K_READ, _K_WRITE, _push, _text
from .items import SUBSTITUTE, adopt, restore

MAX_PER_CLASS = 100  # instances watched per class and recording

_get_ident = _thread.get_ident
_getframe = sys._getframe
_HOOKS = ("__getattribute__", "__setattr__", "__delattr__")
_type_dict = type.__dict__["__dict__"].__get__
_type_mro = type.__dict__["__mro__"].__get__
_type_name = type.__dict__["__name__"].__get__
_type_module = type.__dict__["__module__"].__get__
_type_qualname = type.__dict__["__qualname__"].__get__
_type_set = type.__setattr__
_type_del = type.__delattr__
_obj_get = object.__getattribute__


class OwnClasses:
    """One recording's hooked classes and watched instances."""

    def __init__(self, rec):
        self.rec = rec
        self.hooked: dict[type, dict[str, Any]] = {}  # class -> its own entries the hooks replaced
        self.table: dict[int, tuple] = {}  # id(instance) -> (name, weak ref, _Holder)
        self.counts: dict[type, int] = {}  # instances watched so far, per class
        self.names: dict[str, int] = {}  # class name -> last number given
        self.reads = "read" in rec.kinds
        self.writes = "write" in rec.kinds
        self.orig_build = None
        self.lock = _thread.allocate_lock()

    # -- which classes ------------------------------------------------------------------
    def start(self) -> None:
        self.orig_build = orig = builtins.__build_class__
        own = self

        def __build_class__(func, name, *bases, **kwds):
            cls = orig(func, name, *bases, **kwds)
            try:
                if own.rec.running and own.rec.is_user_code(func.__code__):
                    own.hook(cls)
            except Exception as e:
                own.rec.fault("races:class", e)
            return cls

        builtins.__build_class__ = __build_class__
        self.build = __build_class__
        for module in list(sys.modules.values()):
            try:
                if self.is_own_module(module):
                    for v in list(_obj_get(module, "__dict__").values()):
                        if issubclass(type(v), type) and _type_module(v) == module.__name__:
                            self.hook(v)
            except Exception as e:
                self.rec.fault("races:module", e)

    def is_own_module(self, module: Any) -> bool:
        if type(module) is not type(sys):
            return False
        d = _obj_get(module, "__dict__")
        name = d.get("__name__")
        if not isinstance(name, str) or is_recorder_module(name):
            return False
        path = d.get("__file__")
        if not isinstance(path, str):
            return name == "__main__"  # a notebook's or an interactive session's namespace
        return self.rec.is_user_code(_Where(path))

    def hook(self, cls: type) -> None:
        """Put the recording hooks on `cls` if it is one the recorder can watch."""
        if cls in self.hooked or not _hookable(cls):
            return
        own = _type_dict(cls)
        saved = {n: own[n] for n in _HOOKS if n in own}
        orig_get, orig_set, orig_del = cls.__getattribute__, cls.__setattr__, cls.__delattr__
        slots = _slot_names(cls)
        table, me = self.table, self

        def __getattribute__(self, attr):
            value = orig_get(self, attr)
            if type(self) is cls:
                entry = table.get(id(self))
                if entry is not None and me.reads:
                    me.access(_K_READ, self, entry, attr, value, slots)
                if entry is not None and type(value) in SUBSTITUTE and me.rec.running:
                    ns = _own_ns(self)
                    if ns is not None:
                        return adopt(entry[2], ns, attr, value)
            return value

        def __setattr__(self, attr, value):
            orig_set(self, attr, value)
            if type(self) is cls:
                entry = table.get(id(self))
                if entry is None:
                    entry = me.watch(self, cls)
                if entry is not None and me.writes:
                    me.access(_K_WRITE, self, entry, attr, value, slots)

        def __delattr__(self, attr):
            orig_del(self, attr)
            if type(self) is cls:
                entry = table.get(id(self))
                if entry is not None and me.writes:
                    me.access(_K_WRITE, self, entry, attr, _DELETED, None)

        self.hooked[cls] = saved
        for name, fn in zip(_HOOKS, (__getattribute__, __setattr__, __delattr__), strict=True):
            fn.__qualname__ = f"{_type_qualname(cls)}.{name}"
            _type_set(cls, name, fn)

    def stop(self) -> None:
        """Every class as it was, the build hook out (if nothing replaced it since)."""
        if builtins.__build_class__ is self.build:
            builtins.__build_class__ = self.orig_build
        for cls, saved in self.hooked.items():
            for name in _HOOKS:
                try:
                    if name in saved:
                        _type_set(cls, name, saved[name])
                    else:
                        _type_del(cls, name)
                except Exception as e:
                    self.rec.fault("races:restore", e)
        self.hooked.clear()
        for _name, ref, holder in list(self.table.values()):
            holder.live = False
            obj = ref()
            ns = _own_ns(obj) if obj is not None else None
            try:
                restore(ns if ns is not None else {}, holder.items)
            except Exception as e:
                self.rec.fault("races:items", e)
        self.table.clear()

    # -- which instances ---------------------------------------------------------------
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
            try:
                b = rec.local.b
            except AttributeError:
                b = rec.buffer()
            if not b.on:
                return
            actor = rec.current_actor(b) if b.loopy else b.actor
            st = rec.parts.locks
            h = st.held.get(actor) if st is not None else None
            ev = (
                actor,
                attr,
                self.shown(attr, value),
                None,
                entry[0],
                f"{f.f_code.co_filename}:{f.f_lineno}",
                None,
                None,
                None,
                tuple(h) if h else (),
                None,
            )
            _push(rec, b, code, ev)
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

    def __init__(self, own: OwnClasses, name: str):
        self.own, self.rec, self.name = own, own.rec, name
        self.items: dict[str, Any] = {}  # attr -> its substitute
        self.live = True

    def is_secret(self, attr: str) -> bool:
        return self.rec.fmt.is_secret(attr)

    def item(self, code: int, target: str, detail: str) -> None:
        self.own.item(code, self.name, target, detail)


def _own_ns(obj: Any) -> dict | None:
    try:
        ns = _obj_get(obj, "__dict__")
    except AttributeError:
        return None
    return ns if type(ns) is dict else None


class _Where:
    """What `is_user_code` reads of a code object, for a module's file."""

    __slots__ = ("co_filename",)

    def __init__(self, filename: str):
        self.co_filename = filename


def _hookable(cls: type) -> bool:
    import abc
    import enum

    if not cls.__flags__ & _HEAPTYPE or type(cls) not in (type, abc.ABCMeta):
        return False
    if is_recorder_module(_type_module(cls)):
        return False
    mro = _type_mro(cls)
    return not any(k is enum.Enum or k is BaseException for k in mro)


def _slot_names(cls: type) -> frozenset[str]:
    out = set()
    for klass in _type_mro(cls):
        slots = _type_dict(klass).get("__slots__", ())
        out.update((slots,) if isinstance(slots, str) else slots)
    return frozenset(out)


def _holds(obj: Any, attr: str, slots: frozenset[str]) -> bool:
    """`attr` is part of obj's own state (its __dict__ or a slot), read without its code."""
    try:
        d = _obj_get(obj, "__dict__")
    except AttributeError:
        return attr in slots
    return attr in d or attr in slots


def install(rec) -> None:
    own = rec.parts.races = OwnClasses(rec)
    own.start()


def uninstall(rec) -> None:
    own = rec.parts.races
    if own is not None:
        own.stop()
