"""What the traced objects' hooks share: the constants of the state history, the
buffer codes of the events they push without `Recorder.emit`, and where an event
comes from (the first frame outside scope_nb)."""

from __future__ import annotations

import _thread
import sys
from typing import Any

from .... import clock
from ....schema import KIND_CODE
from ....values import REDACTED
from ... import session
from ...buffer import KIND_BITS, RICH
from ...sites import is_recorder_file

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


def _short(rec, attr: str, value: Any) -> str:
    return REDACTED if rec.fmt.is_secret(attr) else rec.fmt.repr(value)


def _args(rec, fn, args: tuple, kwargs: dict):
    """The call's arguments with secret parameters redacted."""
    code = getattr(fn, "__code__", None)
    names = code.co_varnames[1 : code.co_argcount] if code is not None else ()
    is_secret = rec.fmt.is_secret
    pos = tuple(
        REDACTED if i < len(names) and is_secret(names[i]) else a for i, a in enumerate(args)
    )
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
