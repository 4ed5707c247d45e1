"""The Trace's queries of traced objects' state: timelines, the state at a moment, what
changed it, and a whole-system snapshot."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .times import TimeWindows

if TYPE_CHECKING:
    import polars as pl


class StateQueries(TimeWindows):
    """Traced objects' states."""

    def resolve_object(self, obj) -> str:
        from ..analysis.common import resolve_object

        return resolve_object(self, obj)

    def state_timeline(self, obj) -> pl.DataFrame:
        from ..analysis.states import state_timeline

        return state_timeline(self.states(), self.resolve_object(obj))

    def get_state_at(self, obj, ts) -> dict:
        from ..analysis.states import get_state_at

        return get_state_at(
            self.states(),
            self.resolve_object(obj),
            self._time_in_trace(ts, "ts"),
            trusted=self.meta.get("trusted", True),
        )

    def analyze_state_change(self, obj, t0, t1):
        from ..analysis.labels import labels_of
        from ..analysis.states import analyze_state_change

        return analyze_state_change(
            self.states(),
            self.events(),
            self.resolve_object(obj),
            self._time_in_trace(t0, "t0"),
            self._time_in_trace(t1, "t1"),
            trusted=self.meta.get("trusted", True),
            labels=labels_of(self.actors(), self.events()),
        )

    def system_snapshot_at(self, ts):
        from ..analysis.states import system_snapshot_at

        return system_snapshot_at(self, self._time_in_trace(ts, "ts"))
