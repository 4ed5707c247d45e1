"""The explorer's widgets and their layout: the controls that move the cursor and set
the filters, the panes they drive, arranged in one box.

Building the widgets is apart from what they do (the Explorer wires them) so that the
layout reads in one place. One behaviour is the widgets' own and lives here: the play
button's ■ puts its value back to the start, and the cursor should stay where playing
reached instead.
"""

from __future__ import annotations

from .explorer_panes import NO_OBJECT

ALL = "(all)"  # the filter choice that filters nothing
KERNEL_TOGGLE = "show the kernel's own threads and tasks"


class Controls:
    """The widgets of one explorer. `kinds`, `actors` ((label, actor) pairs) and
    `filter_objects` are the filters' choices, `objects` those of "state of" (`obj`
    chosen); `lower` is the widget of the lower panels. `kernel_toggle` offers the
    checkbox that shows the kernel's own actors (ticked if `show_kernel`)."""

    def __init__(
        self,
        n_events: int,
        header: str,
        kinds: list[str],
        actors: list[tuple[str, str]],
        filter_objects: list[str],
        objects: list[str],
        obj: str | None,
        lower,
        kernel_toggle: bool = False,
        show_kernel: bool = False,
    ):
        import ipywidgets as W

        last = max(n_events - 1, 0)
        self.slider = W.IntSlider(
            value=0,
            min=0,
            max=last,
            step=1,
            description="event",
            readout=True,
            continuous_update=False,
            layout=W.Layout(width="520px"),
        )
        self.play = W.Play(
            value=0, min=0, max=last, step=max(1, n_events // 300), interval=250, description="play"
        )
        W.jslink((self.play, "value"), (self.slider, "value"))
        self._play_seen = (0, 0)  # (value before the last, last value) the play button reported
        self.back = W.Button(
            description="◀ step",
            tooltip="previous event (matching the filters)",
            layout=W.Layout(width="80px"),
        )
        self.fwd = W.Button(
            description="step ▶",
            tooltip="next event (matching the filters)",
            layout=W.Layout(width="80px"),
        )
        self.position = W.HTML()
        self.note = W.HTML()  # why a button did nothing (no later match, ...)
        self.jump_kind = W.Dropdown(
            options=kinds or ["-"], description="jump to", layout=W.Layout(width="220px")
        )
        self.prev_kind = W.Button(
            description="◀ prev",
            tooltip="previous event of this kind",
            layout=W.Layout(width="70px"),
        )
        self.next_kind = W.Button(
            description="next ▶", tooltip="next event of this kind", layout=W.Layout(width="70px")
        )
        self.prev_kind.disabled = self.next_kind.disabled = not kinds  # "-" is no kind to jump to
        self.f_actor = W.Dropdown(
            options=[(ALL, ALL), *actors],
            value=ALL,
            description="actor",
            layout=W.Layout(width="260px"),
        )
        self.f_kind = W.Dropdown(
            options=[ALL, *kinds], description="kind", layout=W.Layout(width="200px")
        )
        self.f_obj = W.Dropdown(
            options=[ALL, *filter_objects], description="object", layout=W.Layout(width="240px")
        )
        chosen = obj if obj in objects else (objects[0] if objects else NO_OBJECT)
        self.state_obj = W.Dropdown(
            options=objects or [NO_OBJECT],
            value=chosen,
            description="state of",
            layout=W.Layout(width="260px"),
        )

        self.show_kernel = W.Checkbox(
            value=show_kernel,
            description=KERNEL_TOGGLE,
            indent=False,
            layout=W.Layout(width="auto", display=None if kernel_toggle else "none"),
        )
        self.header = W.HTML(header)

        self.events_panel = W.HTML(layout=W.Layout(width="58%"))
        self.state_panel = W.HTML()
        self.actors_panel = W.HTML()

        self.widget = W.VBox(
            [
                self.header,
                W.HBox([self.back, self.play, self.fwd, self.slider]),
                W.HBox([self.position]),
                W.HBox([self.jump_kind, self.prev_kind, self.next_kind, self.note]),
                W.HBox([self.f_actor, self.f_kind, self.f_obj, self.show_kernel]),
                W.HBox(
                    [
                        self.events_panel,
                        W.VBox(
                            [self.state_obj, self.state_panel, self.actors_panel],
                            layout=W.Layout(width="42%"),
                        ),
                    ]
                ),
                lower,
            ]
        )
        self.widget.add_class("scope-explorer")
        self.play.observe(self._play_moved, names="value")
        self.play.observe(self._play_stopped, names="playing")

    def offer_actors(self, actors: list[tuple[str, str]]) -> None:
        """Offer `actors` ((label, actor) pairs) in the actor filter; a chosen actor no
        longer offered puts the filter back to "(all)"."""
        chosen = self.f_actor.value
        self.f_actor.options = [(ALL, ALL), *actors]
        offered = {a for _, a in actors}
        self.f_actor.value = chosen if chosen in offered else ALL

    def filters(self) -> tuple[str | None, str | None, str | None]:
        """The (actor, kind, object) filters set, None for each left at "(all)"."""
        return tuple(
            None if f.value == ALL else f.value for f in (self.f_actor, self.f_kind, self.f_obj)
        )

    def _play_moved(self, change) -> None:
        self._play_seen = (change["old"], change["new"])

    def _play_stopped(self, change) -> None:
        """The play widget's ■ puts its value back to the start; the cursor stays where
        playing reached instead. (Both arrive in one update, in either order.)"""
        if change["new"]:
            return
        before, last = self._play_seen
        reached = before if last == self.play.min else last
        if self.play.value == self.play.min and reached != self.play.min:
            self.play.value = reached
            self.slider.value = reached


__all__ = ["Controls", "ALL", "KERNEL_TOGGLE"]
