"""Run every real-bug case and healthy program and write the score table to README.md.

    python -m tests.realbugs.score        (from the repository root)
    python tests/realbugs/score.py

A bug counts as named when its check finds the report with the right facts. A false alarm
on a fixed twin is any race, deadlock or stall report (a crash the twin has by design,
such as a task whose failure the fix now reports, is listed but not counted); a false
alarm on a healthy program is any report at all."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a path: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.realbugs.cases import CASES, HEALTHY_PROGRAMS  # noqa: E402
from tests.realbugs.harness import Case, all_reports, judged, run  # noqa: E402

README = Path(__file__).with_name("README.md")


@dataclass
class Row:
    case: Case
    named: bool
    headline: str
    twin_alarms: list[str]
    twin_crashes: int


def score_case(case: Case) -> Row:
    bug = run(case.bug, case.options)
    report = case.check(bug)
    fixed = run(case.fixed, case.options)
    return Row(
        case,
        report is not None,
        _clean(report.headline) if report is not None else "",
        [_clean(r.headline) for r in judged(fixed)],
        len(fixed.get_crash_events()),
    )


def score_healthy(program) -> list[str]:
    return [
        _clean(getattr(r, "headline", str(r)))
        for r in all_reports(run(program.run, program.options))
    ]


def _clean(text: str) -> str:
    """Headlines without what changes from run to run: pids, addresses, absolute paths."""
    text = re.sub(r"([TAP]\d+):\d+", r"\1:PID", text)
    text = re.sub(r"@[0-9a-f]{6,}", "@ADDR", text)
    text = re.sub(r"/\S*/(tests/realbugs/)", r"\1", text)
    return text.replace("|", "/")


def render(rows: list[Row], healthy: list[tuple[str, list[str]]]) -> str:
    named = sum(r.named for r in rows)
    twin_alarms = sum(bool(r.twin_alarms) for r in rows)
    healthy_alarms = sum(bool(a) for _, a in healthy)
    out = [
        "# Real bugs",
        "",
        "Concurrency bugs reported on public trackers, each reproduced as a small program with",
        "its interleaving forced (Barriers, Events, asyncio steps), next to a fixed twin that",
        "does what the real fix did, plus healthy programs using standard-library idioms.",
        "`python -m tests.realbugs.score` rewrites this file; `test_realbugs.py` asserts",
        "what it says (the misses are expected failures, so a detector that learns one flips it).",
        "",
        f"Python {sys.version.split()[0]}. Reports name actors as `name (T2)`; addresses shortened "
        "to `ADDR`.",
        "",
        "## Totals",
        "",
        f"- bugs named with the right facts: **{named} of {len(rows)}** ("
        f"{100 * named / len(rows):.0f}%)",
        f"- false alarms on fixed twins: **{twin_alarms} of {len(rows)}**",
        f"- false alarms on other healthy programs: **{healthy_alarms} of {len(healthy)}**",
        f"- healthy programs in all (twins and others): {len(rows) + len(healthy)}, "
        f"with false alarms: {twin_alarms + healthy_alarms}",
        "",
        "## Bugs",
        "",
        "| bug | source | must report | named | fixed twin: false alarms | report |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        c = r.case
        said = r.headline
        if not r.named:
            said = f"not named: {c.missed}" if c.missed else "not named"
        alarms = "; ".join(r.twin_alarms) or "none"
        if r.twin_crashes:
            alarms += f" (crashes recorded by design: {r.twin_crashes})"
        out.append(
            f"| {c.name} | {c.source} | {c.expect} | {'yes' if r.named else 'no'} | {alarms} | "
            f"{said} |"
        )
    out += [
        "",
        "## Findings for the detectors",
        "",
        "Each is an expected failure (strict) in `test_realbugs.py`; a fix flips it.",
        "",
    ]
    missed = [f"- {r.case.source}: {r.case.missed}" for r in rows if not r.named and r.case.missed]
    out += missed or ["None: every bug above is named."]
    out += ["", "## Healthy programs", "", "| program | false alarms |", "|---|---|"]
    for name, alarms in healthy:
        out.append(f"| {name} | {'; '.join(alarms) or 'none'} |")
    return "\n".join(out) + "\n"


def main() -> int:
    rows = [score_case(c) for c in CASES]
    healthy = [(h.name, score_healthy(h)) for h in HEALTHY_PROGRAMS]
    README.write_text(render(rows, healthy))
    print(f"{sum(r.named for r in rows)}/{len(rows)} named; wrote {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
