"""The explorer's controls as a person meets them, driven through the widgets' state in
process: the filters say "(all)", a button that cannot move says why, the play
button's stop keeps the cursor, long details do not squeeze the times, and the
timeline is a picture whose labels are drawn whole."""

from __future__ import annotations

import re
import threading

import pytest

import scope_nb

pytest.importorskip("ipywidgets")
pytestmark = pytest.mark.filterwarnings(
    "ignore::pytest.PytestUnhandledThreadExceptionWarning"
)  # the crash is the point


@pytest.fixture(scope="module")
def trace():
    with scope_nb.record() as recorded:
        go = threading.Event()

        def boom():
            go.wait()
            raise RuntimeError("a very long reason " * 12)

        worker = threading.Thread(target=boom, name="MainThread-helper-with-a-long-name")
        worker.start()
        go.set()
        worker.join()
    return recorded


def _explorer(trace):
    from scope_nb.notebook.explorer import Explorer

    return Explorer(trace)


def test_filters_show_all_and_filter_when_chosen(trace):
    from scope_nb.notebook.explorer import ALL

    ex = _explorer(trace)
    for dropdown in (ex.f_actor, ex.f_kind, ex.f_obj):
        assert dropdown.label == ALL and dropdown.index == 0, dropdown.description
    actor = ex._ev.filter(ex._ev["kind"] == "crash")["actor"][0]
    assert actor in [value for _, value in ex.f_actor.options]
    ex.f_actor.value = actor
    assert ex._filtered is not None and set(ex._ev[ex._filtered.to_list()]["actor"]) == {actor}
    ex.f_actor.value = ALL
    assert ex._filtered is None


def test_next_with_no_later_match_says_so(trace):
    ex = _explorer(trace)
    ex.slider.value = ex.n - 1
    before = ex.cursor
    ex.jump("crash", 1)
    assert ex.cursor == before and "no later crash event" in ex.note.value
    ex.jump("crash", -1)
    assert ex._ev["kind"][ex.cursor] == "crash" and ex.note.value == ""
    ex.slider.value = ex.n - 1
    ex.step(1)
    assert "no later event" in ex.note.value


def test_stop_keeps_the_cursor_where_playing_reached(trace):
    ex = _explorer(trace)
    ex.play.playing = True
    for value in range(1, 4):  # what the front end sends while playing
        ex.play.value = value
    ex.play.set_state({"playing": False, "value": ex.play.min})  # the front end's ■
    assert ex.play.value == 3 and ex.cursor == 3


def test_long_details_do_not_wrap_the_times(trace):
    ex = _explorer(trace)
    ex.jump("crash", 1)
    html = ex.events_panel.value
    crash_row = next(r for r in html.split("<tr") if ">crash<" in r)
    cells = re.findall(r"<td([^>]*)>", crash_row)
    assert all("white-space:nowrap" in c for c in cells[:4]), (
        "seq, time, actor and kind stay on one line"
    )
    assert "word-break" in cells[-1]


def test_timeline_is_a_png_with_its_axis_title(trace):
    from scope_nb.notebook import charts

    ex = _explorer(trace)
    assert ex.timeline_base.value.startswith('<img class="scope-timeline"')
    svg = charts.to_svg(charts.timeline_spec(trace))
    assert "seconds since start" in svg
    assert "data:image/png;base64," in ex._repr_html_(), (
        "the saved picture survives an untrusted notebook"
    )


def test_the_cursor_moves_among_the_rows_of_a_kind_or_of_the_filters(trace):
    """The scrubbing on its own, without widgets: from the first row, the next crash is
    the crash's row, nothing comes after it among crashes, and the rows of the crashed
    actor are exactly its events."""
    from scope_nb.notebook.explorer_scrub import Scrub

    ev = trace.events().sort("seq")
    scrub = Scrub(ev)
    crash_row = ev["kind"].to_list().index("crash")
    assert scrub.next_in(scrub.kind_rows("crash"), 0, 1) == crash_row
    assert scrub.next_in(scrub.kind_rows("crash"), crash_row, 1) is None
    assert scrub.next_in(None, 0, -1) is None and scrub.next_in(None, 0, 1) == 1
    assert scrub.row_at(int(ev["ts"][crash_row])) <= crash_row
    actor = ev["actor"][crash_row]
    rows = scrub.matching(actor, None, None)
    assert (
        set(ev[rows.to_list()]["actor"]) == {actor}
        and rows.len() == ev.filter(ev["actor"] == actor).height
    )
    assert scrub.matching(None, None, None) is None
    with pytest.raises(ValueError, match="'sned' is not an event kind"):
        scrub.kind_rows("sned")
