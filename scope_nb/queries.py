"""The query methods of `Trace` as functions of `scope_nb.current()`: `scope_nb.detect_deadlocks()`
is `scope_nb.current().detect_deadlocks()`. Written out (not made in a loop) so that IDEs,
`help()` and type checkers see each one; tests/test_api_contract.py checks that each twin has its
method's signature."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import networkx as nx
    import polars as pl

    from .trace import Trace


def _current(name: str) -> Trace:
    from . import current

    trace = current()
    if trace is None:
        raise RuntimeError(f"scope_nb.{name}: nothing recorded yet; call scope_nb.start() first")
    return trace


def events(kind: str | list[str] | None = None) -> pl.DataFrame:
    """The events frame (columns: scope_nb.schema.EVENTS), optionally of some kinds.
    (`Trace.events` of `scope_nb.current()`.)"""
    return _current("events").events(kind)


def actors() -> pl.DataFrame:
    """(`Trace.actors` of `scope_nb.current()`.)"""
    return _current("actors").actors()


def states() -> pl.DataFrame:
    """(`Trace.states` of `scope_nb.current()`.)"""
    return _current("states").states()


def state_timeline(obj) -> pl.DataFrame:
    """(`Trace.state_timeline` of `scope_nb.current()`.)"""
    return _current("state_timeline").state_timeline(obj)


def message_flow(a, b, both: bool = False) -> pl.DataFrame:
    """(`Trace.message_flow` of `scope_nb.current()`.)"""
    return _current("message_flow").message_flow(a, b, both)


def function_calls(module=None) -> pl.DataFrame:
    """One row per call: function, args, result, exception, duration, depth, parent.
    (`Trace.function_calls` of `scope_nb.current()`.)"""
    return _current("function_calls").function_calls(module)


def get_state_at(obj, ts) -> dict:
    """(`Trace.get_state_at` of `scope_nb.current()`.)"""
    return _current("get_state_at").get_state_at(obj, ts)


def events_between(t0, t1) -> pl.DataFrame:
    """The events from t0 to t1, both included. The window may reach past either end of the trace
    (t1=time.time_ns() after stop() means "from t0 on"), but a window wholly outside it is
    refused: it can only be a wrong time (seconds for ns, another run). (`Trace.events_between`
    of `scope_nb.current()`.)"""
    return _current("events_between").events_between(t0, t1)


def get_events_before(ts, seconds: float = 30) -> pl.DataFrame:
    """The events in the `seconds` up to `ts`, a time in the trace. (`Trace.get_events_before` of
    `scope_nb.current()`.)"""
    return _current("get_events_before").get_events_before(ts, seconds)


def system_snapshot_at(ts):
    """(`Trace.system_snapshot_at` of `scope_nb.current()`.)"""
    return _current("system_snapshot_at").system_snapshot_at(ts)


def analyze_state_change(obj, t0, t1):
    """(`Trace.analyze_state_change` of `scope_nb.current()`.)"""
    return _current("analyze_state_change").analyze_state_change(obj, t0, t1)


def get_crash_events(obj_or_actor=None):
    """(`Trace.get_crash_events` of `scope_nb.current()`.)"""
    return _current("get_crash_events").get_crash_events(obj_or_actor)


def get_messages_to(obj_or_actor, before=None) -> pl.DataFrame:
    """(`Trace.get_messages_to` of `scope_nb.current()`.)"""
    return _current("get_messages_to").get_messages_to(obj_or_actor, before)


def analyze_crash(obj_or_actor=None, ts=None):
    """(`Trace.analyze_crash` of `scope_nb.current()`.)"""
    return _current("analyze_crash").analyze_crash(obj_or_actor, ts)


def interleaved_timeline(actors_or_objects) -> pl.DataFrame:
    """(`Trace.interleaved_timeline` of `scope_nb.current()`.)"""
    return _current("interleaved_timeline").interleaved_timeline(actors_or_objects)


def detect_race_conditions(timeline=None) -> list:
    """(`Trace.detect_race_conditions` of `scope_nb.current()`.)"""
    return _current("detect_race_conditions").detect_race_conditions(timeline)


def analyze_race_condition(a, b, window=None) -> list:
    """(`Trace.analyze_race_condition` of `scope_nb.current()`.)"""
    return _current("analyze_race_condition").analyze_race_condition(a, b, window)


def detect_deadlocks() -> list:
    """(`Trace.detect_deadlocks` of `scope_nb.current()`.)"""
    return _current("detect_deadlocks").detect_deadlocks()


def lock_graph() -> nx.DiGraph:
    """(`Trace.lock_graph` of `scope_nb.current()`.)"""
    return _current("lock_graph").lock_graph()


def detect_stalls(
    *, backlog_depth: int | None = None, backlog_s: float | None = None, wait_s: float | None = None
) -> list:
    """(`Trace.detect_stalls` of `scope_nb.current()`.)"""
    return _current("detect_stalls").detect_stalls(
        backlog_depth=backlog_depth, backlog_s=backlog_s, wait_s=wait_s
    )


def supervision_tree() -> nx.DiGraph:
    """(`Trace.supervision_tree` of `scope_nb.current()`.)"""
    return _current("supervision_tree").supervision_tree()


def process_relationships(actor) -> dict:
    """(`Trace.process_relationships` of `scope_nb.current()`.)"""
    return _current("process_relationships").process_relationships(actor)


def find_processes(type: str | None = None) -> pl.DataFrame:  # noqa: A002 - contract name
    """(`Trace.find_processes` of `scope_nb.current()`.)"""
    return _current("find_processes").find_processes(type)


def performance_hotspots(module=None) -> pl.DataFrame:
    """(`Trace.performance_hotspots` of `scope_nb.current()`.)"""
    return _current("performance_hotspots").performance_hotspots(module)


def performance_analysis(module=None):
    """(`Trace.performance_analysis` of `scope_nb.current()`.)"""
    return _current("performance_analysis").performance_analysis(module)


def call_tree_analysis(module=None):
    """(`Trace.call_tree_analysis` of `scope_nb.current()`.)"""
    return _current("call_tree_analysis").call_tree_analysis(module)


def timing_analysis(module=None) -> pl.DataFrame:
    """(`Trace.timing_analysis` of `scope_nb.current()`.)"""
    return _current("timing_analysis").timing_analysis(module)


def message_queue_analysis() -> pl.DataFrame:
    """(`Trace.message_queue_analysis` of `scope_nb.current()`.)"""
    return _current("message_queue_analysis").message_queue_analysis()


def lock_contention() -> pl.DataFrame:
    """Per lock: acquisitions, how many waited and how long, how long it was held.
    (`Trace.lock_contention` of `scope_nb.current()`.)"""
    return _current("lock_contention").lock_contention()


def memory_analysis(obj_or_actor=None, duration=None):
    """(`Trace.memory_analysis` of `scope_nb.current()`.)"""
    return _current("memory_analysis").memory_analysis(obj_or_actor, duration)


def explore():
    """(`Trace.explore` of `scope_nb.current()`.)"""
    return _current("explore").explore()


def save(path) -> str:
    """(`Trace.save` of `scope_nb.current()`.)"""
    return _current("save").save(path)


def export_perfetto(path) -> str:
    """(`Trace.export_perfetto` of `scope_nb.current()`.)"""
    return _current("export_perfetto").export_perfetto(path)


__all__ = [
    "events",
    "actors",
    "states",
    "state_timeline",
    "message_flow",
    "function_calls",
    "get_state_at",
    "events_between",
    "get_events_before",
    "system_snapshot_at",
    "analyze_state_change",
    "get_crash_events",
    "get_messages_to",
    "analyze_crash",
    "interleaved_timeline",
    "detect_race_conditions",
    "analyze_race_condition",
    "detect_deadlocks",
    "lock_graph",
    "detect_stalls",
    "supervision_tree",
    "process_relationships",
    "find_processes",
    "performance_hotspots",
    "performance_analysis",
    "call_tree_analysis",
    "timing_analysis",
    "message_queue_analysis",
    "lock_contention",
    "memory_analysis",
    "explore",
    "save",
    "export_perfetto",
]
