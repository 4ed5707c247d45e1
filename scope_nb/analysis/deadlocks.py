"""Deadlocks: lock-order cycles (Linux lockdep's idea), self-deadlocks, locks leaked by
actors that ended, the real deadlocks the watchdog recorded, and forks while another
thread held a lock (`fork_hazards`: the child's deadlock).

Only owned primitives take part: a Lock, an RLock, a Condition's lock, and a
semaphore made with one slot and only ever released by its taker (a mutex by
another name). Any other semaphore is a signal (`unowned`): whoever releases it lets
some waiter through, so taking it twice, waiting on it while holding it, or giving
up on it is how it is used (a ThreadPoolExecutor's idle semaphore, a Semaphore(0),
is polled with timeout=0 at every submit), never a deadlock. Events and barriers
are not lock events at all.

Lockdep: every time an actor takes B while holding A, the graph gets an edge A -> B
(unless it only tried: a non-blocking acquire cannot wait).
A cycle means two actors can each hold one lock of it and wait for the next: a
deadlock waiting to happen even when this run got lucky. A cycle is not reported
when one actor alone made it (it cannot wait on itself through two locks), or when
every step was taken under one common "gate" lock that serialises them.
"""

from __future__ import annotations

import json

import networkx as nx
import polars as pl

from ..schema import TRY_ACQUIRE
from .fork_hazards import fork_hazards
from .labels import attach, labels_of
from .reports import DeadlockReport, step, step_frame

MAX_CYCLE = 8  # longest lock cycle searched
MAX_CYCLES = 100


def lock_order_edges(events: pl.DataFrame) -> pl.DataFrame:
    """One row per (held lock, wanted lock) step of every lock_wait / lock_acquire /
    lock_timeout: as in lockdep, the attempt is what counts, granted or not, except a
    non-blocking acquire's (it cannot wait, so it cannot close a deadlock). Owned
    locks only, on both ends: waiting for a signal is not waiting for a holder."""
    free = unowned(events)
    acq = events.select(
        "seq", "ts", "kind", "actor", "location", "target", "locks_held", "function"
    ).filter(
        pl.col("kind").is_in(["lock_wait", "lock_acquire", "lock_timeout"])
        & (pl.col("locks_held").list.len() > 0)
        & pl.col("function").ne_missing(TRY_ACQUIRE)
        & ~pl.col("target").is_in(free)
    )
    return (
        acq.select(
            "seq",
            "ts",
            "actor",
            "location",
            pl.col("target").alias("taking"),
            pl.col("locks_held").alias("held"),
            pl.col("locks_held").alias("holding"),
        )
        .explode("holding")
        .filter((pl.col("holding") != pl.col("taking")) & ~pl.col("holding").is_in(free))
    )


def shared_locks(events: pl.DataFrame) -> list[str]:
    """The locks that exclude nobody, so are neither a common lock nor a gate: a
    semaphore made with room for several (its acquires carry its initial value), one
    seen held by two actors at once, or one used as a signal (`signals`)."""
    lk = (
        _lock_events(events)
        .filter(pl.col("kind").is_in(["lock_acquire", "lock_release"]))
        .sort("seq")
    )
    holders = (
        pl.when(pl.col("kind") == "lock_acquire").then(1).otherwise(-1).cum_sum().over("target")
    )
    room = (pl.col("kind") == "lock_acquire") & (pl.col("detail").cast(pl.Int64, strict=False) > 1)
    return sorted(set(lk.filter((holders > 1) | room)["target"]) | set(signals(lk)))


def counting_semaphores(events: pl.DataFrame) -> list[str]:
    """The semaphores (threading or asyncio) made with other than one slot: their
    acquires carry their initial value (`detail`; a Lock's or RLock's carry nothing).
    Made with none, only a release lets anyone in; made with several, they admit
    several at once: neither waits for a holder."""
    acq = events.select("kind", "target", "detail").filter(
        (pl.col("kind") == "lock_acquire")
        & pl.col("detail").is_not_null()
        & (pl.col("detail") != "1")
    )
    return acq["target"].unique().to_list()


def unowned(events: pl.DataFrame) -> list[str]:
    """The lock-event targets nobody owns: the counting semaphores and anything used as
    a signal. They have no holder to wait for, so no lock order, self-deadlock or
    timeout in the lock sense."""
    return sorted(set(counting_semaphores(events)) | set(signals(events)))


def signals(events: pl.DataFrame) -> list[str]:
    """The locks released by an actor that did not hold them (its locks held before the
    release do not name the lock): a semaphore (or Lock) used to signal another actor,
    which lets a waiter through rather than ending a critical section."""
    rel = events.select("kind", "target", "locks_held").filter(
        (pl.col("kind") == "lock_release") & ~pl.col("locks_held").list.contains(pl.col("target"))
    )
    return rel["target"].unique().to_list()


def lock_graph(events: pl.DataFrame) -> nx.DiGraph:
    """Lock-order graph: an edge A -> B when some actor took B while holding A, with
    how often, by whom, where first, and the gate locks held at every such step.

    Cost: O(n log n + n h) for n events with at most h locks held at once (the steps
    are exploded once per held lock, then grouped once), plus O(E) to build the graph
    of E edges."""
    steps = lock_order_edges(events)
    g = nx.DiGraph()
    if steps.height == 0:
        return g
    shared = shared_locks(events)
    first = (
        steps.sort("seq")
        .group_by(["holding", "taking"], maintain_order=True)
        .agg(
            pl.len().alias("count"),
            pl.col("actor").unique().sort().alias("actors"),
            pl.col("actor").first().alias("actor"),
            pl.col("location").first(),
            pl.col("ts").first(),
            pl.col("seq").first(),
        )
    )
    gates = (
        steps.with_row_index("_r")
        .explode("held")
        .filter(
            (pl.col("held") != pl.col("holding"))
            & (pl.col("held") != pl.col("taking"))
            & ~pl.col("held").is_in(shared)
        )
        .group_by(["holding", "taking", "held"])
        .agg(pl.col("_r").n_unique().alias("n"))
        .join(
            first.select("holding", "taking", "count"),
            on=["holding", "taking"],
            maintain_order="left",
        )
        .filter(pl.col("n") == pl.col("count"))
        .group_by(["holding", "taking"])
        .agg(pl.col("held").sort().alias("gates"))
    )
    first = first.join(gates, on=["holding", "taking"], how="left", maintain_order="left")
    for r in first.iter_rows(named=True):
        g.add_edge(
            r["holding"],
            r["taking"],
            count=r["count"],
            actors=list(r["actors"]),
            actor=r["actor"],
            location=r["location"],
            ts=r["ts"],
            seq=r["seq"],
            gates=list(r["gates"] or []),
        )
    return g


def detect_deadlocks(events: pl.DataFrame, actors: pl.DataFrame) -> list[DeadlockReport]:
    """Potential deadlocks (lock-order cycles), self-deadlocks, leaked locks, real
    deadlocks recorded by the watchdog and forks while another thread held a lock, most
    certain first. A real deadlock's locks also form a lock-order cycle: that weaker
    finding of the same bug is dropped.

    Cost, for n events, L locks and E lock-order edges (E <= L^2, in practice a few per
    lock): O(n log n) for the frame passes (the lock rows sorted a few times, joined
    once per finding, never a loop over locks or rows), plus the cycle search of
    `_cycles`: one breadth-first search back from each lock of a cycle-bearing
    component, O(L (L + E)) at worst, and a forward search that only follows paths
    able to close within MAX_CYCLE locks, stopping at MAX_CYCLES cycles."""
    reports = _self_deadlocks(events)
    reports += _watchdog_deadlocks(events)
    reports += _leaked_locks(events)
    reports += fork_hazards(events)
    reports += _lock_cycles(events)
    seen: set = set()
    out = []
    for r in reports:
        real = r.kind in ("self", "deadlock")
        key = (frozenset(r.actors if real else r.cycle), "real" if real else r.kind)
        if key not in seen:
            seen.add(key)
            out.append(r)
            if r.kind == "deadlock":
                seen.add((frozenset(_waited_locks(r)), "potential"))
    return attach(out, labels_of(actors, events))


def _waited_locks(report: DeadlockReport) -> list[str]:
    """The locks the actors of a watchdog deadlock wait on (its steps' `on`: "lock <name>")."""
    return [
        t.removeprefix("lock ")
        for t in report.edges["taking"].drop_nulls()
        if t.startswith("lock ")
    ]


def _lock_cycles(events: pl.DataFrame) -> list[DeadlockReport]:
    g = lock_graph(events)
    out: list[DeadlockReport] = []
    found: set[frozenset] = set()
    for cycle in _cycles(g):
        pairs = list(zip(cycle, cycle[1:] + cycle[:1], strict=True))
        data = [g.edges[a, b] for a, b in pairs]
        everyone = sorted({x for d in data for x in d["actors"]})
        if len(everyone) < 2:
            continue
        gates = set(data[0]["gates"]).intersection(*(d["gates"] for d in data[1:])) - set(cycle)
        if gates:
            continue
        found.add(frozenset(cycle))
        out.append(
            DeadlockReport(
                kind="potential",
                cycle=list(cycle),
                actors=everyone,
                ts=min(d["ts"] for d in data),
                edges=step_frame(*(step(a, b, d) for (a, b), d in zip(pairs, data, strict=True))),
            )
        )
    # inversions the recorder saw live whose lock_acquire rows were pruned by the bound;
    # the recorder does not tell a signal from a lock, so those through one are dropped
    free = set(unowned(events))
    for r in events.filter(pl.col("kind") == "lock_order").iter_rows(named=True):
        locks = [x.strip() for x in (r["target"] or "").split("->") if x.strip()]
        if free.intersection(locks):
            continue
        # the target names the edge that closed the cycle: when the graph still holds a
        # cycle through it, the verdict above stands (the recorder knows no gates, nor
        # whether one actor alone made the cycle)
        if (
            len(locks) < 2
            or any(frozenset(locks) <= cycle for cycle in found)
            or (g.has_edge(locks[0], locks[1]) and nx.has_path(g, locks[1], locks[0]))
        ):
            continue
        found.add(frozenset(locks))
        out.append(
            DeadlockReport(
                kind="potential",
                cycle=locks,
                actors=[r["actor"]],
                ts=r["ts"],
                edges=step_frame(step(locks[0], locks[1], r)),
            )
        )
    return out


def _cycles(g: nx.DiGraph):
    """The lock cycles of 2 to MAX_CYCLE locks, each once, starting at its least lock,
    the first MAX_CYCLES of them by that lock. Only the locks of one strongly connected
    component can share a cycle; from each lock s, a breadth-first search backwards
    gives how far every lock is from s, and the depth-first search forwards steps only
    where the cycle can still close within the bound, so it walks the short cycles'
    paths and little else (the unpruned search is exponential in the bound)."""
    n = 0
    for comp in nx.strongly_connected_components(g):
        if len(comp) < 2:
            continue
        for s in sorted(comp):
            for cycle in _cycles_from(g, s, {x for x in comp if x > s}):
                yield cycle
                n += 1
                if n >= MAX_CYCLES:
                    return


def _cycles_from(g: nx.DiGraph, s, allowed: set):
    """The simple cycles through `s` whose other locks are in `allowed`, of at most
    MAX_CYCLE locks."""
    back = {s: 0}  # lock -> fewest steps from it to s, through allowed locks
    frontier = [s]
    for depth in range(1, MAX_CYCLE):
        nxt = []
        for v in frontier:
            for u in g.predecessors(v):
                if u in allowed and u not in back:
                    back[u] = depth
                    nxt.append(u)
        frontier = nxt
    path, on_path = [s], {s}
    stack = [iter(g.successors(s))]
    while stack:
        w = next(stack[-1], None)
        if w is None:
            stack.pop()
            on_path.discard(path.pop())
        elif w == s:
            if len(path) >= 2:
                yield list(path)
        elif w not in on_path and w in back and len(path) + back[w] <= MAX_CYCLE:
            path.append(w)
            on_path.add(w)
            stack.append(iter(g.successors(w)))


def _lock_events(events: pl.DataFrame) -> pl.DataFrame:
    """The lock rows, with only the columns the lock findings read (a filter copies
    every column it keeps: on a large trace, most of them would be strings)."""
    return events.select(
        "seq", "ts", "kind", "actor", "target", "location", "locks_held", "detail"
    ).filter(pl.col("kind").is_in(["lock_wait", "lock_acquire", "lock_release", "lock_timeout"]))


def _self_deadlocks(events: pl.DataFrame) -> list[DeadlockReport]:
    """A wait for a lock the actor already holds that was never granted: a
    non-reentrant Lock taken twice (an RLock grants it at once). Not a counting
    semaphore nor a signal (`unowned`): a second acquire of one waits for anyone's
    release, by design."""
    lk = _lock_events(events)
    # only the (actor, lock)s with a wait for a lock already held can have one
    held = (
        lk.filter(
            pl.col("kind").is_in(["lock_wait", "lock_timeout"])
            & pl.col("locks_held").list.contains(pl.col("target"))
        )
        .select("actor", "target")
        .unique()
    )
    if held.height == 0:
        return []
    lk = (
        lk.join(held, on=["actor", "target"], how="semi", maintain_order="left")
        .filter(~pl.col("target").is_in(unowned(events)))
        .sort("seq")
        .with_columns(pl.col("kind").shift(-1).over(["actor", "target"]).alias("next_kind"))
    )
    bad = lk.filter(
        pl.col("kind").is_in(["lock_wait", "lock_timeout"])
        & pl.col("locks_held").list.contains(pl.col("target"))
        & (
            (pl.col("kind") == "lock_timeout")
            | (pl.col("next_kind").is_null())
            | (pl.col("next_kind") != "lock_acquire")
        )
    ).unique(["actor", "target"], keep="first", maintain_order=True)
    if bad.height == 0:
        return []
    # the actor's latest acquire of that lock before the wait: where it took it first
    taken = lk.filter(pl.col("kind") == "lock_acquire").select(
        "actor",
        "target",
        pl.col("seq").alias("t_seq"),
        pl.col("ts").alias("t_ts"),
        pl.col("location").alias("t_location"),
    )
    bad = (
        bad.with_row_index("_order")
        .sort("seq")
        .join_asof(
            taken,
            left_on="seq",
            right_on="t_seq",
            by=["actor", "target"],
            strategy="backward",
            allow_exact_matches=False,
            check_sortedness=False,
        )
        .sort("_order")
    )
    out = []
    for r in bad.iter_rows(named=True):
        out.append(
            DeadlockReport(
                kind="self",
                cycle=[r["target"]],
                actors=[r["actor"]],
                ts=r["ts"],
                edges=step_frame(
                    # where it first took the lock, then where it takes it again
                    step(
                        None, r["target"], r, location=r["t_location"], ts=r["t_ts"], seq=r["t_seq"]
                    ),
                    step(r["target"], r["target"], r),
                ),
            )
        )
    return out


def _leaked_locks(events: pl.DataFrame) -> list[DeadlockReport]:
    """A lock whose last event is an acquire by an actor that has since ended. Not a
    signal (`signals`): its acquirer takes what another actor gave, nothing to give
    back. A pool slot (a counting semaphore's) kept by an ended actor is lost to
    everyone all the same, owned or not."""
    lk = (
        _lock_events(events)
        .filter(pl.col("kind").is_in(["lock_acquire", "lock_release"]))
        .sort("seq")
    )
    last = (
        lk.group_by("target")
        .agg(pl.all().last())
        .filter((pl.col("kind") == "lock_acquire") & ~pl.col("target").is_in(signals(lk)))
    )
    if last.height == 0:
        return []
    ends = (
        events.select("kind", "actor", "seq")
        .filter(pl.col("kind").is_in(["exit", "crash", "cancel"]))
        .select("actor", pl.col("seq").alias("end_seq"))
    )
    leaked = (
        last.join(ends, on="actor", maintain_order="left")
        .filter(pl.col("end_seq") > pl.col("seq"))
        .sort("seq")
    )
    if leaked.height == 0:
        return []
    # who waited for it after it was kept, in the order they first did
    lk_waits = events.select("seq", "kind", "actor", "target").filter(
        pl.col("kind").is_in(["lock_wait", "lock_timeout"])
        & pl.col("target").is_in(leaked["target"].implode())
    )
    waits = (
        lk_waits.sort("seq")
        .join(
            leaked.select("target", pl.col("seq").alias("_kept"), pl.col("actor").alias("_keeper")),
            on="target",
            maintain_order="left",
        )
        .filter((pl.col("seq") > pl.col("_kept")) & (pl.col("actor") != pl.col("_keeper")))
        .group_by("target", maintain_order=True)
        .agg(pl.col("actor").unique(maintain_order=True).alias("waiters"))
    )
    leaked = leaked.join(waits, on="target", how="left", maintain_order="left")
    out = []
    for r in leaked.iter_rows(named=True):
        out.append(
            DeadlockReport(
                kind="leaked",
                cycle=[r["target"]],
                actors=[r["actor"], *(r["waiters"] or [])],
                ts=r["ts"],
                edges=step_frame(step(None, r["target"], r)),
            )
        )
    return out


def parse_watchdog(detail: str | None) -> dict:
    """The structured payload of a watchdog deadlock/hang row (see record/watchdog.py)."""
    if not detail:
        return {}
    try:
        data = json.loads(detail)
    except ValueError:
        return {"summary": detail}
    return data if isinstance(data, dict) else {"summary": detail}


def _watchdog_deadlocks(events: pl.DataFrame) -> list[DeadlockReport]:
    out = []
    for r in events.filter(pl.col("kind") == "deadlock").sort("seq").iter_rows(named=True):
        data = parse_watchdog(r["detail"])
        if data.get("type") == "await":
            continue  # await cycles are asyncio stalls (detect_stalls)
        waits = data.get("waits", [])
        cycle = data.get("cycle") or [r["actor"]]
        out.append(
            DeadlockReport(
                kind="deadlock",
                cycle=list(cycle),
                actors=list(cycle),
                ts=r["ts"],
                stacks=data.get("stacks", {}),
                edges=step_frame(
                    *(
                        step(
                            ", ".join(w.get("holds", [])),
                            w.get("on"),
                            r,
                            actor=w.get("actor"),
                            location=w.get("location"),
                        )
                        for w in waits
                    )
                ),
            )
        )
    return out
