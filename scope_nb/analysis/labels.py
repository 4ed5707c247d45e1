"""People's words in reports: actors by name (`bumper-1 (T4)`), times from the start of
the recording (`+0.0123 s`), code locations relative to the program (`account.py:17`,
a notebook cell as `cell:17`).

Frames keep the ids, epoch times and full paths (they are what joins and filters use);
only the text a person reads goes through here, so every report says things one way."""

from __future__ import annotations

import os
import re
import sys
import sysconfig
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import polars as pl

# an IPython cell's code is compiled under a file named for its hash, in a temp directory
_CELL = re.compile(r"(?:^|[\\/])ipykernel_\d+[\\/]\d+\.py$|^<ipython-input-(\d+)-[0-9a-f]+>$")


def short_id(actor: str) -> str:
    """`T4:16856` -> `T4`: the pid part is the same for every actor of one process."""
    return actor.split(":", 1)[0]


def actor_label(actor: str | None, name: str | None = None) -> str:
    """`bumper-1 (T4)`; the short id alone when the actor has no name."""
    if actor is None:
        return "an unknown actor"
    return f"{name} ({short_id(actor)})" if name else short_id(actor)


def _library_roots() -> tuple[str, ...]:
    roots = {sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots |= {p for p in sys.path if p.endswith(("site-packages", "dist-packages"))}
    return tuple(sorted((os.path.normpath(r) + os.sep for r in roots if r), key=len, reverse=True))


_LIBRARY_ROOTS = _library_roots()


def short_location(location: str | None, root: str | None = None) -> str | None:
    """`file:line` relative to the program: under `root` (the working directory by
    default) the relative path, in the standard library or an installed package the
    path from the package on, a notebook cell as `cell:line` (`In[n]:line` when the
    cell number is in its name), elsewhere the file's name."""
    if not location:
        return location
    path, sep, line = location.rpartition(":")
    if not sep or not line.isdigit():
        path, line = location, ""
    suffix = f":{line}" if line else ""
    cell = _CELL.search(path)
    if cell:
        return f"In[{cell.group(1)}]{suffix}" if cell.group(1) else f"cell{suffix}"
    if path.startswith("<") or not os.path.isabs(path):
        return location
    norm = os.path.normpath(path)
    base = os.path.normpath(root or os.getcwd()) + os.sep
    if norm.startswith(base):
        return norm[len(base) :] + suffix
    for lib in _LIBRARY_ROOTS:
        if norm.startswith(lib):
            return norm[len(lib) :] + suffix
    return os.path.basename(norm) + suffix


_FRAME = re.compile(r'^  File "(?P<path>[^"]*)", line (?P<line>\d+), in (?P<func>.*)$')


def _library_file(path: str) -> bool:
    if path.startswith("<frozen"):
        return True
    norm = os.path.normpath(path) if os.path.isabs(path) else path
    return any(norm.startswith(lib) for lib in _LIBRARY_ROOTS)


def short_stack(text: str | None, keep_inner: int = 3) -> str | None:
    """A captured stack (traceback text) as people read it: each file relative to the
    program, and each run of frames in the standard library or installed packages
    folded into one line naming how many and where (the innermost `keep_inner` are
    kept: they say what the program was waiting in). Text that is not a stack comes
    back as it is."""
    if not text:
        return text
    lines = text.splitlines()
    frames: list[tuple[str, list[str]]] = []  # (path, its lines)
    for ln in lines:
        m = _FRAME.match(ln)
        if m:
            frames.append((m["path"], [ln]))
        elif frames:
            frames[-1][1].append(ln)
        else:
            return text  # a stack starts with a frame
    if not frames:
        return text
    out: list[str] = []
    library = [_library_file(path) for path, _ in frames]
    # the library frames past the program's last one say what it waits in: the
    # innermost `keep_inner` of them stay
    last_own = max((k for k, lib in enumerate(library) if not lib), default=-1)
    inner = max(last_own + 1, len(frames) - keep_inner)
    i = 0
    while i < len(frames):
        j = i
        while j < len(frames) and j < inner and library[j]:
            j += 1
        if j - i >= 2:
            names = sorted({_module_of(frames[k][0]) for k in range(i, j)})
            out.append(f"  ... {j - i} frames of {', '.join(names)} ...")
            i = j
            continue
        path, body = frames[i]
        m = _FRAME.match(body[0])
        shown = short_location(f"{path}:{m['line']}") if m else None
        where = shown.rpartition(":")[0] if shown and ":" in shown else path
        out.append(f'  File "{where}", line {m["line"]}, in {m["func"]}' if m else body[0])
        out.extend(body[1:])
        i += 1
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def _module_of(path: str) -> str:
    """`.../asyncio/base_events.py` -> `asyncio`; `<frozen runpy>` -> `runpy`."""
    if path.startswith("<frozen "):
        return path[len("<frozen ") : -1]
    short = short_location(path) or path
    head = short.replace(os.sep, "/").split("/")[0]
    return head.removesuffix(".py")


@dataclass(frozen=True)
class Labels:
    """How one trace's reports say who, when and where. An empty Labels (a report
    made by hand) still shortens ids and paths; times then stay absolute."""

    names: Mapping[str, str] = field(default_factory=dict)
    start_ns: int | None = None

    def actor(self, actor: str | None) -> str:
        return actor_label(actor, self.names.get(actor) if actor is not None else None)

    def actors(self, actors: Iterable[str | None]) -> str:
        return ", ".join(self.actor(a) for a in actors)

    def time(self, ts: int | None) -> str | None:
        if ts is None:
            return None
        if self.start_ns is None:
            return str(ts)
        return f"+{(ts - self.start_ns) / 1e9:.4f} s"

    def location(self, location: str | None) -> str | None:
        return short_location(location)

    def stack(self, text: str | None) -> str | None:
        return short_stack(text)


def labels_of(actors: pl.DataFrame, events: pl.DataFrame | None = None) -> Labels:
    """The Labels of a trace's frames: names from `actors`, the start at the first
    event (the process actor started long before the recording did)."""
    names = {a: n for a, n in actors.select("actor", "name").iter_rows() if n}
    start = events["ts"].min() if events is not None and events.height else None
    return Labels(names, int(start) if start is not None else None)


def attach(reports: list, labels: Labels) -> list:
    """`reports`, each told how to say names and times (their `labels` field)."""
    for r in reports:
        r.labels = labels
    return reports
