"""The `%%scope` summary as a notebook shows it: the kernel's own actors (see
analysis.environment) left out of the counts and of the findings that involve only
them, and HTML that reads the same in an untrusted notebook.

The kernel's actors stay in the trace; the summary counts the rest and says how many it
left out. A finding that involves a cell's actor is kept whole, the kernel's actors in
it named: a cell's thread deadlocked with a kernel thread is the cell's deadlock.

JupyterLab sanitizes the HTML of an untrusted notebook: `<style>` blocks are dropped,
inline `style` attributes kept. So the summary's HTML styles each element inline
(analysis.inline_html, shared with the Trace's own summary and the reports).
"""

from __future__ import annotations

from collections.abc import Collection


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
        # processes, threads, then tasks, each in the order they started: the same for
        # the trace loaded again (its actors frame is in another order)
        rank = {"process": 0, "thread": 1, "task": 2}
        kinds = dict(left_out.select("actor", "kind").iter_rows())
        name = dict(left_out.select("actor", "name").iter_rows())
        ordered = sorted((a for a in environment if a in name), key=lambda a: rank.get(kinds[a], 3))
        names = [name[a] or a for a in ordered]
        shown = ", ".join(names[:4]) + (", …" if len(names) > 4 else "")
        sec.headline += (
            f"; {left_out.height} of the kernel's own left out ({shown}; "
            "%%scope --kernel-actors shows them)"
        )
    return sec


def sections_for(trace, environment: Collection[str]) -> list:
    """Every summary section without the environment actors: the actors line does not
    count them, the other sections leave out what only they are involved in, but for the
    cell's own thread (and task): what it did is the cell's code."""
    from ..analysis.summary import summarize
    from .kernel_actors import cell_runners

    runners = set(cell_runners(trace)) if environment else set()
    sections = summarize(trace, leave_out=[a for a in environment if a not in runners])
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


__all__ = ["actors_section", "sections_for", "summary_html"]
