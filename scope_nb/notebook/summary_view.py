"""The `%%scope` summary as a notebook shows it: the kernel's own actors left out of the
counts, and HTML that reads the same in an untrusted notebook.

A cell runs inside a kernel that has threads and tasks of its own (the main thread the
cell runs on, ipykernel's shell and IOPub threads, the event loop's housekeeping
tasks). They are real actors of the recording, but counting them tells a person that
their cell started threads it did not start. They are "environment": an actor that
existed before the cell, anything such an actor started other than through the cell's
own thread, and the tasks the cell's private event loop runs after the cell's code has
finished (closing the loop). They stay in the trace; the summary counts the rest and
says how many it left out.

JupyterLab sanitizes the HTML of an untrusted notebook: `<style>` blocks are dropped,
inline `style` attributes kept. So the summary's HTML styles each element inline
(analysis.inline_html, shared with the Trace's own summary and the reports).
"""

from __future__ import annotations

from collections.abc import Collection


def environment_actors(
    actors,
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


def actors_section(trace, environment: Collection[str]):
    """The summary's "actors" line counting only the cell's actors, with how many (and
    which) environment actors were left out."""
    import polars as pl

    from ..analysis.summary import Section

    all_actors = trace.actors()
    actors = all_actors.filter(~pl.col("actor").is_in(list(environment)))
    sec = Section("actors", count=0)
    if actors.height == 0:
        sec.headline = "none started by the cell"
    else:
        by_kind = actors.group_by("kind").len().sort("kind")
        sec.headline = ", ".join(
            f"{n} {k}{'' if n == 1 else 'es' if k == 'process' else 's'}"
            for k, n in by_kind.iter_rows()
        )
        outcomes = (
            actors.filter(pl.col("outcome") != "ok").group_by("outcome").len().sort("outcome")
        )
        if outcomes.height:
            sec.headline += " (" + ", ".join(f"{n} {o}" for o, n in outcomes.iter_rows()) + ")"
    left_out = all_actors.filter(pl.col("actor").is_in(list(environment)))
    if left_out.height:
        names = [n or a for a, n in left_out.select("actor", "name").iter_rows()]
        shown = ", ".join(names[:4]) + (", …" if len(names) > 4 else "")
        sec.headline += (
            f"; {left_out.height} of the kernel's own left out ({shown}; "
            "%%scope --environment counts them)"
        )
    return sec


def sections_for(trace, environment: Collection[str]) -> list:
    """Every summary section, the actors line without the environment actors."""
    from ..analysis.summary import summarize

    sections = summarize(trace)
    if environment:
        sections = [
            actors_section(trace, environment) if s.name == "actors" and not s.error else s
            for s in sections
        ]
    return sections


def summary_html(title: str, sections: list) -> str:
    """The summary as an HTML table styled inline (it survives an untrusted notebook's
    sanitizer): findings in red, failed sections in amber. Drawn as a Trace draws its own."""
    from ..analysis.inline_html import sections_html

    return sections_html(title, sections)


__all__ = ["environment_actors", "actors_section", "sections_for", "summary_html"]
