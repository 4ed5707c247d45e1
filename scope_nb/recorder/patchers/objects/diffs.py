"""Small patches between two structural copies of a value (the recorder's private
copy and the new one): a dict's updated and removed items, a list's one contiguous
changed run; and how one attribute's change since the last snapshot is told
(`AttributeDiffs._diff`). Only the recorder's copies are compared, never the program's
objects."""

from __future__ import annotations

import pickle
from typing import Any

from ....values import ATOMIC, REDACTED, Unpicklable, clone, copy_value
from .events import _FROM_SHADOW, _MISSING, CHUNK, PATCH_MIN


def _patch(old: dict, new: dict, full_size: int):
    """("dict", blob, (updated, removed)): a small op turning `old` (the private copy of
    a dict) into `new` (a copy too, so == compares the recorder's copies, never the
    program's objects), or None when storing the whole value is as good. (Big lists go
    through _splice.)"""
    upd = {k: v for k, v in new.items() if k not in old or not (old[k] is v or old[k] == v)}
    rem = [k for k in old if k not in new]
    try:
        blob = pickle.dumps((upd, rem), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        return None
    return ("dict", blob, (upd, rem)) if len(blob) * 2 < full_size else None


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


class AttributeDiffs:
    """The change of one attribute since the last snapshot, as (op, payload): part of
    `Snapshots`, whose snapshot fields (`current`, `shadow`, `payloads`, `reprs`,
    `mutable`) it reads and updates."""

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
