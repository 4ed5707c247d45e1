"""The explorer's lower panels: the timeline with its cursor, and the graphs and charts.

The panels are the heavy part of the explorer (vl-convert and graphviz drawings), so
each is drawn only when its tab is first opened, and a panel that fails says why in
its own tab while the others keep working. The timeline is drawn once, as a PNG (its
labels drawn with the fonts the layout was measured with, so none is cut); the cursor
is a separate one-line SVG laid over it in the same grid cell, so moving the cursor
sends a few hundred bytes to the browser, never the picture again.

The kernel's own actors hidden from the explorer are hidden from every panel that shows
actors, locks or queues (analysis.leave_out: the timeline's lanes, the supervision tree,
the lock graph, the message flow, the queue depths), keeping what a shown actor is
involved in and what the cell's own thread did (the cell's code: its lock orders and
queues); each panel is drawn once for each choice of the checkbox.
"""

from __future__ import annotations

import base64

from .explorer_panes import esc

TABS = ("timeline", "supervision", "locks", "messages", "hotspots", "queues")
FOLLOW_HIDDEN = ("timeline", "supervision", "locks", "messages", "queues")  # drawn per hidden


class LowerTabs:
    """The tab widget of the lower panels of one trace (`widget`)."""

    def __init__(
        self,
        trace,
        n_events: int,
        hidden: frozenset[str] = frozenset(),
        runners: frozenset[str] = frozenset(),
    ):
        import ipywidgets as W

        self.trace = trace
        self.n = n_events
        self.hidden = hidden  # actors with no lane or node (the kernel's own)
        self.runners = runners  # of those, the ones that ran the cell's code: their acts stay
        self._drawn: dict[frozenset[str], tuple[str, tuple]] = {}  # timelines drawn, by hidden
        self._panels: dict[tuple[str, frozenset[str]], str] = {}  # other panels drawn, by hidden
        self.timeline_base = W.HTML(layout=W.Layout(grid_area="main"))
        self.timeline_cursor = W.HTML(layout=W.Layout(grid_area="main"))
        timeline = W.GridBox(
            [self.timeline_base, self.timeline_cursor],
            layout=W.Layout(
                grid_template_areas='"main"',
                grid_template_columns="auto",
                justify_items="flex-start",
                align_items="flex-start",
            ),
        )
        self.widget = W.Tab(children=[timeline] + [W.HTML() for _ in TABS[1:]])
        for i, title in enumerate(TABS):
            self.widget.set_title(i, title)
        self.geometry: tuple[float, float, float, float, float, float] | None = None
        self._rendered: set[int] = set()
        self.widget.observe(
            lambda _: self.render(self.widget.selected_index), names="selected_index"
        )

    def select(self, tab: str) -> None:
        self.widget.selected_index = TABS.index(tab)

    def render(self, index: int | None) -> None:
        """Draw the panel of tab `index` the first time it is shown."""
        if index is None or index in self._rendered:
            return
        self._rendered.add(index)
        name = TABS[index]
        try:
            if name == "timeline":
                self._render_timeline()
                return
            key = (name, self.hidden if name in FOLLOW_HIDDEN else frozenset())
            if key not in self._panels:
                self._panels[key] = self._tab_html(name)
            self.widget.children[index].value = self._panels[key]
        except Exception as exc:  # a panel that fails says why; the others keep working
            message = (
                f'<span style="color:#b00020">{name} failed: {esc(type(exc).__name__)}: '
                f"{esc(exc, 300)}</span>"
            )
            if name == "timeline":
                self.timeline_base.value = message
            else:
                self.widget.children[index].value = message

    def hide(self, hidden: frozenset[str]) -> None:
        """Draw the panels again without the actors of `hidden`: the one open now, the
        others when next opened (each version is drawn once)."""
        self.hidden = hidden
        self._rendered -= {TABS.index(name) for name in FOLLOW_HIDDEN}
        self.render(self.widget.selected_index)

    def draw_cursor(self, ts: int) -> None:
        """Move the timeline's cursor line to time `ts` (once the timeline is drawn)."""
        geo = self.geometry
        if geo is None:
            return
        ox, oy, w, h, plot_w, plot_h = geo
        t0, t1 = self.trace.time_range()
        x = ox + (ts - t0) / max(t1 - t0, 1) * plot_w
        self.timeline_cursor.value = (
            f'<svg class="scope-cursor" xmlns="http://www.w3.org/2000/svg" width="{w:.0f}" '
            f'height="{h:.0f}" '
            f'style="pointer-events:none"><line x1="{x:.1f}" x2="{x:.1f}" y1="{oy:.1f}" '
            f'y2="{oy + plot_h:.1f}" '
            f'stroke="black" stroke-width="2"/></svg>'
        )

    def static_timeline(self) -> str:
        """The timeline with its cursor as one piece of HTML ("" before it is drawn)."""
        if self.geometry is None:
            return ""
        base, overlay = self.timeline_base.value, self.timeline_cursor.value
        return (
            f'<div style="display:grid"><div style="grid-area:1/1">{base}</div>'
            f'<div style="grid-area:1/1">{overlay}</div></div>'
        )

    def _render_timeline(self) -> None:
        from . import charts

        if not self.n:
            self.timeline_base.value = "<i>no events recorded</i>"
            return
        if self.hidden not in self._drawn:
            from .graphs import svg_to_png

            spec = charts.timeline_spec(self.trace, hide=self.hidden)
            svg = charts.to_svg(spec)
            ox, oy, w, h = charts.plot_geometry(svg)
            png = base64.b64encode(svg_to_png(svg)).decode("ascii")
            self._drawn[self.hidden] = (
                f'<img class="scope-timeline" alt="timeline" width="{w:.0f}" '
                f'height="{h:.0f}" src="data:image/png;base64,{png}">',
                (ox, oy, w, h, float(spec["width"]), float(spec["height"])),
            )
        self.timeline_base.value, self.geometry = self._drawn[self.hidden]

    def _shown(self, graph, without, **how):
        """`graph` without what only the hidden actors did (`without`, of
        analysis.leave_out), the cell's own thread's acts kept."""
        quiet = self.hidden - self.runners
        return without(graph, quiet, **how) if quiet else graph

    def _tab_html(self, name: str) -> str:
        from ..analysis import leave_out
        from . import charts, graphs

        if name == "supervision":
            # every hidden actor is left out, the cell's thread too: what it started hangs
            # under one node, the cell
            tree = self.trace.supervision_tree()
            if self.hidden:
                tree = leave_out.supervision_without(tree, self.hidden, fold_as="the cell")
            return graphs.draw_supervision(tree).svg
        if name == "locks":
            locks = self._shown(self.trace.lock_graph(), leave_out.lock_graph_without)
            return graphs.draw_lock_graph(locks).svg
        if name == "messages":
            flow = self._shown(
                graphs.message_flow_graph(self.trace), leave_out.message_flow_without
            )
            return graphs.draw_message_flow(flow).svg
        if name == "hotspots":
            hot = charts.hotspot_frame(self.trace)
            if hot.height == 0:
                return (
                    "<i>no function calls traced (trace a module: --modules NAME or "
                    "scope_nb.trace_module)</i>"
                )
            return charts.to_svg(charts.hotspots_chart(self.trace))
        if name == "queues":
            quiet = self.hidden - self.runners
            if charts.queue_events(self.trace, quiet).height == 0:
                return "<i>no queue traffic recorded</i>" + (
                    " <small>(but by the kernel's own actors, hidden)</small>"
                    if quiet and self.trace.events(["send", "receive"]).height
                    else ""
                )
            return charts.to_svg(charts.queue_depth_chart(self.trace, hide=quiet))
        raise ValueError(f"tab: unknown panel {name!r}")


__all__ = ["LowerTabs", "TABS"]
