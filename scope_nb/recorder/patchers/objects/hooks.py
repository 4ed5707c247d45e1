"""The traced subclass: swapped in for the object's class (same name and layout,
`__class__` still answering the original), with `__getattribute__`, `__setattr__`
and `__delattr__` that record reads and writes, and wrapped public methods that
record calls. Also how an object's own state is read without running its code."""

from __future__ import annotations

import functools
import inspect
import types
from typing import Any

from .events import _busy, _get_ident
from .items import SUBSTITUTE, adopt
from .traced import Objects

_HEAPTYPE = 1 << 9
_CLASS_SET = object.__dict__["__class__"].__set__


# -- the traced subclass ---------------------------------------------------------------


def _make_subclass(objs: Objects, cls: type) -> type:
    table = objs.table
    orig_get = cls.__getattribute__
    orig_set = cls.__setattr__
    orig_del = cls.__delattr__
    orig_reduce = cls.__reduce_ex__

    if objs.reads:

        def __getattribute__(self, attr):
            value = orig_get(self, attr)
            t = table.get(id(self))
            if t is not None and attr in t.reprs and t.live and _get_ident() not in _busy:
                t.read(attr, value)
                if type(value) in SUBSTITUTE and t.has_dict:
                    return adopt(t, t.vars(), attr, value)
            return value

    def __setattr__(self, attr, value):
        orig_set(self, attr, value)
        t = table.get(id(self))
        if t is not None and t.live and _get_ident() not in _busy:
            t.wrote(attr, value)

    def __delattr__(self, attr):
        orig_del(self, attr)
        t = table.get(id(self))
        if t is not None and t.live and _get_ident() not in _busy:
            t.deleted(attr)

    def __reduce_ex__(self, protocol):
        r = orig_reduce(self, protocol)
        if isinstance(r, tuple) and len(r) >= 2:
            fn, args = r[0], r[1]
            if fn is sub:
                fn = cls
            if isinstance(args, tuple) and args and args[0] is sub:
                args = (cls, *args[1:])
            r = (fn, args, *r[2:])
        return r

    def _get_class(self):
        return cls

    def _set_class(self, value):
        _CLASS_SET(self, value)

    ns: dict[str, Any] = {
        "__slots__": (),
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__doc__": cls.__doc__,
        "__setattr__": __setattr__,
        "__delattr__": __delattr__,
        "__reduce_ex__": __reduce_ex__,
        "__class__": property(_get_class, _set_class),
    }
    if objs.reads:
        ns["__getattribute__"] = __getattribute__
    for name, fn in _public_methods(cls).items():
        ns[name] = _wrap_method(table, name, fn)
    try:
        sub = type(cls)(cls.__name__, (cls,), ns)
    except Exception as e:
        raise TypeError(
            f"trace_object: cannot trace instances of {cls.__qualname__}: {e}"
        ) from None
    return sub


def _public_methods(cls: type) -> dict[str, Any]:
    seen: set[str] = set()
    out = {}
    for klass in cls.__mro__[:-1]:
        for name, v in klass.__dict__.items():
            if name in seen:
                continue
            seen.add(name)
            if not name.startswith("_") and isinstance(v, types.FunctionType):
                out[name] = v
    return out


def _wrap_method(table: dict, name: str, fn):
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def amethod(self, *args, **kwargs):
            t = table.get(id(self))
            if t is None or not t.live or _get_ident() in _busy:
                return await fn(self, *args, **kwargs)
            ctx = t.enter(name, fn, args, kwargs)
            try:
                result = await fn(self, *args, **kwargs)
            except BaseException as e:
                t.leave(ctx, exc=e)
                raise
            t.leave(ctx, result)
            return result

        return amethod

    @functools.wraps(fn)
    def method(self, *args, **kwargs):
        t = table.get(id(self))
        if t is None or not t.live or _get_ident() in _busy:
            return fn(self, *args, **kwargs)
        ctx = t.enter(name, fn, args, kwargs)
        try:
            result = fn(self, *args, **kwargs)
        except BaseException as e:
            t.leave(ctx, exc=e)
            raise
        t.leave(ctx, result)
        return result

    return method


# -- public entry points ------------------------------------------------------------------
