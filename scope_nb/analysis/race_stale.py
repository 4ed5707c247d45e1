"""Stale checks (check-then-act whose decision went stale): an actor tested an attribute
or item (`if conn.acquired < limit:`), another actor wrote it, and the first then wrote
it in the body of that test, acting on a decision the other's write had made stale --
even when the write itself re-reads the variable (`conn.acquired = conn.acquired + 1`),
so that no stale value is written and the lost-update rule (race_lost) stays silent.

What counts as the check, precisely: the actor's first read of the variable since its
own last write of it (within one function, see guards.py) that is in the test of an
`if` / `elif` / `while` whose body holds the write. Not stale, so never reported:

* a re-check: the actor read the variable again, after the other's write, in a test
  guarding the write (a Condition's `while not ready: wait()`, double-checked locking,
  a polling loop);
* a write the other's write happens-before (a lock release -> acquire, an Event set ->
  wait, a queue put -> get, a spawn or a join between them, race_lockset's edges): the
  actor synchronised with the writer before it acted;
* a read that decides nothing (a log line, an argument, `self.n += 1`): it is in no test;
* a write outside the test's body (`while self.busy: ...` then `self.busy = True`).

A variable with a lost update is left to that rule."""

from __future__ import annotations

import polars as pl

from .actors import loop_threads
from .guards import guards
from .race_access import SIDE, access_of, first_per_variable, previous_write
from .race_lockset import sync_edges, unordered
from .reports import RaceReport


def stale_checks(
    acc: pl.DataFrame, events: pl.DataFrame, actors: pl.DataFrame, skip: set
) -> list[RaceReport]:
    """One report per attribute or item an actor wrote on a check another actor's write
    made stale; `skip`: (obj, attr) already reported as lost updates."""
    cand = _candidates(acc)
    if skip and cand.height:
        cand = cand.filter(
            ~pl.concat_str("obj", "attr", separator="\x00").is_in([f"{o}\x00{a}" for o, a in skip])
        )
    rows = []
    for r in cand.iter_rows(named=True):
        check = _stale_check(r)
        if check is not None:
            rows.append({**r, **{f"r_{c}": check[c] for c in SIDE}})
    if not rows:
        return []
    found = pl.DataFrame(rows, infer_schema_length=None).drop("reads")
    found = _not_ordered(found, events, actors)
    return [
        RaceReport(
            obj=r["obj"],
            attribute=r["attr"],
            kind="stale_check",
            first=access_of(r, "r_", op="read"),
            second=access_of(r),
            between=[access_of(r, "w_", op="write")],
            lost_update=False,
            instances=r["n"],
        )
        for r in first_per_variable(found.sort("seq"))
    ]


def _candidates(acc: pl.DataFrame) -> pl.DataFrame:
    """Each write whose latest earlier write of the variable is another actor's, with
    the reads its own actor made since its own previous write of it."""
    var = ["obj", "attr"]
    is_w = pl.col("op") == "write"
    acc = acc.with_columns(
        (is_w.cast(pl.Int64).cum_sum() - is_w.cast(pl.Int64)).over([*var, "actor"]).alias("seg"),
        *previous_write(),
    )
    writes = acc.filter(is_w & (pl.col("w_actor") != pl.col("actor")))
    if writes.height == 0:
        return writes
    reads = (
        acc.filter(~is_w)
        .group_by([*var, "actor", "seg"])
        .agg(pl.struct(*SIDE).sort_by("seq").alias("reads"), pl.col("seq").min().alias("r0"))
    )
    # a check needs a read before the other's write: a `self.n += 1` whose read follows it
    # (a locked counter) is no candidate, so the Python pass sees only the few that are
    return (
        writes.join(reads, on=[*var, "actor", "seg"], how="inner", maintain_order="left")
        .filter(pl.col("r0") < pl.col("w_seq"))
        .drop("r0")
    )


def _stale_check(r: dict) -> dict | None:
    """The read that decided the write `r`, if the other's write (w_) came after it and
    no re-check followed that write."""
    tests = [x for x in r["reads"] if guards(x["location"], r["location"], r["attr"])]
    if not tests or tests[0]["seq"] > r["w_seq"]:
        return None
    if any(x["seq"] > r["w_seq"] for x in tests):
        return None  # checked again after the other's write
    return tests[0]


def _not_ordered(found: pl.DataFrame, events: pl.DataFrame, actors: pl.DataFrame) -> pl.DataFrame:
    """The stale checks whose other write does not happen-before the act. Edges are
    read both per actor (an asyncio.Lock between two tasks of one loop) and with each
    task in its loop thread's program order (a message that thread received)."""
    pairs = found.with_columns(pl.col("w_actor").alias("p_actor"), pl.col("w_seq").alias("p_seq"))
    edges = sync_edges(events)
    kinds = actors.select("actor", loop_threads(actors))
    on_thread = {a: t for a, t in kinds.iter_rows() if t is not None and t != a}
    pairs = unordered(pairs.sort("seq"), edges, {})
    if on_thread and pairs.height:
        pairs = unordered(pairs.sort("seq"), edges, on_thread)
    return pairs.drop("p_actor", "p_seq")
