"""What `%scope postmortem` shows for a `%%scope` cell that raised.

The exception alone says where the program failed, not what led there: the report
keeps the recording's last events of the failing thread and the traced objects' states
at the moment of the failure, read from the trace the cell left (it is kept even though
the cell raised). Its traceback starts in the cell's own frame: the frames of the magic
that ran the cell are not the user's code.
"""

from __future__ import annotations


class CellFailure:
    """The post-mortem of a `%%scope` cell that raised: the exception, where, and what
    the recording holds from just before (the cell's last events, object states)."""

    def __init__(
        self, trace, exc: BaseException, ts: int, actor: str | None, cell_file: str | None = None
    ):
        import traceback

        self.trace = trace
        self.exception = exc
        end = trace._span()[1]  # a cell that stopped the recording itself failed after its end
        self.ts = ts if end is None else min(ts, end)
        self.actor = actor
        # from the cell's own frame on: the magic's frames are not the user's
        tb = exc.__traceback__
        while (
            cell_file is not None and tb is not None and tb.tb_frame.f_code.co_filename != cell_file
        ):
            tb = tb.tb_next
        self.traceback = "".join(
            traceback.format_exception(type(exc), exc, tb or exc.__traceback__)
        )

    def last_events(self, n: int = 15):
        import polars as pl

        ev = self.trace.events().filter(pl.col("ts") <= self.ts)
        if self.actor is not None:
            ev = ev.filter(pl.col("actor") == self.actor)
        return ev.tail(n).select("seq", "ts", "kind", "target", "obj", "function", "detail")

    def states(self) -> dict[str, dict]:
        out = {}
        for obj in self.trace.states()["obj"].unique().sort().to_list():
            try:
                out[obj] = self.trace.get_state_at(obj, self.ts)
            except ValueError:
                continue
        return out

    def __repr__(self) -> str:
        lines = [
            f"Cell failed: {type(self.exception).__name__}: {self.exception}",
            self.traceback.rstrip(),
            "Last events of the cell's thread:",
            str(self.last_events()),
        ]
        lines += [f"state of {k}: {v!r}" for k, v in self.states().items()]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html

        from ..analysis.inline_html import frame_html

        states = "".join(
            f"<li><code>{html.escape(k)}</code>: <code>{html.escape(repr(v)[:300])}</code></li>"
            for k, v in self.states().items()
        )
        return (
            f'<div class="scope-postmortem"><b style="color:#b00020">Cell failed: '
            f"{html.escape(type(self.exception).__name__)}: {html.escape(str(self.exception))}</b>"
            f"<pre>{html.escape(self.traceback)}</pre><b>Last events of the cell's thread</b>"
            f"{frame_html(self.last_events())}"
            + (f"<b>Traced objects at the failure</b><ul>{states}</ul>" if states else "")
            + "</div>"
        )


__all__ = ["CellFailure"]
