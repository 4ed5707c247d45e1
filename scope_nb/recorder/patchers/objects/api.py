"""`trace_object` and `@traced`: tracing an object, naming it (after its variable, or
a counted class name), renaming it."""

from __future__ import annotations

import _thread
import functools
import sys
import types
from typing import Any

from ....values import SAFE
from ... import session
from ...naming import var_name
from ...sites import is_recorder_module
from ..locks import adopt as adopt_lock
from .events import _busy, _get_ident, _where
from .hooks import _CLASS_SET, _HEAPTYPE, _make_subclass
from .items import substitute as substitute_items
from .traced import Objects, Traced


def check_arguments(obj: Any, name: Any) -> None:
    """The TypeError / ValueError for what trace_object can never accept, whether
    recording or not."""
    if name is not None and not isinstance(name, str):
        raise TypeError(f"trace_object: name must be a str or None, got {type(name).__name__}")
    if name == "":
        raise ValueError(
            "trace_object: name must not be empty; pass a name, or None for the variable's name"
        )
    if isinstance(
        obj,
        type | types.ModuleType | types.FunctionType | types.BuiltinFunctionType | types.MethodType,
    ):
        raise TypeError(
            f"trace_object traces instances of Python classes; got the {type(obj).__name__} "
            f"{SAFE.repr(obj)}; accepted: an instance of a class defined in Python "
            "(for a module use trace_module)"
        )


def trace_object(rec, obj: Any, name: str | None = None) -> Any:
    """Trace `obj` (an instance of a Python class): method calls, reads, writes and its
    state after every change. Returns obj. With no recording (`rec` None) or object
    tracing off in it (tracing_level='off', patch=False) it records nothing. An object
    already traced under another name is renamed: its whole history takes the new name."""
    check_arguments(obj, name)
    objs = rec.parts.objects if rec is not None else None
    if objs is None:
        return obj
    cls = type(obj)
    known = objs.table.get(id(obj))
    if known is not None:
        if name is not None and name != known.name:
            _rename(objs, known, name)
        return obj
    if _is_lock(cls):
        raise TypeError(
            f"trace_object: a {cls.__module__}.{cls.__qualname__} is a lock; use trace_lock; "
            "accepted: instances of the program's classes"
        )
    if is_recorder_module(cls.__module__):
        raise TypeError(
            f"trace_object: {cls.__qualname__} is part of scope_nb, which does not trace itself; "
            "accepted: instances of the program's classes (a lock: use trace_lock)"
        )
    if not cls.__flags__ & _HEAPTYPE:
        raise TypeError(
            f"trace_object: {cls.__qualname__} is implemented in C and cannot be traced; "
            "accepted: instances of classes defined in Python (with or without __slots__)"
        )
    if name is None:
        name = _default_name(objs, cls)
    elif name in rec.objects and rec.objects[name] is not obj:
        raise ValueError(
            f"trace_object: name {name!r} is already used by another traced object; pass another "
            "name"
        )
    sub = objs.subclasses.get(cls)
    if sub is None:
        sub = objs.subclasses[cls] = _make_subclass(objs, cls)
    t = Traced(objs, obj, cls, sub, name)
    objs.table[id(obj)] = t
    try:
        _CLASS_SET(obj, sub)
    except TypeError as e:
        del objs.table[id(obj)]
        raise TypeError(
            f"trace_object: cannot trace this {cls.__qualname__} object ({e}); accepted: instances "
            "of classes defined in Python (with or without __slots__)"
        ) from None
    rec.objects[name] = obj
    try:
        substitute_items(t)
    except Exception as e:
        rec.fault("objects:items", e)
    locks = rec.parts.locks
    if locks is not None:
        for attr, value in t.read_state().items():
            if _inspectable(type(value)):
                adopt_lock(locks, value, f"{name}.{attr}")
    ident = _get_ident()
    _busy.add(ident)
    try:
        if objs.states:
            t.commit("trace_object", rec.current_actor(), _where(), keyframe=True)
    except Exception as e:
        rec.fault("objects:trace", e)
    finally:
        _busy.discard(ident)
    return obj


def _inspectable(t: type) -> bool:
    """isinstance() of an instance of t runs none of the program's code: isinstance
    reads `obj.__class__` when the type alone does not answer, so a class of the
    program that defines __class__, __getattribute__ or __getattr__ is left alone."""
    for klass in type.__dict__["__mro__"].__get__(t)[:-1]:
        d = type.__dict__["__dict__"].__get__(klass)
        if (
            "__class__" in d or "__getattribute__" in d or "__getattr__" in d
        ) and not is_recorder_module(type.__dict__["__module__"].__get__(klass)):
            return False
    return True


def _rename(objs: Objects, t: Traced, name: str) -> None:
    """Give traced object `t` the name `name`, for the states recorded so far too (the
    events frame maps the old name through `renamed_objects`)."""
    rec = objs.rec
    if name in rec.objects and rec.objects[name] is not t.obj:
        raise ValueError(
            f"trace_object: name {name!r} is already used by another traced object; pass another "
            "name"
        )
    old = t.name
    with t.lock:
        t.name = name
        rows = objs.rows
        for i in range(len(rows)):
            if rows[i][0] == old:
                rows[i] = (name, *rows[i][1:])
    rec.objects.pop(old, None)
    rec.objects[name] = t.obj
    for k, v in objs.renamed.items():
        if v == old:
            objs.renamed[k] = name
    objs.renamed[old] = name
    objs.renamed.pop(name, None)


def renamed_objects(rec) -> dict[str, str]:
    """Old name -> current name of the traced objects renamed while recording."""
    objs = rec.parts.objects
    return dict(objs.renamed) if objs is not None else {}


def _default_name(objs: Objects, cls: type) -> str:
    f = sys._getframe(2)
    while f is not None and is_recorder_module(f.f_globals.get("__name__", "")):
        f = f.f_back
    base = None
    if f is not None:
        try:
            base = var_name(f, objs.name_cache)
        except Exception:
            base = None
    rec = objs.rec
    if base is not None and base not in rec.objects:
        return base
    base = base or cls.__name__
    n = objs.counters.get(base, 0)
    while True:
        n += 1
        candidate = f"{base}-{n}"
        if candidate not in rec.objects:
            objs.counters[base] = n
            return candidate


def traced(cls: type | None = None):
    """Class decorator: instances created while recording are traced (named
    "<Class>-<n>"), as if passed to trace_object right after __init__."""

    def decorate(klass: type) -> type:
        if not isinstance(klass, type):
            raise TypeError(f"traced decorates a class, got {type(klass).__name__}")
        if not klass.__flags__ & _HEAPTYPE or is_recorder_module(klass.__module__):
            raise TypeError(
                f"traced: {klass.__qualname__} cannot be traced; accepted: a class of the program "
                "defined in Python"
            )
        orig_init = klass.__init__

        @functools.wraps(orig_init)
        def __init__(self, *args, **kwargs):
            if orig_init is object.__init__ and _plain_init(type(self)):
                # without this __init__, object.__new__ refused arguments unless __new__ takes them
                if (args or kwargs) and type(self).__new__ is object.__new__:
                    raise TypeError(f"{type(self).__name__}() takes no arguments")
            else:
                orig_init(self, *args, **kwargs)
            rec = session.ACTIVE
            if (
                rec is not None
                and rec.running
                and rec.parts.objects is not None
                and id(self) not in rec.parts.objects.table
            ):
                try:
                    trace_object(rec, self, _counted_name(rec, type(self).__name__))
                except Exception as e:
                    rec.fault("objects:traced", e)

        __init__._scope_traced = True
        klass.__init__ = __init__
        return klass

    return decorate(cls) if cls is not None else decorate


def _plain_init(cls: type) -> bool:
    """cls's __init__ is object's once the wrappers of `traced` are taken away."""
    init = cls.__init__
    while getattr(init, "_scope_traced", False):
        init = init.__wrapped__
    return init is object.__init__


def _counted_name(rec, base: str) -> str:
    objs = rec.parts.objects
    n = objs.counters.get(base, 0)
    while True:
        n += 1
        if f"{base}-{n}" not in rec.objects:
            objs.counters[base] = n
            return f"{base}-{n}"


def _is_lock(cls: type) -> bool:
    """A lock, traced or not (a traced lock's type reads as the interpreter's)."""
    from ..locks import TracedLock, TracedRLock

    return issubclass(cls, (TracedLock, TracedRLock)) or cls in _REAL_LOCKS


_REAL_LOCKS = (type(_thread.allocate_lock()), _thread.RLock)
