"""networkx graphs of a Trace that draw themselves: the supervision tree, the lock
graph (cycles in red) and the message-flow graph.

A graph is drawn as SVG (with a viewBox, so it scales to the cell) and shown as a PNG
of that SVG, rasterised in the kernel by vl-convert: a PNG is the one picture every
front end shows, also in an untrusted notebook (whose sanitizer strips SVG inside
HTML and refuses an SVG output), in nbconvert and on GitHub. Trees and flows are
laid out in layers by grandalf (a maintained pure-Python Sugiyama layout: networkx's
own layouts need numpy and have no layered one for general graphs); locks on a ring
(grown until no two boxes touch). Big graphs are folded before drawing.
"""

from __future__ import annotations

import base64
import html
import itertools
import math
from dataclasses import dataclass
from typing import Any

import networkx as nx

MAX_CHILDREN = 8  # children drawn per node (the rest fold into one "+N more" node): stays readable
MAX_NODES = 150
MAX_CYCLES = 20

MAX_SHOWN_WIDTH = 900  # px: a wider drawing is shown scaled down to this (a notebook cell)
RX, RY = 82, 13  # half width / height of a node's box

OUTCOME_COLORS = {
    "ok": "#c7e9c0",
    "crashed": "#fb6a4a",
    "failed": "#fdae6b",
    "cancelled": "#fdd0a2",
    "terminated": "#d9d9d9",
    "running": "#c6dbef",
}


def svg_to_png(svg: str, scale: float = 2.0) -> bytes:
    """An SVG drawn here as PNG bytes (vl-convert rasterises it, fonts included)."""
    import vl_convert as vlc

    return vlc.svg_to_png(svg, scale=scale)


def png_bundle(svg: str, text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(data, metadata) showing `svg` as a PNG drawn at twice the size (sharp on dense
    screens) and shown at its own size, at most MAX_SHOWN_WIDTH wide."""
    width = _svg_width(svg)
    data = {"image/png": base64.b64encode(svg_to_png(svg)).decode("ascii"), "text/plain": text}
    return data, {"image/png": {"width": int(min(width, MAX_SHOWN_WIDTH))}}


def _svg_width(svg: str) -> float:
    head = svg[: svg.find(">")]
    start = head.find('width="') + len('width="')
    return float(head[start : head.find('"', start)])


@dataclass
class SvgGraph:
    """A drawn graph: shows itself in a notebook (as a PNG), and keeps the networkx graph
    and the SVG (`save` writes it)."""

    svg: str
    graph: nx.DiGraph
    title: str = ""

    def _repr_mimebundle_(self, include=None, exclude=None):
        return png_bundle(self.svg, f"<{self.title}: {self.graph}>")

    def _repr_png_(self) -> bytes:
        return svg_to_png(self.svg)

    def save(self, path: str) -> str:
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.svg)
        return path


def _label(text: object, limit: int = 28) -> str:
    s = str(text)
    return s if len(s) <= limit else s[: limit - 1] + "…"


_DRAWINGS = itertools.count(1)


def draw_svg(
    graph: nx.DiGraph,
    pos: dict,
    *,
    labels: dict | None = None,
    node_colors: dict | None = None,
    edge_colors: dict | None = None,
    edge_labels: dict | None = None,
    title: str = "",
    empty: str = "nothing to draw",
) -> str:
    """Draw nodes at `pos` (pixel coordinates) with arrows; returns an SVG string whose
    viewBox lets it scale to the width it is shown at. A pair of opposite edges (a
    two-lock cycle) is drawn as two parallel arrows, one each way."""
    labels = labels or {}
    node_colors = node_colors or {}
    edge_colors = edge_colors or {}
    edge_labels = edge_labels or {}
    if not pos:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="360" height="40" viewBox="0 0 360 40">'
            f'<rect width="360" height="40" fill="white"/>'
            f'<text x="8" y="24" font-family="sans-serif" font-size="13">{html.escape(title)}: '
            f"{html.escape(empty)}</text></svg>"
        )
    rx, ry = RX, RY
    # each drawing its own arrowhead ids: a page showing several graphs (the explorer's
    # tabs) resolves url(#id) to the first in the page, which may be in a hidden tab
    arr = f"arr-{next(_DRAWINGS)}"
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    width = max(max(xs) + rx + 12, 8 * len(title) + 20)
    height = max(ys) + ry + 14 + 22
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" font-size="11">',
        f'<defs><marker id="{arr}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#777"/></marker>'
        f'<marker id="{arr}-red" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" '
        'markerHeight="6" '
        'orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#d62728"/></marker></defs>',
        f'<rect width="{width:.0f}" height="{height:.0f}" fill="white"/>',
        f'<text x="6" y="14" font-size="13" font-weight="bold">{html.escape(title)}</text>',
        '<g transform="translate(0,22)">',
    ]
    for u, v in graph.edges():
        if u not in pos or v not in pos or u == v:
            continue
        (x1, y1), (x2, y2) = pos[u], pos[v]
        dx, dy = x2 - x1, y2 - y1
        dist = math.hypot(dx, dy) or 1.0
        # start and end on the node boxes' borders
        k1 = min(rx / abs(dx) if dx else math.inf, ry / abs(dy) if dy else math.inf)
        sx, sy, ex, ey = x1 + dx * k1, y1 + dy * k1, x2 - dx * k1, y2 - dy * k1
        if graph.has_edge(v, u):  # the other direction is drawn too: shift both to their right
            nx_, ny_ = -dy / dist * 5, dx / dist * 5
            sx, sy, ex, ey = sx + nx_, sy + ny_, ex + nx_, ey + ny_
        color = edge_colors.get((u, v), "#777")
        wide = 2.5 if color != "#777" else 1.2
        marker = arr if color == "#777" else f"{arr}-red"
        out.append(
            f'<line x1="{sx:.1f}" y1="{sy:.1f}" x2="{ex:.1f}" y2="{ey:.1f}" stroke="{color}" '
            f'stroke-width="{wide}" '
            f'marker-end="url(#{marker})"><title>{html.escape(f"{u} -> {v}")}</title>'
            "</line>"
        )
        if (u, v) in edge_labels:
            mx, my = (sx + ex) / 2 - dy / dist * 8, (sy + ey) / 2 + dx / dist * 8
            out.append(
                f'<text x="{mx:.1f}" y="{my:.1f}" fill="{color}" text-anchor="middle">'
                f"{html.escape(_label(edge_labels[(u, v)], 24))}</text>"
            )
    for node, (x, y) in pos.items():
        fill = node_colors.get(node, "#eeeeee")
        text = labels.get(node, node)
        out.append(
            f"<g><title>{html.escape(str(node))}</title>"
            f'<rect x="{x - rx:.1f}" y="{y - ry:.1f}" width="{2 * rx}" height="{2 * ry}" rx="6" '
            f'fill="{fill}" stroke="#555"/>'
            f'<text x="{x:.1f}" y="{y + 4:.1f}" '
            f'text-anchor="middle">{html.escape(_label(text))}</text></g>'
        )
    out.append("</g></svg>")
    return "".join(out)


def boxes_overlap(pos: dict, gap: float = 6.0) -> bool:
    """Whether any two node boxes at `pos` touch (closer than `gap`)."""
    points = list(pos.values())
    return any(
        abs(ax - bx) < 2 * RX + gap and abs(ay - by) < 2 * RY + gap
        for i, (ax, ay) in enumerate(points)
        for bx, by in points[i + 1 :]
    )


def _fold_tree(tree: nx.DiGraph) -> nx.DiGraph:
    """At most MAX_CHILDREN children per node and MAX_NODES in all; the rest counted."""
    folded = nx.DiGraph()
    roots = [n for n in tree.nodes if tree.in_degree(n) == 0]
    queue = list(roots)
    for r in roots:
        folded.add_node(r, **tree.nodes[r])
    while queue:
        node = queue.pop(0)
        children = list(tree.successors(node))
        room = MAX_NODES - folded.number_of_nodes()
        keep = children[: max(0, min(MAX_CHILDREN, room))]
        for c in keep:
            folded.add_node(c, **tree.nodes[c])
            folded.add_edge(node, c)
            queue.append(c)
        rest = len(children) - len(keep)
        if rest:
            more = f"{node} +{rest}"
            folded.add_node(more, name=f"+{rest} more", folded=True)
            folded.add_edge(node, more)
    return folded


def layered_layout(graph: nx.DiGraph, dx: int = 180, dy: int = 42) -> dict:
    """Layered layout, top-down: grandalf's Sugiyama layering (cycles broken, crossings
    reduced, parents over their children) per connected part, the parts side by side;
    layers `dy` apart, boxes at least `dx` apart in a layer, so none overlap."""
    from grandalf.graphs import Edge, Graph, Vertex
    from grandalf.layouts import SugiyamaLayout

    class _Box:  # what grandalf reads of a node: its size; it writes the centre in xy
        w, h = dx - 20, dy  # grandalf adds its xspace (20) between boxes
        xy = (0.0, 0.0)

    vertices = {n: Vertex(n) for n in graph.nodes}
    for v in vertices.values():
        v.view = _Box()
    edges = [Edge(vertices[a], vertices[b]) for a, b in graph.edges if a != b]
    pos: dict = {}
    left = 0.0
    for part in Graph(list(vertices.values()), edges).C:
        layout = SugiyamaLayout(part)
        roots = [v for v in part.sV if all(e.v[0] is v for e in v.e_in())]
        layout.init_all(roots=roots or None)
        layout.draw()
        placed = _spaced({v.data: v.view.xy for v in part.sV}, dx)
        lo = min(x for x, _ in placed.values())
        layers = {y: i for i, y in enumerate(sorted({y for _, y in placed.values()}))}
        for n, (x, y) in placed.items():
            pos[n] = (90 + left + x - lo, 16 + layers[y] * dy)
        left += max(x for x, _ in placed.values()) - lo + dx
    return pos


def _spaced(xy: dict, dx: float) -> dict:
    """grandalf's positions with its order in each layer kept and at least `dx` between
    neighbours (its coordinate step can put two nodes of a big tree on one spot)."""
    out = {}
    by_layer: dict = {}
    for n, (x, y) in xy.items():
        by_layer.setdefault(y, []).append((x, n))
    for y, row in by_layer.items():
        last = None
        for x, n in sorted(row, key=lambda item: item[0]):
            x = x if last is None else max(x, last + dx)
            out[n] = (x, y)
            last = x
    return out


def hidden_note(graph: nx.DiGraph) -> str:
    """What a graph's title says of the nodes left out of it (analysis.leave_out sets
    `graph.graph["hidden"]`): the kernel's own, hidden by the explorer."""
    n = graph.graph.get("hidden", 0)
    return f" — {n} of the kernel's own hidden" if n else ""


def supervision_svg(trace) -> SvgGraph:
    """Who started whom; executors and TaskGroups as supervisors; colour = outcome."""
    return draw_supervision(trace.supervision_tree())


def draw_supervision(tree: nx.DiGraph) -> SvgGraph:
    """A supervision tree (as `Trace.supervision_tree` builds it) drawn top-down."""
    folded = _fold_tree(tree)
    labels, colors = {}, {}
    for n, data in folded.nodes(data=True):
        name = data.get("name") or n
        kind = data.get("kind")
        labels[n] = f"{name} ({kind})" if kind and not data.get("folded") else name
        colors[n] = OUTCOME_COLORS.get(data.get("outcome"), "#eeeeee")
    svg = draw_svg(
        folded,
        layered_layout(folded),
        labels=labels,
        node_colors=colors,
        title="supervision tree" + hidden_note(tree),
        empty="no actors recorded",
    )
    return SvgGraph(svg, tree, "supervision tree")


def lock_cycles(graph: nx.DiGraph) -> list[list]:
    cycles = []
    for cycle in nx.simple_cycles(graph):
        cycles.append(cycle)
        if len(cycles) >= MAX_CYCLES:
            break
    return cycles


def circle_layout(nodes: list, radius_per_node: int = 34) -> dict:
    """Nodes on a ring, the ring grown until no two boxes touch (boxes are wide, so
    the ring is an ellipse twice as wide as high)."""
    n = len(nodes)
    r = max(70, radius_per_node * n / math.pi)
    while True:
        cx, cy = 2 * r + RX + 8, r + RY + 8
        pos = {
            node: (
                cx + 2 * r * math.cos(2 * math.pi * i / n - math.pi / 2),
                cy + r * math.sin(2 * math.pi * i / n - math.pi / 2),
            )
            for i, node in enumerate(nodes)
        }
        if n < 2 or not boxes_overlap(pos):
            return pos
        r *= 1.15


def lock_graph_svg(trace) -> SvgGraph:
    """Locks as nodes, an edge A -> B when B was taken while holding A; the edges of
    every cycle (a lock-order inversion: a possible deadlock) drawn in red."""
    return draw_lock_graph(trace.lock_graph())


def draw_lock_graph(graph: nx.DiGraph) -> SvgGraph:
    """A lock graph (as `Trace.lock_graph` builds it) drawn on a ring, cycles in red."""
    nodes = list(graph.nodes)[:MAX_NODES]
    sub = graph.subgraph(nodes)
    red = {}
    for cycle in lock_cycles(sub):
        for a, b in zip(cycle, cycle[1:] + cycle[:1], strict=True):
            red[(a, b)] = "#d62728"
    colors = {n: "#fdd0a2" if any(n in e for e in red) else "#eeeeee" for n in nodes}
    title = (
        "lock graph"
        + (f" — {len({frozenset(c) for c in lock_cycles(sub)})} cycle(s)" if red else "")
        + hidden_note(graph)
    )
    svg = draw_svg(
        sub,
        circle_layout(nodes),
        node_colors=colors,
        edge_colors=red,
        title=title,
        empty="no lock taken while holding another",
    )
    return SvgGraph(svg, graph, title)


def message_flow_graph(trace) -> nx.DiGraph:
    """Actors and queues: actor -> queue for sends, queue -> actor for receives,
    weighted by message count; actors carry their `name`."""
    import polars as pl

    ev = trace.events(["send", "receive"]).filter(pl.col("target").is_not_null())
    counts = ev.group_by("kind", "actor", "target").len()
    names = dict(trace.actors().select("actor", "name").iter_rows())
    graph = MessageFlow()
    for kind, actor, target, n in counts.iter_rows():
        graph.add_node(actor, role="actor", name=names.get(actor) or actor)
        graph.add_node(target, role="queue")
        edge = (actor, target) if kind == "send" else (target, actor)
        graph.add_edge(*edge, count=graph.edges[edge]["count"] + n if graph.has_edge(*edge) else n)
    return graph


def message_flow_svg(trace) -> SvgGraph:
    """Producers on the left, queues in the middle, consumers on the right."""
    return draw_message_flow(message_flow_graph(trace))


def draw_message_flow(graph: nx.DiGraph) -> SvgGraph:
    """A message-flow graph (see `message_flow_graph`) drawn in three columns."""
    queues = [n for n, d in graph.nodes(data=True) if d["role"] == "queue"][: MAX_NODES // 3]
    producers = sorted({u for q in queues for u in graph.predecessors(q)})[: MAX_NODES // 3]
    consumers = sorted({v for q in queues for v in graph.successors(q)})[: MAX_NODES // 3]
    pos = {}
    for col, members in enumerate((producers, queues, consumers)):
        for row, node in enumerate(members):
            key = node if col != 2 or node not in pos else (node, "in")
            pos[key] = (90 + col * 230, 16 + row * 40)
    drawn = graph.copy()
    for node in consumers:  # an actor both sending and receiving gets a second box on the right
        if (node, "in") in pos:
            for q in list(graph.predecessors(node)):
                drawn.add_edge(q, (node, "in"), count=graph.edges[q, node]["count"])
                drawn.remove_edge(q, node)
    labels = {n: graph.nodes[n[0] if isinstance(n, tuple) else n].get("name", n) for n in pos}
    labels = {n: (lbl[0] if isinstance(lbl, tuple) else lbl) for n, lbl in labels.items()}
    colors = {n: "#c7e9c0" if n in queues else "#c6dbef" for n in pos}
    edge_labels = {(u, v): f"{d['count']}" for u, v, d in drawn.edges(data=True)}
    svg = draw_svg(
        drawn,
        pos,
        labels=labels,
        node_colors=colors,
        edge_labels=edge_labels,
        title="message flow" + hidden_note(graph),
        empty="no messages recorded",
    )
    return SvgGraph(svg, graph, "message flow")


class DrawnGraph(nx.DiGraph):
    """A networkx DiGraph, for every use a DiGraph is put to, that draws itself when a
    notebook displays it (a PNG; see the module docstring). Subclasses name the drawing."""

    def draw(self) -> SvgGraph:
        return draw_svg_graph(self)

    def _repr_mimebundle_(self, include=None, exclude=None):
        return self.draw()._repr_mimebundle_(include, exclude)

    def _repr_png_(self) -> bytes:
        return self.draw()._repr_png_()


class SupervisionTree(DrawnGraph):
    """Who started whom (`Trace.supervision_tree`), drawn top-down."""

    def draw(self) -> SvgGraph:
        return draw_supervision(self)


class LockGraph(DrawnGraph):
    """Which lock was taken while holding which (`Trace.lock_graph`), cycles in red."""

    def draw(self) -> SvgGraph:
        return draw_lock_graph(self)


class MessageFlow(DrawnGraph):
    """Who sent to which queue and who took from it (`message_flow_graph`)."""

    def draw(self) -> SvgGraph:
        return draw_message_flow(self)


def draw_svg_graph(graph: nx.DiGraph) -> SvgGraph:
    """Any DiGraph drawn layered (roots on top), for graphs with no drawing of their own."""
    pos = layered_layout(graph)
    return SvgGraph(
        draw_svg(graph, pos, title=str(graph.graph.get("name") or "graph")), graph, "graph"
    )


__all__ = [
    "DrawnGraph",
    "SupervisionTree",
    "LockGraph",
    "MessageFlow",
    "draw_supervision",
    "draw_lock_graph",
    "draw_message_flow",
    "boxes_overlap",
    "hidden_note",
    "svg_to_png",
    "SvgGraph",
    "draw_svg",
    "layered_layout",
    "circle_layout",
    "supervision_svg",
    "lock_graph_svg",
    "lock_cycles",
    "message_flow_graph",
    "message_flow_svg",
]
