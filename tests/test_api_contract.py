"""The public API of ../shared/API.md, name for name: every function of the module and
every query of the Trace exists, with the keyword arguments the contract shows, and
every query is also callable at module level on the current trace."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import scope_nb as scope
from scope_nb.trace import Trace

MODULE = [
    "start",
    "stop",
    "record",
    "trace_object",
    "trace_module",
    "trace_process",
    "trace_all_processes",
    "trace_lock",
    "current",
    "load",
]
QUERIES = {
    "events": ["kind"],
    "actors": [],
    "states": [],
    "state_timeline": ["obj"],
    "message_flow": ["a", "b", "both"],
    "function_calls": ["module"],
    "get_state_at": ["obj", "ts"],
    "events_between": ["t0", "t1"],
    "get_events_before": ["ts", "seconds"],
    "system_snapshot_at": ["ts"],
    "analyze_state_change": ["obj", "t0", "t1"],
    "get_crash_events": ["obj_or_actor"],
    "get_messages_to": ["obj_or_actor", "before"],
    "analyze_crash": ["obj_or_actor", "ts"],
    "interleaved_timeline": ["actors_or_objects"],
    "detect_race_conditions": ["timeline"],
    "analyze_race_condition": ["a", "b", "window"],
    "detect_deadlocks": [],
    "lock_graph": [],
    "detect_stalls": [],
    "supervision_tree": [],
    "process_relationships": ["actor"],
    "find_processes": ["type"],
    "performance_hotspots": ["module"],
    "performance_analysis": ["module"],
    "call_tree_analysis": ["module"],
    "timing_analysis": ["module"],
    "message_queue_analysis": [],
    "memory_analysis": ["obj_or_actor", "duration"],
    "explore": [],
    "save": ["path"],
    "export_perfetto": ["path"],
}
START_OPTIONS = [
    "storage",
    "max_events",
    "sample_rate",
    "tracing_level",
    "persist_to_disk",
    "persist_path",
    "auto_cleanup",
]


@pytest.mark.parametrize("name", MODULE)
def test_module_functions(name):
    assert callable(getattr(scope, name))


@pytest.mark.parametrize("name, params", sorted(QUERIES.items()))
def test_trace_queries_and_their_module_level_twins(name, params):
    method = getattr(Trace, name)
    assert list(inspect.signature(method).parameters)[1 : len(params) + 1] == params
    assert callable(getattr(scope, name))


def test_start_accepts_every_contract_option(tmp_path):
    from scope_nb.config import Options

    fields = set(Options.__dataclass_fields__)
    assert set(START_OPTIONS) <= fields
    trace = scope.start(
        storage="memory",
        max_events=10,
        sample_rate=1.0,
        tracing_level="minimal",
        persist_to_disk=False,
        persist_path=None,
        auto_cleanup=True,
    )
    assert scope.current() is trace
    assert isinstance(scope.stop(), Trace)


def test_module_level_queries_need_a_trace():
    done = subprocess.run(
        [sys.executable, "-c", "import scope_nb; scope_nb.events()"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "RuntimeError: scope_nb.events: nothing recorded yet" in done.stderr


def test_each_module_level_twin_is_written_out_with_its_methods_signature():
    import inspect

    from scope_nb import queries
    from scope_nb.trace import Trace

    for name in queries.__all__:
        twin, method = getattr(scope, name), getattr(Trace, name)
        assert twin.__module__ == "scope_nb.queries", name  # a def IDEs and help() can see
        params = list(inspect.signature(method).parameters.values())[1:]
        assert inspect.signature(twin) == inspect.signature(method).replace(parameters=params), name
        assert f"`Trace.{name}`" in twin.__doc__
