"""Memory over the run, from the `memory` rows the sampler wrote (record/memory.py):
process RSS, Python heap (tracemalloc, opt-in), traced objects' sizes and the
allocation sites that grew most."""

from __future__ import annotations

import json

import polars as pl

from .common import resolve_actor_or_object
from .cost_reports import MemoryReport

_SAMPLES = {"ts": pl.Int64, "pid": pl.Int64, "rss": pl.Int64, "heap": pl.Int64}
_OBJECTS = {"ts": pl.Int64, "obj": pl.String, "size": pl.Int64}
_GROWTH = {"site": pl.String, "size_diff": pl.Int64, "count_diff": pl.Int64, "size": pl.Int64}


def parse_sample(detail: str | None) -> dict:
    try:
        data = json.loads(detail) if detail else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def memory_analysis(trace, obj_or_actor=None, duration_ns: int | None = None) -> MemoryReport:
    """Samples in the last `duration_ns` of the trace (all when None). `obj_or_actor`: a
    traced object (its size only) or an actor (the samples of its process)."""
    rows = trace.events().filter(pl.col("kind") == "memory").sort("seq")
    if duration_ns is not None and rows.height:
        rows = rows.filter(pl.col("ts") >= trace.time_range()[1] - duration_ns)
    parsed = [
        (r["ts"], r["pid"], parse_sample(r["detail"]))
        for r in rows.select("ts", "pid", "detail").iter_rows(named=True)
    ]
    samples = pl.DataFrame(
        [{"ts": t, "pid": p, "rss": d.get("rss"), "heap": d.get("heap")} for t, p, d in parsed],
        schema=_SAMPLES,
    )
    objects = pl.DataFrame(
        [
            {"ts": t, "obj": name, "size": size}
            for t, _, d in parsed
            for name, size in d.get("objects", {}).items()
        ],
        schema=_OBJECTS,
    )
    last_top = next((d["top"] for _, _, d in reversed(parsed) if d.get("top")), [])
    growth = pl.DataFrame(
        [{"site": s, "size_diff": sd, "count_diff": cd, "size": sz} for s, sd, cd, sz in last_top],
        schema=_GROWTH,
    )
    actor = None
    if obj_or_actor is not None:
        what, name = resolve_actor_or_object(trace, obj_or_actor)
        if what == "obj":
            objects = objects.filter(pl.col("obj") == name)
        else:
            actor = name
            pid = trace.actors().filter(pl.col("actor") == actor)["pid"]
            if pid.len():
                samples = samples.filter(pl.col("pid") == pid[0])
    return MemoryReport(
        samples=samples,
        objects=objects,
        top_growth=growth.sort("size_diff", descending=True),
        actor=actor,
    )
