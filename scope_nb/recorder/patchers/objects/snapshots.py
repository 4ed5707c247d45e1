"""Snapshots of a traced object's state: each change becomes a states row (keyframes
plus diffs, see the package docstring) and a `state` event."""

from __future__ import annotations

import pickle
from typing import Any

from .... import clock
from ....values import ATOMIC, REDACTED, Unpicklable, clone, copy_value
from .diffs import _apply, _patch, _splice
from .events import _FROM_SHADOW, _K_STATE, _MISSING, CHUNK, KEYFRAME_EVERY, PATCH_MIN, _push


class Snapshots:
    """The state history of one traced object: its last snapshot (fingerprints, payloads,
    texts, private copies of big values) and the rows recorded when it changes. Mixed
    into `Traced`, which sets the attributes used here."""

    def commit_atomic(
        self,
        n: str,
        v: Any,
        t: type,
        text: str,
        secret: bool,
        cause: str,
        actor: str,
        loc: str | None,
        b,
    ) -> None:
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
                self.objs.rows.append(
                    (
                        self.name,
                        now,
                        actor,
                        cause,
                        (n,),
                        (),
                        (n,),
                        ("set",),
                        (payload,),
                        (text,),
                        False,
                        loc,
                    )
                )
                _push(
                    self.rec,
                    b,
                    _K_STATE,
                    (actor, None, cause, None, self.name, loc, None, None, None, None, None),
                    now,
                )

    def commit(
        self,
        cause: str,
        actor: str,
        loc: str | None,
        names: tuple[str, ...] | None = None,
        keyframe: bool = False,
    ) -> None:
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
            self._row(
                cause, actor, loc, changed, removed, attrs, ops, payloads, reprs, keyframe, None
            )

    def _row(
        self,
        cause: str,
        actor: str,
        loc: str | None,
        changed: list,
        removed: list,
        attrs: list,
        ops: list,
        payloads: list,
        reprs: list,
        keyframe: bool,
        b,
    ) -> None:
        """Append one states row and its `state` event (the lock is held)."""
        if keyframe or self.since_kf >= KEYFRAME_EVERY:
            keyframe = True
            self.since_kf = 0
            attrs = list(self.payloads)
            ops = ["set"] * len(attrs)
            payloads = [self._keyframe_payload(n) for n in attrs]
            reprs = [self.reprs[n] for n in attrs]
        now = clock.perf_ns()
        self.objs.rows.append(
            (
                self.name,
                now,
                actor,
                cause,
                tuple(changed + removed),
                tuple(removed),
                tuple(attrs),
                tuple(ops),
                tuple(payloads),
                tuple(reprs),
                keyframe,
                loc,
            )
        )
        if b is None:
            self.rec.emit(
                "state", None, cause, obj=self.name, actor=actor, ts=now, location=loc, raw=True
            )
        else:
            _push(
                self.rec,
                b,
                _K_STATE,
                (actor, None, cause, None, self.name, loc, None, None, None, None, None),
                now,
            )

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
            p = self.payloads[n] = (
                v if t is not bytes else pickle.dumps(v, protocol=pickle.HIGHEST_PROTOCOL)
            )
            return "set", p
        self.mutable.add(n)
        # from here on, only the recorder's own copy is compared, pickled and patched
        c = copy_value(v, self.rec.fmt)
        if type(c) is list and not secret and len(c) >= PATCH_MIN:
            d = self._diff_list(n, c, v)
            if d is not _MISSING:
                return d
        try:
            blob, plain = pickle.dumps(c, protocol=pickle.HIGHEST_PROTOCOL), None
        except Exception:  # a copy of an instance of a class that is not importable
            blob, plain = None, Unpicklable(v, self.rec.fmt)
        fp = blob if blob is not None else plain
        prev = self.current.get(n, _MISSING)
        if prev is not _MISSING and (prev is fp or (type(prev) is type(fp) and prev == fp)):
            return None
        self.current[n] = fp
        if secret:
            self.reprs[n] = self.payloads[n] = REDACTED
            self.shadow.pop(n, None)
            return "set", REDACTED
        self.reprs[n] = self.rec.fmt.repr(v)
        self.payloads[n] = fp
        op = None
        old = self.shadow.get(n)
        if blob is not None and type(old) is dict and type(c) is dict:
            op = _patch(old, c, len(blob))
            if op is not None:
                _apply(old, "dict", op[2])
                if pickle.dumps(old, protocol=pickle.HIGHEST_PROTOCOL) != blob:
                    op = None  # == saw equal what pickle does not (1 == 1.0, shared references)
        if op is None:
            if blob is not None and type(c) is dict and len(c) >= PATCH_MIN:
                self.shadow[n] = clone(c)
            else:
                self.shadow.pop(n, None)
            return "set", fp
        return op[0], op[1]

    def _diff_list(self, n: str, v: list, live: list):
        """_diff for a big list (`v`, the copy of the object's list `live`): its
        fingerprint is the pickles of its CHUNK-element slices, so a change is found,
        and located, at the cost of one pickling of the list (no second pickling to
        check a patch). _MISSING when the list cannot be pickled (the general path
        decides)."""
        try:
            dumps = pickle.dumps
            blobs = tuple(
                [
                    dumps(v[i : i + CHUNK], protocol=pickle.HIGHEST_PROTOCOL)
                    for i in range(0, len(v), CHUNK)
                ]
            )
        except BaseException:
            return _MISSING
        prev = self.current.get(n)
        if type(prev) is tuple and prev == blobs:
            return None
        self.current[n] = blobs
        self.reprs[n] = self.rec.fmt.repr(live)
        old = self.shadow.get(n)
        blob = None
        if type(prev) is tuple and type(old) is list:
            try:
                start, end, items = _splice(old, v, prev, blobs)
                blob = pickle.dumps((start, end, items), protocol=pickle.HIGHEST_PROTOCOL)
                fresh = clone(items)
            except Exception:
                blob = None
        if blob is not None:
            old[start:end] = fresh  # the private copy follows, with copies of the new items
            if len(blob) * 2 < sum(map(len, blobs)):
                self.payloads[n] = _FROM_SHADOW
                return "splice", blob
            full = self.payloads[n] = pickle.dumps(old, protocol=pickle.HIGHEST_PROTOCOL)
            return "set", full
        full = self.payloads[n] = pickle.dumps(v, protocol=pickle.HIGHEST_PROTOCOL)
        self.shadow[n] = clone(v)
        return "set", full
