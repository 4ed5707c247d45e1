"""Who started whom and who supervises whom: the supervision tree, one actor's
relationships (family, message peers, shared locks), and finding actors by role."""

from __future__ import annotations

import networkx as nx
import polars as pl

PROCESS_TYPES: tuple[str, ...] = ("thread", "task", "process", "worker", "supervisor")
SUPERVISOR_KINDS: tuple[str, ...] = ("executor", "taskgroup")
_NODE_ATTRS = (
    "kind",
    "name",
    "outcome",
    "parent",
    "supervisor",
    "pid",
    "started",
    "ended",
    "exception",
)


def _one_row_per_actor(actors: pl.DataFrame) -> pl.DataFrame:
    """Merged traces can list an actor twice (a child process seen by its parent and by
    itself): keep, per column, the last value that is known."""
    if actors.height == actors["actor"].n_unique():
        return actors
    return actors.group_by("actor", maintain_order=True).agg(
        pl.col(c).drop_nulls().last() for c in actors.columns if c != "actor"
    )


def supervision_tree(actors: pl.DataFrame, events: pl.DataFrame) -> nx.DiGraph:
    """A tree: every actor (kind, name, outcome, times, exception) under exactly one
    parent. A worker's parent is its supervisor (the executor, the TaskGroup) with the
    edge relation "supervises" ("spawned+supervises" when the supervisor also started
    it); any other actor hangs under the actor that started it ("spawned", with the
    spawn time when recorded). Who started a worker is its node's `spawned_by`."""
    rows = _one_row_per_actor(actors)
    known = set(rows["actor"].to_list())
    spawn_ts = dict(
        events.filter(pl.col("kind") == "spawn")
        .group_by("target")
        .agg(pl.col("ts").min())
        .iter_rows()
    )
    g = nx.DiGraph()
    for r in rows.iter_rows(named=True):
        g.add_node(r["actor"], **{k: r.get(k) for k in _NODE_ATTRS}, spawned_by=r["parent"])
    for r in rows.iter_rows(named=True):
        child, parent, sup = r["actor"], r["parent"], r["supervisor"]
        if sup in known and sup != child and not _under(g, sup, child):
            relation = "spawned+supervises" if sup == parent else "supervises"
            g.add_edge(
                sup, child, relation=relation, ts=spawn_ts.get(child) if sup == parent else None
            )
    for r in rows.iter_rows(named=True):
        child, parent = r["actor"], r["parent"]
        if (
            g.in_degree(child) == 0
            and parent in known
            and parent != child
            and not _under(g, parent, child)
        ):
            g.add_edge(parent, child, relation="spawned", ts=spawn_ts.get(child))
    return g


def _under(g: nx.DiGraph, node: str, ancestor: str) -> bool:
    """Whether `node` already hangs below `ancestor` (an edge back up would close a loop)."""
    while True:
        up = next(iter(g.predecessors(node)), None)
        if up is None:
            return False
        if up == ancestor:
            return True
        node = up


def loop_threads(actors: pl.DataFrame) -> pl.Series:
    """For each task, the thread whose event loop runs it (its nearest thread ancestor;
    null if unknown); other actors map to themselves. Tasks of loops in two threads run
    in parallel like any two threads."""
    kind = dict(zip(actors["actor"], actors["kind"], strict=True))
    parent = dict(zip(actors["actor"], actors["parent"], strict=True))
    loop: dict[str, str | None] = {}
    for a in actors["actor"]:
        chain = []
        while kind.get(a) == "task" and a not in loop and a not in chain:
            chain.append(a)
            a = parent.get(a)
        loop.update(
            dict.fromkeys(chain, loop[a] if a in loop else a if kind.get(a) == "thread" else None)
        )
    return pl.Series("loop", [loop.get(a, a) for a in actors["actor"]], dtype=pl.String)


def _message_pairs(events: pl.DataFrame) -> pl.DataFrame:
    from .messages import message_pairs

    return message_pairs(events)


def process_relationships(actors: pl.DataFrame, events: pl.DataFrame, actor: str) -> dict:
    """Everything that ties `actor` to the others: parent, children, supervisor,
    workers, the actors it sent messages to and received from, the queues it used,
    the actors it joined, and the locks it shares with other actors."""
    rows = _one_row_per_actor(actors)
    me = rows.filter(pl.col("actor") == actor)
    if me.height == 0:
        raise ValueError(f"actor: no actor {actor!r} in this trace")
    row = me.row(0, named=True)
    pairs = _message_pairs(events)
    sent_to = pairs.filter((pl.col("sender") == actor) & (pl.col("receiver") != actor))["receiver"]
    received_from = pairs.filter((pl.col("receiver") == actor) & (pl.col("sender") != actor))[
        "sender"
    ]
    mine = events.filter(pl.col("actor") == actor)
    queues = mine.filter(pl.col("kind").is_in(["send", "receive"]))["target"].drop_nulls()
    joined = mine.filter(pl.col("kind") == "join")["target"].drop_nulls()
    joined_by = events.filter((pl.col("kind") == "join") & (pl.col("target") == actor))["actor"]
    acquired = (
        events.filter((pl.col("kind") == "lock_acquire") & pl.col("target").is_not_null())
        .select("target", "actor")
        .unique()
    )
    my_locks = acquired.filter(pl.col("actor") == actor)["target"]
    shared = (
        acquired.filter(pl.col("target").is_in(my_locks.implode()) & (pl.col("actor") != actor))
        .group_by("target")
        .agg(pl.col("actor").sort())
        .sort("target")
    )
    return {
        "actor": actor,
        "kind": row["kind"],
        "name": row["name"],
        "outcome": row["outcome"],
        "parent": row["parent"],
        "children": _sorted(rows.filter(pl.col("parent") == actor)["actor"]),
        "supervisor": row["supervisor"],
        "workers": _sorted(rows.filter(pl.col("supervisor") == actor)["actor"]),
        "sent_to": _sorted(sent_to),
        "received_from": _sorted(received_from),
        "peers": sorted(set(sent_to.to_list()) | set(received_from.to_list())),
        "queues": _sorted(queues),
        "joined": _sorted(joined),
        "joined_by": _sorted(joined_by),
        "locks": _sorted(my_locks),
        "locks_shared": {lock: others for lock, others in shared.iter_rows()},
    }


def _sorted(col: pl.Series) -> list:
    return sorted(col.drop_nulls().unique().to_list())


def find_processes(actors: pl.DataFrame, type: str | None = None) -> pl.DataFrame:  # noqa: A002 - contract name
    """The actors of one role: "thread", "task", "process" (by kind), "worker" (has a
    supervisor) or "supervisor" (an executor or a TaskGroup); all actors for None."""
    if type is None:
        return actors
    if not isinstance(type, str):
        raise TypeError(
            f"type must be a string ({' | '.join(PROCESS_TYPES)}) or None; got "
            f"{type.__class__.__name__}"
        )
    if type not in PROCESS_TYPES:
        raise ValueError(
            f"type={type!r} is not a kind of actor; accepted: {' | '.join(PROCESS_TYPES)}"
        )
    if type == "worker":
        return actors.filter(pl.col("supervisor").is_not_null())
    if type == "supervisor":
        return actors.filter(pl.col("kind").is_in(SUPERVISOR_KINDS))
    return actors.filter(pl.col("kind") == type)
