"""The reports of what a run cost, rather than of a bug: time (`PerformanceReport`, the
`CallTree`) and memory (`MemoryReport`).

Apart from reports.py, which holds the bug reports the detectors return (crashes, races,
deadlocks, stalls) and the rendering they all share, because these carry frames to read
rather than one finding to act on: each is mostly its tables, shown as they are."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from .inline_html import frame_html
from .reports import _html, _ms, _rows, _text


@dataclass
class PerformanceReport:
    """Hot functions, slow calls and queue bottlenecks of one module (or all)."""

    module: str | None
    hotspots: pl.DataFrame
    slowest_calls: pl.DataFrame
    bottlenecks: pl.DataFrame

    @property
    def headline(self) -> str:
        if self.hotspots.height == 0:
            return f"no calls recorded{' in ' + self.module if self.module else ''}"
        top = self.hotspots.row(0, named=True)
        return (
            f"{self.hotspots.height} functions; most self time in "
            f"{top['module']}.{top['function']} "
            f"({_ms(top['self_ns'])} over {top['count']} calls)"
        )

    def to_frame(self) -> pl.DataFrame:
        return self.hotspots

    def _facts(self):
        return [
            ("module", self.module or "all"),
            (
                "bottlenecks",
                _rows(self.bottlenecks, ["queue", "consumers", "peak_depth", "summary"]),
            ),
        ]

    def __repr__(self) -> str:
        return _text(f"PerformanceReport: {self.headline}", self._facts())

    def _repr_html_(self) -> str:
        return _html(
            f"Performance: {self.headline}",
            self._facts(),
            [
                ("Hotspots", frame_html(self.hotspots)),
                ("Slowest calls", frame_html(self.slowest_calls)),
                ("Queue bottlenecks", frame_html(self.bottlenecks)),
            ],
        )


@dataclass
class CallTree:
    """The call tree: a frame (one row per distinct call path) and a networkx graph."""

    frame: pl.DataFrame
    graph: Any  # networkx.DiGraph

    @property
    def headline(self) -> str:
        return f"call tree: {self.frame.height} call paths"

    def to_frame(self) -> pl.DataFrame:
        return self.frame

    def __repr__(self) -> str:
        lines = [self.headline]
        for r in self.frame.head(40).iter_rows(named=True):
            lines.append(
                f"{'  ' * r['depth']}{r['function']}  x{r['count']}  incl {_ms(r['inclusive_ns'])} "
                f" self {_ms(r['self_ns'])}"
            )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return _html(self.headline, [], [("Paths", frame_html(self.frame, 50))])


@dataclass
class MemoryReport:
    """Process memory over time, traced objects' size, top growing allocation sites."""

    samples: pl.DataFrame  # ts, rss, heap
    objects: pl.DataFrame  # obj, ts, size
    top_growth: pl.DataFrame  # site, size_diff, count_diff
    actor: str | None = None

    @property
    def headline(self) -> str:
        if self.samples.height == 0:
            return "no memory samples (start with memory_interval=seconds)"
        rss = self.samples["rss"].drop_nulls()
        if rss.len() == 0:
            return f"{self.samples.height} memory samples"
        growth = int(rss[-1]) - int(rss[0])
        return (
            f"RSS {int(rss[0]) / 2**20:.1f} -> {int(rss[-1]) / 2**20:.1f} MiB "
            f"({growth / 2**20:+.1f} MiB, peak {int(rss.max()) / 2**20:.1f} MiB) over "
            f"{self.samples.height} samples"
        )

    def to_frame(self) -> pl.DataFrame:
        return self.samples

    def __repr__(self) -> str:
        return _text(
            f"MemoryReport: {self.headline}",
            [
                ("top growing sites", _rows(self.top_growth, ["site", "size_diff"])),
                (
                    "objects",
                    _rows(
                        self.objects.group_by("obj").agg(pl.col("size").last())
                        if self.objects.height
                        else None,
                        ["obj", "size"],
                    ),
                ),
            ],
        )

    def _repr_html_(self) -> str:
        return _html(
            f"Memory: {self.headline}",
            [],
            [
                ("Samples", frame_html(self.samples)),
                ("Top growing allocation sites", frame_html(self.top_growth)),
                ("Traced objects", frame_html(self.objects)),
            ],
        )
