"""Traced objects: the GenServer of this world.

`trace_object` swaps the object's class for a subclass made on the fly (same name,
same layout, `__class__` still answering the original) whose `__getattribute__`,
`__setattr__` and `__delattr__` record reads and writes, and whose public methods
record call / return / exception rows with the caller as actor. After every write
and at the end of every outermost method call (where in-place mutation of a list or
dict shows), the attributes are compared with the last snapshot and each change
becomes a states row plus a `state` event. `stop()` puts the original class back.

States rows are kept raw in `rec.parts.states` and turned into the STATES
columns by `states_rows(rec)`. Each row stores, per attribute in `attrs`, one op:

* "set": the payload is the new value (pickle bytes; an atomic value other than
  bytes is kept by reference and pickled when the frame is built; an `Unpicklable`
  stand-in when it could not be copied; "<redacted>" for secrets);
* "splice": a list changed in one contiguous run: payload = pickle((start, end, items)),
  apply as `value[start:end] = items`;
* "dict": payload = pickle((updated_items, removed_keys)).

Every KEYFRAME_EVERY changes a row is a keyframe: it carries every attribute with
"set", so a state is rebuilt from the nearest keyframe plus at most that many diffs.

The hot path: a write of an atomic value (the common `obj.n = 1`, `obj.n += 1`)
touches only that attribute, formats the value once, takes file:line from one
`sys._getframe` and appends the write and state events to the thread's buffer
directly; a read appends its event the same way. A big list is fingerprinted by the
pickles of its CHUNK-element slices, which find and locate a change at the cost of
one pickling (see _splice).
"""

from __future__ import annotations

import _thread
import functools
import inspect
import pickle
import sys
import types
from typing import Any

from ... import clock
from ...schema import KIND_CODE
from ...values import ATOMIC, REDACTED, Unpicklable, snapshot_value
from .. import session
from ..buffer import KIND_BITS, RICH
from ..sites import is_recorder_file, is_recorder_module
from .locks import var_name

KEYFRAME_EVERY = 64
PATCH_MIN = 16  # lists/dicts shorter than this are stored whole on every change
CHUNK = 512  # a big list is fingerprinted by the pickles of its slices of this many elements
_HEAPTYPE = 1 << 9
_CLASS_SET = object.__dict__["__class__"].__set__
_get_ident = _thread.get_ident
_getframe = sys._getframe
_perf_ns = clock.perf_ns
_MISSING = object()
_FROM_SHADOW = object()  # payload placeholder: a keyframe pickles the private copy
_busy: set[int] = set()  # threads inside the recorder's own work on an object
# buffer codes of the events emitted here without Recorder.emit (see _push)
_K_READ = RICH | (KIND_CODE["read"] << KIND_BITS)
_K_WRITE = RICH | (KIND_CODE["write"] << KIND_BITS)
_K_STATE = RICH | (KIND_CODE["state"] << KIND_BITS)


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
        self.secret: dict[str, bool] = {}  # attribute name -> redacted?
        self.max_len = rec.fmt.max_len
        self.lock_state = None  # record/locks.py's LockState, found on first use
        rec.parts.states = self.rows

    def is_secret(self, attr: str) -> bool:
        hit = self.secret.get(attr)
        if hit is None:
            hit = self.secret[attr] = self.rec.fmt.is_secret(attr)
        return hit

    def held(self, actor: str) -> tuple[str, ...]:
        """The locks `actor` holds (what `locks.held_locks` answers, without the lookups)."""
        st = self.lock_state
        if st is None:
            st = self.lock_state = self.rec.parts.locks
            if st is None:
                return ()
        h = st.held.get(actor)
        return tuple(h) if h else ()


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
        self.vars = functools.partial(object.__getattribute__, obj, "__dict__")  # its __dict__, unrecorded
        self.current: dict[str, Any] = {}  # attr -> fingerprint (atomic value / pickle bytes / chunk pickles / Unpicklable)
        self.payloads: dict[str, Any] = {}  # attr -> what a keyframe stores (_FROM_SHADOW: pickle shadow[attr] then)
        self.reprs: dict[str, str] = {}  # attr -> bounded repr (also: the names in the state)
        self.shadow: dict[str, Any] = {}  # attr -> a private copy of a big list/dict, for diffs
        self.since_kf = 0
        self.depth: dict[str, int] = {}  # actor -> nested method calls in progress
        # attributes last seen holding a non-atomic value: a method may change them in
        # place, unseen until a snapshot compares them
        self.mutable: set[str] = set()
        self.live = True

    # -- reading the object without being recorded ----------------------------------------
    def read_state(self) -> dict[str, Any]:
        obj = self.obj
        out = dict(self.vars()) if self.has_dict else {}
        for n, desc in self.slots.items():
            try:
                out[n] = desc.__get__(obj, self.sub)
            except AttributeError:
                pass
        return out

    def stored(self, attr: str) -> Any:
        """The value the object holds in attribute `attr` (its __dict__ or a slot), or
        _MISSING when `attr` is not part of its state (a property, say)."""
        if self.has_dict:
            v = self.vars().get(attr, _MISSING)
            if v is not _MISSING:
                return v
        desc = self.slots.get(attr)
        if desc is not None:
            try:
                return desc.__get__(self.obj, self.sub)
            except AttributeError:
                return _MISSING
        return _MISSING

    def is_state_attr(self, attr: str) -> bool:
        if attr in self.slots:
            return True
        return self.has_dict and attr in self.vars()

    # -- events -------------------------------------------------------------------
    def read(self, attr: str, value: Any) -> None:
        rec = self.rec
        try:
            try:
                b = rec.local.b
            except AttributeError:
                b = rec.buffer()
            actor = rec.current_actor(b) if b.loopy else b.actor
            objs = self.objs
            t = type(value)
            secret = objs.secret.get(attr)
            if secret is None:
                secret = objs.is_secret(attr)
            if secret:
                detail = REDACTED
            elif t is str or t is bytes:
                detail = rec.fmt.show(rec.fmt.capture(value))  # as Recorder.emit shows a captured value
            elif t in ATOMIC:
                detail = repr(value)
                if len(detail) > objs.max_len:
                    detail = _text(rec.fmt, objs.max_len, value, t)
            else:
                detail = f"<{t.__name__}>"
            f = _getframe(2)  # 0: here, 1: __getattribute__, 2: the reader
            fn = f.f_code.co_filename
            hit = _recorder_files.get(fn)
            loc = f"{fn}:{f.f_lineno}" if hit is False else _where_from(f)
            st = objs.lock_state
            h = st.held.get(actor) if st is not None else objs.held(actor)
            ev = (actor, attr, detail, None, self.name, loc, None, None, None, tuple(h) if h else (), None)
            _push(rec, b, _K_READ, ev)
        except Exception as e:
            rec.fault("objects:read", e)

    def wrote(self, attr: str, value: Any) -> None:
        """After `obj.attr = value` (called from the traced class's __setattr__)."""
        rec = self.rec
        try:
            v = self.stored(attr)
            if v is _MISSING:
                return  # a property or other descriptor: its own writes are recorded
            t = type(v)
            try:
                b = rec.local.b
            except AttributeError:
                b = rec.buffer()
            actor = rec.current_actor(b) if b.loopy else b.actor
            # inside a method of this object, other attributes may have been changed in
            # place: the state recorded now must include those changes
            whole = bool(self.mutable) and self.depth.get(actor, 0) > 0
            if whole or t not in ATOMIC or (type(value) is not t and type(value) not in ATOMIC):
                return self._wrote_slow(attr, value, whole=whole)
            # an atomic value: no user code runs below, so no re-entrancy guard is needed
            objs = self.objs
            f = _getframe(2)  # 0: here, 1: __setattr__, 2: the writer
            fn = f.f_code.co_filename
            loc = f"{fn}:{f.f_lineno}" if not _recorder_file(fn) else _where_from(f)
            secret = objs.is_secret(attr)
            if secret:
                text = shown = REDACTED
            else:
                text = _text(rec.fmt, objs.max_len, v, t)
                shown = text if value is v else rec.fmt.repr(value)
            if objs.writes:
                _push(rec, b, _K_WRITE, (actor, attr, shown, None, self.name, loc, None, None, None, objs.held(actor), None))
            if objs.states:
                self.commit_atomic(attr, v, t, text, secret, f"{attr} = {shown}", actor, loc, b)
        except Exception as e:
            rec.fault("objects:write", e)

    def _wrote_slow(self, attr: str, value: Any, deleted: bool = False, whole: bool = False) -> None:
        rec = self.rec
        ident = _get_ident()
        _busy.add(ident)
        try:
            actor = rec.current_actor()
            loc = _where()
            if self.objs.writes:
                if deleted:
                    detail = "<deleted>"
                elif self.objs.is_secret(attr):
                    detail = REDACTED
                else:
                    detail = rec.fmt.repr(value)
                rec.emit("write", attr, detail, obj=self.name, actor=actor, location=loc,
                         locks_held=self.objs.held(actor), raw=True)
            if self.objs.states:
                cause = f"del {attr}" if deleted else f"{attr} = {_short(rec, attr, value)}"
                self.commit(cause, actor, loc, names=None if whole else (attr,))
        except Exception as e:
            rec.fault("objects:write", e)
        finally:
            _busy.discard(ident)

    def deleted(self, attr: str) -> None:
        """After `del obj.attr`."""
        self._wrote_slow(attr, None, deleted=True)

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
    def commit_atomic(self, n: str, v: Any, t: type, text: str, secret: bool, cause: str, actor: str,
                      loc: str | None, b) -> None:
        """commit() for a write of an atomic value `v` (of type t, shown as `text`) to
        attribute n: the same row, without a snapshot of the whole object."""
        with self.lock:
            self.mutable.discard(n)
            prev = self.current.get(n, _MISSING)
            if prev is v or (type(prev) is t and prev == v):
                return
            self.current[n] = v
            if self.shadow:
                self.shadow.pop(n, None)
            if secret:
                payload = REDACTED
            else:
                payload = v if t is not bytes else pickle.dumps(v, protocol=pickle.HIGHEST_PROTOCOL)
            self.reprs[n] = text
            self.payloads[n] = payload
            self.since_kf += 1
            if self.since_kf >= KEYFRAME_EVERY:
                self._row(cause, actor, loc, [n], [], [n], ["set"], [payload], [text], True, b)
            else:
                now = clock.perf_ns()
                self.objs.rows.append((self.name, now, actor, cause, (n,), (), (n,), ("set",), (payload,), (text,),
                                       False, loc))
                _push(self.rec, b, _K_STATE, (actor, None, cause, None, self.name, loc, None, None, None, None, None),
                      now)

    def commit(self, cause: str, actor: str, loc: str | None, names: tuple[str, ...] | None = None,
               keyframe: bool = False) -> None:
        """Compare the object with its last snapshot; record a row if anything changed.
        `names`: only these attributes were touched (a write); None: look at all."""
        state = self.read_state()
        is_secret = self.objs.is_secret
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
                self.mutable.discard(n)
                self.current.pop(n, None)
                self.payloads.pop(n, None)
                self.reprs.pop(n, None)
                self.shadow.pop(n, None)
            if not changed and not removed and not keyframe:
                return
            self.since_kf += 1
            self._row(cause, actor, loc, changed, removed, attrs, ops, payloads, reprs, keyframe, None)

    def _row(self, cause: str, actor: str, loc: str | None, changed: list, removed: list, attrs: list, ops: list,
             payloads: list, reprs: list, keyframe: bool, b) -> None:
        """Append one states row and its `state` event (the lock is held)."""
        if keyframe or self.since_kf >= KEYFRAME_EVERY:
            keyframe = True
            self.since_kf = 0
            attrs = list(self.payloads)
            ops = ["set"] * len(attrs)
            payloads = [self._keyframe_payload(n) for n in attrs]
            reprs = [self.reprs[n] for n in attrs]
        now = clock.perf_ns()
        self.objs.rows.append((self.name, now, actor, cause, tuple(changed + removed), tuple(removed),
                               tuple(attrs), tuple(ops), tuple(payloads), tuple(reprs), keyframe, loc))
        if b is None:
            self.rec.emit("state", None, cause, obj=self.name, actor=actor, ts=now, location=loc, raw=True)
        else:
            _push(self.rec, b, _K_STATE, (actor, None, cause, None, self.name, loc, None, None, None, None, None), now)

    def _keyframe_payload(self, n: str) -> Any:
        p = self.payloads[n]
        if p is _FROM_SHADOW:
            p = self.payloads[n] = pickle.dumps(self.shadow[n], protocol=pickle.HIGHEST_PROTOCOL)
        return p

    def _diff(self, n: str, v: Any, secret: bool):
        """(op, payload) when attribute n changed to v since the last snapshot, else None.
        Updates the snapshot."""
        t = type(v)
        if t in ATOMIC:
            self.mutable.discard(n)
            prev = self.current.get(n, _MISSING)
            if prev is v or (type(prev) is t and prev == v):
                return None
            self.current[n] = v
            self.shadow.pop(n, None)
            if secret:
                self.reprs[n] = self.payloads[n] = REDACTED
                return "set", REDACTED
            self.reprs[n] = self.rec.fmt.repr(v)
            p = self.payloads[n] = v if t is not bytes else pickle.dumps(v, protocol=pickle.HIGHEST_PROTOCOL)
            return "set", p
        self.mutable.add(n)
        if t is list and not secret and len(v) >= PATCH_MIN:
            d = self._diff_list(n, v)
            if d is not _MISSING:
                return d
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
        self.payloads[n] = blob if blob is not None else plain
        op = None
        old = self.shadow.get(n)
        try:
            if blob is not None and old is not None and type(old) is type(v):
                op = _patch(old, v, len(blob))
            big = blob is not None and type(v) is dict and len(v) >= PATCH_MIN
            if op is not None:
                _apply(old, op[0], pickle.loads(op[1]))
                if pickle.dumps(old, protocol=pickle.HIGHEST_PROTOCOL) != blob:
                    op = None  # == saw equal what pickle does not (1 == 1.0, shared references)
            if op is None:
                if big:
                    self.shadow[n] = pickle.loads(blob)
                else:
                    self.shadow.pop(n, None)
        except Exception:  # it pickles but does not load back (a __reduce__ that lies): keep its repr
            self.shadow.pop(n, None)
            op = None
            self.payloads[n] = Unpicklable(v)
        return op if op is not None else ("set", self.payloads[n])

    def _diff_list(self, n: str, v: list):
        """_diff for a big list: its fingerprint is the pickles of its CHUNK-element
        slices, so a change is found, and located, at the cost of one pickling of the
        list (no second pickling to check a patch, no unpickling to refresh the private
        copy). _MISSING when the list cannot be pickled (the general path decides)."""
        try:
            dumps = pickle.dumps
            blobs = tuple([dumps(v[i : i + CHUNK], protocol=pickle.HIGHEST_PROTOCOL) for i in range(0, len(v), CHUNK)])
        except BaseException:
            return _MISSING
        prev = self.current.get(n)
        if type(prev) is tuple and prev == blobs:
            return None
        self.current[n] = blobs
        self.reprs[n] = self.rec.fmt.repr(v)
        old = self.shadow.get(n)
        blob = None
        if type(prev) is tuple and type(old) is list:
            try:
                start, end, items = _splice(old, v, prev, blobs)
                blob = pickle.dumps((start, end, items), protocol=pickle.HIGHEST_PROTOCOL)
                fresh = pickle.loads(blob)[2]
            except Exception:  # an element's == raised: store the whole list
                blob = None
        if blob is not None:
            old[start:end] = fresh  # the private copy follows, with copies of the new items
            if len(blob) * 2 < sum(map(len, blobs)):
                self.payloads[n] = _FROM_SHADOW
                return "splice", blob
            full = self.payloads[n] = pickle.dumps(old, protocol=pickle.HIGHEST_PROTOCOL)
            return "set", full
        full = self.payloads[n] = pickle.dumps(v, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self.shadow[n] = pickle.loads(full)
        except Exception:  # it pickles but does not load back: keep its repr
            self.shadow.pop(n, None)
            full = self.payloads[n] = Unpicklable(v)
        return "set", full


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
    """A small op turning `old` (a private copy of a dict) into `new`, or None when
    storing the whole value is as good. (Big lists go through _splice.)"""
    try:
        if type(new) is not dict:
            return None
        upd = {k: v for k, v in new.items() if k not in old or not _eq(old[k], v)}
        rem = [k for k in old if k not in new]
        blob = pickle.dumps((upd, rem), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        return None
    return ("dict", blob) if len(blob) * 2 < full_size else None


def _prefix(old: list, new: list) -> int:
    """Length of the common prefix (==): slices compared at C speed in blocks of at most
    256, then a binary search inside the first block that differs (O(prefix) work)."""
    n = min(len(old), len(new))
    lo, step = 0, 16
    while lo < n:
        hi = min(n, lo + step)
        if old[lo:hi] != new[lo:hi]:
            while hi - lo > 1:  # invariant: old[lo:hi] and new[lo:hi] differ
                mid = (lo + hi) // 2
                if old[lo:mid] == new[lo:mid]:
                    lo = mid
                else:
                    hi = mid
            return lo
        lo = hi
        if step < 256:
            step *= 2
    return n


def _suffix(old: list, new: list, limit: int) -> int:
    """Length of the common suffix (==), at most `limit`."""
    if limit <= 0:
        return 0
    return _prefix(old[len(old) - limit :][::-1], new[len(new) - limit :][::-1])


def _splice(old: list, new: list, prev: tuple, blobs: tuple) -> tuple[int, int, list]:
    """(start, end, items) such that `old[start:end] = items` turns `old` (the private
    copy of the recorded list) into `new`. prev / blobs are the chunk pickles of old and
    new: chunks with equal pickles hold equal values; inside a chunk that differs,
    elements are compared with ==, and the run == found equal is checked by pickling it
    (1 == 1.0 == True, 0.0 == -0.0), so the result is as exact as pickling the list."""
    dumps, hp = pickle.dumps, pickle.HIGHEST_PROTOCOL
    n_old, n_new = len(old), len(new)
    limit = min(n_old, n_new)
    m = min(len(prev), len(blobs))
    k = 0
    while k < m and prev[k] == blobs[k]:
        k += 1
    lo = min(k * CHUNK, limit)
    hi = min(limit, lo + CHUNK)
    p = lo + _prefix(old[lo:hi], new[lo:hi])
    if p > lo and dumps(old[lo:p], protocol=hp) != dumps(new[lo:p], protocol=hp):
        p = lo
    if n_old == n_new:
        j = len(blobs) - 1
        while j > k and prev[j] == blobs[j]:
            j -= 1
        top = min(n_new, (j + 1) * CHUNK)  # from here on, equal chunk by chunk
        base = max(p, j * CHUNK)
        s = _suffix(old[base:top], new[base:top], top - base)
        if s and dumps(old[top - s : top], protocol=hp) != dumps(new[top - s : top], protocol=hp):
            s = 0
        s += n_new - top
    else:
        s = _suffix(old, new, limit - p)
        if s and dumps(old[n_old - s :], protocol=hp) != dumps(new[n_new - s :], protocol=hp):
            s = 0
    return p, n_old - s, new[p : n_new - s]


def _push(rec, b, code: int, ev: tuple, now: int | None = None) -> None:
    """What Recorder.emit does for a non-critical event whose fields are ready (kind
    enabled, detail formatted): sample, append to the thread's buffer, seal when full."""
    session.push(rec.store, b, code, ev, clock.perf_ns() if now is None else now)


def _text(fmt, max_len: int, v: Any, t: type) -> str:
    """fmt.repr(v) for an atomic v of type t (numbers without the general machinery)."""
    if t is str or t is bytes:
        return fmt.repr(v)
    r = repr(v)
    return r if len(r) <= max_len else r[: max_len - 3] + "..."


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


_recorder_files: dict[str, bool] = {}


def _recorder_file(filename: str) -> bool:
    hit = _recorder_files.get(filename)
    if hit is None:
        hit = _recorder_files[filename] = is_recorder_file(filename)
    return hit


def _where_from(f) -> str | None:
    """file:line of the first frame from f outward that is outside scope_nb."""
    while f is not None and _recorder_file(f.f_code.co_filename):
        f = f.f_back
    return f"{f.f_code.co_filename}:{f.f_lineno}" if f is not None else None


def _where() -> str | None:
    """file:line of the first frame outside scope_nb: the user's code."""
    return _where_from(_getframe(2))


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

    if objs.reads:

        def __getattribute__(self, attr):
            value = orig_get(self, attr)
            t = table.get(id(self))
            if t is not None and attr in t.reprs and t.live and _get_ident() not in _busy:
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
    objs = rec.parts.objects
    if objs is None:
        raise RuntimeError("trace_object: object tracing is off in this recording (patch=False or tracing_level='off')")
    cls = type(obj)
    if isinstance(obj, type | types.ModuleType | types.FunctionType | types.BuiltinFunctionType | types.MethodType):
        raise TypeError(f"trace_object traces instances of Python classes; got the {cls.__name__} {obj!r:.80}"
                        " (for a module use trace_module)")
    if name == "":
        raise ValueError("trace_object: name must not be empty; pass a name, or None for the variable's name")
    known = objs.table.get(id(obj))
    if known is not None:
        if name is not None and name != known.name:  # its history would be split between two names
            raise ValueError(f"trace_object: this object is already traced as {known.name!r}; "
                             f"accepted: name=None or name={known.name!r}")
        return obj
    if is_recorder_module(cls.__module__):
        raise TypeError(f"trace_object: {cls.__qualname__} is part of scope_nb, which does not trace itself; "
                        "accepted: instances of the program's classes (a lock: use trace_lock)")
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
    locks = rec.parts.locks
    if locks is not None:
        for attr, value in t.read_state().items():
            locks.adopt(value, f"{name}.{attr}")
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
        if not klass.__flags__ & _HEAPTYPE or is_recorder_module(klass.__module__):
            raise TypeError(f"traced: {klass.__qualname__} cannot be traced; accepted: a class of the program "
                            "defined in Python")
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
            if rec is not None and rec.running and rec.parts.objects is not None and id(self) not in rec.parts.objects.table:
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


def states_rows(rec) -> list[dict]:
    """The STATES rows of everything recorded so far (payloads pickled here, off the
    hot path; `state` is the bounded repr of the whole state after each change)."""
    rows = list(rec.parts.states or ())
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
    rec.parts.objects = Objects(rec)


def uninstall(rec) -> None:
    objs = rec.parts.objects
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

