"""Data races on traced objects' attributes and on the items of the containers they
hold.

Four findings, each from the read/write rows (obj, target = attribute or item,
locks_held), one module each:

* **lost update** (race_lost): an actor read an attribute or item, another actor wrote
  it, and then the first actor wrote it without reading again: its write was based on
  a stale read (read-modify-write, check-then-act, get-or-create, and the asyncio read
  / await / write pattern). What happened, not what could happen: no lock reasoning.
  A write of the value already there is still a write.
* **stale check** (race_stale): an actor tested an attribute or item in an `if` /
  `while`, another actor wrote it, and the first then wrote it in that test's body with
  nothing ordering the other's write before its act and no re-check: check-then-act
  even when the write re-reads the variable (so no stale value is written).
* **atomicity violation** (race_atomicity): an actor read two attributes of one object
  as one view while another actor wrote both in between.
* **data race** (race_lockset): the lockset algorithm (Eraser, Savage et al. 1997)
  refined with happens-before: two accesses by different threads, at least one a
  write, holding no common lock, and not ordered by a queue put->get, a spawn, an
  exit->join, an Event set->wait or a lock release->acquire. Between asyncio tasks of
  one loop (and the thread running it) a plain access is atomic, so only the first two
  findings apply; tasks of loops in different threads race like threads.

Items (race_items): each dict key, list index and set or list member (`d['k']`,
`items[3]`, `seen{'x'}`; recorded through substitute containers, see the recorder's
objects/items.py) is a variable of its own. Appends and adds commute: two writes of one
item with no read are no race, so concurrent `list.append` / `set.add` are never
reported, while `if x not in seen: seen.add(x)` interleaved is a lost update.
`setdefault` is one atomic check-and-insert.
"""

from __future__ import annotations

import polars as pl

from .labels import attach, labels_of
from .race_access import accesses
from .race_atomicity import atomicity
from .race_lockset import MAX_WALK_EDGES, data_races, sync_edges
from .race_lost import lost_updates
from .race_stale import stale_checks
from .reports import RaceReport

__all__ = [
    "MAX_WALK_EDGES",
    "accesses",
    "analyze_race_condition",
    "detect_race_conditions",
    "involved",
    "sync_edges",
]


def detect_race_conditions(
    events: pl.DataFrame, actors: pl.DataFrame, timeline=None
) -> list[RaceReport]:
    """Lost updates, atomicity violations and data races on traced objects; with
    `timeline` (a frame with a `seq` column, e.g. from events_between), only accesses in it.

    Cost, for n events, a attribute accesses and s sync edges (T threads): O(n + a log a
    + s log s) for the frame passes (filters, sorts, as-of joins; no cross join), plus
    the walk of the candidate pairs no direct edge orders: one walk per earlier access,
    over the sync edges between it and its partners, at most MAX_WALK_EDGES edges in
    all (a pair past that budget is reported), each step O(1) but for a set of at most T
    informed actors."""
    acc = accesses(events)
    if timeline is not None:
        if not isinstance(timeline, pl.DataFrame) or "seq" not in timeline.columns:
            raise TypeError(
                "timeline must be a polars DataFrame of events (with a 'seq' column), or None"
            )
        acc = acc.filter(pl.col("seq").is_in(timeline["seq"].implode()))
    if acc.height == 0:
        return []
    reports = lost_updates(acc)
    lost = {(r.obj, r.attribute) for r in reports}
    reports += stale_checks(acc, events, actors, skip=lost)
    reports += atomicity(acc)
    reports += data_races(
        acc,
        events,
        actors,
        skip={(r.obj, r.attribute) for r in reports if r.kind in ("lost_update", "stale_check")},
    )
    return attach(reports, labels_of(actors, events))


def analyze_race_condition(trace, a, b, window_ns: int | None = None) -> list[RaceReport]:
    """The races detect_race_conditions() reports between actors `a` and `b`: every
    access of the race is by one of them and both take part (a lost update's stale
    read and write are one actor's, the write in between the other's), its accesses
    spanning at most `window_ns` (None: the whole run)."""
    pair = {trace.resolve_actor(a), trace.resolve_actor(b)}
    return [
        r
        for r in detect_race_conditions(trace.events(), trace.actors())
        if involved(r) == pair and (window_ns is None or _span_ns(r) <= window_ns)
    ]


def involved(report: RaceReport) -> set[str]:
    """The actors whose accesses make up the race."""
    return {report.first.actor, report.second.actor, *(x.actor for x in report.between)}


def _span_ns(report: RaceReport) -> int:
    stamps = [report.first.ts, report.second.ts, *(x.ts for x in report.between)]
    return max(stamps) - min(stamps)
