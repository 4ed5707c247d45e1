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


def as_ns(t, name: str = "ts") -> int:
    """A time argument (epoch ns int, datetime, or float epoch seconds) as epoch ns."""
    if isinstance(t, bool):
        raise TypeError(f"{name} must be epoch ns (int), a datetime or epoch seconds (float); got bool")
    if isinstance(t, int):
        return t
    if isinstance(t, float):
        return int(t * 1e9)
    if isinstance(t, _dt.datetime):
        if t.tzinfo is None:
            t = t.astimezone()
        return int(t.timestamp() * 1e9)
    raise TypeError(
        f"{name} must be epoch ns (int), a datetime or epoch seconds (float); got {type(t).__name__} {t!r}"
    )


def as_duration_ns(d, name: str = "seconds") -> int:
    """A duration (seconds as a number, or a timedelta) as ns."""
    if isinstance(d, bool):
        raise TypeError(f"{name} must be seconds (a number) or a timedelta; got bool")
    if isinstance(d, int | float):
        if d < 0:
            raise ValueError(f"{name} must not be negative; got {d}")
        return int(d * 1e9)
    if isinstance(d, _dt.timedelta):
        return int(d.total_seconds() * 1e9)
    raise TypeError(f"{name} must be seconds (a number) or a timedelta; got {type(d).__name__} {d!r}")
