"""Traced objects: the GenServer of this world.

`trace_object` swaps the object's class for a subclass made on the fly (same name,
same layout, `__class__` still answering the original) whose `__getattribute__`,
`__setattr__` and `__delattr__` record reads and writes, and whose public methods
record call / return / exception rows with the caller as actor. After every write
and at the end of every outermost method call (where in-place mutation of a list or
dict shows), the attributes are compared with the last snapshot and each change
becomes a states row plus a `state` event. `stop()` puts the original class back.

States rows are kept raw in `rec.extras["states"]` and turned into the STATES
columns by `states_rows(rec)`. Each row stores, per attribute in `attrs`, one op:

* "set": the payload is the new value (pickle bytes; the value itself when atomic;
  an `Unpicklable` stand-in when it could not be copied; "<redacted>" for secrets);
* "splice": a list changed in one contiguous run: payload = pickle((start, end, items)),
  apply as `value[start:end] = items`;
* "dict": payload = pickle((updated_items, removed_keys)).

Every KEYFRAME_EVERY changes a row is a keyframe: it carries every attribute with
"set", so a state is rebuilt from the nearest keyframe plus at most that many diffs.
"""

from __future__ import annotations

import _thread
import functools
import inspect
import pickle
import sys
import types
from typing import Any

from .. import clock
from ..values import ATOMIC, REDACTED, snapshot_value
from . import session
from .locks import held_locks, var_name
from .sites import is_recorder_file, is_recorder_module

KEYFRAME_EVERY = 64
PATCH_MIN = 16  # lists/dicts shorter than this are stored whole on every change
_HEAPTYPE = 1 << 9
_CLASS_SET = object.__dict__["__class__"].__set__
_get_ident = _thread.get_ident
_MISSING = object()
_busy: set[int] = set()  # threads inside the recorder's own work on an object


class Objects:
    """Per-recording state of traced objects."""

    def __init__(self, rec):
        self.rec = rec
        self.table: dict[int, Traced] = {}  # id(obj) -> its tracking
        self.subclasses: dict[type, type] = {}
        self.rows: list[tuple] = []
        self.counters: dict[str, int] = {}
        self.name_cache: dict = {}
        self.reads = "read" in rec.kinds
        self.writes = "write" in rec.kinds
        self.states = "state" in rec.kinds
        rec.extras["states"] = self.rows


class Traced:
    """One traced object: its last snapshot and where its history goes."""

    def __init__(self, objs: Objects, obj: Any, cls: type, sub: type, name: str):
        self.objs = objs
        self.rec = objs.rec
        self.obj = obj
        self.cls = cls
        self.sub = sub
        self.name = name
        self.lock = _thread.allocate_lock()
        self.slots = _slots(cls)
        self.has_dict = hasattr(obj, "__dict__") and isinstance(getattr(obj, "__dict__", None), dict)
        self.current: dict[str, Any] = {}  # attr -> fingerprint (pickle bytes / atomic / Unpicklable)
        self.payloads: dict[str, Any] = {}  # attr -> what a keyframe stores
        self.reprs: dict[str, str] = {}  # attr -> bounded repr (also: the names in the state)
        self.shadow: dict[str, Any] = {}  # attr -> a private copy of a big list/dict, for diffs
        self.since_kf = 0
        self.depth: dict[str, int] = {}  # actor -> nested method calls in progress
        self.live = True

    # -- reading the object without being recorded ----------------------------------------
    def read_state(self) -> dict[str, Any]:
        obj = self.obj
        out = dict(object.__getattribute__(obj, "__dict__")) if self.has_dict else {}
        for n, desc in self.slots.items():
            try:
                out[n] = desc.__get__(obj, self.sub)
            except AttributeError:
                pass
        return out

    def is_state_attr(self, attr: str) -> bool:
        if attr in self.slots:
            return True
        return self.has_dict and attr in object.__getattribute__(self.obj, "__dict__")

    # -- events -------------------------------------------------------------------
    def read(self, attr: str, value: Any) -> None:
        rec = self.rec
        try:
            actor = rec.current_actor()
            atomic = type(value) in ATOMIC
            if rec.fmt.is_secret(attr):
                detail, atomic = REDACTED, False
            else:
                detail = value if atomic else f"<{type(value).__name__}>"
            rec.emit("read", attr, detail, obj=self.name, actor=actor, location=_where(),
                     locks_held=held_locks(rec, actor), raw=not atomic)
        except Exception as e:
            rec.fault("objects:read", e)

    def wrote(self, attr: str, value: Any, deleted: bool = False) -> None:
        rec = self.rec
        ident = _get_ident()
        _busy.add(ident)
        try:
            if not deleted and not self.is_state_attr(attr):
                return  # a property or other descriptor: its own writes are recorded
            actor = rec.current_actor()
            loc = _where()
            if self.objs.writes:
                if deleted:
                    detail = "<deleted>"
                elif rec.fmt.is_secret(attr):
                    detail = REDACTED
                else:
                    detail = rec.fmt.repr(value)
                rec.emit("write", attr, detail, obj=self.name, actor=actor, location=loc,
                         locks_held=held_locks(rec, actor), raw=True)
            if self.objs.states:
                cause = f"del {attr}" if deleted else f"{attr} = {_short(rec, attr, value)}"
                self.commit(cause, actor, loc, names=(attr,))
        except Exception as e:
            rec.fault("objects:write", e)
        finally:
            _busy.discard(ident)

    def enter(self, method: str, fn, args, kwargs) -> tuple:
        rec = self.rec
        actor = rec.current_actor()
        self.depth[actor] = self.depth.get(actor, 0) + 1
        ident = _get_ident()
        _busy.add(ident)
        try:
            rec.emit("call", None, _args(rec, fn, args, kwargs), obj=self.name, actor=actor,
                     function=fn.__qualname__, module=fn.__module__, location=_where())
        except Exception as e:
            rec.fault("objects:call", e)
        finally:
            _busy.discard(ident)
        return actor, method, fn, clock.perf_ns()

    def leave(self, ctx: tuple, result: Any = None, exc: BaseException | None = None) -> None:
        actor, method, fn, t0 = ctx
        rec = self.rec
        ident = _get_ident()
        _busy.add(ident)
        try:
            d = self.depth.get(actor, 1) - 1
            self.depth[actor] = d
            took = clock.perf_ns() - t0
            if exc is None:
                rec.emit("return", None, result, obj=self.name, actor=actor, function=fn.__qualname__,
                         module=fn.__module__, duration_ns=took)
            else:
                rec.emit("exception", None, f"{type(exc).__qualname__}|{rec.fmt.repr(exc)}", obj=self.name,
                         actor=actor, function=fn.__qualname__, module=fn.__module__, duration_ns=took, raw=True)
            if d <= 0 and self.objs.states and self.live:
                self.commit(method, actor, _where())
        except Exception as e:
            rec.fault("objects:return", e)
        finally:
            _busy.discard(ident)

    # -- snapshots ------------------------------------------------------------------
    def commit(self, cause: str, actor: str, loc: str | None, names: tuple[str, ...] | None = None,
               keyframe: bool = False) -> None:
        """Compare the object with its last snapshot; record a row if anything changed.
        `names`: only these attributes were touched (a write); None: look at all."""
        state = self.read_state()
        is_secret = self.rec.fmt.is_secret
        with self.lock:
            changed, attrs, ops, payloads, reprs = [], [], [], [], []
            removed: list[str] = []
            todo = state.items() if names is None else [(n, state.get(n, _MISSING)) for n in names]
            for n, v in todo:
                if v is _MISSING:
                    if n in self.current:
                        removed.append(n)
                    continue
                d = self._diff(n, v, is_secret(n))
                if d is not None:
                    changed.append(n)
                    attrs.append(n)
                    ops.append(d[0])
                    payloads.append(d[1])
                    reprs.append(self.reprs[n])
            if names is None:
                removed += [n for n in self.current if n not in state]
            for n in removed:
                self.current.pop(n, None)
                self.payloads.pop(n, None)
                self.reprs.pop(n, None)
                self.shadow.pop(n, None)
            if not changed and not removed and not keyframe:
                return
            self.since_kf += 1
            if keyframe or self.since_kf >= KEYFRAME_EVERY:
                keyframe = True
                self.since_kf = 0
                attrs = list(self.payloads)
                ops = ["set"] * len(attrs)
                payloads = list(self.payloads.values())
                reprs = [self.reprs[n] for n in attrs]
            now = clock.perf_ns()
            self.objs.rows.append((self.name, now, actor, cause, tuple(changed + removed), tuple(removed),
                                   tuple(attrs), tuple(ops), tuple(payloads), tuple(reprs), keyframe, loc))
            self.rec.emit("state", None, cause, obj=self.name, actor=actor, ts=now, location=loc, raw=True)

    def _diff(self, n: str, v: Any, secret: bool):
        """(op, payload) when attribute n changed to v since the last snapshot, else None.
        Updates the snapshot."""
        blob, plain = snapshot_value(v)
        fp = blob if blob is not None else plain
        prev = self.current.get(n, _MISSING)
        if prev is not _MISSING and (prev is fp or (type(prev) is type(fp) and _same(prev, fp))):
            return None
        self.current[n] = fp
        self.reprs[n] = REDACTED if secret else self.rec.fmt.repr(v)
        if secret:
            self.payloads[n] = REDACTED
            self.shadow.pop(n, None)
            return "set", REDACTED
        self.payloads[n] = blob if blob is not None else _pickled(plain)
        op = None
        old = self.shadow.get(n)
        if blob is not None and old is not None and type(old) is type(v):
            op = _patch(old, v, len(blob))
        big = blob is not None and type(v) in (list, dict) and len(v) >= PATCH_MIN
        if op is not None:
            _apply(old, op[0], pickle.loads(op[1]))
            if pickle.dumps(old, protocol=pickle.HIGHEST_PROTOCOL) != blob:
                op = None  # == saw equal what pickle does not (1 == 1.0, shared references)
        if op is None:
            if big:
                self.shadow[n] = pickle.loads(blob)
            else:
                self.shadow.pop(n, None)
        return op if op is not None else ("set", self.payloads[n])


def _pickled(plain: Any) -> Any:
    """Atomic values are pickled now (cheap), so that a bytes payload always means a
    pickle; an Unpicklable stand-in is pickled when the frame is built."""
    if type(plain) in ATOMIC:
        return pickle.dumps(plain, protocol=pickle.HIGHEST_PROTOCOL)
    return plain


def _same(a, b) -> bool:
    try:
        return bool(a == b)
    except Exception:
        return False


def _eq(a, b) -> bool:
    if a is b:
        return True
    try:
        return bool(a == b)
    except Exception:
        return False


def _patch(old, new, full_size: int):
    """A small op turning `old` (a private copy) into `new`, or None when storing the
    whole value is as good."""
    try:
        if type(new) is list:
            p = _prefix(old, new)
            m = min(len(old), len(new)) - p
            s = _suffix(old, new, m)
            blob = pickle.dumps((p, len(old) - s, new[p : len(new) - s]), protocol=pickle.HIGHEST_PROTOCOL)
            op = "splice"
        elif type(new) is dict:
            upd = {k: v for k, v in new.items() if k not in old or not _eq(old[k], v)}
            rem = [k for k in old if k not in new]
            blob = pickle.dumps((upd, rem), protocol=pickle.HIGHEST_PROTOCOL)
            op = "dict"
        else:
            return None
    except Exception:
        return None
    return (op, blob) if len(blob) * 2 < full_size else None


def _prefix(old: list, new: list) -> int:
    """Length of the common prefix: slices compared at C speed in growing blocks, then
    a binary search inside the first block that differs (O(prefix) work)."""
    return _common(old, new, min(len(old), len(new)), lambda x, i, j: x[i:j])


def _suffix(old: list, new: list, limit: int) -> int:
    """Length of the common suffix, at most `limit`."""
    return _common(old, new, limit, lambda x, i, j: x[len(x) - j : len(x) - i])


def _common(old: list, new: list, n: int, part) -> int:
    lo, step = 0, 16
    while lo < n:
        hi = min(n, lo + step)
        if part(old, lo, hi) != part(new, lo, hi):
            while hi - lo > 1:  # invariant: the parts [lo, hi) differ
                mid = (lo + hi) // 2
                if part(old, lo, mid) == part(new, lo, mid):
                    lo = mid
                else:
                    hi = mid
            return lo
        lo = hi
        step *= 2
    return n


def _apply(value, op: str, arg) -> None:
    """Apply a patch in place (the recorder's private copy; analysis does the same)."""
    if op == "splice":
        start, end, items = arg
        value[start:end] = items
    elif op == "dict":
        upd, rem = arg
        for k in rem:
            value.pop(k, None)
        value.update(upd)


def _short(rec, attr: str, value: Any) -> str:
    return REDACTED if rec.fmt.is_secret(attr) else rec.fmt.repr(value)


def _args(rec, fn, args: tuple, kwargs: dict):
    """The call's arguments with secret parameters redacted."""
    code = getattr(fn, "__code__", None)
    names = code.co_varnames[1 : code.co_argcount] if code is not None else ()
    is_secret = rec.fmt.is_secret
    pos = tuple(REDACTED if i < len(names) and is_secret(names[i]) else a for i, a in enumerate(args))
    if not kwargs:
        return pos
    return pos, {k: REDACTED if is_secret(k) else v for k, v in kwargs.items()}


def _where() -> str | None:
    """file:line of the first frame outside scope_nb: the user's code."""
    f = sys._getframe(1)
    while f is not None and is_recorder_file(f.f_code.co_filename):
        f = f.f_back
    return f"{f.f_code.co_filename}:{f.f_lineno}" if f is not None else None


def _slots(cls: type) -> dict[str, Any]:
    """Slot name -> member descriptor, over the whole MRO (private names mangled)."""
    out: dict[str, Any] = {}
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        if isinstance(slots, str):
            slots = (slots,)
        for s in slots:
            if s in ("__dict__", "__weakref__"):
                continue
            name = f"_{klass.__name__.lstrip('_')}{s}" if s.startswith("__") and not s.endswith("__") else s
            desc = klass.__dict__.get(name)
            if isinstance(desc, types.MemberDescriptorType):
                out.setdefault(name, desc)
    return out


# -- the traced subclass ---------------------------------------------------------------

def _make_subclass(objs: Objects, cls: type) -> type:
    table = objs.table
    orig_get = cls.__getattribute__
    orig_set = cls.__setattr__
    orig_del = cls.__delattr__
    orig_reduce = cls.__reduce_ex__

    def __getattribute__(self, attr):
        value = orig_get(self, attr)
        t = table.get(id(self))
        if t is not None and attr in t.reprs and t.live and objs.reads and _get_ident() not in _busy:
            t.read(attr, value)
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
            t.wrote(attr, None, deleted=True)

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
        "__getattribute__": __getattribute__,
        "__setattr__": __setattr__,
        "__delattr__": __delattr__,
        "__reduce_ex__": __reduce_ex__,
        "__class__": property(_get_class, _set_class),
    }
    for name, fn in _public_methods(cls).items():
        ns[name] = _wrap_method(table, name, fn)
    try:
        sub = type(cls)(cls.__name__, (cls,), ns)
    except Exception as e:
        raise TypeError(f"trace_object: cannot trace instances of {cls.__qualname__}: {e}") from None
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

def trace_object(rec, obj: Any, name: str | None = None) -> Any:
    """Trace `obj` (an instance of a Python class): method calls, reads, writes and its
    state after every change. Returns obj."""
    if name is not None and not isinstance(name, str):
        raise TypeError(f"trace_object: name must be a str or None, got {type(name).__name__}")
    objs = rec.extras.get("objects")
    if objs is None:
        raise RuntimeError("trace_object: object tracing is off in this recording (patch=False or tracing_level='off')")
    cls = type(obj)
    if isinstance(obj, type | types.ModuleType | types.FunctionType | types.BuiltinFunctionType | types.MethodType):
        raise TypeError(f"trace_object traces instances of Python classes; got the {cls.__name__} {obj!r:.80}"
                        " (for a module use trace_module)")
    if id(obj) in objs.table:
        return obj
    if not cls.__flags__ & _HEAPTYPE:
        raise TypeError(f"trace_object: {cls.__qualname__} is implemented in C and cannot be traced; "
                        "accepted: instances of classes defined in Python (with or without __slots__)")
    if name is None:
        name = _default_name(objs, cls)
    elif name in rec.objects and rec.objects[name] is not obj:
        raise ValueError(f"trace_object: name {name!r} is already used by another traced object; pass another name")
    sub = objs.subclasses.get(cls)
    if sub is None:
        sub = objs.subclasses[cls] = _make_subclass(objs, cls)
    t = Traced(objs, obj, cls, sub, name)
    objs.table[id(obj)] = t
    try:
        _CLASS_SET(obj, sub)
    except TypeError as e:
        del objs.table[id(obj)]
        raise TypeError(f"trace_object: cannot trace this {cls.__qualname__} object ({e}); accepted: instances "
                        "of classes defined in Python (with or without __slots__)") from None
    rec.objects[name] = obj
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
        orig_init = klass.__init__

        @functools.wraps(orig_init)
        def __init__(self, *args, **kwargs):
            orig_init(self, *args, **kwargs)
            rec = session.ACTIVE
            if rec is not None and rec.running and "objects" in rec.extras and id(self) not in rec.extras["objects"].table:
                try:
                    trace_object(rec, self, _counted_name(rec, type(self).__name__))
                except Exception as e:
                    rec.fault("objects:traced", e)

        klass.__init__ = __init__
        return klass

    return decorate(cls) if cls is not None else decorate


def _counted_name(rec, base: str) -> str:
    objs = rec.extras["objects"]
    n = objs.counters.get(base, 0)
    while True:
        n += 1
        if f"{base}-{n}" not in rec.objects:
            objs.counters[base] = n
            return f"{base}-{n}"


def states_rows(rec) -> list[dict]:
    """The STATES rows of everything recorded so far (payloads pickled here, off the
    hot path; `state` is the bounded repr of the whole state after each change)."""
    rows = list(rec.extras.get("states") or ())
    current: dict[str, dict[str, str]] = {}
    out = []
    to_epoch = rec.offset
    limit = rec.options.max_repr * 4
    for name, ts, actor, cause, changed, removed, attrs, ops, payloads, reprs, keyframe, loc in rows:
        shown = current.setdefault(name, {})
        if keyframe:
            shown.clear()
        for n in removed:
            shown.pop(n, None)
        shown.update(zip(attrs, reprs, strict=True))
        text = "{" + ", ".join(f"{k}: {v}" for k, v in shown.items()) + "}"
        if len(text) > limit:
            text = text[: limit - 3] + "..."
        out.append({
            "obj": name,
            "seq": None,
            "ts": ts + to_epoch,
            "actor": actor,
            "cause": cause,
            "changed": list(changed),
            "state": text,
            "location": loc,
            "blobs": [_blob(p) for p in payloads],
            "values": list(reprs),
            "attrs": list(attrs),
            "ops": list(ops),
            "removed": list(removed),
            "keyframe": keyframe,
        })
    return out


def _blob(payload: Any) -> bytes | None:
    if type(payload) is bytes:
        return payload
    try:
        return pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        return None


# -- install / uninstall -----------------------------------------------------------------

def install(rec) -> None:
    rec.extras["objects"] = Objects(rec)


def uninstall(rec) -> None:
    objs = rec.extras.get("objects")
    if objs is None:
        return
    for t in list(objs.table.values()):
        t.live = False
        try:
            if type(t.obj) is t.sub:
                _CLASS_SET(t.obj, t.cls)
        except Exception as e:
            rec.fault("objects:restore", e)
    objs.table.clear()


if sys.modules[__name__] not in session.PATCHERS:
    session.PATCHERS.append(sys.modules[__name__])
