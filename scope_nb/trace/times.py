"""Times a Trace saw: its range, and the checks that refuse a moment or a window it
cannot have seen (seconds given for nanoseconds, another run's times)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import clock
from .base import TraceBase

if TYPE_CHECKING:
    pass


class TimeWindows(TraceBase):
    """The moments a trace saw, and the refusal of those it cannot have seen."""

    def time_range(self) -> tuple[int, int]:
        import polars as pl

        if self._source.whole:
            ev = self.events()
            lo, hi = (ev["ts"].min(), ev["ts"].max()) if ev.height else (None, None)
        else:
            lo, hi = (
                self.events_lazy()
                .select(pl.col("ts").min(), pl.col("ts").max().alias("hi"))
                .collect()
                .row(0)
            )
        if lo is None:
            start = self.meta.get("started") or clock.now()
            return start, self.meta.get("stopped") or start
        return int(lo), int(hi)

    def _span(self) -> tuple[int, int | None]:
        """The times the trace saw, as epoch ns: from start() (or its first event, if
        earlier) to stop() (or its last event, if later). The end is None while it
        records: any later time is now, not a time it missed."""
        lo, hi = self.time_range()
        meta = self._recorder_meta() if self._rec is not None else self.meta
        start = min(lo, meta.get("started") or lo)
        return start, None if self.live else max(hi, meta.get("stopped") or hi)

    def _time_in_trace(self, ts, name: str) -> int:
        """A moment the trace must have seen: a state or a snapshot at any other time
        would be a guess."""
        t = clock.as_ns(ts, name)
        start, end = self._span()
        if t < start:
            raise ValueError(
                f"{name}={t} is before the trace starts ({start}); {_accepted(start, end)}"
            )
        if end is not None and t > end:
            raise ValueError(f"{name}={t} is after the trace ends ({end}); {_accepted(start, end)}")
        return t

    def _window_in_trace(self, t0, t1) -> tuple[int, int]:
        """The bounds of a window as epoch ns, refused when the window holds no time the
        trace saw (one reaching past an end of the trace is cut there)."""
        a, b = clock.as_ns(t0, "t0"), clock.as_ns(t1, "t1")
        start, end = self._span()
        if a <= b and b < start:
            raise ValueError(
                f"t1={b} is before the trace starts ({start}): the window holds nothing "
                f"the trace saw; {_accepted(start, end)}"
            )
        if a <= b and end is not None and a > end:
            raise ValueError(
                f"t0={a} is after the trace ends ({end}): the window holds nothing "
                f"the trace saw; {_accepted(start, end)}"
            )
        return a, b


def _accepted(start: int, end: int | None) -> str:
    span = f"from {start} on" if end is None else f"between {start} and {end}"
    return f"accepted: a time {span} (epoch ns), a datetime, or epoch seconds"
