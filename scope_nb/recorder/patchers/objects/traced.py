"""Per-recording state of traced objects (`Objects`) and one traced object (`Traced`):
its reads, writes and method calls as events."""

from __future__ import annotations

import _thread
import functools
from typing import Any

from ....values import ATOMIC, REDACTED
from .events import (
    _K_READ,
    _K_WRITE,
    _MISSING,
    _busy,
    _get_ident,
    _getframe,
    _push,
    _recorder_file,
    _recorder_files,
    _short,
    _text,
    _where,
    _where_from,
)
from .method_calls import MethodCalls
from .state_view import StateView, own_dict, slots_of


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
        self.renamed: dict[str, str] = {}  # old name -> current name (see _rename)
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


class Traced(MethodCalls, StateView):
    """One traced object: its last snapshot and where its history goes."""

    def __init__(self, objs: Objects, obj: Any, cls: type, sub: type, name: str):
        self.objs = objs
        self.rec = objs.rec
        self.obj = obj
        self.cls = cls
        self.sub = sub
        self.name = name
        self.lock = _thread.allocate_lock()
        self.slots = slots_of(cls)
        self.has_dict = type(own_dict(obj)) is dict
        # its __dict__, unrecorded
        self.vars = functools.partial(object.__getattribute__, obj, "__dict__")
        # attr -> fingerprint (atomic value / pickle bytes / chunk pickles / Unpicklable)
        self.current: dict[str, Any] = {}
        # attr -> what a keyframe stores (_FROM_SHADOW: pickle shadow[attr] then)
        self.payloads: dict[str, Any] = {}
        self.reprs: dict[str, str] = {}  # attr -> bounded repr (also: the names in the state)
        self.shadow: dict[str, Any] = {}  # attr -> a private copy of a big list/dict, for diffs
        self.since_kf = 0
        self.depth: dict[str, int] = {}  # actor -> nested method calls in progress
        # attributes last seen holding a non-atomic value: a method may change them in
        # place, unseen until a snapshot compares them
        self.mutable: set[str] = set()
        self.items: dict[str, Any] = {}  # attr -> the recording substitute it holds (items.py)
        self.live = True

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
                # as Recorder.emit shows a captured value
                detail = rec.fmt.show(rec.fmt.capture(value))
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
            ev = (
                actor,
                attr,
                detail,
                None,
                self.name,
                loc,
                None,
                None,
                None,
                tuple(h) if h else (),
                None,
            )
            _push(rec, b, _K_READ, ev)
        except Exception as e:
            rec.fault("objects:read", e)

    def is_secret(self, attr: str) -> bool:
        return self.objs.is_secret(attr)

    def item(self, code: int, target: str, detail: str) -> None:
        """A key-level read or write (`code`) of a container this object holds, from the
        program's frame outside scope_nb (see items.py)."""
        objs = self.objs
        if not (objs.reads if code == _K_READ else objs.writes):
            return
        rec = self.rec
        try:
            b = rec.local.b
        except AttributeError:
            b = rec.buffer()
        actor = rec.current_actor(b) if b.loopy else b.actor
        ev = (
            actor,
            target,
            detail,
            None,
            self.name,
            _where_from(_getframe(2)),
            None,
            None,
            None,
            objs.held(actor),
            None,
        )
        _push(rec, b, code, ev)

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
                _push(
                    rec,
                    b,
                    _K_WRITE,
                    (
                        actor,
                        attr,
                        shown,
                        None,
                        self.name,
                        loc,
                        None,
                        None,
                        None,
                        objs.held(actor),
                        None,
                    ),
                )
            if objs.states:
                self.commit_atomic(attr, v, t, text, secret, f"{attr} = {shown}", actor, loc, b)
        except Exception as e:
            rec.fault("objects:write", e)

    def _wrote_slow(
        self, attr: str, value: Any, deleted: bool = False, whole: bool = False
    ) -> None:
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
                rec.emit(
                    "write",
                    attr,
                    detail,
                    obj=self.name,
                    actor=actor,
                    location=loc,
                    locks_held=self.objs.held(actor),
                    raw=True,
                )
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
