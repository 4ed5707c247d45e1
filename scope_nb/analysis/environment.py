"""Which actors of a trace recorded in a kernel are the kernel's own ("environment"),
told from what the recording knew of the cell.

A cell runs inside a kernel that has threads and tasks of its own (the main thread the
cell runs on, ipykernel's shell and IOPub threads, the event loop's housekeeping
tasks). They are real actors of the recording, but showing them tells a person that
their cell started threads it did not start. They are "environment": an actor that
existed before the cell, anything such an actor started other than through the cell's
own thread, and the tasks the cell's private event loop runs after the cell's code has
finished (closing the loop). They stay in the trace; the notebook's views leave them
out. The cell's own thread is one of them (it is the kernel's main thread), yet what it
does while the cell runs is the cell's code: its locks, queues and findings stay in
every view ("cell runners"). The classification reads only the actors frame and the
cell's context (a dict kept as `meta["cell"]`), so a saved trace classifies the same
after loading; its answers are kept as `meta["environment"]` and
`meta["cell_runners"]`, which is what saving persists.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl


def environment_actors(
    actors: pl.DataFrame,
    since: int,
    cell_thread: str | None = None,
    body_end: int | None = None,
    pid: int | None = None,
    cell_actor: str | None = None,
) -> list[str]:
    """The actors of `actors` (the actors frame) that belong to the kernel, not to the
    cell recorded from `since` (epoch ns) on the thread named `cell_thread`, whose code
    finished at `body_end`, in the kernel process `pid`. `cell_actor` is the actor the
    cell's code ran as (ipykernel runs a cell inside a task of its own): it is the
    kernel's, but what it started is the cell's. In the order they started."""
    rows = (
        actors.sort("started", nulls_last=False)
        .select("actor", "kind", "name", "parent", "started", "pid")
        .iter_rows()
    )
    env: list[str] = []
    seen: set[str] = set()
    # the cell's thread and its process: what they start is the cell's
    cell_actors: set[str] = set()
    for actor, kind, name, parent, started, actor_pid in rows:
        before = started is None or started < since
        kernel_process = kind == "process" and pid is not None and actor_pid == pid
        if (
            kernel_process
            or actor == cell_actor
            or (before and kind == "thread" and name == cell_thread)
        ):
            cell_actors.add(actor)
        by_kernel = parent in seen and parent not in cell_actors
        after_cell = (
            parent in cell_actors
            and body_end is not None
            and started is not None
            and started >= body_end
        )
        if before or kernel_process or by_kernel or after_cell or actor == cell_actor:
            env.append(actor)
            seen.add(actor)
    return env


def cell_runners(actors: pl.DataFrame, env: list[str], cell: dict[str, Any]) -> list[str]:
    """Of the kernel's actors `env`, those that ran the cell's code (`cell` its context):
    the cell's thread and the actor the cell ran as. They are the kernel's, listed with
    its actors; but what they did while recording is the cell's code at work (its locks,
    its queues, its findings), which no view leaves out."""
    kernel = set(env)
    return [
        a
        for a, kind, name, pid in actors.select("actor", "kind", "name", "pid").iter_rows()
        if a in kernel
        and (
            a == cell["actor"]
            or (kind == "thread" and name == cell["thread"] and pid == cell["pid"])
        )
    ]


def remembered_environment(
    meta: dict[str, Any], actors: Callable[[], pl.DataFrame]
) -> tuple[list[str], list[str]]:
    """(the kernel's own actors, those of them that ran the cell's code) of the trace
    whose metadata is `meta` and whose actors frame `actors()` gives: as kept in
    `meta["environment"]` and `meta["cell_runners"]`, else classified from `meta["cell"]`
    and kept there; ([], []) for a trace not recorded in a kernel (no cell)."""
    if meta.get("environment") is None:
        cell = meta.get("cell")
        if cell is None:
            return [], []
        frame = actors()
        env = environment_actors(
            frame,
            cell["since"],
            cell["thread"],
            cell["body_end"],
            cell["pid"],
            cell["actor"],
        )
        meta["environment"], meta["cell_runners"] = env, cell_runners(frame, env, cell)
    return list(meta["environment"]), list(meta.get("cell_runners") or ())


__all__ = ["environment_actors", "cell_runners", "remembered_environment"]
