"""The explorer: scrub through a Trace with a time slider and watch every panel follow.

The cursor is a position in the events frame (global order). Everything that depends
on the cursor is a search in a sorted column plus a slice of a few rows, so a step
costs the same on a million events as on a hundred; the heavy parts (the timeline
drawing, graphs, per-kind indexes) are computed once, or when first asked for.

The Explorer ties four parts together, each in its own module: the widgets and their
layout (explorer_controls), where the cursor can move (explorer_scrub), the text panes
drawn at the cursor (explorer_panes) and the lower panels with the timeline
(explorer_tabs). It keeps the cursor, the filters' rows, and the public methods.
"""

from __future__ import annotations

import time
from typing import Any

from .explorer_controls import ALL, KERNEL_TOGGLE, Controls
from .explorer_panes import ACTIVITY_LOOKBACK, MAX_ACTORS_SHOWN, WINDOW, Panes, describe, esc
from .explorer_scrub import Scrub, check_direction
from .explorer_tabs import TABS, LowerTabs
from .kernel_actors import cell_runners, kernel_actors

MAX_OPTIONS = 200  # choices offered by each dropdown


class Explorer:
    """The explorer widget for one Trace. `at` (a time) puts the cursor there, `obj` (a
    traced object or its name) selects the object whose state is shown, `tab` opens a
    lower panel by title. In a trace recorded in a kernel, the kernel's own threads and
    tasks are hidden from the actors shown (alive, the actor filter, the lanes, the
    counts, the tabs' graphs) unless `show_kernel`, and a checkbox shows them; their
    events stay in the events shown with the actor filter at "(all)", and what the
    cell's own thread did stays in the tabs (the cell's code ran on it)."""

    TABS = TABS

    def __init__(
        self,
        trace,
        at: Any = None,
        obj: Any = None,
        tab: str | None = None,
        show_kernel: bool = False,
    ):
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
        self._scrub = Scrub(ev)
        self.kernel_actors = frozenset(kernel_actors(trace))
        hidden = frozenset() if show_kernel else self.kernel_actors
        self._panes = Panes(trace, ev, hidden)
        self.t0 = self._panes.t0
        self._filtered = None  # row positions matching the filters (None: all rows)
        self.last_update_ms = 0.0

        kinds = sorted(ev["kind"].unique().to_list()) if self.n else []
        objects = trace.states()["obj"].unique().sort().head(MAX_OPTIONS).to_list()
        if obj is not None and obj not in objects:
            objects.append(obj)
        targets = (
            ev["target"].drop_nulls().unique().sort().head(MAX_OPTIONS).to_list() if self.n else []
        )
        names = self._panes.names
        self._actor_opts = [(f"{names.get(a) or a} [{a}]", a) for a in trace.actors()["actor"]]

        self._tabs = LowerTabs(trace, self.n, hidden, frozenset(cell_runners(trace)))
        self.lower = self._tabs.widget
        self.timeline_base, self.timeline_cursor = (
            self._tabs.timeline_base,
            self._tabs.timeline_cursor,
        )
        c = self._controls = Controls(
            self.n,
            self._panes.header(),
            kinds,
            self._offered_actors(),
            sorted(set(objects) | set(targets)),
            objects,
            obj,
            self.lower,
            kernel_toggle=bool(self.kernel_actors),
            show_kernel=show_kernel,
        )
        self.widget = c.widget
        self.slider, self.play, self.back, self.fwd = c.slider, c.play, c.back, c.fwd
        self.position, self.note = c.position, c.note
        self.jump_kind, self.prev_kind, self.next_kind = c.jump_kind, c.prev_kind, c.next_kind
        self.f_actor, self.f_kind, self.f_obj, self.state_obj = (
            c.f_actor,
            c.f_kind,
            c.f_obj,
            c.state_obj,
        )
        self.events_panel, self.state_panel, self.actors_panel = (
            c.events_panel,
            c.state_panel,
            c.actors_panel,
        )

        self.slider.observe(lambda _: self._update(), names="value")
        self.state_obj.observe(lambda _: self._update(), names="value")
        for f in (self.f_actor, self.f_kind, self.f_obj):
            f.observe(self._filters_changed, names="value")
        self.show_kernel = c.show_kernel
        self.show_kernel.observe(self._kernel_toggled, names="value")
        self.back.on_click(lambda _: self.step(-1))
        self.fwd.on_click(lambda _: self.step(1))
        self.prev_kind.on_click(lambda _: self.jump(self.jump_kind.value, -1))
        self.next_kind.on_click(lambda _: self.jump(self.jump_kind.value, 1))

        self._tabs.render(0)
        if tab is not None:
            self._tabs.select(tab)
        if start_at is not None:
            self.slider.value = self._scrub.row_at(start_at)
        self._update()

    # -- navigation ---------------------------------------------------------------------
    @property
    def cursor(self) -> int:
        """The cursor as a row of the events frame."""
        return self.slider.value

    @property
    def cursor_ts(self) -> int | None:
        return int(self._scrub.ts[self.cursor]) if self.n else None

    def seek(self, ts: Any) -> int:
        """Put the cursor on the first event at or after `ts` (a time); returns the row."""
        self.slider.value = self._scrub.row_at(self.trace._time_in_trace(ts, "ts"))
        return self.slider.value

    def step(self, direction: int) -> int:
        """Move to the previous (-1) / next (+1) event matching the filters."""
        check_direction(direction)
        moved = self._move_in(self._filtered, direction)
        self._say(
            ""
            if moved
            else f"no {'later' if direction > 0 else 'earlier'} event"
            + (" matching the filters" if self._filtered is not None else "")
        )
        return self.slider.value

    def jump(self, kind: str, direction: int = 1) -> int:
        """Move to the next (+1) / previous (-1) event of `kind`."""
        check_direction(direction)
        moved = self._move_in(self._scrub.kind_rows(kind), direction)
        self._say("" if moved else f"no {'later' if direction > 0 else 'earlier'} {kind} event")
        return self.slider.value

    def _move_in(self, rows, direction: int) -> bool:
        """Move to the next / previous row of `rows` (None: any row); False when there is none."""
        row = self._scrub.next_in(rows, self.cursor, direction)
        if row is None:
            return False
        self.slider.value = row
        return True

    def _say(self, text: str) -> None:
        self.note.value = f'<i style="color:#8a6d00">{esc(text)}</i>' if text else ""

    def _filters_changed(self, _change=None) -> None:
        self._filtered = self._scrub.matching(*self._controls.filters())
        self._update()

    @property
    def hidden_actors(self) -> frozenset[str]:
        """The actors not shown: the kernel's own, unless the checkbox shows them."""
        return self._panes.hidden

    def _offered_actors(self) -> list[tuple[str, str]]:
        hidden = self._panes.hidden
        return [(label, a) for label, a in self._actor_opts if a not in hidden][:MAX_OPTIONS]

    def _kernel_toggled(self, change) -> None:
        hidden = frozenset() if change["new"] else self.kernel_actors
        self._panes.hidden = hidden
        self._controls.header.value = self._panes.header()
        self._controls.offer_actors(self._offered_actors())
        self._tabs.hide(hidden)
        self._update()

    # -- rendering ------------------------------------------------------------------------
    def _update(self) -> None:
        started = time.perf_counter()
        if not self.n:
            self.position.value = "<i>no events recorded</i>"
            self.events_panel.value = ""
            self.state_panel.value = self._panes.state(self.state_obj.value, None)
            self.actors_panel.value = ""
            return
        i = self.cursor
        ts = int(self._scrub.ts[i])
        self.position.value = self._panes.position(i, ts)
        self.events_panel.value = self._panes.events(i, self._filtered)
        self.state_panel.value = self._panes.state(self.state_obj.value, ts)
        self.actors_panel.value = self._panes.actors(i, ts)
        self._tabs.draw_cursor(ts)
        self.last_update_ms = (time.perf_counter() - started) * 1e3

    # -- display ----------------------------------------------------------------------------
    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = self.widget._repr_mimebundle_(include=include, exclude=exclude) or {}
        bundle["text/html"] = self._repr_html_()
        return bundle

    def _repr_html_(self) -> str:
        """A static picture of the explorer at the cursor, for saved notebooks."""
        return (
            f'<div class="scope-explorer-static">{self._panes.header()}<br>{self.position.value}'
            f'<div style="display:flex;gap:12px"><div>{self.events_panel.value}</div>'
            f"<div>{self.state_panel.value}{self.actors_panel.value}</div></div>"
            f"{self._tabs.static_timeline()}</div>"
        )

    def __repr__(self) -> str:
        return f"<scope_nb Explorer: {self.n:,} events, cursor at row {self.cursor}>"


__all__ = [
    "Explorer",
    "describe",
    "ALL",
    "KERNEL_TOGGLE",
    "MAX_OPTIONS",
    "WINDOW",
    "ACTIVITY_LOOKBACK",
    "MAX_ACTORS_SHOWN",
]
