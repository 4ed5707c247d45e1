"""The time base: `perf_counter_ns` on the hot path, mapped to Unix-epoch
nanoseconds with an offset taken once, so traces of several processes share one axis."""

from __future__ import annotations

import datetime as _dt
import time

perf_ns = time.perf_counter_ns


def take_offset() -> int:
    """Epoch ns minus perf ns, sampled around one perf read to halve the error."""
    a = time.perf_counter_ns()
    wall = time.time_ns()
    b = time.perf_counter_ns()
    return wall - (a + b) // 2


OFFSET = take_offset()


def to_epoch(perf: int) -> int:
    return perf + OFFSET


def now() -> int:
    """Now, in epoch ns."""
    return time.perf_counter_ns() + OFFSET


INT64_MAX = 2**63 - 1  # the ts column is Int64
_TIME = "epoch ns (int), a datetime or epoch seconds (float)"


def as_ns(t, name: str = "ts") -> int:
    """A time argument (epoch ns int, datetime, or float epoch seconds) as epoch ns."""
    if isinstance(t, bool) or not isinstance(t, int | float | _dt.datetime):
        got = "bool" if isinstance(t, bool) else f"{type(t).__name__} {t!r}"
        raise TypeError(f"{name} must be {_TIME}; got {got}")
    try:
        if isinstance(t, int):
            ns = t
        elif isinstance(t, float):
            ns = int(t * 1e9)
        else:
            ns = int((t if t.tzinfo is not None else t.astimezone()).timestamp() * 1e9)
    except (OverflowError, ValueError):  # nan, inf, a datetime at the edge of the calendar
        ns = None
    if ns is None or abs(ns) > INT64_MAX:
        raise ValueError(
            f"{name}={t!r} is not a time a trace can hold; accepted: {_TIME} within the int64 ns "
            "range"
        )
    return ns


def as_duration_ns(d, name: str = "seconds") -> int:
    """A duration (seconds as a number, or a timedelta) as ns; one longer than the
    int64 ns range (e.g. math.inf) means unbounded and is capped to it."""
    if isinstance(d, bool) or not isinstance(d, int | float | _dt.timedelta):
        got = "bool" if isinstance(d, bool) else f"{type(d).__name__} {d!r}"
        raise TypeError(f"{name} must be seconds (a number) or a timedelta; got {got}")
    seconds = d.total_seconds() if isinstance(d, _dt.timedelta) else d
    if not seconds >= 0:  # also catches nan
        raise ValueError(f"{name} must be a non-negative number of seconds or timedelta; got {d!r}")
    return INT64_MAX if seconds * 1e9 >= INT64_MAX else int(seconds * 1e9)
