"""Recording beside other tools that watch the same program: a profiler (cProfile, a
sys.monitoring tool on 3.12+), coverage.py (its sys.monitoring core and its trace
function), and a tool id the program registers itself. Each must see what it sees
without the recorder, before, during and after a recording, and the recorder must
see its calls; stopping must leave the other tools' hooks and events as they were."""

import cProfile
import pstats
import sys
import threading

import calls_sample as cs
import pytest

import scope_nb as scope

needs_monitoring = pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring is 3.12+")


def _fib_calls(prof: cProfile.Profile) -> int:
    stats = pstats.Stats(prof).stats
    return sum(
        calls
        for (file, _, name), (_, calls, *_rest) in stats.items()
        if name == "fib" and file.endswith("calls_sample.py")
    )


def _traced_fib_calls(trace) -> int:
    return trace.function_calls().filter(function="fib").height


def test_cprofile_around_a_recording_counts_every_call():
    """On 3.11 cProfile holds the profile hook the recorder would need: the recorder
    leaves it alone and says so in trace.errors (its calls are not recorded)."""
    prof = cProfile.Profile()
    prof.enable()
    try:
        cs.fib(8)  # 67 calls
        with scope.record(modules=[cs]) as trace:
            cs.fib(8)
        cs.fib(8)
    finally:
        prof.disable()
    assert _fib_calls(prof) == 3 * 67
    if sys.version_info >= (3, 12):
        assert _traced_fib_calls(trace) == 67 and trace.errors == {}
    else:
        assert _traced_fib_calls(trace) == 0
        assert trace.errors == {"calls not recorded: a C profiler holds the profile hook": 1}


def test_a_recording_around_cprofile():
    """The profiler is switched on and off while recording. On 3.11 both use the profile
    hook: cProfile takes it (and drops it when disabled), so the recorder misses that
    thread's later calls; trace.errors says so, nothing is raised."""
    prof = cProfile.Profile()
    with scope.record(modules=[cs]) as trace:
        cs.fib(6)  # 25 calls
        prof.enable()
        cs.fib(6)
        prof.disable()
        cs.fib(6)
    assert _fib_calls(prof) == 25
    if sys.version_info >= (3, 12):
        assert _traced_fib_calls(trace) == 3 * 25 and trace.errors == {}
    else:
        assert _traced_fib_calls(trace) == 25
        assert trace.errors == {"calls missed: the program replaced the profile hook": 1}


@pytest.mark.parametrize("core", ["sysmon", "ctrace"])
def test_coverage_measures_the_same_lines_while_recording(core, tmp_path, monkeypatch):
    coverage = pytest.importorskip("coverage")
    if core == "sysmon" and sys.version_info < (3, 12):
        pytest.skip("coverage's sys.monitoring core is 3.12+")
    monkeypatch.setenv("COVERAGE_CORE", core)

    def measured(record: bool) -> set[int]:
        cov = coverage.Coverage(data_file=str(tmp_path / f"cov-{record}"), include=[cs.__file__])
        cov.start()
        try:
            if record:
                with scope.record(modules=[cs]) as trace:
                    cs.fib(5)
                    list(cs.countdown(3))
                assert _traced_fib_calls(trace) == 15
                # on 3.11 the recorder reads exceptions with a trace function: with
                # coverage's, it records exceptions by type only, and says so
                assert trace.errors == (
                    {}
                    if core == "sysmon" or sys.version_info >= (3, 12)
                    else {"exception values unavailable: another trace function is installed": 1}
                )
            else:
                cs.fib(5)
                list(cs.countdown(3))
        finally:
            cov.stop()
        return set(cov.get_data().lines(cs.__file__) or ())

    without, under = measured(False), measured(True)
    assert without and under == without


@needs_monitoring
def test_the_programs_own_monitoring_tool_keeps_its_events():
    mon = sys.monitoring
    tool = mon.DEBUGGER_ID
    assert mon.get_tool(tool) is None
    seen: list[str] = []

    def on_start(code, offset):
        if code is cs.echo.__code__:
            seen.append(threading.current_thread().name)

    mon.use_tool_id(tool, "the program's debugger")
    try:
        mon.register_callback(tool, mon.events.PY_START, on_start)
        mon.set_local_events(tool, cs.echo.__code__, mon.events.PY_START)
        cs.echo(1)
        with scope.record(modules=[cs]) as trace:
            cs.echo(2)
            assert mon.get_tool(tool) == "the program's debugger"
        cs.echo(3)
        assert mon.get_local_events(tool, cs.echo.__code__) == mon.events.PY_START
        assert mon.get_tool(tool) == "the program's debugger"
    finally:
        mon.set_local_events(tool, cs.echo.__code__, 0)
        mon.register_callback(tool, mon.events.PY_START, None)
        mon.free_tool_id(tool)
    assert seen == ["MainThread"] * 3
    assert trace.function_calls().filter(function="echo")["args"].to_list() == ["value=2"]
    assert "scope_nb" not in [mon.get_tool(i) for i in range(6)]


@needs_monitoring
def test_every_tool_id_taken_is_a_clear_error_and_changes_nothing():
    mon = sys.monitoring
    taken = [i for i in range(6) if mon.get_tool(i) is None]
    for i in taken:
        mon.use_tool_id(i, f"tool {i}")
    try:
        with pytest.raises(RuntimeError, match="every sys.monitoring tool id is taken"):
            scope.start(modules=[cs])
        assert not scope.is_recording()
        assert [mon.get_tool(i) for i in taken] == [f"tool {i}" for i in taken]
    finally:
        for i in taken:
            mon.free_tool_id(i)
    with scope.record(modules=[cs]) as trace:  # and recording works again
        cs.echo(1)
    assert trace.function_calls().height == 1


@needs_monitoring
def test_another_tools_disabled_events_stay_disabled_across_recordings():
    """sys.monitoring.restart_events() re-arms every tool's DISABLEd events: a recording
    that disabled nothing (a module traced, local events) must not call it, or the other
    tool (coverage's sysmon core disables each line after its first hit) runs again."""
    mon = sys.monitoring
    tool = mon.DEBUGGER_ID
    hits: list[int] = []

    def on_line(code, line):
        hits.append(line)
        return mon.DISABLE

    mon.use_tool_id(tool, "a line counter")
    try:
        mon.register_callback(tool, mon.events.LINE, on_line)
        mon.set_local_events(tool, cs.echo.__code__, mon.events.LINE)
        cs.echo(1)
        first = len(hits)
        for _ in range(2):  # the second recording finds its tool id used before
            with scope.record(modules=[cs]) as trace:
                cs.echo(2)
            assert trace.function_calls().height == 1
        cs.echo(3)
    finally:
        mon.set_local_events(tool, cs.echo.__code__, 0)
        mon.register_callback(tool, mon.events.LINE, None)
        mon.free_tool_id(tool)
    assert first >= 1 and len(hits) == first
