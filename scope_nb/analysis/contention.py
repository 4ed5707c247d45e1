"""Lock contention: where threads and tasks waited for each other's locks, and who
held them how long (the lock side of "why is it slow?")."""

from __future__ import annotations

import polars as pl

from .deadlocks import signals, unowned

CONTENTION: dict[str, type[pl.DataType]] = {
    "lock": pl.String,
    "acquisitions": pl.Int64,
    "actors": pl.Int64,  # how many actors took it
    "waited": pl.Int64,  # acquisitions that had to wait
    "timeouts": pl.Int64,  # timed acquires of an owned lock that gave up (or waits cancelled)
    "waiting": pl.Int64,  # actors still waiting for it when the recording ended (a hang?)
    "wait_ns": pl.Int64,  # all the time spent waiting for it, timeouts included
    "wait_p95_ns": pl.Int64,  # over every acquisition, waited or not
    "wait_max_ns": pl.Int64,
    "hold_ns": pl.Int64,  # all the time it was held (null: used as a signal)
    "hold_max_ns": pl.Int64,
}


def lock_contention(events: pl.DataFrame) -> pl.DataFrame:
    """One row per lock taken or waited for while recording: first those actors were
    still waiting for at the end, then the most waited-for. A hold runs from an
    actor's acquisition to its next release of the same lock; a lock that is released
    by actors that did not take it (a semaphore used as a signal) has no hold times.
    A counting semaphore or a signal that a timed acquire gave up on counts no timeout: with no
    holder, giving up means no signal had come yet, which is how a poll (the
    ThreadPoolExecutor's `_idle_semaphore.acquire(timeout=0)`) works; the time it
    waited still counts in wait_ns. A non-blocking acquire records no timeout at all.

    Cost: O(n) to pick the k lock rows of n events (only the columns read), O(k log k)
    for the rest (one sort, acquires paired with releases per actor and lock, group_bys)."""
    lk = (
        events.select("seq", "ts", "kind", "actor", "target", "duration_ns", "locks_held", "detail")
        .filter(pl.col("kind").is_in(["lock_wait", "lock_acquire", "lock_release", "lock_timeout"]))
        .sort("seq")
    )
    attempts = lk.filter(pl.col("kind") != "lock_release")
    if attempts.height == 0:
        return pl.DataFrame(schema=CONTENTION)
    acq = lk.filter(pl.col("kind") == "lock_acquire")
    # an actor's nth acquire of a lock ends at its nth release of it: paired by position
    # within each (actor, lock), one group_by rather than a join on three keys
    is_acq, is_rel = pl.col("kind") == "lock_acquire", pl.col("kind") == "lock_release"
    paired = pl.min_horizontal(pl.col("_a").list.len(), pl.col("_r").list.len())
    holds = (
        lk.filter((is_acq | is_rel) & ~pl.col("target").is_in(signals(lk)))
        .group_by(["actor", "target"])
        .agg(pl.col("ts").filter(is_acq).alias("_a"), pl.col("ts").filter(is_rel).alias("_r"))
        .select(
            "target",
            (pl.col("_r").list.head(paired) - pl.col("_a").list.head(paired)).alias("_held"),
        )
        .explode("_held")
        .drop_nulls("_held")
        .group_by("target")
        .agg(pl.col("_held").sum().alias("hold_ns"), pl.col("_held").max().alias("hold_max_ns"))
    )
    owned = ~pl.col("target").is_in(unowned(lk))
    gave_up = (
        lk.filter(pl.col("kind") == "lock_timeout")
        .group_by("target")
        .agg(owned.sum().alias("timeouts"), pl.col("duration_ns").sum().alias("_lost"))
    )
    stuck = (
        attempts.group_by(["target", "actor"])
        .agg(pl.col("kind").last())
        .filter(pl.col("kind") == "lock_wait")
        .group_by("target")
        .agg(pl.len().alias("waiting"))
    )
    wait = pl.col("duration_ns").fill_null(0)
    per = acq.group_by("target").agg(
        pl.len().alias("acquisitions"),
        pl.col("actor").n_unique().alias("actors"),
        (wait > 0).sum().alias("waited"),
        wait.sum().alias("wait_ns"),
        wait.quantile(0.95, "nearest").alias("wait_p95_ns"),
        wait.max().alias("wait_max_ns"),
    )
    out = (
        per.join(gave_up, on="target", how="full", coalesce=True)
        .join(stuck, on="target", how="full", coalesce=True)
        .join(holds, on="target", how="left")
        .with_columns(
            pl.col("acquisitions", "actors", "waited", "timeouts", "waiting").fill_null(0),
            (pl.col("wait_ns").fill_null(0) + pl.col("_lost").fill_null(0)).alias("wait_ns"),
            pl.col("wait_p95_ns", "wait_max_ns").fill_null(0),
        )
        .rename({"target": "lock"})
        .sort(["waiting", "wait_ns", "acquisitions", "lock"], descending=[True, True, True, False])
    )
    return out.select([pl.col(c).cast(t) for c, t in CONTENTION.items()])
