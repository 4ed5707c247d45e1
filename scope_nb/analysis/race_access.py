"""The rows the race rules read: one per read or write of a traced object's attribute
or of a key of a container it holds (target `attr[key]` or `attr{item}`, see the
recorder's objects/items.py), and the `Access` each side of a report is built from."""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl

from .reports import Access

ACCESS_COLS = ["seq", "ts", "actor", "op", "obj", "attr", "location", "locks", "value"]
SIDE = ("seq", "actor", "location", "locks", "ts", "value")  # what an Access is built from


def accesses(events: pl.DataFrame) -> pl.DataFrame:
    """The read/write rows of traced objects, one per attribute or item access."""
    return (
        events.filter(pl.col("kind").is_in(["read", "write"]) & pl.col("obj").is_not_null())
        .select(
            "seq",
            "ts",
            "actor",
            pl.col("kind").alias("op"),
            "obj",
            pl.col("target").alias("attr"),
            "location",
            pl.col("locks_held").fill_null([]).alias("locks"),
            pl.col("detail").alias("value"),
        )
        .sort("seq")
    )


def is_item(col: str = "attr") -> pl.Expr:
    """The access is to a key or member of a container, not to an attribute (an
    attribute's name never holds a bracket)."""
    return pl.col(col).str.contains(r"[\[{]")


def previous_write() -> list[pl.Expr]:
    """Per access, the latest earlier write of its variable (obj, attr), by any actor: its
    SIDE columns as `w_<column>` (null before the variable's first write)."""
    is_w = pl.col("op") == "write"
    return [
        pl.when(is_w)
        .then(pl.col(c))
        .otherwise(None)
        .shift(1)
        .forward_fill()
        .over(["obj", "attr"])
        .alias(f"w_{c}")
        for c in SIDE
    ]


def access_of(row: dict, prefix: str = "", op: str | None = None) -> Access:
    """The Access of the `prefix`ed columns of a row (`op` when the row has none)."""
    return Access(
        actor=row[f"{prefix}actor"],
        op=op or row[f"{prefix}op"],
        location=row[f"{prefix}location"],
        locks=list(row[f"{prefix}locks"] or []),
        seq=row[f"{prefix}seq"],
        ts=row[f"{prefix}ts"],
        value=row[f"{prefix}value"],
    )


def first_per_variable(found: pl.DataFrame) -> Iterator[dict]:
    """The first row of each variable (obj, attr) of `found`, in its order, with `n`:
    how many rows that variable has (a report's instances)."""
    counts = found.group_by(["obj", "attr"]).agg(pl.len().alias("n"))
    return (
        found.unique(["obj", "attr"], keep="first", maintain_order=True)
        .join(counts, on=["obj", "attr"], maintain_order="left")
        .iter_rows(named=True)
    )
