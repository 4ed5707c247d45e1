"""The Trace's queries of actors: who started whom, processes, messages between them,
and crashes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import clock
from .base import TraceBase

if TYPE_CHECKING:
    import networkx as nx
    import polars as pl


class ActorQueries(TraceBase):
    """Actors, their messages and their crashes."""

    def resolve_actor(self, actor) -> str:
        """An actor argument (Thread, Task, pid, actor id, unique name) as an actor id."""
        from ..analysis.common import resolve_actor

        return resolve_actor(self, actor)

    def supervision_tree(self) -> nx.DiGraph:
        from ..analysis.actors import supervision_tree
        from ..notebook.graphs import SupervisionTree  # a DiGraph that draws itself when displayed

        return SupervisionTree(supervision_tree(self.actors(), self.events()))

    def process_relationships(self, actor) -> dict:
        from ..analysis.actors import process_relationships

        return process_relationships(self.actors(), self.events(), self.resolve_actor(actor))

    def find_processes(self, type: str | None = None) -> pl.DataFrame:  # noqa: A002 - contract name
        from ..analysis.actors import find_processes

        return find_processes(self.actors(), type)

    def message_flow(self, a, b, both: bool = False) -> pl.DataFrame:
        from ..analysis.messages import message_flow

        return message_flow(self.events(), self.resolve_actor(a), self.resolve_actor(b), both=both)

    def get_messages_to(self, obj_or_actor, before=None) -> pl.DataFrame:
        from ..analysis.messages import get_messages_to

        before_ns = clock.as_ns(before, "before") if before is not None else None
        return get_messages_to(self, obj_or_actor, before_ns)

    def message_queue_analysis(self) -> pl.DataFrame:
        from ..analysis.messages import message_queue_analysis

        return message_queue_analysis(self._only_kinds("send", "receive"))

    def get_crash_events(self, obj_or_actor=None):
        from ..analysis.crashes import get_crash_events

        return get_crash_events(self, obj_or_actor)

    def analyze_crash(self, obj_or_actor=None, ts=None):
        from ..analysis.crashes import analyze_crash

        return analyze_crash(self, obj_or_actor, clock.as_ns(ts, "ts") if ts is not None else None)
