"""Function calls as one row each: the call row joined to its return or exception."""

from __future__ import annotations

import polars as pl


def call_rows(events: pl.DataFrame) -> pl.DataFrame:
    """The call rows, each call once: a traced object's method call is also recorded as
    a message (obj set, no call_seq); where function tracing saw the same function,
    that row is the call and the message row is left out."""
    calls = events.filter(pl.col("kind") == "call")
    messages = calls.filter(pl.col("call_seq").is_null() & pl.col("obj").is_not_null())
    if messages.height == 0:
        return calls
    return calls.filter(
        ~pl.col("seq").is_in(_doubled(calls.lazy(), messages.lazy()).collect()["seq"].implode())
    )


def call_rows_lazy(events: pl.LazyFrame) -> pl.LazyFrame:
    """`call_rows` as a query, for scans larger than memory, in no particular order. The
    message rows (few) are matched by function; the other call rows stream through."""
    calls = events.filter(pl.col("kind") == "call")
    is_message = pl.col("call_seq").is_null() & pl.col("obj").is_not_null()
    messages = calls.filter(is_message).join(_traced(calls), on=["module", "function"], how="anti")
    return pl.concat([calls.filter(~is_message), messages])


def _doubled(calls: pl.LazyFrame, messages: pl.LazyFrame) -> pl.LazyFrame:
    return messages.join(_traced(calls), on=["module", "function"], how="semi").select("seq")


def _traced(calls: pl.LazyFrame) -> pl.LazyFrame:
    """The functions function tracing saw (call rows with a call_seq)."""
    return calls.filter(pl.col("call_seq").is_not_null()).select("module", "function").unique()


def in_module(module: str) -> pl.Expr:
    """Rows of `module` or of a module inside it (a package's submodules)."""
    return (pl.col("module") == module) | pl.col("module").str.starts_with(module + ".")


def called_modules(events: pl.DataFrame | pl.LazyFrame) -> set[str]:
    """The modules of the recorded call rows (a scan is read for that one column)."""
    calls = (
        events.lazy()
        .filter(pl.col("kind") == "call")
        .select(pl.col("module").drop_nulls().unique())
    )
    return set(calls.collect()["module"].to_list())


def check_module(module: str, traced: set[str]) -> None:
    """Refuse a module the trace never traced (`traced`: modules with calls, and those
    traced that made none): an empty answer would read as "it took no time"."""
    if module not in traced and not any(m.startswith(module + ".") for m in traced):
        raise ValueError(
            f"module: {module!r} was not traced; traced modules: "
            f"{', '.join(sorted(traced)) or 'none'}"
        )


def function_calls(events: pl.DataFrame, module: str | None = None) -> pl.DataFrame:
    """One row per traced call: function, args, result, exception, duration, depth, parent."""
    calls = call_rows(events)
    if module is not None:
        calls = calls.filter(in_module(module))
    ends = events.filter(pl.col("kind").is_in(["return", "exception"])).select(
        "call_seq",
        pl.when(pl.col("kind") == "return").then(pl.col("detail")).alias("result"),
        pl.when(pl.col("kind") == "exception").then(pl.col("detail")).alias("exception"),
    )
    return (
        calls.join(ends, left_on="seq", right_on="call_seq", how="left", maintain_order="left")
        .select(
            "seq",
            "ts",
            "actor",
            "pid",
            "module",
            "function",
            pl.col("detail").alias("args"),
            "result",
            "exception",
            "duration_ns",
            "depth",
            "parent_seq",
            "obj",
            "location",
        )
        .sort("seq")
    )
