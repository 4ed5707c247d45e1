"""What `%%scope` displays after a cell: the summary, and live buttons into the explorer.

The panel is a display object rather than printed text so that a saved notebook keeps
a static summary (text and inline-styled HTML) while a live kernel also gets buttons
that open the explorer at the first crash, race, deadlock or stall.
"""

from __future__ import annotations

import time
from typing import Any


class SummaryPanel:
    """What `%%scope` shows: the summary (text/HTML for saved notebooks) and, live,
    buttons opening the explorer on the trace, at the first finding of a section."""

    def __init__(self, trace, environment: list[str] | tuple[str, ...] = ()):
        from .summary_view import sections_for

        self.trace = trace
        self.environment = list(environment)  # actors of the kernel, left out of the views
        started = time.perf_counter()
        self.sections = sections_for(trace, self.environment)
        self.seconds = time.perf_counter() - started

    def __repr__(self) -> str:
        from ..analysis.summary import summary_text

        return summary_text(self.trace, self.sections)

    def _repr_html_(self) -> str:
        from .summary_view import summary_html

        return summary_html(
            f"scope_nb {'recording' if self.trace.live else 'trace'}", self.sections
        )

    def widget(self):
        import ipywidgets as W

        out = W.Output()
        buttons = [
            W.Button(
                description="explore", icon="search", tooltip="open the explorer on this trace"
            )
        ]
        targets: list[tuple[Any, str | None]] = [(None, None)]
        for sec in self.sections:
            if (
                sec.count
                and sec.first_ts is not None
                and sec.name in ("crashes", "races", "deadlocks", "stalls")
            ):
                buttons.append(
                    W.Button(
                        description=f"{sec.name} ({sec.count})",
                        button_style="danger",
                        tooltip=f"open the explorer at the first of the {sec.name}",
                    )
                )
                targets.append((sec.first_ts, None))
            elif sec.name == "hotspots" and sec.items:
                buttons.append(
                    W.Button(description="hotspots", tooltip="open the explorer on the hotspots")
                )
                targets.append((None, "hotspots"))

        def opener(at, tab):
            def open_(_):
                from IPython.display import display

                out.clear_output()
                with out:
                    display(_explorer(self.trace, at, tab, show_kernel=not self.environment))

            return open_

        for button, (at, tab) in zip(buttons, targets, strict=True):
            button.on_click(opener(at, tab))
        return W.VBox([W.HTML(self._repr_html_()), W.HBox(buttons), out])

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = {"text/plain": repr(self), "text/html": self._repr_html_()}
        try:
            view = self.widget()._repr_mimebundle_()
        except Exception:  # no widget support (plain terminal): the static summary is complete
            return bundle
        bundle.update({k: v for k, v in view.items() if k != "text/plain"})
        return bundle


def _explorer(trace, at, tab, show_kernel: bool):
    """The explorer on `trace`; it shows the kernel's own actors when the summary showed
    them (`%%scope --kernel-actors`)."""
    from .explorer import Explorer

    return Explorer(trace, at=at, tab=tab, show_kernel=show_kernel)


__all__ = ["SummaryPanel"]
