"""Data races: the lockset algorithm (Eraser, Savage et al. 1997) refined with
happens-before. Two accesses by different threads, at least one a write, holding no
common lock (a semaphore with room for several, or used as a signal, is none), and not
ordered by a queue put->get, a spawn, an exit->join, an Event set->wait or a lock
release->acquire (a semaphore's release by anyone, holder or not: it lets the acquire
through). Between asyncio tasks of one loop (and the thread running it) a plain access
is atomic: no data race. On a container's item, two writes with no read are no race
(see race_items).

Everything is vectorised per event; only candidate pairs not ordered by a direct sync
edge go through a short Python walk of the sync edges between them.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

import polars as pl

from .actors import loop_threads
from .deadlocks import shared_locks
from .race_access import ACCESS_COLS, access_of, first_per_variable
from .race_items import blind_item_writes
from .reports import RaceReport

MAX_WALK_EDGES = 2_000_000  # sync edges walked in Python over all candidates, at most


def sync_edges(events: pl.DataFrame) -> pl.DataFrame:
    """Happens-before edges between different actors: src (actor, seq) -> dst (actor, seq)."""
    ev = events.select("seq", "kind", "actor", "target", "msg_id")
    parts = []
    sends = ev.filter((pl.col("kind") == "send") & pl.col("msg_id").is_not_null())
    recvs = ev.filter((pl.col("kind") == "receive") & pl.col("msg_id").is_not_null())
    parts.append(
        sends.select(
            pl.col("msg_id"), pl.col("actor").alias("src_actor"), pl.col("seq").alias("src_seq")
        )
        .join(
            recvs.select(
                "msg_id", pl.col("actor").alias("dst_actor"), pl.col("seq").alias("dst_seq")
            ),
            on="msg_id",
            maintain_order="left",
        )
        .drop("msg_id")
    )
    first = ev.group_by("actor").agg(pl.col("seq").min().alias("dst_seq"))
    parts.append(
        ev.filter(pl.col("kind") == "spawn")
        .select(
            pl.col("actor").alias("src_actor"),
            pl.col("seq").alias("src_seq"),
            pl.col("target").alias("dst_actor"),
        )
        .join(first.rename({"actor": "dst_actor"}), on="dst_actor", maintain_order="left")
    )
    # exit -> join: the joined actor's last event before the join returned
    joins = (
        ev.filter(pl.col("kind") == "join")
        .select(
            pl.col("actor").alias("dst_actor"),
            pl.col("seq").alias("dst_seq"),
            pl.col("target").alias("src_actor"),
        )
        .sort("dst_seq")
    )
    parts.append(
        joins.join_asof(
            ev.select(pl.col("actor").alias("src_actor"), pl.col("seq").alias("src_seq")).sort(
                "src_seq"
            ),
            left_on="dst_seq",
            right_on="src_seq",
            by="src_actor",
            strategy="backward",
            check_sortedness=False,
            allow_exact_matches=False,
        ).drop_nulls("src_seq")
    )
    # each wait / acquire after the latest earlier set / release of its Event / lock (a
    # semaphore's release, by a holder or not, is what an acquire after it may consume)
    for src_kind, dst_kind in (("event_set", "event_wait"), ("lock_release", "lock_acquire")):
        src = (
            ev.filter(pl.col("kind") == src_kind)
            .select("target", pl.col("actor").alias("src_actor"), pl.col("seq").alias("src_seq"))
            .sort("src_seq")
        )
        dst = (
            ev.filter(pl.col("kind") == dst_kind)
            .select("target", pl.col("actor").alias("dst_actor"), pl.col("seq").alias("dst_seq"))
            .sort("dst_seq")
        )
        parts.append(
            dst.join_asof(
                src,
                left_on="dst_seq",
                right_on="src_seq",
                by="target",
                strategy="backward",
                check_sortedness=False,
            )
            .drop_nulls("src_seq")
            .drop("target")
        )
    cols = ["src_actor", "src_seq", "dst_actor", "dst_seq"]
    edges = pl.concat(
        [
            p.select(pl.col(c).cast(pl.Int64 if c.endswith("seq") else pl.String) for c in cols)
            for p in parts
        ]
    )
    return edges.filter(
        (pl.col("src_actor") != pl.col("dst_actor")) & (pl.col("src_seq") < pl.col("dst_seq"))
    ).sort("src_seq")


def _last_other(acc: pl.DataFrame, op: str) -> pl.DataFrame:
    """For every access, the latest earlier `op` access of the same attribute by another actor."""
    side = acc.filter(pl.col("op") == op).with_columns(
        (pl.col("actor") != pl.col("actor").shift(1))
        .fill_null(True)
        .cast(pl.Int64)
        .cum_sum()
        .over(["obj", "attr"])
        .alias("run")
    )
    run_last = side.group_by(["obj", "attr", "run"]).agg(pl.col("seq").max().alias("run_last"))
    side = side.join(
        run_last.with_columns(pl.col("run") + 1),
        on=["obj", "attr", "run"],
        how="left",
        maintain_order="left",
    ).rename({"run_last": "prev_run_last"})
    p1 = side.select(
        "obj", "attr", pl.col("seq").alias("p1"), pl.col("actor").alias("a1"), "prev_run_last"
    ).sort("p1")
    joined = acc.sort("seq").join_asof(
        p1,
        left_on="seq",
        right_on="p1",
        by=["obj", "attr"],
        strategy="backward",
        check_sortedness=False,
        allow_exact_matches=False,
    )
    return (
        joined.with_columns(
            pl.when(pl.col("a1") != pl.col("actor"))
            .then(pl.col("p1"))
            .otherwise(pl.col("prev_run_last"))
            .alias("partner")
        )
        .filter(pl.col("partner").is_not_null())
        .select(*ACCESS_COLS, "partner")
    )


def data_races(
    acc: pl.DataFrame, events: pl.DataFrame, actors: pl.DataFrame, skip: set
) -> list[RaceReport]:
    """Pairs of unordered accesses of one attribute or item by two threads, at least
    one a write, with no common lock; `skip`: (obj, attr) already reported as lost."""
    pairs = pl.concat(
        [_last_other(acc, "write"), _last_other(acc, "read").filter(pl.col("op") == "write")]
    )
    if pairs.height == 0:
        return []
    part = acc.select(*[pl.col(c).alias(f"p_{c}") for c in ACCESS_COLS])
    pairs = pairs.join(
        part, left_on="partner", right_on="p_seq", how="inner", maintain_order="left"
    ).with_columns(pl.col("partner").alias("p_seq"))
    kinds = actors.select("actor", "kind", "pid", loop_threads(actors))
    pairs = pairs.join(
        kinds.rename({"kind": "k2", "pid": "pid2", "loop": "loop2"}),
        on="actor",
        how="left",
        maintain_order="left",
    ).join(
        kinds.rename({"actor": "p_actor", "kind": "k1", "pid": "pid1", "loop": "loop1"}),
        on="p_actor",
        how="left",
        maintain_order="left",
    )
    # a loop's tasks and its thread take turns on one OS thread (tasks of an unknown
    # loop: the process's)
    one_thread = pl.coalesce(
        pl.col("loop1") == pl.col("loop2"),
        (pl.col("k1") == "task") & (pl.col("k2") == "task") & (pl.col("pid1") == pl.col("pid2")),
    )
    pairs = pairs.filter(
        (pl.col("p_actor") != pl.col("actor"))
        & (
            pl.col("locks")
            .list.set_intersection(pl.col("p_locks"))
            .list.set_difference(shared_locks(events))
            .list.len()
            == 0
        )
        & ~one_thread.fill_null(False)
        & ~blind_item_writes()
    )
    if skip:
        pairs = pairs.filter(
            ~pl.concat_str("obj", "attr", separator="\x00").is_in([f"{o}\x00{a}" for o, a in skip])
        )
    if pairs.height == 0:
        return []
    on_thread = {
        a: t for a, t in kinds.select("actor", "loop").iter_rows() if t is not None and t != a
    }
    pairs = unordered(pairs.sort("seq"), sync_edges(events), on_thread)
    if pairs.height == 0:
        return []
    out = []
    for r in first_per_variable(pairs):
        out.append(
            RaceReport(
                obj=r["obj"],
                attribute=r["attr"],
                kind="data_race",
                first=access_of(r, "p_"),
                second=access_of(r),
                lost_update=False,
                instances=r["n"],
            )
        )
    return out


def unordered(pairs: pl.DataFrame, edges: pl.DataFrame, on_thread: dict[str, str]) -> pl.DataFrame:
    """The pairs (p_actor@p_seq, actor@seq) with no happens-before path between them.
    A task shares the program order of the thread running its loop (`on_thread`): a
    message that thread's loop received orders what its tasks do next."""
    if edges.height == 0:
        return pairs
    edges = edges.with_columns(pl.col("src_actor", "dst_actor").replace(on_thread)).filter(
        pl.col("src_actor") != pl.col("dst_actor")
    )
    pairs = pairs.with_columns(
        pl.col("p_actor").replace(on_thread).alias("_src"),
        pl.col("actor").replace(on_thread).alias("_dst"),
    )
    # a direct edge from p_actor after p_seq to actor before seq: the suffix minimum of
    # dst_seq over that actor pair's edges, found from p_seq forward
    direct = edges.sort("src_seq").with_columns(
        pl.col("dst_seq")
        .reverse()
        .cum_min()
        .reverse()
        .over(["src_actor", "dst_actor"])
        .alias("min_dst")
    )
    pairs = pairs.sort("p_seq").join_asof(
        direct.select(
            pl.col("src_actor").alias("_src"),
            pl.col("dst_actor").alias("_dst"),
            "src_seq",
            "min_dst",
        ),
        left_on="p_seq",
        right_on="src_seq",
        by=["_src", "_dst"],
        strategy="forward",
        allow_exact_matches=False,
        check_sortedness=False,
    )
    pairs = pairs.filter(pl.col("min_dst").is_null() | (pl.col("min_dst") > pl.col("seq"))).drop(
        "src_seq", "min_dst"
    )
    if pairs.height == 0:
        return pairs.drop("_src", "_dst")
    # the rest: walk the edges between the two accesses, propagating who has heard from p_actor
    # actors as small ints: the lists hold shared int objects, not a str per edge
    names = (
        pl.concat([edges["src_actor"], edges["dst_actor"], pairs["_src"], pairs["_dst"]])
        .unique()
        .to_list()
    )
    code = {name: i for i, name in enumerate(names)}
    edges = edges.with_columns(
        pl.col("src_actor", "dst_actor").replace_strict(code, return_dtype=pl.Int32)
    )
    pairs = pairs.with_columns(pl.col("_src", "_dst").replace_strict(code, return_dtype=pl.Int32))
    src_actor = edges["src_actor"].to_list()
    dst_actor = edges["dst_actor"].to_list()
    src_seq = edges["src_seq"].to_list()
    dst_seq = edges["dst_seq"].to_list()
    # the walk starts at p_actor's first edge after p_seq and ends at the last edge into
    # actor before seq: the edges outside cannot carry the news
    numbered = edges.with_row_index("_i")
    out_of = dict(numbered.group_by("src_actor").agg("_i").iter_rows())
    into = dict(numbered.group_by("dst_actor").agg("_i").iter_rows())
    # one walk per earlier access (p_actor@p_seq) answers all its later partners
    keep = [True] * pairs.height
    groups: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
    for k, (p_actor, p_seq, actor, seq) in enumerate(
        pairs.select("_src", "p_seq", "_dst", "seq").iter_rows()
    ):
        groups.setdefault((p_actor, p_seq), []).append((k, actor, seq))
    budget = MAX_WALK_EDGES
    for (p_actor, p_seq), goals in groups.items():
        lo = bisect_right(src_seq, p_seq)
        ranges = {
            k: _walk_range(
                out_of.get(p_actor, []), into.get(actor, []), lo, bisect_left(src_seq, seq)
            )
            for k, actor, seq in goals
        }
        live = {k: r for k, r in ranges.items() if r[1] > r[0]}  # an empty range: no path
        if not live:
            continue
        first, last = min(r[0] for r in live.values()), max(r[1] for r in live.values())
        if last - first > budget:
            continue  # too long to walk: reported, as unordered
        budget -= last - first
        pending: dict[int, list[tuple[int, int, int]]] = {}
        for k, actor, seq in goals:
            if k in live:
                pending.setdefault(actor, []).append((live[k][1], seq, k))
        for k in _reached(
            src_actor, dst_actor, src_seq, dst_seq, first, last, p_actor, p_seq, pending
        ):
            keep[k] = False
    return pairs.filter(pl.Series(keep, dtype=pl.Boolean)).drop("_src", "_dst")


def _walk_range(out_of: list[int], into: list[int], lo: int, hi: int) -> tuple[int, int]:
    """[lo, hi) narrowed to the first of `out_of` in it and the last of `into` in it
    (empty when either has none there)."""
    i = bisect_left(out_of, lo)
    j = bisect_left(into, hi) - 1
    if i == len(out_of) or j < 0:
        return lo, lo
    return max(lo, out_of[i]), min(hi, into[j] + 1)


def _reached(
    src_actor, dst_actor, src_seq, dst_seq, lo, hi, start, start_seq, pending
) -> list[int]:
    """The goals of `pending` (actor -> [(end of its walk, its seq, its key)]) that an
    edge path from start@start_seq reaches: an edge in [lo, hi) from an actor informed
    before the edge's source event informs its destination from its dst_seq on; a goal
    is reached by an edge into its actor before its seq, within its own walk."""
    informed = {start: start_seq}
    found: list[int] = []
    left = sum(len(v) for v in pending.values())
    for i in range(lo, hi):
        since = informed.get(src_actor[i])
        if since is not None and since < src_seq[i]:
            d, ds = dst_actor[i], dst_seq[i]
            goals = pending.get(d)
            if goals:
                hit = [g for g in goals if i < g[0] and ds < g[1]]
                if hit:
                    found += [g[2] for g in hit]
                    left -= len(hit)
                    if left == 0:
                        return found
                    pending[d] = [g for g in goals if g not in hit]
            if ds < informed.get(d, ds + 1):
                informed[d] = ds
    return found
