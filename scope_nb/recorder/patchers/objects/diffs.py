"""Small patches between two structural copies of a value (the recorder's private
copy and the new one): a dict's updated and removed items, a list's one contiguous
changed run. Only the recorder's copies are compared, never the program's objects."""

from __future__ import annotations

import pickle

from .events import CHUNK


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
