"""Bad input and faults around the notebook layer and the CLI: wrong magic arguments,
cells that fail or stop the recording themselves, explorer / chart arguments out of
range, and CLI options or trace directories that cannot be used."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest
from cells import run
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output
from programs import two_writers

import scope_nb
from scope_nb.notebook import charts
from scope_nb.notebook.explorer import Explorer


def cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "scope_nb", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


# -- %%scope / %scope arguments ---------------------------------------------------------------
def test_unclosed_quote_is_a_usage_error(ip):
    ip.user_ns.pop("ran", None)
    with pytest.raises(UsageError, match="No closing quotation"):
        ip.run_cell_magic("scope", "-o 'oops", "ran = True\n")
    with pytest.raises(UsageError, match="No closing quotation"):
        ip.run_line_magic("scope", "load 'oops")
    assert "ran" not in ip.user_ns and not scope_nb.is_recording()


@pytest.mark.parametrize(
    "line, option",
    [
        ("--level full --level off", "--level"),
        ("-o a --output b", "-o/--output"),
        ("--max-events 10 --max-events=20", "--max-events"),
    ],
)
def test_an_option_given_twice_is_refused(ip, line, option):
    ip.user_ns.pop("ran", None)
    with pytest.raises(UsageError, match=f"{option}: given twice"):
        ip.run_cell_magic("scope", line, "ran = True\n")
    with pytest.raises(UsageError, match="given twice"):
        ip.run_line_magic("scope", "start --sample 0.5 --sample 1")
    assert "ran" not in ip.user_ns and not scope_nb.is_recording()


def test_output_name_that_is_a_keyword_is_refused(ip):
    with pytest.raises(UsageError, match="'for' is not a valid variable name"):
        ip.run_cell_magic("scope", "-o for", "x = 1\n")
    assert not scope_nb.is_recording()


def test_syntax_error_records_nothing_and_keeps_the_previous_trace(ip):
    run(ip, "%%scope --quiet\nkept = 1\n")
    previous = ip.user_ns["_scope"]
    result, cap = run(ip, "%%scope --quiet\nx = 1 +\n")
    assert isinstance(result.error_in_exec, SyntaxError)
    assert ip.user_ns["_scope"] is previous
    assert "postmortem" not in cap.stderr and not scope_nb.is_recording()


def test_export_json_suffix_in_any_case_writes_perfetto(ip, tmp_path):
    run(ip, "%%scope --quiet\nx = 1\n")
    target = tmp_path / "cell.JSON"
    with capture_output():
        ip.run_line_magic("scope", f"export {target}")
    assert target.is_file() and target.read_text().lstrip().startswith(("{", "["))


# -- the cell keeps its own behaviour ---------------------------------------------------------
def test_a_cell_that_stops_the_recording_itself_keeps_its_result(ip):
    ip.user_ns["scope_nb"] = scope_nb
    result, _ = run(
        ip,
        (
            "%%scope --quiet -o mine\n"
            "import threading\n"
            "met = threading.Barrier(2)\n"
            "t = threading.Thread(target=met.wait, name='helper'); t.start()\n"
            "met.wait(); t.join()\n"
            "stopped = scope_nb.stop()\n"
            "6 * 7\n"
        ),
    )
    assert result.success and result.result == 42
    assert ip.user_ns["_scope"] is ip.user_ns["stopped"] is ip.user_ns["mine"]
    assert "helper" in ip.user_ns["_scope"].actors()["name"].to_list()


def test_a_cell_that_stops_the_recording_then_raises_raises_its_own_error(ip):
    ip.user_ns["scope_nb"] = scope_nb
    result, cap = run(ip, "%%scope --quiet\nscope_nb.stop()\nraise KeyError('mine')\n")
    assert isinstance(result.error_in_exec, KeyError)
    assert result.error_in_exec.__context__ is None
    assert "%scope postmortem" in cap.stderr
    assert isinstance(ip.run_line_magic("scope", "postmortem").exception, KeyError)


def test_a_fault_after_the_cell_does_not_break_it(ip, monkeypatch):
    from scope_nb.notebook import magics

    def broken(trace, environment=()):
        raise RuntimeError("summary exploded")

    monkeypatch.setattr(magics, "SummaryPanel", broken)
    result, cap = run(ip, "%%scope\n6 * 7\n")
    assert result.success and result.result == 42
    assert "summary exploded" in cap.stderr
    assert isinstance(ip.user_ns["_scope"], scope_nb.Trace) and not scope_nb.is_recording()


def test_postmortem_traceback_starts_in_the_cell(ip):
    from scope_nb.notebook import magics

    run(ip, "%%scope --quiet\ndef f():\n    raise KeyError('deep')\nf()\n")
    report = ip.run_line_magic("scope", "postmortem")
    ours = str(pathlib.Path(magics.__file__).parent)  # no frame of the notebook layer's code
    assert ours not in report.traceback and ours not in repr(report)
    assert report.traceback.startswith("Traceback") and "raise KeyError('deep')" in report.traceback


# -- explorer and charts ----------------------------------------------------------------------
def test_explorer_refuses_bad_arguments():
    trace = two_writers()[0]
    with pytest.raises(ValueError, match="at=0 is before the trace starts"):
        Explorer(trace, at=0)
    with pytest.raises(ValueError, match="no traced object named 'nope'"):
        Explorer(trace, obj="nope")
    ex = Explorer(trace)
    with pytest.raises(ValueError, match="ts=0 is before the trace starts"):
        ex.seek(0)
    with pytest.raises(ValueError, match="'sned' is not an event kind"):
        ex.jump("sned")
    with pytest.raises(ValueError, match="direction"):
        ex.step(0)
    assert Explorer(trace, obj="box").state_obj.value == "box"


def test_explorer_on_an_empty_trace_still_checks_its_arguments():
    scope_nb.start()
    empty = scope_nb.stop()
    with pytest.raises(TypeError, match="at must be"):
        Explorer(empty, at="yesterday")
    ex = Explorer(empty)
    assert ex.next_kind.disabled and ex.prev_kind.disabled  # no kind to jump to


def test_explorer_object_choices_are_bounded():
    import polars as pl

    from scope_nb.notebook.explorer import MAX_OPTIONS
    from scope_nb.trace import Trace

    base = two_writers()[0]
    row = base.states().head(1)
    many = pl.concat([row.with_columns(obj=pl.lit(f"o{i:04d}")) for i in range(MAX_OPTIONS + 50)])
    trace = Trace(events=base.events(), actors=base.actors(), states=many, meta=base.meta)
    ex = Explorer(trace, obj=f"o{MAX_OPTIONS + 40:04d}")
    assert len(ex.state_obj.options) <= MAX_OPTIONS + 1
    assert ex.state_obj.value == f"o{MAX_OPTIONS + 40:04d}"
    assert len(ex.f_obj.options) <= 2 * MAX_OPTIONS + 2


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda t: charts.timeline_data(t, bins=0), ValueError),
        (lambda t: charts.timeline_spec(t, width=-5), ValueError),
        (lambda t: charts.lanes(t, max_lanes=-1), ValueError),
        (lambda t: charts.hotspot_frame(t, top=-1), ValueError),
        (lambda t: charts.queue_depth_chart(t, max_points=0), ValueError),
        (lambda t: charts.timeline_data(t, bins=2.5), TypeError),
        (lambda t: charts.timeline_spec(t, cursor="now"), TypeError),
        (lambda t: charts.to_svg(42), TypeError),
    ],
)
def test_chart_arguments_are_checked(call, error):
    with pytest.raises(error, match="bins|width|max_lanes|top|max_points|cursor|chart"):
        call(two_writers()[0])


# -- the CLI ----------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["nan", "inf", "1e300"])
def test_cli_timeout_must_be_a_finite_positive_number(tmp_path, value):
    (tmp_path / "ok.py").write_text("print('ran')\n")
    r = cli("run", "-q", "-o", "t", "--timeout", value, "ok.py", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "--timeout" in r.stderr and "Traceback" not in r.stderr
    assert r.stdout == "" and not (tmp_path / "t").exists()


def test_cli_missing_module_is_a_usage_error(tmp_path):
    r = cli("run", "-q", "-o", "t", "-m", "no_such_module_here", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no_such_module_here" in r.stderr
    assert not (tmp_path / "t").exists()


def test_cli_report_refuses_a_negative_top(tmp_path):
    two_writers()[0].save(tmp_path / "t")
    r = cli("report", "t", "--top", "-1", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--top" in r.stderr


def test_cli_corrupt_trace_file_is_one_line_and_exit_3(tmp_path):
    two_writers()[0].save(tmp_path / "t")
    victim = next(pathlib.Path(tmp_path / "t").rglob("actors.parquet"))
    victim.write_bytes(b"not parquet")
    for args in (
        ("report", "t"),
        ("report", "t", "--json"),
        ("export", "t", "--perfetto", "t.json"),
    ):
        r = cli(*args, cwd=tmp_path)
        assert r.returncode == 3, (args, r.stderr)
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("scope-nb: warning:")
        assert "actors.parquet" in r.stderr
