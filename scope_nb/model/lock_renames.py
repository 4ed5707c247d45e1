"""Locks the program named after events were recorded under their old name
(`trace_lock(lock, name)`): those rows show the new name, so that every query sees
one lock — the lock rows' target, every row's locks held, and the live lock-order
reports (target "A -> B", the cycle in their detail) and the locks held at a fork (its
detail's "lock" entries)."""

from __future__ import annotations

import json

import polars as pl

from ..schema import LOCK_KINDS

_TARGETS_A_LOCK = sorted(LOCK_KINDS - {"join"})  # a join's target is an actor


def _names(expr: pl.Expr, renamed: dict[str, str], sep: str) -> pl.Expr:
    """`expr` split on `sep`, each part renamed, joined again."""
    return expr.str.split(sep).list.eval(pl.element().replace(renamed)).list.join(sep)


def renamed_lock_rows(events: pl.DataFrame, renamed: dict[str, str]) -> pl.DataFrame:
    """`events` with each old lock name in `renamed` replaced by the current one."""
    kind, target, detail = pl.col("kind"), pl.col("target"), pl.col("detail")
    order = kind == "lock_order"
    # a cycle's description: "A -> B" then "actor took B at f:1 while holding A (...)"
    # (only those rows' text is split: null elsewhere)
    cycle = (
        pl.when(order).then(detail).str.split("\n").list.eval(_names(pl.element(), renamed, " "))
    )
    edge = _names(pl.when(order).then(target), renamed, " -> ")
    fork = kind == "fork"
    held = pl.when(fork).then(detail)
    for old, new in renamed.items():  # each old name maps to the current one: no chains
        held = held.str.replace_all(
            f'"lock": {json.dumps(old)}', f'"lock": {json.dumps(new)}', literal=True
        )
    return events.with_columns(
        pl.when(kind.is_in(_TARGETS_A_LOCK))
        .then(target.replace(renamed))
        .when(order)
        .then(edge)
        .otherwise(target)
        .alias("target"),
        pl.when(order)
        .then(cycle.list.join("\n"))
        .when(fork)
        .then(held)
        .otherwise(detail)
        .alias("detail"),
        pl.col("locks_held").list.eval(pl.element().replace(renamed)).alias("locks_held"),
    )
