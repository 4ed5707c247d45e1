"""The explorer: scrub through a Trace with a time slider and watch every panel follow.

The cursor is a position in the events frame (global order). Everything that depends
on the cursor is a search in a sorted column plus a slice of a few rows, so a step
costs the same on a million events as on a hundred; the heavy parts (the timeline
drawing, graphs, per-kind indexes) are computed once, or when first asked for. The
timeline is drawn once by vl-convert (as a PNG: the labels are drawn with the fonts
the layout was measured with, so none is cut); the cursor is a separate one-line SVG
laid over it in the same grid cell, so a step sends a few hundred bytes to the browser.
"""

from __future__ import annotations

import base64
import html
import time
from typing import Any

WINDOW = 8  # events shown before and after the cursor
ACTIVITY_LOOKBACK = 4000  # events searched back for what each live actor last did
MAX_ACTORS_SHOWN = 30
MAX_OPTIONS = 200
ALL = "(all)"


def _esc(x: Any, limit: int = 90) -> str:
    s = "" if x is None else str(x)
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return html.escape(s)


def describe(kind: str, target: str | None, function: str | None, obj: str | None, detail: str | None) -> str:
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


def _check_direction(direction: int) -> None:
    """Steps go one event back or forward; any other number was a mistake, not a jump."""
    if isinstance(direction, bool) or direction not in (-1, 1):
        raise ValueError(f"direction: {direction!r} is not a direction; accepted: -1 (back) | 1 (forward)")


class Explorer:
    """The explorer widget for one Trace. `at` (a time) puts the cursor there, `obj` (a
    traced object or its name) selects the object whose state is shown, `tab` opens a
    lower panel by title."""

    TABS = ("timeline", "supervision", "locks", "messages", "hotspots", "queues")

    def __init__(self, trace, at: Any = None, obj: Any = None, tab: str | None = None):
        import ipywidgets as W
        import polars as pl

        if tab is not None and tab not in self.TABS:
            raise ValueError(f"tab: {tab!r} is not a panel; accepted: {', '.join(self.TABS)}")
        start_at = trace._time_in_trace(at, "at") if at is not None else None
        obj = trace.resolve_object(obj) if obj is not None else None
        self.trace = trace
        ev = trace.events()
        if ev.height and not ev["seq"].is_sorted():
            ev = ev.sort("seq")
        self._ev = ev
        self.n = ev.height
        self._ts = ev["ts"]
        self.t0 = int(self._ts[0]) if self.n else 0
        self._names = dict(trace.actors().select("actor", "name").iter_rows())
        self._kind_rows: dict[str, Any] = {}
        self._timelines: dict[str, pl.DataFrame] = {}
        self._state_cache: tuple | None = None
        self._filtered = None  # row positions matching the filters (None: all rows)
        self._rendered_tabs: set[int] = set()
        self.last_update_ms = 0.0

        kinds = sorted(ev["kind"].unique().to_list()) if self.n else []
        objects = trace.states()["obj"].unique().sort().head(MAX_OPTIONS).to_list()
        if obj is not None and obj not in objects:
            objects.append(obj)
        targets = ev["target"].drop_nulls().unique().sort().head(MAX_OPTIONS).to_list() if self.n else []
        actor_opts = [(f"{self._names.get(a) or a} [{a}]", a) for a in trace.actors()["actor"].head(MAX_OPTIONS)]

        # -- controls ----------------------------------------------------------------
        last = max(self.n - 1, 0)
        self.slider = W.IntSlider(value=0, min=0, max=last, step=1, description="event", readout=True,
                                  continuous_update=False, layout=W.Layout(width="520px"))
        self.play = W.Play(value=0, min=0, max=last, step=max(1, self.n // 300), interval=250,
                           description="play")
        W.jslink((self.play, "value"), (self.slider, "value"))
        self._play_seen = (0, 0)  # (value before the last, last value) the play button reported
        self.back = W.Button(description="◀ step", tooltip="previous event (matching the filters)",
                             layout=W.Layout(width="80px"))
        self.fwd = W.Button(description="step ▶", tooltip="next event (matching the filters)",
                            layout=W.Layout(width="80px"))
        self.position = W.HTML()
        self.note = W.HTML()  # why a button did nothing (no later match, ...)
        self.jump_kind = W.Dropdown(options=kinds or ["-"], description="jump to", layout=W.Layout(width="220px"))
        self.prev_kind = W.Button(description="◀ prev", tooltip="previous event of this kind",
                                  layout=W.Layout(width="70px"))
        self.next_kind = W.Button(description="next ▶", tooltip="next event of this kind",
                                  layout=W.Layout(width="70px"))
        self.prev_kind.disabled = self.next_kind.disabled = not kinds  # "-" is no kind to jump to
        self.f_actor = W.Dropdown(options=[(ALL, ALL), *actor_opts], value=ALL, description="actor",
                                  layout=W.Layout(width="260px"))
        self.f_kind = W.Dropdown(options=[ALL, *kinds], description="kind", layout=W.Layout(width="200px"))
        self.f_obj = W.Dropdown(options=[ALL, *sorted(set(objects) | set(targets))], description="object",
                                layout=W.Layout(width="240px"))
        self.state_obj = W.Dropdown(options=objects or ["-"], value=obj if obj in objects else (objects[0] if objects else "-"),
                                    description="state of", layout=W.Layout(width="260px"))

        # -- panels --------------------------------------------------------------------
        self.events_panel = W.HTML(layout=W.Layout(width="58%"))
        self.state_panel = W.HTML()
        self.actors_panel = W.HTML()
        self.timeline_base = W.HTML(layout=W.Layout(grid_area="main"))
        self.timeline_cursor = W.HTML(layout=W.Layout(grid_area="main"))
        timeline = W.GridBox([self.timeline_base, self.timeline_cursor],
                             layout=W.Layout(grid_template_areas='"main"', grid_template_columns="auto",
                                             justify_items="flex-start", align_items="flex-start"))
        self.lower = W.Tab(children=[timeline] + [W.HTML() for _ in self.TABS[1:]])
        for i, title in enumerate(self.TABS):
            self.lower.set_title(i, title)
        self._timeline_geometry: tuple[float, float, float, float, float, float] | None = None

        self.widget = W.VBox([
            W.HTML(self._header()),
            W.HBox([self.back, self.play, self.fwd, self.slider]),
            W.HBox([self.position]),
            W.HBox([self.jump_kind, self.prev_kind, self.next_kind, self.note]),
            W.HBox([self.f_actor, self.f_kind, self.f_obj]),
            W.HBox([self.events_panel, W.VBox([self.state_obj, self.state_panel, self.actors_panel],
                                              layout=W.Layout(width="42%"))]),
            self.lower,
        ])
        self.widget.add_class("scope-explorer")

        self.slider.observe(lambda _: self._update(), names="value")
        self.play.observe(self._play_moved, names="value")
        self.play.observe(self._play_stopped, names="playing")
        self.state_obj.observe(lambda _: self._update(), names="value")
        for f in (self.f_actor, self.f_kind, self.f_obj):
            f.observe(self._filters_changed, names="value")
        self.back.on_click(lambda _: self.step(-1))
        self.fwd.on_click(lambda _: self.step(1))
        self.prev_kind.on_click(lambda _: self.jump(self.jump_kind.value, -1))
        self.next_kind.on_click(lambda _: self.jump(self.jump_kind.value, 1))
        self.lower.observe(lambda _: self._render_tab(self.lower.selected_index), names="selected_index")

        self._render_tab(0)
        if tab is not None:
            self.lower.selected_index = self.TABS.index(tab)
        if start_at is not None:
            self.slider.value = min(self._ts.search_sorted(start_at, "left"), last)
        self._update()

    # -- navigation ---------------------------------------------------------------------
    @property
    def cursor(self) -> int:
        """The cursor as a row of the events frame."""
        return self.slider.value

    @property
    def cursor_ts(self) -> int | None:
        return int(self._ts[self.cursor]) if self.n else None

    def seek(self, ts: Any) -> int:
        """Put the cursor on the first event at or after `ts` (a time); returns the row."""
        t = self.trace._time_in_trace(ts, "ts")
        self.slider.value = min(self._ts.search_sorted(t, "left"), max(self.n - 1, 0))
        return self.slider.value

    def step(self, direction: int) -> int:
        """Move to the previous (-1) / next (+1) event matching the filters."""
        _check_direction(direction)
        rows = self._filtered
        i = self.cursor
        if rows is None:
            moved = 0 <= i + direction <= max(self.n - 1, 0)
            if moved:
                self.slider.value = i + direction
        else:
            moved = self._move_in(rows, direction)
        self._say("" if moved else f"no {'later' if direction > 0 else 'earlier'} event"
                  + (" matching the filters" if rows is not None else ""))
        return self.slider.value

    def jump(self, kind: str, direction: int = 1) -> int:
        """Move to the next (+1) / previous (-1) event of `kind`."""
        import polars as pl

        from ..schema import EVENT_KINDS

        _check_direction(direction)
        if kind not in EVENT_KINDS:
            raise ValueError(f"kind: {kind!r} is not an event kind; accepted: {', '.join(EVENT_KINDS)}")
        if kind not in self._kind_rows:
            self._kind_rows[kind] = (self._ev.select(pl.col("kind") == kind).to_series().arg_true()
                                     if self.n else pl.Series([], dtype=pl.UInt32))
        moved = self._move_in(self._kind_rows[kind], direction)
        self._say("" if moved else f"no {'later' if direction > 0 else 'earlier'} {kind} event")
        return self.slider.value

    def _move_in(self, rows, direction: int) -> bool:
        """Move to the next / previous row of `rows`; False when there is none."""
        i = self.cursor
        k = rows.search_sorted(i, "right") if direction > 0 else rows.search_sorted(i, "left") - 1
        if not 0 <= k < rows.len():
            return False
        self.slider.value = int(rows[k])
        return True

    def _say(self, text: str) -> None:
        self.note.value = f'<i style="color:#8a6d00">{_esc(text)}</i>' if text else ""

    def _play_moved(self, change) -> None:
        self._play_seen = (change["old"], change["new"])

    def _play_stopped(self, change) -> None:
        """The play widget's ■ puts its value back to the start; the cursor stays where
        playing reached instead. (Both arrive in one update, in either order.)"""
        if change["new"]:
            return
        before, last = self._play_seen
        reached = before if last == self.play.min else last
        if self.play.value == self.play.min and reached != self.play.min:
            self.play.value = reached
            self.slider.value = reached

    def _filters_changed(self, _change=None) -> None:
        import polars as pl

        conds = []
        if self.f_actor.value != ALL:
            conds.append(pl.col("actor") == self.f_actor.value)
        if self.f_kind.value != ALL:
            conds.append(pl.col("kind") == self.f_kind.value)
        if self.f_obj.value != ALL:
            conds.append((pl.col("obj") == self.f_obj.value) | (pl.col("target") == self.f_obj.value))
        if not conds:
            self._filtered = None
        else:
            self._filtered = self._ev.select(pl.all_horizontal(conds).fill_null(False)).to_series().arg_true()
        self._update()

    # -- rendering ------------------------------------------------------------------------
    def _header(self) -> str:
        t = self.trace
        span = (self.trace.time_range()[1] - self.t0) / 1e9 if self.n else 0.0
        return (f"<b>scope_nb explorer</b> — {self.n:,} events, {t.actors().height:,} actors, "
                f"{span:.3f} s" + (f", {t.dropped:,} dropped" if t.dropped else ""))

    def _rel(self, ts: int) -> str:
        return f"+{(ts - self.t0) / 1e9:.6f} s"

    def _update(self) -> None:
        started = time.perf_counter()
        if not self.n:
            self.position.value = "<i>no events recorded</i>"
            self.events_panel.value = ""
            self.state_panel.value = self._state_html(None)
            self.actors_panel.value = ""
            return
        i = self.cursor
        ts = int(self._ts[i])
        row = self._ev.row(i, named=True)
        self.position.value = (f"<code>seq {row['seq']}</code> at <code>{self._rel(ts)}</code>: "
                               f"<b>{_esc(row['kind'])}</b> by {_esc(self._names.get(row['actor']) or row['actor'])}")
        self.events_panel.value = self._events_html(i)
        self.state_panel.value = self._state_html(ts)
        self.actors_panel.value = self._actors_html(i, ts)
        self._draw_cursor(ts)
        self.last_update_ms = (time.perf_counter() - started) * 1e3

    def _events_html(self, i: int) -> str:
        rows = self._filtered
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
        out = ['<table class="scope-events" style="font-size:12px;border-collapse:collapse">',
               "<tr><th>seq</th><th>t</th><th>actor</th><th>kind</th><th>on</th><th>function</th><th>detail</th></tr>"]
        keep = ' style="white-space:nowrap"'  # a long detail wraps in its own cell, never the times
        for pos, r in zip(positions, window.select(cols).iter_rows(named=True), strict=True):
            style = ' style="background:#ffe08a;font-weight:600"' if pos == i else ""
            on = r["obj"] if r["obj"] and r["target"] and r["kind"] in ("read", "write") else (r["target"] or r["obj"])
            detail = _esc(r["detail"], 60)
            out.append(f"<tr{style}><td{keep}>{r['seq']}</td><td{keep}>{self._rel(r['ts'])}</td>"
                       f"<td{keep}>{_esc(self._names.get(r['actor']) or r['actor'], 24)}</td>"
                       f"<td{keep}>{_esc(r['kind'])}</td><td>{_esc(on, 30)}</td><td>{_esc(r['function'], 30)}</td>"
                       f'<td style="word-break:break-word;min-width:12em">{detail}</td></tr>')
        if not positions:
            out.append('<tr><td colspan="7"><i>no event matches the filters</i></td></tr>')
        out.append("</table>")
        return "".join(out)

    def _timeline(self, obj: str):
        if obj not in self._timelines:
            self._timelines[obj] = self.trace.state_timeline(obj)
        return self._timelines[obj]

    def _state_html(self, ts: int | None) -> str:
        obj = self.state_obj.value
        if ts is None or obj == "-":
            return "<i>no traced object (trace one with scope_nb.trace_object or --objects)</i>"
        try:
            tl = self._timeline(obj)
            k = tl["ts"].search_sorted(ts, "right") - 1
            if k < 0:
                return f"<i>{_esc(obj)}: no state recorded yet at this point</i>"
            if self._state_cache is None or self._state_cache[:2] != (obj, k):
                self._state_cache = (obj, k, self.trace.get_state_at(obj, ts))
            state = self._state_cache[2]
            names = tl["changed"][k]
            changed = set(names.to_list()) if names is not None else set()
            cause, actor, at = tl["cause"][k], tl["actor"][k], int(tl["ts"][k])
        except Exception as exc:  # a state that cannot be rebuilt is shown, not raised into the widget
            return f'<span style="color:#b00020">state of {_esc(obj)}: {_esc(type(exc).__name__)}: {_esc(exc, 200)}</span>'
        rows = []
        for name, value in state.items():
            mark = ' style="background:#ffe08a"' if name in changed else ""
            rows.append(f'<tr{mark}><td><code>{_esc(name)}</code></td><td class="scope-value"><code>{_esc(repr(value), 120)}</code></td></tr>')
        return (f'<div class="scope-state"><b>{_esc(obj)}</b> at {self._rel(ts)}'
                f'<table style="font-size:12px">{"".join(rows)}</table>'
                f"<small>last change: {_esc(cause, 60)} by {_esc(self._names.get(actor) or actor)} "
                f"at {self._rel(at)} (highlighted)</small></div>")

    def _actors_html(self, i: int, ts: int) -> str:
        import polars as pl

        actors = self.trace.actors()
        alive = actors.filter((pl.col("started").is_null() | (pl.col("started") <= ts))
                              & (pl.col("ended").is_null() | (pl.col("ended") > ts)))
        lo = max(0, i - ACTIVITY_LOOKBACK)
        recent = (self._ev.slice(lo, i - lo + 1)
                  .group_by("actor").agg(pl.all().sort_by("seq").last())
                  .select("actor", "kind", "target", "function", "obj", "detail"))
        doing = {r[0]: describe(*r[1:]) for r in recent.iter_rows()}
        out = [f"<b>{alive.height} actor{'s' if alive.height != 1 else ''} alive</b>",
               '<table style="font-size:12px">']
        for r in alive.head(MAX_ACTORS_SHOWN).select("actor", "name", "kind").iter_rows():
            out.append(f"<tr><td>{_esc(r[1] or r[0], 28)}</td><td>{_esc(r[2])}</td>"
                       f"<td>{_esc(doing.get(r[0], '—'), 60)}</td></tr>")
        if alive.height > MAX_ACTORS_SHOWN:
            out.append(f"<tr><td colspan=3>… {alive.height - MAX_ACTORS_SHOWN} more</td></tr>")
        out.append("</table>")
        return "".join(out)

    def _draw_cursor(self, ts: int) -> None:
        geo = self._timeline_geometry
        if geo is None:
            return
        ox, oy, w, h, plot_w, plot_h = geo
        t0, t1 = self.trace.time_range()
        x = ox + (ts - t0) / max(t1 - t0, 1) * plot_w
        self.timeline_cursor.value = (
            f'<svg class="scope-cursor" xmlns="http://www.w3.org/2000/svg" width="{w:.0f}" height="{h:.0f}" '
            f'style="pointer-events:none"><line x1="{x:.1f}" x2="{x:.1f}" y1="{oy:.1f}" y2="{oy + plot_h:.1f}" '
            f'stroke="black" stroke-width="2"/></svg>')

    def _render_tab(self, index: int | None) -> None:
        if index is None or index in self._rendered_tabs:
            return
        self._rendered_tabs.add(index)
        name = self.TABS[index]
        try:
            if name == "timeline":
                self._render_timeline()
                return
            self.lower.children[index].value = self._tab_html(name)
        except Exception as exc:  # a panel that fails says why; the others keep working
            message = f'<span style="color:#b00020">{name} failed: {_esc(type(exc).__name__)}: {_esc(exc, 300)}</span>'
            if name == "timeline":
                self.timeline_base.value = message
            else:
                self.lower.children[index].value = message

    def _render_timeline(self) -> None:
        from . import charts

        if not self.n:
            self.timeline_base.value = "<i>no events recorded</i>"
            return
        from .graphs import svg_to_png

        spec = charts.timeline_spec(self.trace)
        svg = charts.to_svg(spec)
        ox, oy, w, h = charts.plot_geometry(svg)
        self._timeline_geometry = (ox, oy, w, h, float(spec["width"]), float(spec["height"]))
        png = base64.b64encode(svg_to_png(svg)).decode("ascii")
        self.timeline_base.value = (f'<img class="scope-timeline" alt="timeline" width="{w:.0f}" height="{h:.0f}" '
                                    f'src="data:image/png;base64,{png}">')

    def _tab_html(self, name: str) -> str:
        from . import charts, graphs

        if name == "supervision":
            return graphs.supervision_svg(self.trace).svg
        if name == "locks":
            return graphs.lock_graph_svg(self.trace).svg
        if name == "messages":
            return graphs.message_flow_svg(self.trace).svg
        if name == "hotspots":
            hot = charts.hotspot_frame(self.trace)
            if hot.height == 0:
                return "<i>no function calls traced (trace a module: --modules NAME or scope_nb.trace_module)</i>"
            return charts.to_svg(charts.hotspots_chart(self.trace))
        if name == "queues":
            if self.trace.events(["send", "receive"]).height == 0:
                return "<i>no queue traffic recorded</i>"
            return charts.to_svg(charts.queue_depth_chart(self.trace))
        raise ValueError(f"tab: unknown panel {name!r}")

    # -- display ----------------------------------------------------------------------------
    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = self.widget._repr_mimebundle_(include=include, exclude=exclude) or {}
        bundle["text/html"] = self._repr_html_()
        return bundle

    def _repr_html_(self) -> str:
        """A static picture of the explorer at the cursor, for saved notebooks."""
        cursor = ""
        if self._timeline_geometry is not None:
            base = self.timeline_base.value
            overlay = self.timeline_cursor.value
            cursor = f'<div style="display:grid"><div style="grid-area:1/1">{base}</div><div style="grid-area:1/1">{overlay}</div></div>'
        return (f'<div class="scope-explorer-static">{self._header()}<br>{self.position.value}'
                f'<div style="display:flex;gap:12px"><div>{self.events_panel.value}</div>'
                f"<div>{self.state_panel.value}{self.actors_panel.value}</div></div>{cursor}</div>")

    def __repr__(self) -> str:
        return f"<scope_nb Explorer: {self.n:,} events, cursor at row {self.cursor}>"


__all__ = ["Explorer", "describe"]
