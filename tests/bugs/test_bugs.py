"""Each bug program is named by the right report; its fixed twin by none of that family."""

from __future__ import annotations

import pytest

import scope_nb as scope

from .cases import CASES


def _run(fn, options):
    with scope.record(**options) as trace:
        fn()
    return trace


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bug_is_named_and_twin_is_clean(case):
    bug = _run(case.bug, case.options)
    report = case.check(bug)
    assert report is not None, f"{case.name}: not detected"
    assert report.headline and repr(report) and report._repr_html_()
    fixed = _run(case.fixed, case.options)
    assert case.check(fixed) is None, (
        f"{case.name}: false alarm on the fixed twin: {case.check(fixed).headline}"
    )
