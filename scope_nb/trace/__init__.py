"""Trace: the recorded data as three polars frames, and the query methods.

A Trace is either live (backed by a running Recorder: every query sees what has
been recorded so far) or final (frames fixed at `stop()`, or loaded from disk).
The methods are thin: each delegates to a pure function of `analysis/`. They are
grouped by what they ask about, one module each (`base`: the frames and what the
recording counted; `times`; `calls`; `actors`; `sync`; `states`; `outputs`), and the
class puts them together.
"""

from __future__ import annotations

from .actors import ActorQueries
from .calls import CallQueries
from .outputs import Outputs
from .states import StateQueries
from .sync import SyncQueries

__all__ = ["Trace", "load_trace"]


class Trace(CallQueries, ActorQueries, SyncQueries, StateQueries, Outputs):
    """A recording's events, actors and traced objects' states, and the questions
    they answer (see the modules of this package for each group)."""

    def __repr__(self) -> str:
        from ..analysis.summary import summary_text

        return summary_text(self)

    def _repr_html_(self) -> str:
        from ..analysis.summary import summary_html

        return summary_html(self)


def load_trace(path, *more, trusted: bool = False) -> Trace:
    """Persisted traces (one process directory, a run's directory, several of them) as
    one Trace, whose events stay a scan of the files until a query needs them whole."""
    from ..store.load import read_trace

    source, meta = read_trace(path, *more, trusted=trusted)
    return Trace(source=source, meta=meta)
