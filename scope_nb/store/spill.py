"""Buffered events to Arrow tables, with pyarrow only.

The flusher must not use polars: polars' thread pool does not survive `fork`, and a
forked child that records (multiprocessing's default start method on Linux) writes
its segments from a copy of a process that may have used polars already. pyarrow
re-creates its threads after a fork, so the flusher decodes buffers in plain Python
into the "spill" columns below and writes them with pyarrow; `load` turns them into
frames.RAW rows with polars.

Spill columns: ts (perf ns), ks (the hot-path code word: kind | site << KIND_BITS;
critical rows are stored as RICH rows), buf, pos, thread_actor, actor (task switch
or emitting actor), fid (generator frame id), detail, and the emitted events'
fields (target ... qsize).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from ..record.buffer import CALL, EXCEPTION, KIND_BITS, RESUME, RETURN, RICH, SUSPEND, SWITCH
from ..values import Formatted

KIND_MASK = (1 << KIND_BITS) - 1
_HASHABLE_ATOMIC = frozenset({int, float, bool, type(None), str, bytes})


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
_RICH = ("target", "msg_id", "obj", "location", "duration_ns", "module", "function", "locks_held", "qsize")


_PLAIN = frozenset({int, float, bool})


def _show(fmt, v) -> str | None:
    if v is None:
        return None
    t = type(v)
    if t in _PLAIN and (t is not int or -(10**15) < v < 10**15):
        return repr(v)  # short by nature: the bounded formatter would print the same
    if t is Formatted:
        return v.text
    return fmt.repr(v)


def _args_text(fmt, names: tuple[str, ...], v) -> str | None:
    if not names:
        return ""
    if len(names) == 1:
        return f"{names[0]}={_show(fmt, v)}"
    if v is None:
        return None
    return ", ".join(f"{n}={_show(fmt, x)}" for n, x in zip(names, v, strict=False))


def _rich_into(cols: dict[str, list], v: tuple) -> None:
    for name, x in zip(_RICH, (v[1], v[3], v[4], v[5], v[6], v[7], v[8],
                               list(v[9]) if v[9] is not None else None, v[10]), strict=True):
        cols[name].append(x)


def spill_table(chunks, critical, sites, fmt, bases: dict[int, int]) -> pa.Table:
    """One row per buffered event; `bases` (buffer index -> rows already written) makes
    `pos` continue across flushes, and is advanced here."""
    cols: dict[str, list] = {k: [] for k in SPILL if k not in ("ts", "ks")}
    ts_parts, ks_parts = [], []
    names = [s.argnames for s in sites]
    gens = [s.is_gen for s in sites]
    shown: dict[tuple, str] = {}
    buf, pos, thread_actor, actor, fid, detail = (cols[k] for k in ("buf", "pos", "thread_actor", "actor", "fid", "detail"))
    none_rich = [cols[k] for k in _RICH]
    for ch in chunks:
        n = len(ch.ts)
        start = bases.get(ch.index, 0)
        bases[ch.index] = start + n
        ts_parts.append(pa.array(ch.ts, type=pa.int64()))
        ks_parts.append(pa.array(ch.ks, type=pa.int64()))
        buf.extend([ch.index] * n)
        pos.extend(range(start, start + n))
        thread_actor.extend([ch.actor] * n)
        for k, v in zip(ch.ks, ch.vals, strict=True):
            c = k & KIND_MASK
            a = f = d = None
            if c == CALL:
                s = k >> KIND_BITS
                if gens[s]:
                    f, v = v
                nm = names[s]
                if len(nm) == 1 and type(v) in _HASHABLE_ATOMIC:
                    key = (s, type(v), v)
                    d = shown.get(key)
                    if d is None:
                        d = shown[key] = f"{nm[0]}={_show(fmt, v)}"
                else:
                    d = _args_text(fmt, nm, v)
            elif c == RETURN:
                d = "None" if v is None else (repr(v) if type(v) is int and -(10**15) < v < 10**15 else _show(fmt, v))
            elif c == EXCEPTION:
                d = v.text if type(v) is Formatted else _show(fmt, v)
            elif c == SUSPEND or c == RESUME:
                f = v
            elif c == SWITCH:
                a = v
            elif c == RICH:
                a, d = v[0], v[2]
                _rich_into(cols, v)
            actor.append(a)
            fid.append(f)
            detail.append(d)
            if c != RICH:
                for col in none_rich:
                    col.append(None)
    for t, code, b, v in critical:
        ts_parts.append(pa.array([t], type=pa.int64()))
        ks_parts.append(pa.array([RICH | (code << KIND_BITS)], type=pa.int64()))
        buf.append(b)
        pos.append(-1)
        thread_actor.append(v[0])
        actor.append(v[0])
        fid.append(None)
        detail.append(v[2])
        _rich_into(cols, v)
    arrays: dict[str, Any] = {
        "ts": pa.concat_arrays(ts_parts) if ts_parts else pa.array([], type=pa.int64()),
        "ks": pa.concat_arrays(ks_parts) if ks_parts else pa.array([], type=pa.int64()),
    }
    for name in SPILL:
        if name not in arrays:
            arrays[name] = pa.array(cols[name], type=SPILL_SCHEMA.field(name).type)
    return pa.Table.from_pydict(arrays, schema=SPILL_SCHEMA)


def sites_table(sites) -> pa.Table:
    return rows_table([{"site": i, "site_module": s.module, "site_function": s.function,
                        "site_location": s.location, "is_gen": s.is_gen} for i, s in enumerate(sites)], SITES)


def rows_table(rows: list[dict], columns: dict[str, str]) -> pa.Table:
    """Rows (dicts) as a table of exactly `columns` (missing keys are null)."""
    schema = arrow_schema(columns)
    return pa.Table.from_pydict({c: pa.array([r.get(c) for r in rows], type=schema.field(c).type) for c in columns},
                                schema=schema)
