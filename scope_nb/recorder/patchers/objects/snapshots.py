"""Snapshots of a traced object's state: each change becomes a states row (keyframes
plus diffs, see the package docstring) and a `state` event."""

from __future__ import annotations

import pickle
from typing import Any

from .... import clock
from ....values import REDACTED
from .diffs import AttributeDiffs
from .events import _FROM_SHADOW, _K_STATE, _MISSING, KEYFRAME_EVERY, _push


class Snapshots(AttributeDiffs):
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
