"""The report objects the detectors return.

Each names the bug in one line (`headline`), carries the facts a person needs to act
on it as plain fields, renders itself for a terminal (`repr`) and for a notebook
(`_repr_html_`), and turns into a polars frame where the facts are tabular. The
reports of what a run cost (time, memory) are in cost_reports.py."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from .inline_html import frame_html
from .labels import Labels

_LABELS = field(default_factory=Labels, compare=False, repr=False)


def _html(title: str, facts: list[tuple[str, Any]], sections: list[tuple[str, str]] = ()) -> str:
    rows = "".join(
        f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:left'>"
        f"<pre style='margin:0'>{html.escape(str(v))}</pre></td></tr>"
        for k, v in facts
        if v not in (None, "", [], ())
    )
    body = "".join(
        f"<h5>{html.escape(name)}</h5>{content}" for name, content in sections if content
    )
    return f"<div class='scope-report'><b>{html.escape(title)}</b><table>{rows}</table>{body}</div>"


def _text(title: str, facts: list[tuple[str, Any]]) -> str:
    lines = [title]
    for k, v in facts:
        if v in (None, "", [], ()):
            continue
        text = str(v)
        if "\n" in text:
            lines.append(f"  {k}:")
            lines.extend("    " + line for line in text.splitlines())
        else:
            lines.append(f"  {k}: {text}")
    return "\n".join(lines)


def _ms(ns: int | None) -> str | None:
    return None if ns is None else f"{ns / 1e6:.1f} ms"


@dataclass
class CrashEvent:
    """One crash: an actor that ended by an exception; or a failed call: a traced
    object's method that raised (its caller may have handled it and gone on)."""

    ts: int
    actor: str
    exception: str  # "ExcType: message"
    traceback: str
    location: str | None = None
    seq: int | None = None
    obj: str | None = None
    kind: str = "crash"  # crash | exception (a failed call: a traced object's method raised)
    labels: Labels = _LABELS

    @property
    def exc_type(self) -> str:
        return self.exception.split(":", 1)[0]

    @property
    def headline(self) -> str:
        if self.obj:
            return (
                f"a call on {self.obj} (by {self.labels.actor(self.actor)}) failed: "
                f"{self.exception}"
            )
        return f"{self.labels.actor(self.actor)} crashed: {self.exception}"

    def _facts(self):
        return [
            ("at time", self.labels.time(self.ts)),
            ("actor", self.labels.actor(self.actor)),
            ("object", self.obj),
            ("at", self.labels.location(self.location)),
            ("traceback", self.traceback),
        ]

    def __repr__(self) -> str:
        return _text(f"CrashEvent: {self.headline}", self._facts())

    def _repr_html_(self) -> str:
        return _html(f"Crash: {self.headline}", self._facts())


@dataclass
class CrashReport:
    """A crash with its context: what the actor handled before, its state before and
    after, and who was left waiting on it."""

    crash: CrashEvent
    actor_name: str | None
    last_messages: pl.DataFrame
    last_calls: pl.DataFrame
    state_before: dict[str, Any] | None = None
    state_after: dict[str, Any] | None = None
    last_changes: pl.DataFrame | None = None
    locks_held: list[str] = field(default_factory=list)
    queues_consumed: list[str] = field(default_factory=list)
    waiting: pl.DataFrame | None = None  # actors that waited on what it held / consumed

    @property
    def headline(self) -> str:
        return self.crash.headline

    def to_frame(self) -> pl.DataFrame:
        """The messages and calls leading up to the crash, in order."""
        parts = [f for f in (self.last_messages, self.last_calls) if f is not None and f.height]
        if not parts:
            return self.last_messages
        return pl.concat(parts, how="diagonal_relaxed").unique("seq").sort("seq")

    def _facts(self):
        return [
            ("actor", self.crash.labels.actor(self.crash.actor)),
            ("at time", self.crash.labels.time(self.crash.ts)),
            ("at", self.crash.labels.location(self.crash.location)),
            ("locks held when it died", ", ".join(self.locks_held)),
            ("queues it consumed", ", ".join(self.queues_consumed)),
            ("last messages", _rows(self.last_messages, ["kind", "target", "detail"])),
            ("last calls", _rows(self.last_calls, ["function", "detail"])),
            ("state before", self.state_before),
            ("state after", self.state_after),
            (
                "left waiting",
                _rows(
                    self.waiting, ["actor", "kind", "target"], {"actor": self.crash.labels.actor}
                ),
            ),
            ("traceback", self.crash.traceback),
        ]

    def __repr__(self) -> str:
        return _text(f"CrashReport: {self.headline}", self._facts())

    def _repr_html_(self) -> str:
        return _html(
            f"Crash: {self.headline}",
            self._facts(),
            [("Messages and calls before the crash", frame_html(self.to_frame()))],
        )


def _rows(
    frame: pl.DataFrame | None, cols: list[str], say: dict | None = None, n: int = 5
) -> str | None:
    """The last `n` rows of `frame` as text; `say` maps a column to how its values read."""
    if frame is None or frame.height == 0:
        return None
    cols = [c for c in cols if c in frame.columns]
    say = say or {}
    return "\n".join(
        " ".join(
            str(say[c](v)) if c in say else str(v)
            for c, v in zip(cols, row, strict=True)
            if v is not None
        )
        for row in frame.tail(n).select(cols).iter_rows()
    )


@dataclass
class Access:
    """One side of a race: who touched the attribute, where, holding which locks."""

    actor: str
    op: str  # read | write
    location: str | None
    locks: list[str]
    seq: int
    ts: int
    value: str | None = None


@dataclass
class RaceReport:
    """Two unordered accesses to one attribute of a traced object, at least one a write."""

    obj: str
    attribute: str
    kind: str  # data_race | lost_update | stale_check | atomicity
    first: Access
    second: Access
    lost_update: bool
    instances: int = 1
    # the other actor's writes in between (lost updates, stale checks)
    between: list[Access] = field(default_factory=list)
    # atomicity: the attributes read as one view
    attributes: list[str] = field(default_factory=list)
    labels: Labels = _LABELS

    @property
    def actors(self) -> tuple[str, str]:
        return self.first.actor, self.second.actor

    @property
    def locations(self) -> tuple[str | None, str | None]:
        return self.first.location, self.second.location

    @property
    def locks(self) -> tuple[list[str], list[str]]:
        return self.first.locks, self.second.locks

    @property
    def headline(self) -> str:
        where = f"{self.obj}.{self.attribute}"
        say = self.labels
        w = say.actor(self.between[0].actor) if self.between else "another actor"
        if self.kind == "lost_update":
            return (
                f"lost update on {where}: {say.actor(self.second.actor)} wrote a value based on a "
                "stale read "
                f"(read at {say.location(self.first.location)}) after {w} wrote it"
            )
        if self.kind == "stale_check":
            a = say.actor(self.second.actor)
            held = f" holding {', '.join(self.second.locks)}" if self.second.locks else ""
            return (
                f"stale check on {where}: {a} checked it at {say.location(self.first.location)}, "
                f"{w} wrote it, then {a} acted on the check and wrote it at "
                f"{say.location(self.second.location)}{held}"
            )
        if self.kind == "atomicity":
            return (
                f"atomicity violation on {self.obj}.{{{', '.join(self.attributes)}}}: "
                f"{say.actor(self.second.actor)} read them as one view while {w} changed both in "
                "between"
            )
        return (
            f"data race on {where}: {say.actor(self.first.actor)} {self.first.op} / "
            f"{say.actor(self.second.actor)} {self.second.op} with no common lock and no ordering"
        )

    def to_frame(self) -> pl.DataFrame:
        rows = [
            ("first", self.first),
            *[("between", a) for a in self.between],
            ("second", self.second),
        ]
        return pl.DataFrame(
            [
                {
                    "role": r,
                    "actor": a.actor,
                    "op": a.op,
                    "location": a.location,
                    "locks": a.locks,
                    "seq": a.seq,
                    "ts": a.ts,
                    "value": a.value,
                }
                for r, a in rows
            ],
            schema={
                "role": pl.String,
                "actor": pl.String,
                "op": pl.String,
                "location": pl.String,
                "locks": pl.List(pl.String),
                "seq": pl.Int64,
                "ts": pl.Int64,
                "value": pl.String,
            },
        ).sort("seq")

    def _facts(self):
        def side(a: Access) -> str:
            locks = ", ".join(a.locks) if a.locks else "no locks"
            return (
                f"{self.labels.actor(a.actor)} {a.op} at {self.labels.location(a.location)} "
                f"({self.labels.time(a.ts)}) holding {locks}"
                + (f" (value {a.value})" if a.value else "")
            )

        return [
            ("object", self.obj),
            ("attribute", self.attribute),
            ("kind", self.kind),
            ("first", side(self.first)),
            ("second", side(self.second)),
            ("in between", "\n".join(side(a) for a in self.between)),
            ("update lost", "yes" if self.lost_update else "no"),
            ("instances", self.instances),
        ]

    def __repr__(self) -> str:
        return _text(f"RaceReport: {self.headline}", self._facts())

    def _repr_html_(self) -> str:
        return _html(
            f"Race: {self.headline}", self._facts(), [("Accesses", frame_html(self.to_frame()))]
        )


# the columns of a DeadlockReport's `edges`: one row per step of what it reports
STEP_SCHEMA = {
    "holding": pl.String,
    "taking": pl.String,
    "actor": pl.String,
    "location": pl.String,
    "ts": pl.Int64,
    "seq": pl.Int64,
}


def step(holding: str | None, taking: str | None, at: dict, **other: Any) -> dict[str, Any]:
    """One step of a DeadlockReport: holding `holding`, taking `taking`, by the actor,
    at the location, ts and seq of the event row `at` (any of them given in `other`
    instead)."""
    where = {k: at[k] for k in ("actor", "location", "ts", "seq") if k not in other}
    return {"holding": holding, "taking": taking, **where, **other}


def step_frame(*rows: dict[str, Any]) -> pl.DataFrame:
    """A DeadlockReport's `edges` from its `step`s, in order."""
    return pl.DataFrame(list(rows), schema=STEP_SCHEMA)


@dataclass
class DeadlockReport:
    """A lock-order cycle (potential), a self-deadlock, a lock leaked by an ended actor,
    a real deadlock recorded by the watchdog, or a fork while another thread held a lock
    (fork_with_held_lock: actors are the holder, then the forking actor)."""

    kind: str  # potential | self | leaked | deadlock | fork_with_held_lock
    cycle: list[str]  # locks (potential/self/leaked/fork_with_held_lock) or actors (deadlock)
    edges: pl.DataFrame  # one row per step of the cycle: holding, taking, actor, location, ts, seq
    actors: list[str] = field(default_factory=list)
    stacks: dict[str, str] = field(default_factory=dict)
    ts: int | None = None
    child: str | None = None  # fork_with_held_lock: the process the fork started, when known
    labels: Labels = _LABELS

    @property
    def headline(self) -> str:
        say = self.labels
        if self.kind == "potential":
            return (
                "lock-order inversion (potential deadlock): "
                f"{' -> '.join([*self.cycle, self.cycle[0]])} "
                f"taken by {say.actors(self.actors)}"
            )
        if self.kind == "self":
            return (
                f"self-deadlock: {say.actor(self.actors[0])} acquires non-reentrant "
                f"{self.cycle[0]} it already holds"
            )
        if self.kind == "leaked":
            return f"lock leaked: {say.actor(self.actors[0])} ended holding {self.cycle[0]}"
        if self.kind == "fork_with_held_lock":
            taken = self.edges["location"][0] if self.edges.height else None
            at = f" (taken at {say.location(taken)})" if taken else ""
            child = f" {say.actor(self.child)}" if self.child else ""
            return (
                f"fork by {say.actor(self.actors[1])} while {self.cycle[0]} was held by "
                f"{say.actor(self.actors[0])}{at}: the child process{child} inherits it "
                "locked and its first acquire waits forever"
            )
        return (
            f"deadlock: {' -> '.join(say.actor(a) for a in [*self.cycle, self.cycle[0]])} wait on "
            "each other"
        )

    def to_frame(self) -> pl.DataFrame:
        return self.edges

    def _facts(self):
        if self.kind == "fork_with_held_lock":
            return self._fork_facts()
        steps = None
        if self.edges.height and "taking" in self.edges.columns:
            steps = "\n".join(
                f"{self.labels.actor(r['actor'])} took {r['taking']} while holding {r['holding']} "
                f"at {self.labels.location(r['location'])}"
                for r in self.edges.iter_rows(named=True)
            )
        cycle = (
            self.cycle if self.kind != "deadlock" else [self.labels.actor(a) for a in self.cycle]
        )
        return [
            ("kind", self.kind),
            ("cycle", " -> ".join(cycle)),
            ("actors", self.labels.actors(self.actors)),
            ("at time", self.labels.time(self.ts)),
            ("where", steps),
            (
                "stacks",
                "\n".join(
                    f"{self.labels.actor(a)}:\n{self.labels.stack(s)}"
                    for a, s in self.stacks.items()
                ),
            ),
        ]

    def _fork_facts(self):
        say = self.labels
        took, forked = self.edges.row(0, named=True), self.edges.row(1, named=True)
        return [
            ("kind", self.kind),
            ("lock", self.cycle[0]),
            ("held by", say.actor(took["actor"])),
            ("taken at", say.location(took["location"])),
            ("forked by", say.actor(forked["actor"])),
            ("forked at", say.location(forked["location"])),
            ("at time", say.time(self.ts)),
            ("child", say.actor(self.child) if self.child else None),
        ]

    def __repr__(self) -> str:
        return _text(f"DeadlockReport: {self.headline}", self._facts())

    def _repr_html_(self) -> str:
        return _html(
            f"Deadlock: {self.headline}", self._facts(), [("Steps", frame_html(self.edges))]
        )


_WATCHED = ("hang", "await_cycle")  # stall kinds the watchdog records as JSON


@dataclass
class StallReport:
    """Something that stopped progress: a blocked event loop, a task or future exception never
    retrieved, a task lost while pending, a swallowed cancellation, an await cycle, a
    hang seen by the watchdog, a queue left without consumer or growing without bound."""

    # blocked_loop | exc_unretrieved | task_lost | cancel_swallowed | await_cycle | hang |
    # orphaned_queue | backlog
    kind: str
    actor: str | None
    ts: int | None
    summary: str
    duration_ns: int | None = None
    location: str | None = None
    target: str | None = None
    detail: str | None = None
    actors: list[str] = field(default_factory=list)
    stacks: dict[str, str] = field(default_factory=dict)
    labels: Labels = _LABELS

    @property
    def headline(self) -> str:
        return self.summary

    def to_frame(self) -> pl.DataFrame:
        return pl.DataFrame(
            [
                {
                    "kind": self.kind,
                    "actor": self.actor,
                    "ts": self.ts,
                    "duration_ns": self.duration_ns,
                    "location": self.location,
                    "target": self.target,
                    "summary": self.summary,
                }
            ],
            schema={
                "kind": pl.String,
                "actor": pl.String,
                "ts": pl.Int64,
                "duration_ns": pl.Int64,
                "location": pl.String,
                "target": pl.String,
                "summary": pl.String,
            },
        )

    def _facts(self):
        say = self.labels
        return [
            ("kind", self.kind),
            ("actor", say.actor(self.actor) if self.actor else None),
            ("at time", say.time(self.ts)),
            ("duration", _ms(self.duration_ns)),
            ("at", say.location(self.location)),
            ("target", self.target),
            ("actors", say.actors(self.actors)),
            # a hang's detail is the watchdog's JSON: its facts are the summary and stacks
            ("detail", None if self.kind in _WATCHED else say.stack(self.detail)),
            (
                "stacks",
                "\n".join(f"{say.actor(a)}:\n{say.stack(s)}" for a, s in self.stacks.items()),
            ),
        ]

    def __repr__(self) -> str:
        return _text(f"StallReport: {self.headline}", self._facts())

    def _repr_html_(self) -> str:
        return _html(f"Stall: {self.headline}", self._facts())
