"""Buffered events to Arrow tables, with pyarrow only.

The flusher must not use polars: polars' thread pool does not survive `fork`, and a
forked child that records (multiprocessing's default start method on Linux) writes
its segments from a copy of a process that may have used polars already. pyarrow
re-creates its threads after a fork, so the flusher decodes buffers in plain Python
(`scope_nb.decode`) into the "spill" columns below and writes them with pyarrow;
`load` turns them into frames.RAW rows with polars.

Spill columns: ts (perf ns), ks (the hot-path code word: kind | site << KIND_BITS;
critical rows are stored as RICH rows), buf, pos, thread_actor, actor (task switch
or emitting actor), fid (generator frame id), detail, and the emitted events'
fields (target ... qsize).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from ..decode import decode


def arrow_type(name: str) -> pa.DataType:
    if name.startswith("List(") and name.endswith(")"):
        return pa.list_(arrow_type(name[5:-1]))
    return {"Int64": pa.int64(), "String": pa.string(), "Binary": pa.binary(), "Boolean": pa.bool_(),
            "Float64": pa.float64()}[name]


def arrow_schema(columns: dict[str, str]) -> pa.Schema:
    return pa.schema([(c, arrow_type(t)) for c, t in columns.items()])


SPILL: dict[str, str] = {
    "ts": "Int64", "ks": "Int64", "buf": "Int64", "pos": "Int64", "thread_actor": "String", "actor": "String",
    "fid": "Int64", "detail": "String", "target": "String", "msg_id": "Int64", "obj": "String", "location": "String",
    "duration_ns": "Int64", "module": "String", "function": "String", "locks_held": "List(String)", "qsize": "Int64",
}
SPILL_SCHEMA = arrow_schema(SPILL)
SITES: dict[str, str] = {"site": "Int64", "site_module": "String", "site_function": "String",
                         "site_location": "String", "is_gen": "Boolean"}


def spill_table(chunks, critical, sites, fmt, bases: dict[int, int]) -> pa.Table:
    """One row per buffered event; `bases` (buffer index -> rows already written) makes
    `pos` continue across flushes, and is advanced here."""
    d = decode(chunks, critical, sites, fmt, bases)
    int64 = pa.int64()
    arrays: dict[str, Any] = {
        "ts": pa.concat_arrays([pa.array(p, type=int64) for p in d.ts_parts]),
        "ks": pa.concat_arrays([pa.array(p, type=int64) for p in d.ks_parts]),
        "buf": d.buf, "pos": d.pos, "thread_actor": d.thread_actor, "detail": d.detail,
    }
    for name in SPILL:
        if name not in arrays:
            arrays[name] = d.dense(name)
    return pa.Table.from_pydict(
        {name: a if isinstance(a, pa.Array) else pa.array(a, type=SPILL_SCHEMA.field(name).type) for name, a in arrays.items()},
        schema=SPILL_SCHEMA,
    )


def sites_table(sites) -> pa.Table:
    return rows_table([{"site": i, "site_module": s.module, "site_function": s.function,
                        "site_location": s.location, "is_gen": s.is_gen} for i, s in enumerate(sites)], SITES)


def rows_table(rows: list[dict], columns: dict[str, str]) -> pa.Table:
    """Rows (dicts) as a table of exactly `columns` (missing keys are null)."""
    schema = arrow_schema(columns)
    return pa.Table.from_pydict({c: pa.array([r.get(c) for r in rows], type=schema.field(c).type) for c in columns},
                                schema=schema)
