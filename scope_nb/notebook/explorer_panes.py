"""The explorer's text panes as HTML at a cursor: where it is, the events around it, a
traced object's state and what every live actor is doing.

Each pane is a pure function of the cursor (a row of the events frame, in global
order) and its time: a search in a sorted column and a slice of a few rows, so drawing
them costs the same on a million events as on a hundred. The two things that are not
cheap, an object's state timeline and a state rebuilt from it, are cached here.
Every value from the program is escaped and cut short: a pane is a glance.
"""

from __future__ import annotations

import html
from typing import Any

WINDOW = 8  # events shown before and after the cursor
ACTIVITY_LOOKBACK = 4000  # events searched back for what each live actor last did
MAX_ACTORS_SHOWN = 30
NO_OBJECT = "-"  # the "state of" choice when no object is traced


def esc(x: Any, limit: int = 90) -> str:
    """`x` as escaped HTML text, cut to `limit` characters."""
    s = "" if x is None else str(x)
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return html.escape(s)


def describe(
    kind: str, target: str | None, function: str | None, obj: str | None, detail: str | None
) -> str:
    """What an actor is doing, read from the last event it produced."""
    if kind == "lock_wait":
        return f"waiting for lock {target}"
    if kind == "lock_acquire":
        return f"holds {target}"
    if kind == "lock_release":
        return f"released {target}"
    if kind == "call":
        return f"in {function}()" + (f" on {obj}" if obj else "")
    if kind == "return":
        return f"returned from {function}()"
    if kind == "send":
        return f"put on {target}"
    if kind == "receive":
        return f"took from {target}"
    if kind in ("state", "write"):
        return f"changed {obj}" + (f".{target}" if kind == "write" and target else "")
    if kind == "read":
        return f"read {obj}.{target}"
    if kind == "spawn":
        return f"started {detail or target}"
    if kind == "event_wait":
        return f"woke on {target}"
    if kind == "join":
        return f"joined {target}"
    return f"{kind} {target or obj or ''}".strip()


class Panes:
    """Draws the panes of one trace; `ev` is its events frame in global order."""

    def __init__(self, trace, ev, hidden: frozenset[str] = frozenset()):
        self.trace = trace
        self._ev = ev
        self.n = ev.height
        self.t0 = int(ev["ts"][0]) if self.n else 0
        self.names = dict(trace.actors().select("actor", "name").iter_rows())
        self.hidden = hidden  # actors not shown (the kernel's own); their events stay
        self._timelines: dict[str, Any] = {}
        self._state_cache: tuple | None = None

    def header(self) -> str:
        t = self.trace
        span = (t.time_range()[1] - self.t0) / 1e9 if self.n else 0.0
        total = t.actors().height
        hidden = int(t.actors()["actor"].is_in(list(self.hidden)).sum()) if self.hidden else 0
        shown = total - hidden
        return (
            f"<b>scope_nb explorer</b> — {self.n:,} events, {shown:,} "
            f"actor{'' if shown == 1 else 's'}"
            + (f" (and {hidden:,} of the kernel's own, hidden)" if hidden else "")
            + f", {span:.3f} s"
            + (f", {t.dropped:,} dropped" if t.dropped else "")
        )

    def rel(self, ts: int) -> str:
        return f"+{(ts - self.t0) / 1e9:.6f} s"

    def _actor(self, actor: str | None, limit: int = 90) -> str:
        return esc(self.names.get(actor) or actor, limit)

    def position(self, i: int, ts: int) -> str:
        row = self._ev.row(i, named=True)
        return (
            f"<code>seq {row['seq']}</code> at <code>{self.rel(ts)}</code>: "
            f"<b>{esc(row['kind'])}</b> by {self._actor(row['actor'])}"
        )

    def events(self, i: int, rows) -> str:
        """The events around row `i`: of all rows, or of `rows` (those matching the filters)."""
        if rows is None:
            lo = max(0, i - WINDOW)
            window = self._ev.slice(lo, 2 * WINDOW + 1)
            positions = list(range(lo, lo + window.height))
        else:
            k = rows.search_sorted(i, "left")
            picked = rows.slice(max(0, k - WINDOW), 2 * WINDOW + 1)
            positions = picked.to_list()
            window = self._ev[positions] if positions else self._ev.clear()
        cols = ("seq", "ts", "actor", "kind", "target", "obj", "function", "detail")
        out = [
            '<table class="scope-events" style="font-size:12px;border-collapse:collapse">',
            "<tr><th>seq</th><th>t</th><th>actor</th><th>kind</th><th>on</th><th>function</th><th>detail</th></tr>",
        ]
        keep = ' style="white-space:nowrap"'  # a long detail wraps in its own cell, never the times
        for pos, r in zip(positions, window.select(cols).iter_rows(named=True), strict=True):
            style = ' style="background:#ffe08a;font-weight:600"' if pos == i else ""
            on = (
                r["obj"]
                if r["obj"] and r["target"] and r["kind"] in ("read", "write")
                else (r["target"] or r["obj"])
            )
            detail = esc(r["detail"], 60)
            out.append(
                f"<tr{style}><td{keep}>{r['seq']}</td><td{keep}>{self.rel(r['ts'])}</td>"
                f"<td{keep}>{self._actor(r['actor'], 24)}</td>"
                f"<td{keep}>{esc(r['kind'])}</td><td>{esc(on, 30)}</td><td>{esc(r['function'], 30)}"
                "</td>"
                f'<td style="word-break:break-word;min-width:12em">{detail}</td></tr>'
            )
        if not positions:
            out.append('<tr><td colspan="7"><i>no event matches the filters</i></td></tr>')
        out.append("</table>")
        return "".join(out)

    def _timeline(self, obj: str):
        if obj not in self._timelines:
            self._timelines[obj] = self.trace.state_timeline(obj)
        return self._timelines[obj]

    def state(self, obj: str, ts: int | None) -> str:
        """The state of traced object `obj` at `ts`, the attributes its last change touched
        highlighted."""
        if ts is None or obj == NO_OBJECT:
            return "<i>no traced object (trace one with scope_nb.trace_object or --objects)</i>"
        try:
            tl = self._timeline(obj)
            k = tl["ts"].search_sorted(ts, "right") - 1
            if k < 0:
                return f"<i>{esc(obj)}: no state recorded yet at this point</i>"
            if self._state_cache is None or self._state_cache[:2] != (obj, k):
                self._state_cache = (obj, k, self.trace.get_state_at(obj, ts))
            state = self._state_cache[2]
            names = tl["changed"][k]
            changed = set(names.to_list()) if names is not None else set()
            cause, actor, at = tl["cause"][k], tl["actor"][k], int(tl["ts"][k])
        except Exception as exc:  # a state that cannot be rebuilt is shown, not raised
            return (
                f'<span style="color:#b00020">state of {esc(obj)}: {esc(type(exc).__name__)}: '
                f"{esc(exc, 200)}</span>"
            )
        rows = []
        for name, value in state.items():
            mark = ' style="background:#ffe08a"' if name in changed else ""
            rows.append(
                f"<tr{mark}><td><code>{esc(name)}</code></td><td "
                f'class="scope-value"><code>{esc(repr(value), 120)}</code></td></tr>'
            )
        return (
            f'<div class="scope-state"><b>{esc(obj)}</b> at {self.rel(ts)}'
            f'<table style="font-size:12px">{"".join(rows)}</table>'
            f"<small>last change: {esc(cause, 60)} by {self._actor(actor)} "
            f"at {self.rel(at)} (highlighted)</small></div>"
        )

    def actors(self, i: int, ts: int) -> str:
        """The actors alive at `ts` and what each last did up to row `i`."""
        import polars as pl

        actors = self.trace.actors()
        alive = actors.filter(
            (pl.col("started").is_null() | (pl.col("started") <= ts))
            & (pl.col("ended").is_null() | (pl.col("ended") > ts))
        )
        hidden = 0
        if self.hidden:
            shown = alive.filter(~pl.col("actor").is_in(list(self.hidden)))
            hidden, alive = alive.height - shown.height, shown
        lo = max(0, i - ACTIVITY_LOOKBACK)
        recent = (
            self._ev.slice(lo, i - lo + 1)
            .group_by("actor")
            .agg(pl.all().sort_by("seq").last())
            .select("actor", "kind", "target", "function", "obj", "detail")
        )
        doing = {r[0]: describe(*r[1:]) for r in recent.iter_rows()}
        out = [
            f"<b>{alive.height} actor{'s' if alive.height != 1 else ''} alive</b>"
            + (f" <small>({hidden} of the kernel's own hidden)</small>" if hidden else ""),
            '<table style="font-size:12px">',
        ]
        for r in alive.head(MAX_ACTORS_SHOWN).select("actor", "name", "kind").iter_rows():
            out.append(
                f"<tr><td>{esc(r[1] or r[0], 28)}</td><td>{esc(r[2])}</td>"
                f"<td>{esc(doing.get(r[0], '—'), 60)}</td></tr>"
            )
        if alive.height > MAX_ACTORS_SHOWN:
            out.append(f"<tr><td colspan=3>… {alive.height - MAX_ACTORS_SHOWN} more</td></tr>")
        out.append("</table>")
        return "".join(out)


__all__ = [
    "Panes",
    "describe",
    "esc",
    "WINDOW",
    "ACTIVITY_LOOKBACK",
    "MAX_ACTORS_SHOWN",
    "NO_OBJECT",
]
