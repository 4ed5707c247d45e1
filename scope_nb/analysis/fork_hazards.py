"""Forks while another thread holds a lock (CPython bpo-6721): the child process has only
the forking thread, and every lock in the state the parent's threads left it, so a Lock
or RLock another thread held at the fork stays locked in the child with nobody to
release it: the child's first acquire of it waits forever.

The rule reads the `fork` events (recorded in the forking thread just before each
`os.fork()`, after the before-fork hooks registered since scope_nb was imported): each
owned lock (Lock, RLock, a Condition's lock; not a semaphore or an Event, which are
signals) held then by another thread is a finding. A lock the forking thread holds
itself is not one: that is the fix (a before-fork hook that takes the lock, released on
both sides after), nor is a logging handler's lock, which logging re-initialises in
the child itself (since 3.9). The child's own wait happens in another process, which a
recording may not follow, so the finding is the parent's fact; a child that re-creates
or re-initialises a lock of the program's before using it is still reported."""

from __future__ import annotations

import json

import polars as pl

from .reports import DeadlockReport, step, step_frame

KIND = "fork_with_held_lock"
# multiprocessing's fork start method forks here, then records the child it started
_MP_FORK = "multiprocessing.popen_fork"


def fork_hazards(events: pl.DataFrame) -> list[DeadlockReport]:
    """One report per lock held by another thread at a fork, in the order of the forks
    (`detect_deadlocks` keeps the first fork of each lock). Its steps: where the holder
    took the lock, then where the forking actor forked.

    Cost: O(n) to find the fork rows, then O(f log f + a) for f forks and a acquires of
    the locks held at them (one as-of join each for the acquires and the children)."""
    forks = events.select("seq", "ts", "kind", "actor", "location", "module", "detail").filter(
        pl.col("kind") == "fork"
    )
    if forks.height == 0:
        return []
    held = _held(forks)
    if held.height == 0:
        return []
    held = _with_acquire(events, held)
    child = _children(events, forks)
    out = []
    for r in held.iter_rows(named=True):
        out.append(
            DeadlockReport(
                kind=KIND,
                cycle=[r["lock"]],
                actors=[r["holder"], r["actor"]],
                ts=r["ts"],
                child=child.get(r["seq"]),
                edges=step_frame(
                    # the holder takes the lock, then the fork happens while it is held
                    step(
                        None,
                        r["lock"],
                        r,
                        actor=r["holder"],
                        location=r["taken_at"],
                        ts=r["t_ts"],
                        seq=r["t_seq"],
                    ),
                    step(r["lock"], None, r),
                ),
            )
        )
    return out


def _held(forks: pl.DataFrame) -> pl.DataFrame:
    """One row per (fork, lock held by another thread then): the fork's columns, the
    lock, its holder and where the holder took it."""
    rows = []
    for r in forks.sort("seq").iter_rows(named=True):
        try:
            held = json.loads(r["detail"] or "{}").get("held") or []
        except (ValueError, AttributeError):
            continue
        for h in held:
            if isinstance(h, dict) and h.get("lock") and h.get("actor"):
                rows.append(
                    {
                        "seq": r["seq"],
                        "ts": r["ts"],
                        "actor": r["actor"],
                        "location": r["location"],
                        "lock": str(h["lock"]),
                        "holder": str(h["actor"]),
                        "taken_at": h.get("location"),
                    }
                )
    return pl.DataFrame(
        rows,
        schema={
            "seq": pl.Int64,
            "ts": pl.Int64,
            "actor": pl.String,
            "location": pl.String,
            "lock": pl.String,
            "holder": pl.String,
            "taken_at": pl.String,
        },
    )


def _with_acquire(events: pl.DataFrame, held: pl.DataFrame) -> pl.DataFrame:
    """`held` with the time and seq of the holder's last acquire of the lock before the
    fork (null when that row is not in the trace)."""
    acq = (
        events.select("seq", "ts", "kind", "actor", "target")
        .filter(
            (pl.col("kind") == "lock_acquire")
            & pl.col("target").is_in(held["lock"].unique().implode())
        )
        .select(
            pl.col("actor").alias("holder"),
            pl.col("target").alias("lock"),
            pl.col("seq").alias("t_seq"),
            pl.col("ts").alias("t_ts"),
        )
        .sort("t_seq")
    )
    return (
        held.with_row_index("_order")
        .sort("seq")
        .join_asof(
            acq,
            left_on="seq",
            right_on="t_seq",
            by=["holder", "lock"],
            strategy="backward",
            check_sortedness=False,
        )
        .sort("_order")
        .drop("_order")
    )


def _children(events: pl.DataFrame, forks: pl.DataFrame) -> dict[int, str]:
    """fork seq -> the process it started, where the trace says which: a multiprocessing
    start (its fork made inside multiprocessing) records the process it started as the
    forking actor's next spawn, before that actor forks again. A bare `os.fork()`'s
    child is known to the program only (its pid is what fork returns)."""
    mp = (
        forks.sort("seq")
        .with_columns(pl.col("seq").shift(-1).over("actor").alias("next_fork"))
        .filter(pl.col("module") == _MP_FORK)
    )
    if mp.height == 0:
        return {}
    spawns = (
        events.select("seq", "kind", "actor", "target")
        .filter((pl.col("kind") == "spawn") & pl.col("target").str.starts_with("P"))
        .select("actor", pl.col("seq").alias("s_seq"), pl.col("target").alias("child"))
        .sort("s_seq")
    )
    paired = mp.join_asof(
        spawns,
        left_on="seq",
        right_on="s_seq",
        by="actor",
        strategy="forward",
        check_sortedness=False,
    ).filter(
        pl.col("child").is_not_null()
        & (pl.col("next_fork").is_null() | (pl.col("s_seq") < pl.col("next_fork")))
    )
    return dict(paired.select("seq", "child").iter_rows())
