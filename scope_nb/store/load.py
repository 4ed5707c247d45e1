"""Loading persisted traces: one process directory, a directory of them (one run,
many processes), or several such paths (several hosts), merged into one Trace on
one time axis.

Two layouts are read: "raw" (what the flusher writes while a program runs: decoded
buffer rows, calls paired here) and "final" (what `save` writes: the events frame
itself, scanned lazily so a trace larger than memory can be queried). A raw process
is paired once, one process at a time, and its frame written to a cache of the loaded
trace (`merge.Cache`, outside the trace directory) and let go: a tree of any size
holds one process's pairing at most, and the merge of several processes runs window
by window (`merge`). Nothing read from disk is executed: pickled state values stay
bytes unless `trusted=True`.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path
from typing import Any

import polars as pl

from ..config import Options
from ..model.frames import SITES, pair_calls, spill_to_raw
from ..model.raw_pairing import pair_raw
from ..model.source import Scan
from ..model.spill import SPILL
from ..schema import ACTORS, EVENTS, SCHEMA_VERSION, STATES, polars_schema
from . import files, kernel_meta, merge


class TraceLoadWarning(UserWarning):
    """A part of a trace could not be read; the rest was loaded."""


@dataclasses.dataclass
class Unit:
    path: Path
    meta: dict[str, Any]
    events: pl.LazyFrame
    actors: pl.DataFrame
    states: pl.DataFrame


# -- finding the trace directories ------------------------------------------------------
ACCEPTED_PATHS = (
    "a trace directory (str or os.PathLike), several of them, a list or tuple of them, "
    "or a glob such as 'traces/*/run-1'"
)
_GLOB_CHARS = frozenset("*?[")


def trace_paths(args: tuple) -> list[Path]:
    """The paths `load` was given, each list or tuple flattened and each glob expanded
    (a glob is a str holding * ? or [ that names no existing path as it is)."""
    out: list[Path] = []
    for arg in args:
        if isinstance(arg, list | tuple):
            if not arg:
                raise ValueError(
                    f"scope_nb.load: an empty {type(arg).__name__} of paths; accepted: "
                    f"{ACCEPTED_PATHS}"
                )
            out += trace_paths(tuple(arg))
        elif isinstance(arg, str | os.PathLike):
            out += _expand(arg)
        else:
            raise TypeError(
                f"scope_nb.load: a path must be a str or os.PathLike, got {type(arg).__name__} "
                f"({arg!r:.80}); accepted: {ACCEPTED_PATHS}"
            )
    return out


def _expand(arg: str | os.PathLike) -> list[Path]:
    p = Path(arg).expanduser()
    text = str(p)
    if p.exists() or not _GLOB_CHARS & set(text):
        return [p]
    import glob

    hits = sorted(glob.glob(text, recursive=True))
    if not hits:
        raise FileNotFoundError(
            f"scope_nb: the glob {text!r} matches no path; accepted: {ACCEPTED_PATHS}"
        )
    return [Path(h) for h in hits]


def find_units(path) -> list[Path]:
    """The process directories under `path` (it may be one itself)."""
    if not isinstance(path, str | os.PathLike):
        raise TypeError(
            f"path must be a trace directory (a str or os.PathLike); got {type(path).__name__}; "
            f"accepted: {ACCEPTED_PATHS}"
        )
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"scope_nb: no such trace path: {p}")
    if p.is_file():
        if p.name == files.METADATA:
            return [p.parent]
        raise ValueError(
            f"scope_nb: {p} is a file; pass a trace directory (one holding {files.METADATA}, "
            "or a directory of such directories)"
        )
    if (p / files.METADATA).exists():
        return [p]
    units = sorted(
        {m.parent for m in p.glob(f"*/{files.METADATA}")}
        | {m.parent for m in p.glob(f"*/*/{files.METADATA}")}
    )
    if not units:
        raise ValueError(
            f"scope_nb: no scope_nb trace in {p} (no {files.METADATA} in it or in its "
            "subdirectories)"
        )
    return units


def read_metadata(unit: Path) -> dict[str, Any]:
    path = unit / files.METADATA
    meta = files.read_json(path)
    version = meta.get("schema_version")
    if not isinstance(version, int):
        raise ValueError(f"scope_nb: {path} has no schema_version")
    if version > SCHEMA_VERSION:
        raise ValueError(
            f"scope_nb: {path} was written with schema version {version}, newer than this "
            f"scope_nb reads ({SCHEMA_VERSION}); upgrade scope_nb to load it"
        )
    # what the loader does arithmetic on: a damaged file fails here, naming the field
    if meta.get("layout") != "final" and not _is_int(meta.get("pid")):
        raise ValueError(f"scope_nb: {path} has no pid (an int); it is needed to read a raw trace")
    for key in ("clock_offset", "started", "stopped"):
        if meta.get(key) is not None and not _is_int(meta[key]):
            raise ValueError(f"scope_nb: {path}: {key} must be an int (ns), got {meta[key]!r}")
    modules = meta.get("modules", [])
    if not isinstance(modules, list) or not all(isinstance(m, str) for m in modules):
        raise ValueError(
            f"scope_nb: {path}: modules must be a list of module names, got {modules!r}"
        )
    for key in ("dropped", "errors"):
        counts = meta.get(key) or {}
        if not isinstance(counts, dict) or not all(_is_int(v) for v in counts.values()):
            raise ValueError(
                f"scope_nb: {path}: {key} must map reasons to counts (ints), got {counts!r}"
            )
    kernel_meta.check(meta, path)
    return meta


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# -- reading one unit -------------------------------------------------------------------
def _bad(path: Path, e: BaseException) -> None:
    warnings.warn(
        f"scope_nb: skipped unreadable trace file {path}: {type(e).__name__}: {e}",
        TraceLoadWarning,
        stacklevel=4,
    )


def _read(path: Path, schema: dict) -> pl.DataFrame | None:
    """One Parquet file read whole, cast to `schema`; None (and a warning) if it is damaged."""
    if not _readable(path, schema):
        return None
    try:
        df = pl.read_parquet(path)
        return _conform(df, schema)
    except Exception as e:
        _bad(path, e)
        return None


def _conform(df, schema: dict):
    return df.select(
        [
            pl.col(c).cast(t)
            if c in df.collect_schema().names()
            else pl.lit(None, dtype=t).alias(c)
            for c, t in schema.items()
        ]
    )


def _readable(path: Path, schema: dict) -> bool:
    """Whether the file's footer reads (if not: a warning, the file is skipped). A footer
    that reads but whose columns are not `schema` is refused here, from the footer alone:
    loaded, such a file would fail at the first query with an error naming neither."""
    try:
        found = pl.read_parquet_schema(path)
    except Exception as e:
        _bad(path, e)
        return False
    for col, want in schema.items():
        got = found.get(col)
        if got is None and col in _ADDED:
            continue  # a file written before the column existed: it reads as nulls
        if got is None:
            raise ValueError(
                f"scope_nb: {path}: column {col!r} is missing; expected a column {col!r} of type "
                f"{want}"
            )
        if got != want and got != pl.Null:  # a column of nulls only is cast to its type
            raise ValueError(f"scope_nb: {path}: column {col!r} is of type {got}; expected {want}")
    return True


_ADDED = frozenset({"json"})  # columns added since SCHEMA_VERSION 1 (states: typed values)


def _concat(frames: list, schema: dict) -> pl.DataFrame:
    frames = [f for f in frames if f is not None]
    if not frames:
        return pl.DataFrame(schema=schema)
    return pl.concat(frames, how="vertical_relaxed")


def read_unit(unit: Path, cache: merge.Cache) -> Unit:
    """One process directory: a final layout's events scanned where they are, a raw
    one's paired and written to `cache` (the trace directory is only read)."""
    meta = read_metadata(unit)
    meta["path"] = str(unit)
    actors_file = unit / "actors.parquet"
    actors = _read(actors_file, polars_schema(ACTORS)) if actors_file.exists() else None
    actors = actors if actors is not None else pl.DataFrame(schema=polars_schema(ACTORS))
    if meta.get("layout") == "final":
        ev_files = [
            f for f in sorted(unit.glob("events-*.parquet")) if _readable(f, polars_schema(EVENTS))
        ]
        events = (
            _conform(pl.scan_parquet(ev_files), polars_schema(EVENTS))
            if ev_files
            else pl.DataFrame(schema=polars_schema(EVENTS)).lazy()
        )
        states = _concat(
            [_read(f, polars_schema(STATES)) for f in sorted(unit.glob("states*.parquet"))],
            polars_schema(STATES),
        )
        return Unit(unit, meta, events, actors, states)
    segments = [_read(f, polars_schema(SPILL)) for f in sorted(unit.glob("raw-*.parquet"))]
    spill = _concat(segments, polars_schema(SPILL))
    del segments
    sites_file = unit / "sites.parquet"
    sites = _read(sites_file, SITES) if sites_file.exists() else None
    if sites is None:
        sites = pl.DataFrame(schema=SITES)
    pid, offset = int(meta["pid"]), int(meta.get("clock_offset", 0))
    events = pair_raw(spill, sites, pid, offset)  # the C pass; None without the extension
    if events is None:
        events = pair_calls(spill_to_raw(spill), sites, pid, offset, None)
    del spill
    # the paired frame goes to the cache and is let go: one process's pairing at a time
    path = cache.file("paired")
    scan = merge.write(events, path)
    del events
    meta["modules"] = sites["site_module"].drop_nulls().unique().to_list()
    states = _concat(
        [_read(f, polars_schema(STATES)) for f in sorted(unit.glob("states-*.parquet"))],
        polars_schema(STATES),
    )
    parent = meta.get("parent_actor")
    if parent:
        actors = actors.with_columns(
            pl.when((pl.col("actor") == f"P{meta['pid']}") & pl.col("parent").is_null())
            .then(pl.lit(parent))
            .otherwise(pl.col("parent"))
            .alias("parent")
        )
    return Unit(unit, meta, scan, actors, states)


# -- hosts whose processes share a pid ------------------------------------------------------
# the recorder's actor ids: P<pid>, and <letter><n>:<pid> (recorder.actors_registry)
_ACTOR_ID = r"^((?:P|[A-Z]\d+:)\d+)$"


def qualify_hosts(units: list[Unit]) -> None:
    """Actor ids hold the pid, and processes of different hosts may have the same one
    (containers often do): when the units hold such a pair, every actor id of every
    unit gets its host (`T1:7@alpha`, `P7@alpha`), so two hosts' actors are never
    merged into one. Otherwise ids are left as recorded."""
    hosts: dict[int, set[str]] = {}
    for u in units:
        if _is_int(u.meta.get("pid")):
            hosts.setdefault(u.meta["pid"], set()).add(str(u.meta.get("host")))
    if all(len(h) < 2 for h in hosts.values()):
        return
    for u in units:
        host = str(u.meta.get("host") or "host")
        u.events = u.events.with_columns(_with_host(host, "actor", "target"))
        u.actors = u.actors.with_columns(_with_host(host, "actor", "parent", "supervisor"))
        u.states = u.states.with_columns(_with_host(host, "actor"))
        kernel_meta.with_host(u.meta, _ACTOR_ID, host)


def _with_host(host: str, *cols: str) -> list[pl.Expr]:
    suffix = "${1}@" + host.replace("$", "$$")
    return [pl.col(c).str.replace(_ACTOR_ID, suffix) for c in cols]


# -- merging ------------------------------------------------------------------------------
def merge_actors(units: list[Unit]) -> pl.DataFrame:
    """One row per actor. A child process's own row wins; what its parent knew (who
    started it, how it ended when it could not say so itself) fills the gaps."""
    own: dict[str, dict] = {}
    seen: dict[str, list[dict]] = {}
    for u in units:
        pid = u.meta.get("pid")
        final = u.meta.get("layout") == "final"
        for row in u.actors.iter_rows(named=True):
            if final or row["pid"] == pid:
                own.setdefault(row["actor"], row)
            else:
                seen.setdefault(row["actor"], []).append(row)
    for actor, rows in seen.items():
        mine = own.get(actor)
        if mine is None:
            own[actor] = dict(rows[0])
            continue
        for other in rows:
            if mine["kind"] == "process" and other["name"]:
                mine["name"] = other["name"]  # the parent named the child process
            if mine["parent"] is None and other["parent"] is not None:
                mine["parent"] = other["parent"]
            if mine["outcome"] == "running" and other["outcome"] != "running":
                mine.update(
                    ended=other["ended"], outcome=other["outcome"], exception=other["exception"]
                )
    rows = sorted(own.values(), key=lambda r: (r["started"] is None, r["started"] or 0, r["actor"]))
    return (
        pl.DataFrame(rows, schema=polars_schema(ACTORS))
        if rows
        else pl.DataFrame(schema=polars_schema(ACTORS))
    )


def _options(raw: Any) -> Any:
    if not isinstance(raw, dict):
        return raw
    names = {f.name for f in dataclasses.fields(Options)}
    try:
        return Options(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k in names}
        )
    except TypeError:
        return raw


def merge_meta(units: list[Unit], trusted: bool) -> dict[str, Any]:
    metas = [u.meta for u in units]
    dropped: dict[str, int] = {}
    errors: dict[str, int] = {}
    for m in metas:
        for k, v in (m.get("dropped") or {}).items():
            dropped[k] = dropped.get(k, 0) + int(v)
        for k, v in (m.get("errors") or {}).items():
            errors[k] = errors.get(k, 0) + int(v)
    starts = [m["started"] for m in metas if m.get("started") is not None]
    stops = [m.get("stopped") for m in metas]
    first = metas[0]
    return {
        "pid": first.get("pid") if len(metas) == 1 else [m.get("pid") for m in metas],
        "options": _options(first.get("options")),
        "dropped": dropped,
        "errors": errors,
        "started": min(starts) if starts else None,
        "stopped": max(stops) if stops and all(s is not None for s in stops) else None,
        "trusted": trusted,
        "paths": [str(u.path) for u in units],
        "modules": sorted({name for m in metas for name in m.get("modules", [])}),
        "processes": metas,
        **kernel_meta.merged(metas),
    }


def read_trace(path, *more, trusted: bool = False) -> tuple[Scan, dict[str, Any]]:
    """One or several persisted traces as one source (see the module doc) and their
    merged metadata: a Trace made from them (`trace.load_trace`) scans the events. Each
    argument a path, a list or tuple of paths, or a glob; a path is a process directory
    or a tree of them. A directory named twice is read once."""
    if not isinstance(trusted, bool):
        raise TypeError(f"trusted must be True or False, got {trusted!r}")
    dirs: list[Path] = []
    seen: set[Path] = set()
    for p in trace_paths((path, *more)):
        for u in find_units(p):
            if u.resolve() not in seen:
                seen.add(u.resolve())
                dirs.append(u)
    cache = merge.Cache()  # owned by the source: removed when the trace is collected
    units = [read_unit(d, cache) for d in dirs]
    qualify_hosts(units)
    return (
        Scan(
            merge.merge_events(units, cache),
            merge_actors(units),
            _concat([u.states for u in units], polars_schema(STATES)),
            owner=cache,
        ),
        merge_meta(units, trusted),
    )
