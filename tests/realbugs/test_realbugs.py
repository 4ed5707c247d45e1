"""What the score table says, asserted: each real bug named by the right report with its
facts (or, where the detectors miss it today, an expected failure that names why), each
fixed twin and healthy program without false alarms, and the table in step with the cases."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from .cases import CASES, HEALTHY_PROGRAMS
from .harness import all_reports, judged, run

BY_NAME = {c.name: c for c in CASES}


@functools.cache
def bug_trace(name: str):
    """One run of a case's bug program, shared by the tests that read its trace."""
    case = BY_NAME[name]
    return run(case.bug, case.options)


def _named_param(case):
    marks = [pytest.mark.xfail(strict=True, reason=case.missed)] if case.missed else []
    return pytest.param(case, marks=marks, id=case.source)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", [_named_param(c) for c in CASES])
def test_bug_is_named_with_its_facts(case):
    report = case.check(bug_trace(case.name))
    assert report is not None, f"{case.source}: not named ({case.expect})"
    assert report.headline and repr(report) and report._repr_html_()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", CASES, ids=[c.source for c in CASES])
def test_fixed_twin_has_no_false_alarm(case):
    fixed = run(case.fixed, case.options)
    assert case.check(fixed) is None, f"{case.source}: the twin is named as the bug"
    assert not judged(fixed), [r.headline for r in judged(fixed)]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("program", HEALTHY_PROGRAMS, ids=[h.name for h in HEALTHY_PROGRAMS])
def test_healthy_program_gets_no_report(program):
    reports = all_reports(run(program.run, program.options))
    assert not reports, [getattr(r, "headline", str(r)) for r in reports]


def test_score_table_lists_every_case_with_its_verdict():
    table = Path(__file__).with_name("README.md").read_text()
    rows = {
        line.split(" | ")[1]: line
        for line in table.splitlines()
        if line.startswith("| ") and " | " in line
    }
    for c in CASES:
        assert c.source in rows, (
            f"{c.source} missing from README.md: run python -m tests.realbugs.score"
        )
        verdict = rows[c.source].split(" | ")[3]
        assert verdict == ("no" if c.missed else "yes"), f"{c.source}: the table says {verdict}"
        twin = rows[c.source].split(" | ")[4]
        assert twin == "none" or twin.startswith("none ("), f"{c.source}: the table lists {twin}"
    for h in HEALTHY_PROGRAMS:
        assert f"| {h.name} | none |" in table


def test_corpus_is_big_enough():
    assert len(CASES) >= 20
    assert len(CASES) + len(HEALTHY_PROGRAMS) >= 30
