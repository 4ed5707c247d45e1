"""What a saved trace keeps of the kernel it was recorded in, so that a loaded trace
hides the kernel's own actors as the recording did: the cell's context
(`meta["cell"]`: when the recording began, the cell's thread, when its code ended, the
kernel's pid, the actor the cell ran as) and the kernel's actors found from it
(`meta["environment"]`, see analysis.environment) and those of them that ran the
cell's code (`meta["cell_runners"]`). Written by `save` (and into a recording's own
files when it was persisted while it ran: `keep_in_files`), checked when
read (a damaged file fails naming the field), given the host when actor ids are
(`load.qualify_hosts`), and merged: each saved trace's kernel actors stay the kernel's
in a merge of several; the cell's context is kept only for a trace loaded alone (it
describes one recording)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from . import files

KERNEL_KEYS = ("cell", "environment", "cell_runners")
_CELL_FIELDS = {"since": int, "thread": str, "body_end": int, "pid": int, "actor": str}


def saved(meta: dict[str, Any]) -> dict[str, Any]:
    """The kernel keys of a trace's `meta` to write with it (none outside a kernel)."""
    return {k: meta[k] for k in KERNEL_KEYS if meta.get(k) is not None}


def keep_in_files(meta: dict[str, Any], unit: Path) -> None:
    """Write the kernel keys of a finished recording's `meta` into the metadata its
    flusher wrote in the process directory `unit`: a recording persisted while it ran
    remembers the cell as a saved one does. Call it once the last flush is done (it
    rewrites the file that flush writes)."""
    path = unit / files.METADATA
    data = files.read_json(path)
    data.update(saved(meta))
    files.write_json(data, path)


def check(meta: dict[str, Any], path: Path) -> None:
    """Refuse kernel keys of metadata read from `path` that are not what `save` writes."""
    for key in ("environment", "cell_runners"):
        ids = meta.get(key)
        if ids is not None and not (isinstance(ids, list) and all(isinstance(a, str) for a in ids)):
            raise ValueError(f"scope_nb: {path}: {key} must be a list of actor ids, got {ids!r}")
    cell = meta.get("cell")
    if cell is None:
        return
    if not isinstance(cell, dict) or not set(_CELL_FIELDS) <= set(cell):
        raise ValueError(f"scope_nb: {path}: cell must map {', '.join(_CELL_FIELDS)}, got {cell!r}")
    for key, kind in _CELL_FIELDS.items():
        value = cell[key]
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise ValueError(f"scope_nb: {path}: cell {key} must be a {kind.__name__}: {value!r}")


def with_host(meta: dict[str, Any], pattern: str, host: str) -> None:
    """Give the host to the actor ids of `meta`'s kernel keys, as to the frames' (an id
    matching `pattern` becomes `<id>@host`)."""

    def qualify(actor: str | None) -> str | None:
        return None if actor is None else re.sub(pattern, lambda m: f"{m.group(1)}@{host}", actor)

    for key in ("environment", "cell_runners"):
        if meta.get(key) is not None:
            meta[key] = [qualify(a) for a in meta[key]]
    if meta.get("cell") is not None:
        meta["cell"] = {**meta["cell"], "actor": qualify(meta["cell"]["actor"])}


def merged(metas: list[dict[str, Any]]) -> dict[str, Any]:
    """The kernel keys of a trace merged from saved ones of metadata `metas`."""
    if len(metas) == 1:
        return saved(metas[0])
    known = [m for m in metas if m.get("environment") is not None]
    if not known:
        return {}
    return {
        key: [a for m in known for a in m.get(key) or ()] for key in ("environment", "cell_runners")
    }


__all__ = ["KERNEL_KEYS", "saved", "check", "with_host", "merged"]
