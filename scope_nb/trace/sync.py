"""The Trace's detectors of synchronisation: lock contention, races, deadlocks and the
lock-order graph, stalls."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import clock
from .base import TraceBase

if TYPE_CHECKING:
    import networkx as nx
    import polars as pl


class SyncQueries(TraceBase):
    """Locks, races, deadlocks and stalls."""

    def lock_contention(self) -> pl.DataFrame:
        """Per lock: acquisitions, how many waited and how long, how long it was held."""
        from ..analysis.contention import lock_contention

        return lock_contention(
            self._only_kinds("lock_wait", "lock_acquire", "lock_release", "lock_timeout")
        )

    def detect_race_conditions(self, timeline=None) -> list:
        from ..analysis.races import detect_race_conditions

        return detect_race_conditions(self.events(), self.actors(), timeline=timeline)

    def analyze_race_condition(self, a, b, window=None) -> list:
        """The races detect_race_conditions() reports between actors a and b, within
        `window` seconds of each other (None: anywhere in the run)."""
        from ..analysis.races import analyze_race_condition

        return analyze_race_condition(
            self, a, b, None if window is None else clock.as_duration_ns(window, "window")
        )

    def detect_deadlocks(self) -> list:
        from ..analysis.deadlocks import detect_deadlocks

        return detect_deadlocks(self.events(), self.actors())

    def lock_graph(self) -> nx.DiGraph:
        from ..analysis.deadlocks import lock_graph
        from ..notebook.graphs import LockGraph  # a DiGraph that draws itself when displayed

        return LockGraph(lock_graph(self.events()))

    def detect_stalls(
        self,
        *,
        backlog_depth: int | None = None,
        backlog_s: float | None = None,
        wait_s: float | None = None,
    ) -> list:
        """Blocked loops, lost tasks, unretrieved exceptions, hangs, orphaned queues and
        backlogs that hurt: a queue at least `backlog_depth` deep (default 32) left
        non-empty at the end, that deep for longer than `backlog_s` (default 1 s), or
        keeping a message waiting longer than `wait_s` (default 1 s)."""
        from ..analysis.stalls import KINDS_READ, detect_stalls

        given = {"backlog_depth": backlog_depth, "backlog_s": backlog_s, "wait_s": wait_s}
        return detect_stalls(
            self._only_kinds(*KINDS_READ, ends=True),
            self.actors(),
            **{k: v for k, v in given.items() if v is not None},
        )
