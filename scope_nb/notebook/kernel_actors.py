"""Which actors of a trace are the kernel's own, remembered with the trace itself.

A trace recorded in a kernel (`%%scope`, `%scope start`/`stop`, `scope_nb.record()` in
a cell) holds the kernel's threads and tasks besides the cell's. The summary and every
view of the explorer leave them out by default; they ask here, so that the explorer
opened later from the trace (`_scope.explore()`) knows them too. What the recording
knew of the cell (when it began, its thread, when its code ended, the actor it ran as)
is kept in `trace.meta["cell"]` when the recording stops, which costs nothing; the
classification (analysis.environment) runs when first asked and its answer is kept as
`trace.meta["environment"]` (and `["cell_runners"]`, those of them that ran the cell's
code: what they did is the cell's). Saving a trace persists them, and so does a
recording persisted while it ran (into its own files, once they are complete), so a
loaded trace knows the kernel's actors as the recording did. A trace recorded outside a
kernel has neither: none of its actors is the kernel's.
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from typing import Any


def in_kernel() -> bool:
    """Is this process a Jupyter kernel? (IPython's shell with a kernel behind it; a plain
    IPython shell or script is not.) Imports nothing that is not already loaded."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # an IPython half torn down at exit: no kernel to speak of
        return False
    return getattr(shell, "kernel", None) is not None


def cell_context(since: int, body_end: int | None = None) -> dict[str, Any]:
    """What the recording of a cell knows of it, on the thread running the cell: when the
    recording began (`since`, epoch ns), the cell's thread and when its code ended."""
    return {
        "since": since,
        "thread": threading.current_thread().name,
        "body_end": body_end,
        "pid": os.getpid(),
        "actor": None,
    }


def remember_cell(trace, cell: dict[str, Any]) -> None:
    """Keep the cell `trace` recorded (a `cell_context`, its actor filled in) with it;
    a classification computed for another cell is forgotten."""
    trace.meta["cell"] = dict(cell)
    trace.meta.pop("environment", None)
    trace.meta.pop("cell_runners", None)
    unit = trace.meta.get("path")
    if unit:  # persisted while it ran: its files remember the cell too, once complete
        from pathlib import Path

        from ..store.kernel_meta import keep_in_files

        try:
            keep_in_files(trace.wait_written().meta, Path(unit))
        except (OSError, ValueError) as e:
            warnings.warn(
                f"scope_nb: the trace in {unit} will not know the kernel's actors: {e}",
                stacklevel=3,
            )


def kernel_actors(trace) -> list[str]:
    """The kernel's own actors in `trace`, in the order they started ([] for a trace not
    recorded in a kernel)."""
    from ..analysis.environment import remembered_environment

    return remembered_environment(trace.meta, trace.actors)[0]


def cell_runners(trace) -> list[str]:
    """The kernel's own actors in `trace` that ran the cell's code (the cell's thread, the
    actor the cell ran as): hidden where actors are listed, but what they did is the
    cell's, kept in the views of locks, queues and findings."""
    from ..analysis.environment import remembered_environment

    return remembered_environment(trace.meta, trace.actors)[1]


def kernel_cell(since: int) -> dict[str, Any] | None:
    """The context of the cell `scope_nb.record()` began to record at `since` (epoch ns)
    when this process is a kernel, else None: outside a kernel nothing is hidden."""
    return cell_context(since) if in_kernel() else None


__all__ = [
    "in_kernel",
    "cell_context",
    "kernel_cell",
    "remember_cell",
    "kernel_actors",
    "cell_runners",
]
