"""The report objects of the state queries: StateDiff (what changed in one object
between two instants, and why) and Snapshot (the whole system at one instant)."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from ..values import Formatter
from .inline_html import frame_html
from .labels import Labels

MAX_SNAPSHOT_ROWS = 50  # actors / queues drawn in a snapshot's HTML; the frames hold them all

_fmt = Formatter(max_len=120, max_depth=3)


def _show(v: Any) -> str:
    return _fmt.repr(v)


@dataclass
class Change:
    """One attribute's change, with the event that caused it."""

    attribute: str
    change: str  # added | removed | changed
    before: Any
    after: Any
    ts: int | None = None
    actor: str | None = None
    cause: str | None = None  # method name or "attr = value"
    location: str | None = None
    event_seq: int | None = None  # the write / call event that made the change
    event_kind: str | None = None
    call: str | None = None  # the method call on the object that made the change: "rename('bob')"
    call_seq: int | None = None


@dataclass
class StateDiff:
    """Attribute-level difference of one traced object between t0 and t1."""

    obj: str
    t0: int
    t1: int
    before: dict[str, Any]
    after: dict[str, Any]
    changes: list[Change] = field(default_factory=list)
    history: pl.DataFrame | None = None  # the state rows inside the window
    labels: Labels = field(default_factory=Labels, compare=False, repr=False)

    @property
    def added(self) -> dict[str, Any]:
        return {c.attribute: c.after for c in self.changes if c.change == "added"}

    @property
    def removed(self) -> dict[str, Any]:
        return {c.attribute: c.before for c in self.changes if c.change == "removed"}

    @property
    def changed(self) -> dict[str, tuple[Any, Any]]:
        return {c.attribute: (c.before, c.after) for c in self.changes if c.change == "changed"}

    def __bool__(self) -> bool:
        return bool(self.changes)

    def to_frame(self) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "attribute": [c.attribute for c in self.changes],
                "change": [c.change for c in self.changes],
                "before": [None if c.change == "added" else _show(c.before) for c in self.changes],
                "after": [None if c.change == "removed" else _show(c.after) for c in self.changes],
                "ts": [c.ts for c in self.changes],
                "actor": [c.actor for c in self.changes],
                "cause": [c.cause for c in self.changes],
                "location": [c.location for c in self.changes],
                "event_seq": [c.event_seq for c in self.changes],
                "event_kind": [c.event_kind for c in self.changes],
                "call": [c.call for c in self.changes],
                "call_seq": [c.call_seq for c in self.changes],
            },
            schema={
                "attribute": pl.String,
                "change": pl.String,
                "before": pl.String,
                "after": pl.String,
                "ts": pl.Int64,
                "actor": pl.String,
                "cause": pl.String,
                "location": pl.String,
                "event_seq": pl.Int64,
                "event_kind": pl.String,
                "call": pl.String,
                "call_seq": pl.Int64,
            },
        )

    @property
    def headline(self) -> str:
        span = f"between {self.labels.time(self.t0)} and {self.labels.time(self.t1)}"
        if not self.changes:
            return f"{self.obj}: no change {span}"
        counts = {
            k: sum(c.change == k for c in self.changes) for k in ("added", "removed", "changed")
        }
        parts = [f"{n} {k}" for k, n in counts.items() if n]
        return f"{self.obj}: {', '.join(parts)} {span}"

    def __repr__(self) -> str:
        lines = [f"StateDiff {self.headline}"]
        for c in self.changes:
            if c.change == "added":
                what = f"+ {c.attribute} = {_show(c.after)}"
            elif c.change == "removed":
                what = f"- {c.attribute} (was {_show(c.before)})"
            else:
                what = f"~ {c.attribute}: {_show(c.before)} -> {_show(c.after)}"
            how = f"{c.cause} in {c.call}" if c.call and c.call != c.cause else c.cause
            why = (
                f"  [{how} by {self.labels.actor(c.actor)} at {self.labels.location(c.location)}, "
                f"{self.labels.time(c.ts)}]"
                if c.cause
                else ""
            )
            lines.append("  " + what + why)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(c.attribute)}</td><td>{c.change}</td>"
            f"<td><code>{html.escape('' if c.change == 'added' else _show(c.before))}</code></td>"
            f"<td><code>{html.escape('' if c.change == 'removed' else _show(c.after))}</code></td>"
            f"<td>{html.escape(self.labels.actor(c.actor) if c.actor else '')}</td><td>"
            f"{html.escape(c.cause or '')}</td>"
            f"<td><code>{html.escape(c.call or '')}</code></td>"
            f"<td>{html.escape(self.labels.location(c.location) or '')}</td></tr>"
            for c in self.changes
        )
        head = (
            "<tr><th>attribute</th><th>change</th><th>before</th><th>after</th><th>actor</th>"
            "<th>cause</th><th>call</th><th>where</th></tr>"
        )
        return (
            f"<div class='scope-report'><b>StateDiff {html.escape(self.headline)}</b><table>{head}"
            f"{rows}</table></div>"
        )


@dataclass
class Snapshot:
    """The system at one instant: live actors, traced objects' states, queue depths,
    locks held and waited for."""

    ts: int
    actors: pl.DataFrame  # the actors alive at ts
    objects: dict[str, dict[str, Any]]  # traced object -> its state
    queues: pl.DataFrame  # target, depth, ts (of the last send/receive)
    locks: pl.DataFrame  # actor, lock, status (held | waiting), since
    labels: Labels = field(default_factory=Labels, compare=False, repr=False)

    def held_by(self, actor: str) -> list[str]:
        f = self.locks.filter((pl.col("actor") == actor) & (pl.col("status") == "held"))
        return f["lock"].to_list()

    def waiting_for(self, actor: str) -> list[str]:
        f = self.locks.filter((pl.col("actor") == actor) & (pl.col("status") == "waiting"))
        return f["lock"].to_list()

    def to_frame(self) -> pl.DataFrame:
        """One row per live actor, with the locks it holds and waits for."""
        per = self.locks.group_by("actor").agg(
            pl.col("lock").filter(pl.col("status") == "held").alias("holding"),
            pl.col("lock").filter(pl.col("status") == "waiting").alias("waiting_for"),
        )
        return (
            self.actors.select("actor", "kind", "name", "parent")
            .join(per, on="actor", how="left", maintain_order="left")
            .with_columns(
                pl.col("holding").fill_null(pl.lit([], dtype=pl.List(pl.String))),
                pl.col("waiting_for").fill_null(pl.lit([], dtype=pl.List(pl.String))),
            )
        )

    def __repr__(self) -> str:
        lines = [
            f"Snapshot at {self.labels.time(self.ts)}: {self.actors.height} actors alive, "
            f"{len(self.objects)} traced objects, "
            f"{self.queues.height} queues"
        ]
        for row in self.to_frame().iter_rows(named=True):
            extra = ""
            if row["holding"]:
                extra += f" holds {', '.join(row['holding'])}"
            if row["waiting_for"]:
                extra += f" waits for {', '.join(row['waiting_for'])}"
            lines.append(f"  {self.labels.actor(row['actor'])} {row['kind']}{extra}")
        for name, state in self.objects.items():
            lines.append(f"  {name}: {_show(state)}")
        for row in self.queues.iter_rows(named=True):
            lines.append(f"  queue {row['target']}: depth {row['depth']}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        objs = "".join(
            f"<tr><th style='text-align:left'>{html.escape(n)}</th><td><code>"
            f"{html.escape(_show(s))}</code></td></tr>"
            for n, s in self.objects.items()
        )
        parts = [
            f"<b>Snapshot at {html.escape(self.labels.time(self.ts))}</b>",
            "<h5>actors</h5>",
            frame_html(self.to_frame(), MAX_SNAPSHOT_ROWS),
        ]
        if objs:
            parts += ["<h5>traced objects</h5>", f"<table>{objs}</table>"]
        if self.queues.height:
            parts += ["<h5>queues</h5>", frame_html(self.queues, MAX_SNAPSHOT_ROWS)]
        return "<div class='scope-report'>" + "".join(parts) + "</div>"
