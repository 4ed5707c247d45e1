"""Atomicity violations: an actor read two attributes of one object as one view (one
read right after the other) while another actor wrote both in between. Attributes
only: a container's keys are not read as a view (see race_items)."""

from __future__ import annotations

import polars as pl

from .race_access import access_of
from .race_items import attributes_only
from .reports import RaceReport

_SIDE = ("seq", "actor", "location", "locks", "ts", "value")


def atomicity(acc: pl.DataFrame) -> list[RaceReport]:
    """R reads obj.a then obj.b; another actor wrote both a and b in between."""
    acc = attributes_only(acc)
    reads = (
        acc.filter(pl.col("op") == "read")
        .with_columns(
            pl.col("attr").shift(1).over(["obj", "actor"]).alias("p_attr"),
            pl.col("seq").shift(1).over(["obj", "actor"]).alias("p_seq"),
        )
        .filter(pl.col("p_attr").is_not_null() & (pl.col("p_attr") != pl.col("attr")))
    )
    if reads.height == 0:
        return []
    writes = acc.filter(pl.col("op") == "write").sort("seq")

    def last_write(attr_col: str, prefix: str) -> pl.DataFrame:
        return writes.select(
            "obj", pl.col("attr").alias(attr_col), *[pl.col(c).alias(prefix + c) for c in _SIDE]
        )

    cand = reads.sort("seq").join_asof(
        last_write("attr", "w_"),
        left_on="seq",
        right_on="w_seq",
        by=["obj", "attr"],
        strategy="backward",
        check_sortedness=False,
    )
    cand = cand.join_asof(
        last_write("p_attr", "w1_"),
        left_on="seq",
        right_on="w1_seq",
        by=["obj", "p_attr"],
        strategy="backward",
        check_sortedness=False,
    )
    bad = cand.filter(
        (pl.col("w_seq") > pl.col("p_seq"))
        & (pl.col("w1_seq") > pl.col("p_seq"))
        & (pl.col("w_actor") == pl.col("w1_actor"))
        & (pl.col("w_actor") != pl.col("actor"))
    )
    if bad.height == 0:
        return []
    first_read = acc.select(
        pl.col("seq").alias("p_seq"),
        *[pl.col(c).alias("f_" + c) for c in _SIDE if c != "actor"],
    )
    bad = bad.join(first_read, on="p_seq", how="left", maintain_order="left").sort("seq")
    bad = bad.with_columns(
        pl.col("actor").alias("f_actor"),
        pl.concat_list(
            pl.min_horizontal("p_attr", "attr"), pl.max_horizontal("p_attr", "attr")
        ).alias("pair"),
    )
    counts = bad.group_by(["obj", "pair"]).agg(pl.len().alias("n"))
    out = []
    for r in (
        bad.unique(["obj", "pair"], keep="first", maintain_order=True)
        .join(counts, on=["obj", "pair"], maintain_order="left")
        .iter_rows(named=True)
    ):
        writer = [access_of(r, "w1_", op="write"), access_of(r, "w_", op="write")]
        out.append(
            RaceReport(
                obj=r["obj"],
                attribute=r["attr"],
                kind="atomicity",
                first=access_of(r, "f_", op="read"),
                second=access_of(r),
                between=sorted(writer, key=lambda a: a.seq),
                lost_update=False,
                instances=r["n"],
                attributes=[r["p_attr"], r["attr"]],
            )
        )
    return out
