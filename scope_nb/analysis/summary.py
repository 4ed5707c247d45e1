"""The one-screen summary of a Trace: what ran, what went wrong, where time went.

Each section is computed on its own, so a detector that fails (or is missing) costs
that section only, and the summary says which one and why instead of hiding it.

A summary can leave actors out (a notebook leaves out the kernel's own, see
analysis.environment): a finding, lock or queue that only they are involved in is not
listed, and the section says how many it left out; what involves another actor is kept
whole (analysis.leave_out).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from .inline_html import sections_html

MAX_ITEMS = 3  # findings listed per section; the rest are counted


@dataclass
class Section:
    """One line of the summary: a headline, a few findings, or the error that stopped it."""

    name: str
    headline: str = ""
    items: list[str] = field(default_factory=list)
    count: int = 0  # findings (crashes, races, ...): nonzero means "look here"
    error: str | None = None
    seconds: float = 0.0
    first_ts: int | None = None  # where the explorer should jump for this section


@dataclass(frozen=True)
class LeftOut:
    """What a summary leaves out: the actors (the kernel's own, in a notebook) and the
    locks and queues only they used."""

    actors: frozenset[str] = frozenset()
    targets: frozenset[str] = frozenset()

    @classmethod
    def of(cls, trace, actors: Collection[str]) -> LeftOut:
        if not actors:
            return cls()
        from .leave_out import TARGET_KINDS, hidden_targets

        actors = frozenset(actors)
        return cls(actors, frozenset(hidden_targets(trace.events(list(TARGET_KINDS)), actors)))

    def findings(self, reports: list) -> tuple[list, int]:
        """The reports that involve an actor not left out, and how many were left out."""
        if not self.actors:
            return reports, 0
        from .leave_out import shown_findings

        return shown_findings(reports, self.actors, self.targets)

    def note(self, n: int, noun: str) -> str:
        """What a headline adds for `n` of its `noun`s left out ("" for none)."""
        if not n:
            return ""
        return f"; {n} {_plural(noun, n)} of the kernel's own left out"


NOTHING = LeftOut()


def _first_line(obj: Any, limit: int = 160) -> str:
    text = repr(obj).strip().splitlines()
    line = text[0] if text else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _ts_of(report: Any) -> int | None:
    for name in ("ts", "first_ts", "t0"):
        value = getattr(report, name, None)
        if isinstance(value, int):
            return value
    return None


def _actors(trace, out: LeftOut = NOTHING) -> Section:
    import polars as pl

    actors = trace.actors()
    sec = Section("actors", count=0)
    if actors.height == 0:
        sec.headline = "none recorded"
        return sec
    by_kind = actors.group_by("kind").len().sort("kind")
    sec.headline = ", ".join(f"{n} {_plural(k, n)}" for k, n in by_kind.iter_rows())
    outcomes = actors.filter(pl.col("outcome") != "ok").group_by("outcome").len().sort("outcome")
    if outcomes.height:
        sec.headline += " (" + ", ".join(f"{n} {o}" for o, n in outcomes.iter_rows()) + ")"
    return sec


def _events(trace, out: LeftOut = NOTHING) -> Section:
    ev = trace.events()
    sec = Section("events")
    if ev.height == 0:
        sec.headline = "none recorded"
        return sec
    lo, hi = int(ev["ts"].min()), int(ev["ts"].max())
    kinds = ev.group_by("kind").len().sort("len", descending=True)
    top = ", ".join(f"{k} {n:,}" for k, n in kinds.head(6).iter_rows())
    more = f", +{kinds.height - 6} kinds" if kinds.height > 6 else ""
    sec.headline = f"{ev.height:,} over {(hi - lo) / 1e9:.3f} s: {top}{more}"
    return sec


def _crashes(trace, out: LeftOut = NOTHING) -> Section:
    import polars as pl

    sec = Section("crashes")
    crashed = trace.events(["crash"])
    shown = crashed.filter(~pl.col("actor").is_in(list(out.actors))) if out.actors else crashed
    note = out.note(crashed.height - shown.height, "crash")
    crashed = shown
    sec.count = crashed.height
    if not sec.count:
        sec.headline = "none" + note
        return sec
    from .labels import labels_of

    labels = labels_of(trace.actors(), trace.events())
    sec.headline = f"{sec.count} actor{'s' if sec.count != 1 else ''} crashed{note}"
    sec.first_ts = int(crashed["ts"].min())
    for actor, detail in (
        crashed.sort("ts")
        .head(MAX_ITEMS)
        .select("actor", pl.col("detail").fill_null(""))
        .iter_rows()
    ):
        exc = detail.split("\n", 1)[0].split("|", 1)[-1]  # "ExcType|repr": the repr names the type
        sec.items.append(f"{labels.actor(actor)}: {exc}")
    return sec


def _findings(trace, out: LeftOut, name: str, method: str, noun: str) -> tuple[Section, str]:
    """The section listing the findings of `trace.method()`, and the note saying how many
    of them were left out (`out`) for a headline of the caller's own when there is none."""
    reports, left = out.findings(list(getattr(trace, method)()))
    note = out.note(left, noun)
    sec = Section(name, count=len(reports))
    sec.headline = (
        f"{len(reports)} {noun}{'s' if len(reports) != 1 else ''}" if reports else "none"
    ) + note
    sec.items = [_first_line(r) for r in reports[:MAX_ITEMS]]
    stamps = [t for t in map(_ts_of, reports) if t is not None]
    sec.first_ts = min(stamps) if stamps else None
    return sec, note


def _races(trace, out: LeftOut = NOTHING) -> Section:
    """Races are looked for only in traced objects' attribute accesses: with none, the
    section says it did not watch rather than "none"."""
    import polars as pl

    accesses = trace.events(["read", "write"]).filter(pl.col("obj").is_not_null())
    if accesses.height == 0:
        return Section(
            "races", headline="not watched (no objects traced: --objects, trace_object or --races)"
        )
    sec, note = _findings(trace, out, "races", "detect_race_conditions", "race")
    if not sec.count:
        watched = sorted(accesses["obj"].unique().to_list())
        sec.headline = f"none in {_listed(watched, 'traced object')}{note}"
    return sec


def _listed(names: list[str], noun: str) -> str:
    """`3 locks (a, b, c)`: how many were watched, the first few by name."""
    shown = ", ".join(names[:MAX_ITEMS]) + (
        f", +{len(names) - MAX_ITEMS}" if len(names) > MAX_ITEMS else ""
    )
    return f"{len(names)} {_plural(noun, len(names))} ({shown})"


def _option(trace, name: str) -> Any:
    options = trace.options
    return options.get(name) if isinstance(options, dict) else getattr(options, name, None)


def _watchdog(trace) -> str:
    """Hangs and real deadlocks are seen only by the watchdog: say whether it ran."""
    seconds = _option(trace, "watchdog")
    return (
        f"watchdog every {seconds} s"
        if seconds
        else "hangs not watched (watchdog off: watchdog=seconds)"
    )


def _deadlocks(trace, out: LeftOut = NOTHING) -> Section:
    """Lock-order inversions, self-deadlocks and leaked locks are looked for in the
    locks the recording saw; real deadlocks need the watchdog: silence says which."""
    import polars as pl

    sec, note = _findings(trace, out, "deadlocks", "detect_deadlocks", "deadlock")
    if sec.count:
        return sec
    locks = sorted(
        set(
            trace.events(["lock_wait", "lock_acquire", "lock_release", "lock_timeout"])
            .filter(pl.col("target").is_not_null())["target"]
            .unique()
            .to_list()
        )
        - out.targets
    )
    seen = (
        f"none in {_listed(locks, 'lock')} watched"
        if locks
        else "none: no locks seen (none taken, or none traced)"
    )
    sec.headline = f"{seen}; {_watchdog(trace)}{note}"
    return sec


def _stalls(trace, out: LeftOut = NOTHING) -> Section:
    """Backlogs are looked for in the queues the recording saw, blocked loops in the
    event loops that ran tasks, hangs by the watchdog: silence says which."""
    import polars as pl

    from .actors import loop_threads

    sec, note = _findings(trace, out, "stalls", "detect_stalls", "stall")
    if sec.count:
        return sec
    queues = sorted(
        set(
            trace.events(["send", "receive"])
            .filter(pl.col("qsize").is_not_null())["target"]
            .drop_nulls()
            .unique()
            .to_list()
        )
        - out.targets
    )
    actors = trace.actors()
    loops = (
        actors.select("actor", "kind", loop_threads(actors))
        .filter((pl.col("kind") == "task") & ~pl.col("actor").is_in(list(out.actors)))["loop"]
        .drop_nulls()
        .n_unique()
    )
    watched = ([_listed(queues, "queue")] if queues else []) + (
        [f"{loops} event {_plural('loop', loops)}"] if loops else []
    )
    seen = f"none in {', '.join(watched)}" if watched else "none: no queues or event loops seen"
    sec.headline = f"{seen}; {_watchdog(trace)}{note}"
    return sec


def _hotspots(trace, out: LeftOut = NOTHING) -> Section:
    sec = Section("hotspots")
    if trace.events(["call"]).height == 0:
        sec.headline = "no function calls traced (use --modules or scope_nb.trace_module)"
        return sec
    hot = trace.performance_hotspots()
    sec.headline = f"top {min(MAX_ITEMS, hot.height)} of {hot.height} functions"
    cols = hot.columns
    label = [c for c in ("module", "function") if c in cols]
    timing = next((c for c in ("total_ns", "total_time_ns", "self_ns", "total") if c in cols), None)
    for row in hot.head(MAX_ITEMS).iter_rows(named=True):
        name = ".".join(str(row[c]) for c in label if row[c] is not None) or _first_line(row)
        extra = []
        if "count" in cols:
            extra.append(f"{row['count']:,} calls")
        if timing is not None and isinstance(row[timing], int | float):
            extra.append(f"{row[timing] / 1e6:.2f} ms")
        sec.items.append(f"{name} ({', '.join(extra)})" if extra else name)
    return sec


def _contention(trace, out: LeftOut = NOTHING) -> Section:
    import polars as pl

    sec = Section("contention")
    locks = trace.lock_contention()
    if out.targets:  # a lock another actor took keeps its whole row
        locks = locks.filter(~pl.col("lock").is_in(list(out.targets)))
    waited = locks.filter((locks["wait_ns"] > 0) | (locks["waiting"] > 0))
    if waited.height == 0:
        sec.headline = (
            f"no lock waited for ({locks.height} taken)" if locks.height else "no locks traced"
        )
        return sec
    sec.headline = (
        f"{waited.height} of {locks.height} lock{'s' if locks.height != 1 else ''} waited for"
    )
    for row in waited.head(MAX_ITEMS).iter_rows(named=True):
        item = (
            f"{row['lock']}: {row['waited']:,} of {row['acquisitions']:,} acquisitions waited, "
            f"{row['wait_ns'] / 1e6:.2f} ms in all (longest {row['wait_max_ns'] / 1e6:.2f} ms)"
        )
        if row["waiting"]:
            item += f"; {row['waiting']} still waiting at the end"
        sec.items.append(item)
    return sec


def _health(trace, out: LeftOut = NOTHING) -> Section:
    sec = Section("dropped/errors")
    dropped = trace.dropped_by_reason
    errors = trace.errors
    parts = []
    total = sum(dropped.values())
    if total:
        parts.append(
            f"{total:,} dropped ("
            + ", ".join(f"{k} {v:,}" for k, v in sorted(dropped.items()) if v)
            + ")"
        )
    n_err = sum(errors.values())
    if n_err:
        parts.append(
            f"{n_err:,} recorder errors ("
            + ", ".join(f"{k} {v}" for k, v in sorted(errors.items()))
            + ")"
        )
        sec.count = n_err
    sec.headline = "; ".join(parts) if parts else "nothing dropped, no recorder errors"
    return sec


SECTIONS: tuple[tuple[str, Callable[[Any, LeftOut], Section]], ...] = (
    ("actors", _actors),
    ("events", _events),
    ("crashes", _crashes),
    ("races", _races),
    ("deadlocks", _deadlocks),
    ("stalls", _stalls),
    ("hotspots", _hotspots),
    ("contention", _contention),
    ("dropped/errors", _health),
)


def summarize(trace, leave_out: Collection[str] = ()) -> list[Section]:
    """Every section of the summary; a section that raises carries its error instead.
    The findings, locks and queues only the actors of `leave_out` are involved in are
    left out (each section says how many); the actors line still counts every actor."""
    out = []
    try:
        left = LeftOut.of(trace, leave_out)
    except Exception as exc:  # the sections are still worth having, with everything in them
        left = NOTHING
        out.append(Section("leave out", error=f"{type(exc).__name__}: {exc}"[:200]))
    for name, compute in SECTIONS:
        t0 = time.perf_counter()
        try:
            sec = compute(trace, left)
        except Exception as exc:  # one broken detector must not hide the rest
            sec = Section(name, error=f"{type(exc).__name__}: {exc}".splitlines()[0][:200])
        sec.seconds = time.perf_counter() - t0
        out.append(sec)
    return out


def _title(trace) -> str:
    state = "recording" if trace.live else "trace"
    return f"scope_nb {state}"


def summary_text(trace, sections: list[Section] | None = None) -> str:
    """The summary as plain text, for a terminal or a log."""
    sections = summarize(trace) if sections is None else sections
    lines = [f"<{_title(trace)}>"]
    for sec in sections:
        if sec.error:
            lines.append(f"  {sec.name:<15} section failed: {sec.error}")
            continue
        lines.append(f"  {sec.name:<15} {sec.headline}")
        lines.extend(f"  {'':<15}   - {item}" for item in sec.items)
        if sec.count > len(sec.items) and sec.items:
            lines.append(f"  {'':<15}   … {sec.count - len(sec.items)} more")
    return "\n".join(lines)


def summary_html(trace, sections: list[Section] | None = None) -> str:
    """The summary as an HTML table styled inline (it survives an untrusted notebook's
    sanitizer): findings in red, failed sections in amber."""
    return sections_html(_title(trace), summarize(trace) if sections is None else sections)


__all__ = ["Section", "LeftOut", "summarize", "summary_text", "summary_html"]


def _plural(word: str, n: int) -> str:
    if n == 1:
        return word
    return word + ("es" if word.endswith("s") else "s")
