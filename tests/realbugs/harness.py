"""What every real-bug case shares: the Case record, thread helpers, the watchdog wait and
the checks that find the report naming a bug with its facts.

A check returns the report that names the bug (with the right objects, locks and
threads), or None. On the fixed twin it must return None; `all_reports` collects every
report of every family, so that a healthy program can be held to "no report at all"."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import scope_nb as scope

DEADLINE = 20.0  # seconds to wait for the watchdog's verdict before giving up
WATCHDOG = {"watchdog": 0.2}


@dataclass
class Case:
    """One real report: where it was filed, its mechanism reproduced, the fix as made."""

    name: str
    source: str  # tracker and number, e.g. "python/cpython gh-96727"
    bug: Callable[[], Any]
    fixed: Callable[[], Any]
    check: Callable[[Any], Any]  # the report naming the bug with its facts, or None
    expect: str  # what scope_nb must report, in words (the table's "must report" column)
    options: dict = field(default_factory=dict)
    missed: str | None = None  # why the detectors do not name it today (an expected failure)


@dataclass
class Healthy:
    """A program using a standard-library idiom correctly: it must get no report at all."""

    name: str
    run: Callable[[], Any]
    options: dict = field(default_factory=dict)


def start(*fns: Callable[[], Any]) -> list[threading.Thread]:
    """Start one named thread per function (the thread takes the function's name)."""
    ts = [threading.Thread(target=f, name=f.__name__) for f in fns]
    for t in ts:
        t.start()
    return ts


def join(ts: list[threading.Thread]) -> None:
    for t in ts:
        t.join(DEADLINE)


def wait_for_kind(kind: str, deadline: float = DEADLINE) -> bool:
    """Poll the live trace until an event of `kind` was recorded (the watchdog's verdict)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if scope.current().events(kind).height:
            return True
        time.sleep(0.02)
    return False


def wait_for_hang(*words: str, deadline: float = DEADLINE) -> bool:
    """Poll the live trace until a hang report names every one of `words` (a rescue's cue)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if scope.current().events("hang").height and any(
            r.kind == "hang" and all(w in r.headline for w in words)
            for r in scope.current().detect_stalls()
        ):
            return True
        time.sleep(0.05)
    return False


def run(fn: Callable[[], Any], options: dict) -> Any:
    with scope.record(**options) as trace:
        fn()
    return trace


def all_reports(trace) -> list:
    """Every report of every family: races, deadlocks, stalls and hangs, crashes."""
    return [
        *trace.detect_race_conditions(),
        *trace.detect_deadlocks(),
        *trace.detect_stalls(),
        *trace.get_crash_events(),
    ]


def judged(trace) -> list:
    """The reports that judge a program: races, deadlocks, stalls and hangs (not crashes)."""
    return [*trace.detect_race_conditions(), *trace.detect_deadlocks(), *trace.detect_stalls()]


def _first(reports, pred):
    return next((r for r in reports if pred(r)), None)


def race(kind: str, obj: str, attr: str) -> Callable[[Any], Any]:
    return lambda tr: _first(
        tr.detect_race_conditions(),
        lambda r: r.kind == kind and r.obj == obj and r.attribute == attr,
    )


def lock_cycle(kind: str, *locks: str) -> Callable[[Any], Any]:
    """A deadlock report of `kind` whose cycle holds exactly these locks (by name)."""
    return lambda tr: _first(
        tr.detect_deadlocks(), lambda r: r.kind == kind and sorted(set(r.cycle)) == sorted(locks)
    )


def lock_cycle_through(kind: str, lock: str, size: int) -> Callable[[Any], Any]:
    """A deadlock report of `kind` whose cycle of `size` locks goes through `lock` (the others
    are locks the program does not name: their names are the recorder's to choose)."""
    return lambda tr: _first(
        tr.detect_deadlocks(),
        lambda r: r.kind == kind and lock in r.cycle and len(set(r.cycle)) == size,
    )


def fork_hazard(lock: str, holder: str) -> Callable[[Any], Any]:
    """A fork_with_held_lock report on `lock` naming the thread called `holder` as its holder."""

    def check(tr):
        names = dict(tr.actors().select("actor", "name").iter_rows())
        return _first(
            tr.detect_deadlocks(),
            lambda r: (
                r.kind == "fork_with_held_lock"
                and r.cycle == [lock]
                and names.get(r.actors[0]) == holder
            ),
        )

    return check


def stall(kind: str, *words: str) -> Callable[[Any], Any]:
    """A stall report of `kind` whose headline names every one of `words`."""
    return lambda tr: _first(
        tr.detect_stalls(), lambda r: r.kind == kind and all(w in r.headline for w in words)
    )


def crash(exc_type: str, thread: str) -> Callable[[Any], Any]:
    """The crash of the thread called `thread` with an exception of `exc_type`."""

    def check(tr):
        names = dict(tr.actors().select("actor", "name").iter_rows())
        return _first(
            tr.get_crash_events(),
            lambda r: r.exc_type.endswith(exc_type) and names.get(r.actor) == thread,
        )

    return check


def both(first: Callable[[Any], Any], second: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """The first check's report, but only if the second check also finds its fact."""
    return lambda tr: first(tr) if second(tr) is not None else None
