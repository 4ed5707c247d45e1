"""The Trace's queries of calls and time: windows of events, function calls, hotspots,
call trees, timings and memory."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import clock
from .times import TimeWindows

if TYPE_CHECKING:
    import polars as pl


class CallQueries(TimeWindows):
    """Calls, timings and memory."""

    def events_between(self, t0, t1) -> pl.DataFrame:
        """The events from t0 to t1, both included. The window may reach past either end of
        the trace (t1=time.time_ns() after stop() means "from t0 on"), but a window wholly
        outside it is refused: it can only be a wrong time (seconds for ns, another run)."""
        import polars as pl

        from ..analysis.common import events_between

        a, b = self._window_in_trace(t0, t1)
        if self._source.whole:
            return events_between(self.events(), a, b)
        return events_between(self._subset(pl.col("ts").is_between(a, b)).events(), a, b)

    def get_events_before(self, ts, seconds: float = 30) -> pl.DataFrame:
        """The events in the `seconds` up to `ts`, a time in the trace."""
        import polars as pl

        from ..analysis.common import events_between

        t1 = self._time_in_trace(ts, "ts")
        t0 = t1 - clock.as_duration_ns(seconds)
        if self._source.whole:
            return events_between(self.events(), t0, t1)
        return events_between(self._subset(pl.col("ts").is_between(t0, t1)).events(), t0, t1)

    def function_calls(self, module=None) -> pl.DataFrame:
        """One row per call: function, args, result, exception, duration, depth, parent."""
        from ..analysis.calls import function_calls

        name = self._module(module)
        if self._source.whole:
            return function_calls(self.events(), name)
        return function_calls(self._calls(name).events(), name)  # only that module's calls are read

    def interleaved_timeline(self, actors_or_objects) -> pl.DataFrame:
        from ..analysis.common import interleaved_timeline

        return interleaved_timeline(self, actors_or_objects)

    def performance_hotspots(self, module=None) -> pl.DataFrame:
        """Per function: count, total/self/mean time, p50/p95/max, exceptions; most self
        time first. A recording whose frames are not built answers from its buffers'
        per-function statistics (model.call_stats): the same answer, without the frame."""
        from ..analysis.performance import hotspots_from_stats, performance_hotspots

        stats = self._call_stats()
        if stats is not None:
            return hotspots_from_stats(stats, self._module(module, stats))
        name = self._module(module)
        return performance_hotspots(
            self.events() if self._source.whole else self.events_lazy(), name
        )

    def performance_analysis(self, module=None):
        from ..analysis.performance import performance_analysis

        return performance_analysis(self.events(), self._module(module))

    def call_tree_analysis(self, module=None):
        from ..analysis.performance import call_tree_analysis

        return call_tree_analysis(self.events(), self._module(module))

    def timing_analysis(self, module=None) -> pl.DataFrame:
        from ..analysis.performance import timing_analysis

        name = self._module(module)
        return timing_analysis(
            (self if self._source.whole else self._calls(light=True)).events(), name
        )

    def memory_analysis(self, obj_or_actor=None, duration=None):
        from ..analysis.memory import memory_analysis

        return memory_analysis(
            self,
            obj_or_actor,
            clock.as_duration_ns(duration, "duration") if duration is not None else None,
        )
