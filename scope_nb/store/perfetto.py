"""Export to the Chrome trace-event format (JSON), which Perfetto and
chrome://tracing open: one track per actor, calls as slices, other events as
instants, and a flow arrow from each message send to its receive."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import polars as pl

from . import files

_MSG_SLICE_US = 1.0  # send/receive become 1 µs slices so flow arrows have something to bind to


def _us(ns: int, t0: int) -> float:
    return (ns - t0) / 1000.0


def trace_events(trace) -> list[dict[str, Any]]:
    """The `traceEvents` list for `trace`."""
    ev = trace.events()
    actors = trace.actors()
    out: list[dict[str, Any]] = []
    t0 = int(ev["ts"].min()) if ev.height else 0
    tids: dict[str, int] = {}

    def tid(actor: str | None, pid: int) -> int:
        key = actor or f"P{pid}"
        if key not in tids:
            tids[key] = len(tids) + 1
        return tids[key]

    names = {r["actor"]: r for r in actors.iter_rows(named=True)}
    for a, row in names.items():
        pid = int(row["pid"] or 0)
        if row["kind"] == "process":
            out.append(
                {
                    "name": "process_name",
                    "ph": "M",
                    "ts": 0,
                    "pid": pid,
                    "tid": 0,
                    "args": {"name": f"{row['name']} ({a})"},
                }
            )
        else:
            out.append(
                {
                    "name": "thread_name",
                    "ph": "M",
                    "ts": 0,
                    "pid": pid,
                    "tid": tid(a, pid),
                    "args": {"name": f"{row['kind']} {row['name']} ({a})"},
                }
            )
    cols = [
        "seq",
        "ts",
        "kind",
        "actor",
        "pid",
        "target",
        "module",
        "function",
        "detail",
        "duration_ns",
        "msg_id",
        "obj",
        "location",
    ]
    for r in (
        ev.select(cols).filter(~pl.col("kind").is_in(["return", "exception"])).iter_rows(named=True)
    ):
        pid = int(r["pid"] or 0)
        if r["actor"] not in names:
            out.append(
                {
                    "name": "thread_name",
                    "ph": "M",
                    "ts": 0,
                    "pid": pid,
                    "tid": tid(r["actor"], pid),
                    "args": {"name": str(r["actor"])},
                }
            )
            names[r["actor"]] = {}
        base = {"pid": pid, "tid": tid(r["actor"], pid), "ts": _us(r["ts"], t0)}
        args = {k: r[k] for k in ("detail", "target", "obj", "location", "seq") if r[k] is not None}
        kind = r["kind"]
        if kind == "call":
            name = f"{r['module']}.{r['function']}" if r["module"] else str(r["function"])
            dur = _us(r["duration_ns"], 0) if r["duration_ns"] is not None else 0.0
            out.append({**base, "name": name, "cat": "call", "ph": "X", "dur": dur, "args": args})
        elif kind in ("send", "receive") and r["msg_id"] is not None:
            out.append(
                {
                    **base,
                    "name": f"{kind} {r['target']}",
                    "cat": "message",
                    "ph": "X",
                    "dur": _MSG_SLICE_US,
                    "args": {**args, "msg_id": r["msg_id"]},
                }
            )
            flow = {**base, "name": "message", "cat": "message", "id": hex(r["msg_id"])}
            out.append({**flow, "ph": "s"} if kind == "send" else {**flow, "ph": "f", "bp": "e"})
        else:
            name = kind if r["target"] is None else f"{kind} {r['target']}"
            out.append({**base, "name": name, "cat": kind, "ph": "i", "s": "t", "args": args})
    return out


def export_perfetto(trace, path) -> str:
    """Write `trace` as Chrome trace-event JSON to `path` (0600); returns the path."""
    target = Path(os.fspath(path)).expanduser()
    if target.is_dir():  # else the rename of the temp file onto it fails, naming only the temp file
        raise IsADirectoryError(
            f"scope_nb: cannot export to {target}: path is a directory; "
            f"accepted: a file path, e.g. {target / 'trace.json'}"
        )
    if not target.parent.is_dir():
        if target.parent.exists():
            raise NotADirectoryError(
                f"scope_nb: cannot export to {target}: {target.parent} is not a directory"
            )
        raise FileNotFoundError(
            f"scope_nb: cannot export to {target}: directory {target.parent} does not exist"
        )
    doc = {
        "traceEvents": trace_events(trace),
        "displayTimeUnit": "ms",
        "otherData": {"producer": "scope_nb", "t0_epoch_ns": int(trace.time_range()[0])},
    }

    def w(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(doc, f, default=str)

    files.write_atomic(target, w)
    return str(target)
