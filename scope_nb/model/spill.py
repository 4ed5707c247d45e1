"""Buffered events to Arrow tables, with pyarrow only.

The flusher must not use polars: polars' thread pool does not survive `fork`, and a
forked child that records (multiprocessing's default start method on Linux) writes
its segments from a copy of a process that may have used polars already. pyarrow
re-creates its threads after a fork, so the flusher decodes buffers in plain Python
(`scope_nb.model.decode`) into the "spill" columns below and writes them with pyarrow;
`load` turns them into frames.RAW rows with polars.

Spill columns: ts (perf ns), ks (the hot-path code word: kind | site << KIND_BITS;
critical rows are stored as RICH rows), buf, pos, thread_actor, actor (task switch
or emitting actor), fid (generator frame id), detail, and the emitted events'
fields (target ... qsize). Written after them: `kind`, the event kind's name read
from `ks` (or "suspend" / "resume" / "switch" for the call stream's markers), so that
another engine counts and filters the raw segments as they are.
"""

from __future__ import annotations

from array import array
from typing import Any

import pyarrow as pa

from ..recorder.buffer import KIND_BITS, KIND_MASK, RESUME, RICH, SUSPEND, SWITCH
from ..schema import EVENT_KINDS
from .decode import Decoded, decode


def arrow_type(name: str) -> pa.DataType:
    if name.startswith("List(") and name.endswith(")"):
        return pa.list_(arrow_type(name[5:-1]))
    return {
        "Int64": pa.int64(),
        "String": pa.string(),
        "Binary": pa.binary(),
        "Boolean": pa.bool_(),
        "Float64": pa.float64(),
    }[name]


def arrow_schema(columns: dict[str, str]) -> pa.Schema:
    return pa.schema([(c, arrow_type(t)) for c, t in columns.items()])


SPILL: dict[str, str] = {
    "ts": "Int64",
    "ks": "Int64",
    "buf": "Int64",
    "pos": "Int64",
    "thread_actor": "String",
    "actor": "String",
    "fid": "Int64",
    "detail": "String",
    "target": "String",
    "msg_id": "Int64",
    "obj": "String",
    "location": "String",
    "duration_ns": "Int64",
    "module": "String",
    "function": "String",
    "locks_held": "List(String)",
    "qsize": "Int64",
}
SPILL_SCHEMA = arrow_schema(SPILL)
SITES: dict[str, str] = {
    "site": "Int64",
    "site_module": "String",
    "site_function": "String",
    "site_location": "String",
    "is_gen": "Boolean",
}


def spill_table(chunks, critical, sites, fmt, bases: dict[int, int]) -> pa.Table:
    """One row per buffered event; `bases` (buffer index -> rows already written) makes
    `pos` continue across flushes, and is advanced here. Every column but `detail` is
    built by pyarrow from the buffers' arrays, repeats and sparse values, never from a
    Python list per row: the flusher holds the GIL the program needs for as short a time
    as it can."""
    d = decode(chunks, critical, sites, fmt, bases)
    n = len(d.detail)
    seg = d.segments
    arrays: dict[str, Any] = {
        **row_columns(d),
        "thread_actor": _concat(
            [pa.repeat(pa.scalar(a, pa.string()), k) for _, a, _, k in seg]
            + [pa.array(d.critical_actor, pa.string())]
        ),
        "detail": text_array(d.detail, pa.string()),
    }
    shared: dict[str, pa.Array] = {}  # the emitted events' fields share their rows: placed once
    for name in SPILL:
        if name not in arrays:
            rows, values = d.sparse(name)
            arrays[name] = _dense(
                rows,
                values,
                n,
                SPILL_SCHEMA.field(name).type,
                shared if rows is d.rich_rows else {},
            )
    # an emitted event's actor is beside its fields, a task switch's task in `actor`
    emitted = _dense(d.rich_rows, d.rich_actor, n, pa.string(), shared)
    arrays["actor"] = _either(emitted, arrays["actor"])
    table = pa.Table.from_pydict(arrays, schema=SPILL_SCHEMA)
    return table.append_column(KIND_FIELD, kind_names(table["ks"]))


def _either(a, b):
    """Two columns of the same rows, each null where the other may hold a value, as one."""
    if a.null_count == len(a):
        return b
    if b.null_count == len(b):
        return a
    import pyarrow.compute as pc  # here: slow to load, and needed only with both

    return pc.coalesce(a, b)


_CODE_NAMES = [
    *EVENT_KINDS,
    *["unused"] * (SUSPEND - len(EVENT_KINDS)),
    "suspend",
    "resume",
    "switch",
    "rich",
]
assert (
    _CODE_NAMES.index("switch") == SWITCH
    and _CODE_NAMES.index("resume") == RESUME
    and len(_CODE_NAMES) == RICH + 1
)
KIND_FIELD = pa.field("kind", pa.dictionary(pa.int8(), pa.string()))


def kind_names(ks: pa.ChunkedArray) -> pa.ChunkedArray:
    """The kind name of each `ks` code word: a dictionary column (one small integer per
    row, computed by pyarrow), the names written once per segment."""
    import pyarrow.compute as pc  # here: slow to load, and the events frame needs none of it

    names = pa.array(_CODE_NAMES, pa.string())
    low = pc.bit_wise_and(ks, KIND_MASK)
    code = pc.if_else(pc.equal(low, RICH), pc.shift_right(ks, KIND_BITS), low).cast(pa.int8())
    return pa.chunked_array(
        [pa.DictionaryArray.from_arrays(c, names) for c in code.chunks], KIND_FIELD.type
    )


def row_columns(d: Decoded) -> dict[str, pa.ChunkedArray]:
    """ts, ks, buf and pos of every decoded row, from the buffers' arrays (no copy of
    ts and ks) and one run per chunk."""
    import pyarrow.compute as pc  # here: slow to load, and the events frame needs none of it

    seg = d.segments
    one = pa.scalar(1, pa.int64())
    return {
        "ts": _concat([int64_array(p) for p in d.ts_parts]),
        "ks": _concat([int64_array(p) for p in d.ks_parts]),
        "buf": _concat(
            [pa.repeat(pa.scalar(b, pa.int64()), k) for b, _, _, k in seg]
            + [pa.array(d.critical_buf, pa.int64())]
        ),
        "pos": _concat(
            [pc.cumulative_sum(pa.repeat(one, k), start=p - 1) for _, _, p, k in seg]
            + [pa.repeat(pa.scalar(-1, pa.int64()), len(d.critical_buf))]
        ),
    }


def int64_array(a) -> pa.Array:
    """An int64 array from an array.array ('q' as is, 'I' widened) or a list."""
    if isinstance(a, array) and a.typecode in ("q", "I"):
        narrow = a.typecode == "I"
        raw = pa.Array.from_buffers(
            pa.uint32() if narrow else pa.int64(), len(a), [None, pa.py_buffer(a)]
        )
        return raw.cast(pa.int64()) if narrow else raw
    return pa.array(a, type=pa.int64())


def text_array(values: list, typ: pa.DataType) -> pa.Array:
    """`values` as an Arrow array; a program's text that UTF-8 cannot hold (a lone
    surrogate: a thread named from undecodable bytes, an exception's message) is kept
    with that character escaped, as repr() shows it, rather than failing the trace."""
    try:
        return pa.array(values, type=typ)
    except UnicodeEncodeError:
        return pa.array([encodable(v) for v in values], type=typ)


def encodable(value: Any) -> Any:
    """`value` with every str in it (in lists and dicts too) made UTF-8 encodable."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list):
        return [encodable(v) for v in value]
    if isinstance(value, dict):
        return {k: encodable(v) for k, v in value.items()}
    return value


def _concat(parts: list[pa.Array]) -> pa.ChunkedArray:
    return pa.chunked_array(parts)  # no copy: a table's columns may be chunked


def _dense(
    rows: list[int], values: list, n: int, typ: pa.DataType, placed: dict
) -> pa.Array | pa.ChunkedArray:
    """A sparse column (`values` at `rows`, rising) as n rows, null elsewhere: runs of
    nulls between the values when they are few, else one gather (its index kept in
    `placed` for the next column of the same rows)."""
    if not rows:
        return pa.nulls(n, typ)
    given = text_array(values, typ)
    if len(rows) * 64 < n:
        parts, at = [], 0
        for j, row in enumerate(rows):
            if row > at:
                parts.append(pa.nulls(row - at, typ))
            parts.append(given.slice(j, 1))
            at = row + 1
        if at < n:
            parts.append(pa.nulls(n - at, typ))
        return pa.chunked_array(parts, type=typ)
    if "index" not in placed:
        placed["index"] = _positions(rows, n)
    return given.take(placed["index"])


def _positions(rows: list[int], n: int) -> pa.Array:
    """For each of n rows, its index in `rows` (rising), or null."""
    import pyarrow.compute as pc  # here: slow to load, and the events frame needs none of it

    mask = bytearray(n)
    for row in rows:
        mask[row] = 1
    flags = pa.Array.from_buffers(pa.uint8(), n, [None, pa.py_buffer(mask)]).cast(pa.int64())
    return pc.if_else(
        pc.equal(flags, 1), pc.subtract(pc.cumulative_sum(flags), 1), pa.scalar(None, pa.int64())
    )


def sites_table(sites) -> pa.Table:
    return rows_table(
        [
            {
                "site": i,
                "site_module": s.module,
                "site_function": s.function,
                "site_location": s.location,
                "is_gen": s.is_gen,
            }
            for i, s in enumerate(sites)
        ],
        SITES,
    )


def rows_table(rows: list[dict], columns: dict[str, str]) -> pa.Table:
    """Rows (dicts) as a table of exactly `columns` (missing keys are null)."""
    schema = arrow_schema(columns)
    return pa.Table.from_pydict(
        {c: text_array([r.get(c) for r in rows], schema.field(c).type) for c in columns},
        schema=schema,
    )
