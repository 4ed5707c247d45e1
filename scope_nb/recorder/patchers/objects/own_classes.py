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

Which instances and which accesses: watched.py.
"""

from __future__ import annotations

import _thread
import builtins
import sys
from typing import Any

from ...sites import is_recorder_module
from .events import _HEAPTYPE, _K_READ, _K_WRITE
from .items import SUBSTITUTE, adopt, restore
from .watched import _DELETED, WatchedInstances
from .watched import MAX_PER_CLASS as MAX_PER_CLASS  # the cap, documented with the feature

_HOOKS = ("__getattribute__", "__setattr__", "__delattr__")
_type_dict = type.__dict__["__dict__"].__get__
_type_mro = type.__dict__["__mro__"].__get__
_type_module = type.__dict__["__module__"].__get__
_type_qualname = type.__dict__["__qualname__"].__get__
_type_set = type.__setattr__
_type_del = type.__delattr__
_obj_get = object.__getattribute__


class OwnClasses(WatchedInstances):
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


def install(rec) -> None:
    own = rec.parts.races = OwnClasses(rec)
    own.start()


def uninstall(rec) -> None:
    own = rec.parts.races
    if own is not None:
        own.stop()
