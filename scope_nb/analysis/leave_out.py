"""A trace's findings, graphs and tables without some of its actors (in a notebook, the
kernel's own), keeping every fact that involves one of the others.

Leaving actors out must never cost a fact about the rest. A finding (a crash, race,
deadlock, stall) is left out only when every actor it names is left out (one that names
no actor, only when its lock or queue is one only they used); a lock or a queue only
when no other actor took or used it; and what is kept is kept whole, the left-out actors
in it still named: a cell's thread deadlocked with a kernel thread names both, a queue
the cell's thread fills shows the kernel thread that drains it. Graphs keep their class
(a drawable DiGraph stays drawable) and say how many nodes they left out in
`graph.graph["hidden"]`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from itertools import chain
from typing import Any

import networkx as nx
import polars as pl

from .reports import CrashEvent, CrashReport, DeadlockReport, RaceReport, StallReport

# the events whose target is a lock or a queue: who used which
TARGET_KINDS = ("lock_wait", "lock_acquire", "lock_release", "lock_timeout", "send", "receive")


def involved(report: Any) -> set[str]:
    """The actors a finding names (none for a kind of finding not known here)."""
    if isinstance(report, CrashReport):
        report = report.crash
    if isinstance(report, CrashEvent):
        return {report.actor}
    if isinstance(report, RaceReport):
        return {a.actor for a in (report.first, report.second, *report.between)}
    if isinstance(report, DeadlockReport):
        steps = report.edges["actor"] if "actor" in report.edges.columns else ()
        cycle = report.cycle if report.kind == "deadlock" else ()
        return {a for a in chain(report.actors, steps, cycle) if a is not None}
    if isinstance(report, StallReport):
        return {a for a in (report.actor, *report.actors) if a is not None}
    return set()


def hidden_targets(events: pl.DataFrame, hidden: Collection[str]) -> set[str]:
    """The locks and queues of `events` that only actors of `hidden` used."""
    used = (
        events.filter(pl.col("kind").is_in(TARGET_KINDS) & pl.col("target").is_not_null())
        .group_by("target")
        .agg(pl.col("actor").is_in(list(hidden)).fill_null(False).all().alias("only_hidden"))
        .filter(pl.col("only_hidden"))
    )
    return set(used["target"].to_list())


def shown_findings(
    reports: Iterable[Any], hidden: Collection[str], targets: Collection[str] = ()
) -> tuple[list[Any], int]:
    """The findings of `reports` that involve an actor outside `hidden`, in order, and
    how many were left out. A finding naming no actor is left out only when its target
    is one of `targets` (locks and queues only hidden actors used: `hidden_targets`)."""
    hidden, targets = set(hidden), set(targets)
    kept, left = [], 0
    for report in reports:
        names = involved(report)
        if (names and names <= hidden) or (
            not names and getattr(report, "target", None) in targets
        ):
            left += 1
        else:
            kept.append(report)
    return kept, left


def _without(graph: nx.DiGraph, gone: Iterable) -> nx.DiGraph:
    out = graph.copy()  # of the graph's own class: a drawable graph stays drawable
    gone = [n for n in gone if n in out]
    out.remove_nodes_from(gone)
    out.graph["hidden"] = len(gone)
    return out


def supervision_without(
    tree: nx.DiGraph, hidden: Collection[str], fold_as: str | None = None
) -> nx.DiGraph:
    """The supervision tree without the actors of `hidden`. A hidden supervisor (an
    executor, a TaskGroup) of a shown worker is kept: the worker's supervision is a fact
    about it. The hidden actors that started shown ones fold into one node named
    `fold_as` (in a notebook, the cell: its thread is the kernel's), the shown ones
    under it; with no `fold_as`, those become roots."""
    hidden = set(hidden)
    supervisors = {
        u
        for u, v, d in tree.edges(data=True)
        if u in hidden and v not in hidden and "supervises" in (d.get("relation") or "")
    }
    out = _without(tree, (n for n in tree if n in hidden and n not in supervisors))
    starts = [
        (u, v, d) for u, v, d in tree.edges(data=True) if u in hidden - supervisors and v in out
    ]
    if fold_as and starts:
        node = f"{fold_as}: {', '.join(sorted({u for u, _, _ in starts}))}"  # who it stands for
        out.add_node(node, name=fold_as, folded=True)
        out.add_edges_from((node, v, d) for _, v, d in starts)
    return out


def message_flow_without(graph: nx.DiGraph, hidden: Collection[str]) -> nx.DiGraph:
    """The message flow (actors and queues) without the queues only actors of `hidden`
    used, and without those actors unless they used a queue that is kept."""
    hidden = set(hidden)
    queues = [n for n, d in graph.nodes(data=True) if d.get("role") == "queue"]
    kept = {
        q
        for q in queues
        if any(a not in hidden for a in chain(graph.predecessors(q), graph.successors(q)))
    }
    users = {a for q in kept for a in chain(graph.predecessors(q), graph.successors(q))}
    return _without(graph, (n for n in graph if n not in kept and n not in users))


def lock_graph_without(graph: nx.DiGraph, hidden: Collection[str]) -> nx.DiGraph:
    """The lock-order graph without the orders only actors of `hidden` took. An order
    they took is kept when it lies in a knot of lock orders (a strongly connected part:
    a possible deadlock) with one another actor took: that actor's deadlock is with them."""
    hidden = set(hidden)

    def shown(data: dict) -> bool:
        takers = set(data.get("actors") or ()) | {data.get("actor")}
        return bool(takers - hidden - {None})

    part = {n: i for i, knot in enumerate(nx.strongly_connected_components(graph)) for n in knot}
    theirs = {part[u] for u, v, d in graph.edges(data=True) if shown(d) and part[u] == part[v]}
    out = graph.copy()
    out.remove_edges_from(
        [
            (u, v)
            for u, v, d in graph.edges(data=True)
            if not shown(d) and not (part[u] == part[v] and part[u] in theirs)
        ]
    )
    lone = [n for n in out if out.degree(n) == 0 and graph.degree(n) > 0]
    out.remove_nodes_from(lone)
    out.graph["hidden"] = len(lone)
    return out


__all__ = [
    "TARGET_KINDS",
    "involved",
    "hidden_targets",
    "shown_findings",
    "supervision_without",
    "message_flow_without",
    "lock_graph_without",
]
