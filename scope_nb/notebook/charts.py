"""altair charts of a Trace, rendered offline.

altair's default renderer fetches Vega from a CDN and shows nothing without
internet. Rather than switching altair's global renderer (a renderer the user chose
is theirs), every chart made here is an altair chart of a subclass that carries its
own display: the Vega-Lite spec under the Vega-Lite mime type (JupyterLab, Notebook 7
and VS Code draw it with the Vega they ship, offline, also in an untrusted notebook)
and a PNG drawn in the kernel by vl-convert (what nbconvert, GitHub and any other
front end show). No `text/html` and no SVG: an untrusted notebook strips the one and
refuses the other. Every chart aggregates in polars first, so no chart carries more
than a few thousand rows whatever the size of the trace.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import altair as alt
    import polars as pl

MAX_LANES = 24  # actors drawn as their own lane; the rest share one "other" lane
TIME_BINS = 120  # columns of the timeline heat-strip
MAX_ARROWS = 300  # message arrows drawn (evenly sampled beyond that)
PLOT_WIDTH = 640

# Event kinds grouped into what a person looks for on a timeline.
CATEGORY = {
    "call": "calls",
    "return": "calls",
    "exception": "errors",
    "send": "messages",
    "receive": "messages",
    "lock_wait": "locks",
    "lock_acquire": "locks",
    "lock_release": "locks",
    "lock_timeout": "locks",
    "event_set": "locks",
    "event_wait": "locks",
    "join": "locks",
    "state": "state",
    "read": "state",
    "write": "state",
    "spawn": "lifecycle",
    "exit": "lifecycle",
    "fork": "lifecycle",
    "crash": "errors",
    "cancel": "errors",
    "deadlock": "errors",
    "lock_order": "errors",
    "hang": "errors",
    "stall": "errors",
    "task_lost": "errors",
    "exc_unretrieved": "errors",
}
COLORS = {
    "calls": "#9ecae1",
    "messages": "#31a354",
    "locks": "#fd8d3c",
    "state": "#756bb1",
    "lifecycle": "#636363",
    "errors": "#d62728",
    "other": "#bdbdbd",
}

VEGALITE_MIME = "application/vnd.vegalite.v5+json"  # the newest the front ends render
VEGALITE_V5_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"

_enabled: str | None = None


def enable_offline(mode: str = "svg") -> str:
    """Make every altair chart (also the user's own) render with no network. Not needed
    for the charts made here, which carry their own offline display. `mode`: "svg"
    (static, drawn in the kernel) or "html" (interactive, Vega inlined in each output).
    A renderer the user enabled themselves (other than altair's CDN default) is left
    alone."""
    global _enabled
    import altair as alt

    if mode not in ("svg", "html"):
        raise ValueError(f"mode: {mode!r} is not a renderer; accepted: 'svg' | 'html'")
    if alt.renderers.active not in ("default", _enabled):
        return alt.renderers.active
    if mode == "html":
        alt.renderers.enable("html", template="inline")
    else:
        alt.renderers.enable("svg")
    _enabled = mode
    return mode


def _count(name: str, value: int, least: int = 1) -> int:
    """A size argument checked up front: 0 bins would divide by zero, and a negative
    count given to polars' head() silently means "all but the last"."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= {least}; got {type(value).__name__} {value!r}")
    if value < least:
        raise ValueError(f"{name}: {value!r} is invalid; accepted: an int >= {least}")
    return value


def to_svg(chart: alt.TopLevelMixin | dict) -> str:
    """A chart (or a Vega-Lite dict) as an SVG string, drawn offline by vl-convert."""
    import vl_convert as vlc

    if not isinstance(chart, dict) and not hasattr(chart, "to_dict"):
        raise TypeError(
            f"chart: expected an altair chart or a Vega-Lite dict; got {type(chart).__name__}"
        )
    return vlc.vegalite_to_svg(chart if isinstance(chart, dict) else chart.to_dict())


def to_png(chart: alt.TopLevelMixin | dict, scale: float = 1.0) -> bytes:
    """A chart (or a Vega-Lite dict) as PNG bytes, drawn offline by vl-convert."""
    import vl_convert as vlc

    if not isinstance(chart, dict) and not hasattr(chart, "to_dict"):
        raise TypeError(
            f"chart: expected an altair chart or a Vega-Lite dict; got {type(chart).__name__}"
        )
    return vlc.vegalite_to_png(chart if isinstance(chart, dict) else chart.to_dict(), scale=scale)


def figure_bundle(spec: dict[str, Any], text: str) -> dict[str, Any]:
    """The display of one chart: the Vega-Lite spec (labelled v5, the version the
    front ends know; the charts here use nothing newer), a PNG of it, and a line of
    text for a terminal."""
    return {
        VEGALITE_MIME: {**spec, "$schema": VEGALITE_V5_SCHEMA},
        "image/png": base64.b64encode(to_png(spec)).decode("ascii"),
        "text/plain": text,
    }


class _OfflineDisplay:
    """Mixed into an altair chart class: the chart shows itself offline (see the module
    docstring) whatever altair renderer is active."""

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, Any]:
        spec = self.to_dict()
        title = spec.get("title")
        name = title.get("text") if isinstance(title, dict) else title
        return figure_bundle(
            spec, f"<{name or 'scope_nb'} chart: {type(self).__mro__[2].__name__}>"
        )


@functools.cache
def offline_class(name: str) -> type:
    """altair's chart class `name` ("Chart", "LayerChart", ...) with the offline display.
    Its methods (properties, encode, ...) return the same class, so a chart made here
    and refined by the user still shows itself."""
    import altair as alt

    return type(f"Offline{name}", (_OfflineDisplay, getattr(alt, name)), {})


def lanes(trace, max_lanes: int = MAX_LANES, hide: Collection[str] = ()) -> pl.DataFrame:
    """The actors drawn as lanes (the busiest first), with their display labels; those
    of `hide` (the kernel's own, say) have none."""
    import polars as pl

    _count("max_lanes", max_lanes)
    counts = trace.events().group_by("actor").len().rename({"len": "n"})
    actors = trace.actors().select("actor", "name", "kind", "started")
    if hide:
        shown = ~pl.col("actor").is_in(list(hide))
        counts, actors = counts.filter(shown), actors.filter(shown)
    lane = (
        actors.join(counts, on="actor", how="full", coalesce=True, maintain_order="left")
        .with_columns(pl.col("n").fill_null(0))
        .filter(pl.col("actor").is_not_null())
        .sort(["n", "started"], descending=[True, False], nulls_last=True)
        .head(max_lanes)
        .sort("started", nulls_last=True)
    )
    return lane.with_columns(
        label=pl.concat_str(
            [pl.col("name").fill_null(pl.col("actor")), pl.lit(" ["), pl.col("actor"), pl.lit("]")]
        )
    )


def timeline_data(
    trace, bins: int = TIME_BINS, max_lanes: int = MAX_LANES, hide: Collection[str] = ()
) -> dict[str, Any]:
    """The timeline aggregated: per lane and time bin the event count and dominant
    category; message arrows (sampled); crashes. Bounded by lanes x bins rows. The
    events of the actors of `hide` are left out (the time axis stays the trace's)."""
    import polars as pl

    _count("bins", bins)
    ev = trace.events()
    if hide:
        ev = ev.filter(~pl.col("actor").is_in(list(hide)))
    t0, t1 = trace.time_range()
    span = max(t1 - t0, 1)
    lane = lanes(trace, max_lanes, hide)
    label_of = lane.select("actor", "label")
    cat = pl.col("kind").replace_strict(CATEGORY, default="other")
    width_ns = span / bins
    binned = (
        ev.select("actor", "ts", cat.alias("category"))
        .join(label_of, on="actor", how="left", maintain_order="left")
        .with_columns(
            pl.col("label").fill_null("other actors"),
            ((pl.col("ts") - t0) / width_ns).floor().cast(pl.Int64).clip(0, bins - 1).alias("bin"),
        )
        .group_by("label", "bin", "category")
        .len()
        .sort("len", descending=True)
        .group_by("label", "bin", maintain_order=True)
        .agg(pl.col("category").first(), pl.col("len").sum().alias("events"))
        .with_columns(
            (pl.col("bin") * width_ns / 1e9).alias("start_s"),
            ((pl.col("bin") + 1) * width_ns / 1e9).alias("end_s"),
        )
    )
    msgs = ev.filter(pl.col("kind").is_in(["send", "receive"]) & pl.col("msg_id").is_not_null())
    pairs = (
        msgs.filter(pl.col("kind") == "send")
        .select("msg_id", pl.col("actor").alias("src"), pl.col("ts").alias("ts_s"), "target")
        .join(
            msgs.filter(pl.col("kind") == "receive").select(
                "msg_id", pl.col("actor").alias("dst"), pl.col("ts").alias("ts_r")
            ),
            on="msg_id",
            maintain_order="left",
        )
        .join(
            label_of.rename({"actor": "src", "label": "src_label"}), on="src", maintain_order="left"
        )
        .join(
            label_of.rename({"actor": "dst", "label": "dst_label"}), on="dst", maintain_order="left"
        )
    )
    if pairs.height > MAX_ARROWS:
        pairs = pairs.gather_every(pairs.height // MAX_ARROWS + 1)
    pairs = pairs.with_columns(
        ((pl.col("ts_s") - t0) / 1e9).alias("sent_s"),
        ((pl.col("ts_r") - t0) / 1e9).alias("received_s"),
    ).select("src_label", "dst_label", "sent_s", "received_s", "target")
    crashes = (
        ev.filter(pl.col("kind").is_in(["crash", "deadlock", "hang", "lock_order"]))
        .head(200)
        .join(label_of, on="actor", how="left", maintain_order="left")
        .select(
            pl.col("label").fill_null("other actors"),
            ((pl.col("ts") - t0) / 1e9).alias("at_s"),
            "kind",
            pl.col("detail").fill_null("").str.slice(0, 120),
        )
    )
    order = lane["label"].to_list()
    if binned.filter(pl.col("label") == "other actors").height:
        order.append("other actors")
    return {
        "bins": binned,
        "messages": pairs,
        "crashes": crashes,
        "lanes": order,
        "t0": t0,
        "span_s": span / 1e9,
    }


def timeline_spec(
    trace,
    cursor: int | None = None,
    *,
    bins: int = TIME_BINS,
    max_lanes: int = MAX_LANES,
    width: int = PLOT_WIDTH,
    hide: Collection[str] = (),
) -> dict[str, Any]:
    """The timeline as a Vega-Lite dict, built without altair (whose import alone
    costs about a second) so the explorer can draw it straight with vl-convert. The
    actors of `hide` have no lane."""
    from .. import clock

    _count("width", width)
    cursor = clock.as_ns(cursor, "cursor") if cursor is not None else None
    data = timeline_data(trace, bins, max_lanes, hide)
    lanes_ = data["lanes"]
    x_scale = {"domain": [0, data["span_s"]], "nice": False, "zero": False}

    def x(field: str) -> dict:  # one title on every layer: a None in one layer drops it
        return {
            "field": field,
            "type": "quantitative",
            "scale": x_scale,
            "title": "seconds since start",
        }

    def y(field: str) -> dict:
        return {
            "field": field,
            "type": "nominal",
            "sort": lanes_,
            "scale": {"domain": lanes_},
            "title": None,
            "axis": {"labelLimit": 220},
        }

    layers: list[dict] = [
        {
            "data": {"values": data["bins"].to_dicts()},
            "mark": "rect",
            "encoding": {
                "x": x("start_s"),
                "x2": {"field": "end_s"},
                "y": y("label"),
                "color": {
                    "field": "category",
                    "type": "nominal",
                    "legend": {"orient": "bottom", "title": None},
                    "scale": {"domain": list(COLORS), "range": list(COLORS.values())},
                },
                "opacity": {
                    "field": "events",
                    "type": "quantitative",
                    "legend": None,
                    "scale": {"type": "log", "range": [0.35, 1]},
                },
                "tooltip": [
                    {"field": "label", "type": "nominal"},
                    {"field": "category", "type": "nominal"},
                    {"field": "events", "type": "quantitative"},
                    {"field": "start_s", "type": "quantitative", "format": ".6f"},
                ],
            },
        }
    ]
    if data["messages"].height:
        layers.append(
            {
                "data": {"values": data["messages"].to_dicts()},
                "mark": {"type": "rule", "color": COLORS["messages"], "opacity": 0.6},
                "encoding": {
                    "x": x("sent_s"),
                    "x2": {"field": "received_s"},
                    "y": y("src_label"),
                    "y2": {"field": "dst_label"},
                    "tooltip": [
                        {"field": f, "type": "nominal"}
                        for f in ("target", "src_label", "dst_label")
                    ],
                },
            }
        )
    if data["crashes"].height:
        layers.append(
            {
                "data": {"values": data["crashes"].to_dicts()},
                "mark": {
                    "type": "point",
                    "shape": "cross",
                    "color": COLORS["errors"],
                    "size": 90,
                    "filled": True,
                },
                "encoding": {
                    "x": x("at_s"),
                    "y": y("label"),
                    "tooltip": [
                        {"field": "kind", "type": "nominal"},
                        {"field": "detail", "type": "nominal"},
                    ],
                },
            }
        )
    if cursor is not None:
        layers.append(
            {
                "data": {"values": [{"at": (cursor - data["t0"]) / 1e9}]},
                "mark": {"type": "rule", "color": "black", "strokeWidth": 2},
                "encoding": {"x": x("at")},
            }
        )
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
        "title": "timeline",
        "width": width,
        "height": max(60, 18 * len(lanes_)),
        "layer": layers,
    }


def timeline_chart(
    trace,
    cursor: int | None = None,
    *,
    bins: int = TIME_BINS,
    max_lanes: int = MAX_LANES,
    width: int = PLOT_WIDTH,
) -> alt.LayerChart:
    """One lane per actor: activity (color = what dominated), messages as lines from
    sender to receiver, crashes as red marks, and a rule at `cursor` (a time)."""
    return offline_class("LayerChart").from_dict(
        timeline_spec(trace, cursor, bins=bins, max_lanes=max_lanes, width=width), validate=False
    )


def queue_events(trace, hide: Collection[str] = ()) -> pl.DataFrame:
    """The sends and receives of `trace`, without those of the queues only actors of
    `hide` (the kernel's own, say) used; a queue another actor used keeps all of them."""
    import polars as pl

    ev = trace.events(["send", "receive"])
    if not hide:
        return ev
    from ..analysis.leave_out import hidden_targets

    return ev.filter(~pl.col("target").is_in(list(hidden_targets(ev, hide))))


def queue_depth_chart(
    trace, max_points: int = 400, width: int = PLOT_WIDTH, hide: Collection[str] = ()
) -> alt.Chart:
    """Depth of each queue over time (the max in each time bucket: peaks survive); the
    queues only actors of `hide` used are left out."""
    import altair as alt
    import polars as pl

    _count("max_points", max_points)
    _count("width", width)
    ev = queue_events(trace, hide).filter(pl.col("qsize").is_not_null())
    t0, t1 = trace.time_range()
    width_ns = max(t1 - t0, 1) / max_points
    depth = (
        ev.with_columns(((pl.col("ts") - t0) / width_ns).floor().cast(pl.Int64).alias("bucket"))
        .group_by("target", "bucket")
        .agg(pl.col("qsize").max().alias("depth"))
        .with_columns((pl.col("bucket") * width_ns / 1e9).alias("at_s"))
        .sort("target", "bucket")
    )
    top = (
        depth.group_by("target")
        .agg(pl.col("depth").max())
        .sort("depth", descending=True)
        .head(10)["target"]
    )
    depth = depth.filter(pl.col("target").is_in(top.implode()))
    return (
        offline_class("Chart")(depth.rename({"target": "queue"}))
        .mark_line(interpolate="step-after", point=False)
        .encode(
            # whole-number depths and thinned time labels: small depths and long spans
            # otherwise print labels over one another
            x=alt.X(
                "at_s:Q", title="seconds since start", axis=alt.Axis(labelOverlap=True, tickCount=8)
            ),
            y=alt.Y(
                "depth:Q",
                title="depth",
                axis=alt.Axis(tickMinStep=1, format="d", labelOverlap=True),
            ),
            color=alt.Color("queue:N", legend=alt.Legend(labelLimit=240)),
            tooltip=["queue:N", "depth:Q", alt.Tooltip("at_s:Q", format=".6f")],
        )
        .properties(width=width, height=180, title="queue depth")
    )


def hotspot_frame(trace, top: int = 20) -> pl.DataFrame:
    """Functions by total time in calls: calls, total and mean ms."""
    import polars as pl

    _count("top", top, least=0)
    calls = trace.events(["call"]).filter(pl.col("duration_ns").is_not_null())
    return (
        calls.group_by("module", "function")
        .agg(pl.len().alias("calls"), pl.col("duration_ns").sum().alias("total_ns"))
        .with_columns(
            (pl.col("total_ns") / 1e6).alias("total_ms"),
            (pl.col("total_ns") / pl.col("calls") / 1e6).alias("mean_ms"),
            pl.concat_str(
                [pl.col("module").fill_null("?"), pl.col("function").fill_null("?")], separator="."
            ).alias("name"),
        )
        .sort("total_ns", descending=True)
        .head(top)
    )


def hotspots_chart(trace, top: int = 20, width: int = 420) -> alt.Chart:
    """Bar chart of the functions that took the most time (inclusive)."""
    import altair as alt

    _count("width", width)
    hot = hotspot_frame(trace, top)
    return (
        offline_class("Chart")(hot)
        .mark_bar(color=COLORS["calls"])
        .encode(
            x=alt.X("total_ms:Q", title="total ms (inclusive)"),
            y=alt.Y("name:N", sort="-x", title=None, axis=alt.Axis(labelLimit=260)),
            tooltip=[
                "name:N",
                "calls:Q",
                alt.Tooltip("total_ms:Q", format=".3f"),
                alt.Tooltip("mean_ms:Q", format=".4f"),
            ],
        )
        .properties(width=width, height=max(40, 16 * hot.height), title="hotspots")
    )


_TRANSLATE = re.compile(r'transform="translate\(([-\d.]+),([-\d.]+)\)"')
_SIZE = re.compile(r'<svg[^>]*\bwidth="([\d.]+)"[^>]*\bheight="([\d.]+)"')


def plot_geometry(svg: str) -> tuple[float, float, float, float]:
    """(origin x, origin y, svg width, svg height) of a single-view chart drawn by
    vl-convert: the first translate is the plot area's origin."""
    m = _TRANSLATE.search(svg)
    s = _SIZE.search(svg)
    if not m or not s:
        raise ValueError("plot_geometry: not an SVG drawn by vl-convert")
    return float(m.group(1)), float(m.group(2)), float(s.group(1)), float(s.group(2))


__all__ = [
    "enable_offline",
    "to_svg",
    "to_png",
    "figure_bundle",
    "offline_class",
    "VEGALITE_MIME",
    "timeline_chart",
    "timeline_spec",
    "timeline_data",
    "queue_events",
    "queue_depth_chart",
    "hotspots_chart",
    "hotspot_frame",
    "lanes",
    "plot_geometry",
    "CATEGORY",
    "COLORS",
]
