"""Edges of bad input: an export or save path of the wrong kind, an unknown object in a
trace with many, and a time after the end of a stopped trace. Each raises an error
naming the argument and what is accepted, and the trace keeps every answer."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
import time

import pytest
from IPython.utils.capture import capture_output
from programs import Box, two_writers

import scope_nb as scope


def _answers(trace):
    """What a bad call must not change."""
    return (
        len(trace),
        trace.get_state_at("box", trace.time_range()[1]),
        trace.state_timeline("box").height,
    )


@pytest.fixture(scope="module")
def stopped():
    return two_writers()


def _no_temp_files(where):
    return [p.name for p in where.rglob("*") if p.name.endswith(".tmp")]


# -- 1. export / save paths of the wrong kind -------------------------------------------------
def test_export_perfetto_to_a_directory_names_path_and_leaves_nothing(stopped, tmp_path):
    trace, _ = stopped
    before = _answers(trace)
    target = tmp_path / "somedir"
    target.mkdir()
    with pytest.raises(
        IsADirectoryError, match=r"path is a directory; accepted: a file path, e.g. .*trace\.json"
    ) as err:
        trace.export_perfetto(target)
    assert str(target) in str(err.value) and ".tmp" not in str(err.value)
    assert list(target.iterdir()) == [] and _no_temp_files(tmp_path) == []
    afile = tmp_path / "afile"
    afile.write_text("mine")
    with pytest.raises(NotADirectoryError, match="afile is not a directory") as err:
        trace.export_perfetto(afile / "out.json")
    assert ".tmp" not in str(err.value) and afile.read_text() == "mine"
    assert _answers(trace) == before
    assert (tmp_path / "ok.json").name in trace.export_perfetto(tmp_path / "ok.json")


def test_cli_export_to_a_directory_is_one_clear_line(stopped, tmp_path):
    trace, _ = stopped
    trace.save(tmp_path / "T")
    (tmp_path / "somedir").mkdir()
    r = subprocess.run(
        [sys.executable, "-m", "scope_nb", "export", "T", "--perfetto", "somedir"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 3
    assert r.stderr.strip().count("\n") == 0 and "somedir: path is a directory" in r.stderr, (
        r.stderr
    )
    assert ".tmp" not in r.stderr and _no_temp_files(tmp_path) == []


def test_save_over_a_file_or_a_foreign_directory_names_path(stopped, tmp_path):
    trace, _ = stopped
    before = _answers(trace)
    afile = tmp_path / "trace.json"
    afile.write_text("mine")
    with pytest.raises(
        FileExistsError, match="path is an existing file; accepted: a new or empty directory"
    ):
        trace.save(afile)
    assert afile.read_text() == "mine"
    notes = tmp_path / "notes"
    notes.mkdir()
    for i in range(20):
        (notes / f"n{i:02}.txt").write_text("mine")
    with pytest.raises(
        FileExistsError,
        match=r"path is a directory holding other files \(n00\.txt.*\+\d+ more\); "
        r"accepted: a new or empty directory",
    ) as err:
        trace.save(notes)
    assert "n19.txt" not in str(err.value)
    other = tmp_path / "other"
    other.mkdir()
    (other / "metadata.json").write_text("{}")
    with pytest.raises(
        ValueError, match="path is a directory that is not a saved trace .*accepted: a new or empty"
    ):
        trace.save(other)
    assert (other / "metadata.json").read_text() == "{}" and len(list(notes.iterdir())) == 20
    assert _no_temp_files(tmp_path) == [] and _answers(trace) == before


# -- 2. unknown objects in a trace with many ------------------------------------------------------
def test_unknown_object_lists_a_few_names_and_how_many_more():
    boxes = [Box() for _ in range(150)]
    with scope.record() as trace:
        for i, b in enumerate(boxes):
            scope.trace_object(b, f"box{i:03}")
        gate = threading.Barrier(11)

        def worker(b):
            gate.wait()
            b.n += 1

        threads = [
            threading.Thread(target=worker, args=(b,), name=f"w{i}")
            for i, b in enumerate(boxes[:10])
        ]
        for t in threads:
            t.start()
        gate.wait()
        for t in threads:
            t.join()
    for call in (
        lambda: trace.state_timeline("nope"),
        lambda: trace.get_state_at(Box(), trace.time_range()[1]),
    ):
        with pytest.raises(
            ValueError, match=r"^obj: .*box000, box001, .*, \.\.\. \+142 more$"
        ) as err:
            call()
        assert "box149" not in str(err.value) and len(str(err.value)) < 300
    with pytest.raises(
        ValueError, match=r"^actor: no actor named or with id 'nope'; known: .*\.\.\. \+\d+ more$"
    ):
        trace.resolve_actor("nope")
    assert trace.get_state_at(boxes[0], trace.time_range()[1]) == {"n": 1}


# -- 3. times after the end of a stopped trace -------------------------------------------------
def _after_end(trace):
    # a minute after the last event: stop() was long before
    return trace.time_range()[1] + 60 * 10**9


def test_moments_after_the_end_of_a_stopped_trace_are_refused(stopped):
    trace, box = stopped
    before = _answers(trace)
    hi = trace.time_range()[1]
    first = trace.state_timeline(box)["ts"][0]
    late = _after_end(trace)
    calls = [
        ("ts", lambda t: trace.get_state_at(box, t)),
        ("ts", lambda t: trace.system_snapshot_at(t)),
        ("ts", lambda t: trace.get_events_before(t)),
        ("t1", lambda t: trace.analyze_state_change(box, first, t)),
    ]
    for name, call in calls:
        for t in (late, dt.datetime.fromtimestamp(late / 1e9 + 86400), late / 1e9):
            with pytest.raises(
                ValueError,
                match=rf"^{name}=\d+ is after the trace ends \(\d+\); accepted: a time "
                r"between \d+ and \d+ \(epoch ns\)",
            ):
                call(t)
    # the last moment of the trace is inside it
    assert trace.get_state_at(box, hi) == {"n": 2}
    assert trace.system_snapshot_at(hi).objects["box"] == {"n": 2}
    assert trace.get_events_before(hi).height == len(trace)
    assert trace.analyze_state_change(box, first, hi).changed == {"n": (0, 2)}
    assert _answers(trace) == before


def test_events_between_takes_an_open_upper_bound_but_not_a_window_after_the_end(stopped):
    trace, _ = stopped
    lo, _ = trace.time_range()
    late = _after_end(trace)
    assert trace.events_between(lo, late).height == len(trace)  # "from lo on"
    assert trace.events_between(lo - 10**9, late).height == len(trace)
    with pytest.raises(
        ValueError, match=r"^t0=\d+ is after the trace ends .*holds nothing the trace saw; accepted"
    ):
        trace.events_between(late, late + 10**9)
    with pytest.raises(ValueError, match=r"^t1=\d+ is before the trace starts"):
        trace.events_between(lo - 120 * 10**9, lo - 60 * 10**9)
    with pytest.raises(ValueError, match="t1 .* is before t0"):
        trace.events_between(late, lo)


def test_a_loaded_trace_refuses_times_after_its_end_too(stopped, tmp_path):
    trace, _ = stopped
    loaded = scope.load(trace.save(tmp_path / "t"))
    lo, hi = loaded.time_range()
    late = _after_end(loaded)
    with pytest.raises(ValueError, match=r"^ts=\d+ is after the trace ends"):
        loaded.get_state_at("box", late)
    with pytest.raises(ValueError, match=r"^ts=\d+ is after the trace ends"):
        loaded.get_events_before(late)
    with pytest.raises(ValueError, match=r"^t0=\d+ is after the trace ends"):
        loaded.events_between(late, late)
    assert (
        loaded.events_between(lo, late).height == loaded.get_events_before(hi).height == len(trace)
    )
    assert loaded.get_state_at("box", hi) == {"n": 2}  # untrusted: typed values, nothing unpickled


def test_a_live_trace_answers_for_now():
    box = Box()
    with scope.record() as trace:
        scope.trace_object(box, "box")
        wrote = threading.Event()

        def worker():
            box.n = 7
            wrote.set()

        t = threading.Thread(target=worker, name="worker")
        t.start()
        wrote.wait()
        t.join()
        # later than any event: while recording, that is still now
        now = time.time_ns() + 60 * 10**9
        assert trace.get_state_at(box, now) == {"n": 7}
        assert trace.system_snapshot_at(now).objects["box"] == {"n": 7}
        assert trace.events_between(trace.time_range()[0], now).height == len(trace)
    with pytest.raises(ValueError, match="is after the trace ends"):
        trace.get_state_at(box, now)


def test_explorer_seeks_to_the_very_end_but_not_past_it(stopped):
    from scope_nb.notebook.explorer import Explorer

    trace, _ = stopped
    hi = trace.time_range()[1]
    ex = Explorer(trace, at=hi, obj="box")
    assert ex.cursor_ts == hi and "<code>2</code>" in ex.state_panel.value
    ex.seek(trace.time_range()[0])
    ex.seek(hi)
    assert ex.cursor_ts == hi
    with pytest.raises(ValueError, match="ts=.* is after the trace ends"):
        ex.seek(_after_end(trace))
    assert ex.cursor_ts == hi


def test_postmortem_of_a_cell_that_stopped_the_recording_then_raised_keeps_the_states(ip):
    ip.user_ns.update(scope_nb=scope, Box=Box)
    with capture_output():
        result = ip.run_cell(
            "%%scope --quiet\nbox = scope_nb.trace_object(Box(), 'box')\nbox.n = 5\n"
            "scope_nb.stop()\nraise KeyError('after stop')\n"
        )
    assert isinstance(result.error_in_exec, KeyError)
    report = ip.run_line_magic("scope", "postmortem")
    assert report.states() == {
        "box": {"n": 5}
    }  # the failure came after the end: the states at the end
