"""Charts and graphs as a notebook shows them, in an in-process IPython shell: each
output carries its own offline display (a PNG, and for charts the Vega-Lite spec), no
HTML or SVG an untrusted notebook would strip, and altair's renderer is left alone."""

from __future__ import annotations

import base64
import re
import threading

import networkx as nx
import pytest
from cells import run

import scope_nb

PNG = b"\x89PNG\r\n\x1a\n"
VEGALITE = "application/vnd.vegalite.v5+json"


def _shown(ip, obj) -> tuple[dict, dict]:
    """What the notebook would store for `obj`: (data, metadata) of its display."""
    return ip.display_formatter.format(obj)


def _png_size(data: dict) -> tuple[int, int]:
    raw = base64.b64decode(data["image/png"])
    assert raw.startswith(PNG)
    return int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big")


@pytest.fixture(scope="module")
def five_locks():
    """Five locks taken in a chain 1->2->3->4->5 plus 2->1: a 2-cycle among five nodes,
    and three worker threads under the main thread."""
    with scope_nb.record() as trace:
        locks = [threading.Lock() for _ in range(5)]  # made while recording: traced

        def chain():
            for a, b in [(0, 1), (1, 2), (2, 3), (3, 4), (1, 0)]:
                with locks[a], locks[b]:
                    pass

        workers = [threading.Thread(target=chain, name="chainer")]
        workers += [threading.Thread(target=lambda: None, name=f"helper-{i}") for i in range(3)]
        for w in workers:
            w.start()
            w.join()
    return trace


def test_charts_carry_png_and_vegalite_and_leave_the_renderer_alone(ip, five_locks):
    import altair as alt

    from scope_nb.notebook import charts

    before = alt.renderers.active
    alt.renderers.enable("default")  # altair's CDN renderer: what a fresh kernel has
    try:
        run(ip, "%load_ext scope")
        for chart in (
            charts.timeline_chart(five_locks),
            charts.hotspots_chart(five_locks),
            charts.queue_depth_chart(five_locks),
            charts.timeline_chart(five_locks).properties(width=300),
        ):
            data, _ = _shown(ip, chart)
            assert VEGALITE in data and "image/png" in data, type(chart)
            assert not {"text/html", "image/svg+xml"} & set(data), (
                "an untrusted notebook would show neither"
            )
            assert data[VEGALITE]["$schema"].endswith("/v5.json")
            assert _png_size(data)[0] > 100
        assert alt.renderers.active == "default"
    finally:
        alt.renderers.enable(before)


def test_a_users_own_renderer_is_not_switched(ip, five_locks):
    import altair as alt

    from scope_nb.notebook import charts

    before = alt.renderers.active
    alt.renderers.enable("png")
    try:
        charts.timeline_chart(five_locks)._repr_mimebundle_()
        assert alt.renderers.active == "png"
    finally:
        alt.renderers.enable(before)


def test_graph_queries_stay_digraphs_and_draw_as_png(ip, five_locks):
    import networkx as nx

    for graph in (five_locks.supervision_tree(), five_locks.lock_graph()):
        assert isinstance(graph, nx.DiGraph)
        data, meta = _shown(ip, graph)
        assert set(data) == {"image/png", "text/plain"}, (
            "no networkx <DiGraph at 0x...> text, no SVG"
        )
        assert "at 0x" not in data["text/plain"]
        width, height = _png_size(data)
        assert meta["image/png"]["width"] <= 900 and width >= meta["image/png"]["width"]
        copy = graph.copy()
        assert type(copy) is type(graph) and nx.is_isomorphic(copy, graph)


def test_lock_graph_layout_reads(five_locks):
    from scope_nb.notebook import graphs

    graph = five_locks.lock_graph()
    assert graph.number_of_nodes() == 5
    drawn = graph.draw()
    svg = drawn.svg
    assert re.search(r'<svg[^>]*viewBox="0 0 [\d.]+ [\d.]+"', svg)
    assert svg.count("lock graph") == 1, "the title once"
    pos = graphs.circle_layout(list(graph.nodes))
    assert not graphs.boxes_overlap(pos)
    two_cycle = [(u, v) for u, v in graph.edges if graph.has_edge(v, u)]
    assert len(two_cycle) == 2
    lines = re.findall(
        r'<line x1="([-\d.]+)" y1="([-\d.]+)" x2="([-\d.]+)" y2="([-\d.]+)" stroke="#d62728"', svg
    )
    assert len(lines) == 2 and lines[0] != lines[1][2:] + lines[1][:2], (
        "two arrows, not one line drawn twice"
    )
    red = re.findall(r'<marker id="(arr-\d+-red)"', svg)
    assert len(red) == 1 and svg.count(f'marker-end="url(#{red[0]})"') == 2
    again = graphs.draw_lock_graph(graph).svg  # drawn again: its own arrowhead ids
    assert f'id="{red[0]}"' not in again and len(re.findall(r'<marker id="arr-\d+-red"', again))


def test_supervision_tree_folds_wide_levels(five_locks):
    from scope_nb.notebook import graphs

    with scope_nb.record() as trace:
        workers = [threading.Thread(target=lambda: None, name=f"w{i}") for i in range(30)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    svg = trace.supervision_tree().draw().svg
    assert f"+{30 - graphs.MAX_CHILDREN} more" in svg
    assert graphs._svg_width(svg) < 1800


@pytest.mark.parametrize("seed", range(4))
def test_layered_layouts_of_big_trees_and_cyclic_flows_do_not_overlap(seed):
    """Trees up to the folding bound and flows with cycles: every box apart, a parent a
    layer above its children, each connected part beside the others."""
    from scope_nb.notebook import graphs

    tree = nx.bfs_tree(nx.random_labeled_tree(graphs.MAX_NODES, seed=seed), 0)
    pos = graphs.layered_layout(tree)
    assert len(pos) == tree.number_of_nodes() and not graphs.boxes_overlap(pos)
    assert all(pos[a][1] < pos[b][1] for a, b in tree.edges)
    flow = nx.DiGraph([("main", "w1"), ("w1", "w2"), ("w2", "main"), ("w2", "sink"), ("a", "b")])
    pos = graphs.layered_layout(flow)
    assert len(pos) == 6 and not graphs.boxes_overlap(pos)
    assert pos["a"][0] > max(pos[n][0] for n in ("main", "w1", "w2", "sink"))
