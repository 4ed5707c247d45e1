"""Lost updates: an actor read an attribute (or a container's key), another actor
wrote it, then the first wrote it without reading again -- its write was based on a
stale read (read-modify-write, check-then-act, get-or-create, and the asyncio read /
await / write pattern). What happened, not what could: no lock reasoning. A write of
the value already there is still a write."""

from __future__ import annotations

import polars as pl

from .race_access import access_of, first_per_variable, previous_write
from .reports import RaceReport


def _stale_writes(acc: pl.DataFrame) -> pl.DataFrame:
    var = ["obj", "attr"]
    is_w = pl.col("op") == "write"
    acc = acc.with_columns(
        pl.col("op").shift(1).over([*var, "actor"]).alias("own_prev_op"),
        pl.col("seq").shift(1).over([*var, "actor"]).alias("read_seq"),
        *previous_write(),
    )
    return acc.filter(
        is_w
        & (pl.col("own_prev_op") == "read")
        & (pl.col("w_seq") > pl.col("read_seq"))
        & (pl.col("w_actor") != pl.col("actor"))
    )


def lost_updates(acc: pl.DataFrame) -> list[RaceReport]:
    """One report per attribute or item with a write based on a stale read."""
    lost = _stale_writes(acc)
    if lost.height == 0:
        return []
    reads = acc.select(
        pl.col("seq").alias("read_seq"),
        pl.col("seq").alias("r_seq"),
        *[pl.col(c).alias(f"r_{c}") for c in ("actor", "op", "location", "locks", "ts", "value")],
    )
    lost = lost.join(reads, on="read_seq", how="left", maintain_order="left").sort("seq")
    out = []
    for r in first_per_variable(lost):
        out.append(
            RaceReport(
                obj=r["obj"],
                attribute=r["attr"],
                kind="lost_update",
                first=access_of(r, "r_"),
                second=access_of(r),
                between=[access_of(r, "w_", op="write")],
                lost_update=True,
                instances=r["n"],
            )
        )
    return out
