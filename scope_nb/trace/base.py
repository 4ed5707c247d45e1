"""The core of a Trace: its source (a recording, frames, or files), the three frames,
what the recording counted (drops, faults), and subsets of it that queries read."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

from .. import clock
from ..model.source import Recording, Source

if TYPE_CHECKING:
    import polars as pl


class TraceBase:
    """Where the frames come from and what the recording counted; every query group
    builds on it."""

    def __init__(
        self,
        recorder=None,
        *,
        events=None,
        actors=None,
        states=None,
        meta: dict | None = None,
        source: Source | None = None,
    ):
        if source is None:
            source = Recording(recorder) if recorder is not None else Source(events, actors, states)
        self._source = source
        self._settle = None
        self.meta: dict[str, Any] = dict(meta or {})

    @property
    def _rec(self):
        """The recorder whose buffers this trace still reads (None once its frames are
        built, and for frames given or loaded)."""
        src = self._source
        return src.recorder if isinstance(src, Recording) else None

    @property
    def live(self) -> bool:
        rec = self._rec
        return rec is not None and rec.running

    def _all(self) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        return self._source.frames()

    def freeze(
        self, written: TraceBase | None = None, path: str | None = None, settle=None
    ) -> Self:
        """The recording stopped: keep what describes it, build nothing (the frames are
        built when a query first asks). `written`: the same recording as loaded back from
        `path` (storage="disk", where memory only held what waited for the flusher),
        which becomes this trace's source; `settle`: what save() waits for first (the
        last flush to disk, still running)."""
        if settle is not None:
            self._settle = settle
        if written is not None:
            self._settle = written._source.ready
        rec = self._rec
        if rec is not None:
            if isinstance(self._source, Recording):
                self._source.stop()
            self.meta.update(self._recorder_meta())
            if written is not None:
                self._source = written._source
            if path is not None:
                self.meta["path"] = path
        return self

    def _recorder_meta(self) -> dict[str, Any]:
        rec = self._rec
        return {
            "pid": rec.pid,
            "options": rec.options,
            "dropped": dict(rec.store.dropped),
            "errors": dict(rec.store.errors),
            "error_samples": dict(rec.store.error_samples),
            "started": clock.to_epoch(rec.started_perf),
            "stopped": clock.to_epoch(rec.stopped_perf) if rec.stopped_perf else None,
            # name -> traced object, so queries accept the object itself
            "objects": dict(rec.objects),
            # traced, with calls or not
            "modules": sorted({site.module for site in list(rec.sites)}),
        }

    def events(self, kind: str | list[str] | None = None) -> pl.DataFrame:
        """The events frame (columns: scope_nb.schema.EVENTS), optionally of some kinds."""
        if kind is None:
            return self._all()[0]
        from ..analysis.common import kinds_filter

        if self._source.whole:
            return self._all()[0].filter(kinds_filter(kind))
        return self._subset(kinds_filter(kind)).events()

    def events_lazy(self) -> pl.LazyFrame:
        """The events frame as a query (a loaded trace scans its files)."""
        return self._source.lazy()

    def actors(self) -> pl.DataFrame:
        return self._source.actors()

    def states(self) -> pl.DataFrame:
        return self._source.states()

    def _only_kinds(self, *kinds: str, ends: bool = False) -> pl.DataFrame:
        """The events of these kinds: on a loaded trace only they are read (the query
        then holds them, not the whole trace); the rest's seq order is kept. With
        `ends`, the first and last events are kept too, whatever their kind: for the
        queries that measure from the trace's start or to its end."""
        import polars as pl

        if self._source.whole:
            return self.events()
        keep = pl.col("kind").is_in(kinds)
        if ends:
            keep = keep | pl.col("ts").is_in(list(self.time_range()))
        return self._subset(keep).events()

    def _subset(self, predicate: pl.Expr, drop: tuple[str, ...] = ()) -> Self:
        """A Trace over only the matching events (same actors, states and meta): on a
        loaded trace the filter is pushed into the scan, and the `drop` columns are left
        null, never read from disk."""
        import polars as pl

        from ..schema import EVENTS, polars_schema

        lazy = self.events_lazy()
        if drop:
            lazy = lazy.select(
                [
                    pl.lit(None, dtype=t).alias(c) if c in drop else pl.col(c)
                    for c, t in polars_schema(EVENTS).items()
                ]
            )
        return type(self)(
            events=lazy.filter(predicate).collect(),
            actors=self.actors(),
            states=self.states(),
            meta=self.meta,
        )

    def _calls(self, module: str | None = None, light: bool = False) -> Self:
        """Only what call analyses read: call-stream rows (of `module`, when given);
        `light` keeps call and exception rows of every module (self time needs the
        callees) without the argument texts."""
        import polars as pl

        from ..analysis.calls import in_module
        from ..schema import CALL_KINDS

        if light:
            return self._subset(
                pl.col("kind").is_in(["call", "exception"]), drop=("detail", "locks_held")
            )
        pred = pl.col("kind").is_in(sorted(CALL_KINDS))
        if module is not None:
            pred = pred & in_module(module)
        return self._subset(pred)

    @property
    def dropped(self) -> int:
        """Events lost to the max_events bound or to sampling."""
        return sum(self.dropped_by_reason.values())

    @property
    def dropped_by_reason(self) -> dict[str, int]:
        counts = self._source.counts("dropped") if isinstance(self._source, Recording) else None
        return counts if counts is not None else dict(self.meta.get("dropped", {}))

    @property
    def errors(self) -> dict[str, int]:
        """Faults inside the recorder, by place (they never reached the program); those of
        building the frames (a program's repr that raised, with repr_objects) included."""
        counts = self._source.counts("errors") if isinstance(self._source, Recording) else None
        return counts if counts is not None else dict(self.meta.get("errors", {}))

    @property
    def options(self):
        return self._rec.options if self._rec is not None else self.meta.get("options")

    def __len__(self) -> int:
        if self._source.whole:
            return self._all()[0].height
        import polars as pl

        return int(self.events_lazy().select(pl.len()).collect().item())

    def _call_stats(self) -> pl.DataFrame | None:
        """A recording's per-function call statistics while its frames are not built
        (model.call_stats), else None."""
        src = self._source
        return src.call_stats() if isinstance(src, Recording) else None

    def _module(self, module, stats: pl.DataFrame | None = None) -> str | None:
        """`module` as a name, refused when the trace never traced it (see
        calls.check_module). The modules with calls are read from `stats` (a recording's
        `_call_stats`) when given, else from the events."""
        from ..analysis.calls import called_modules, check_module

        name = _module_name(module)
        if name is not None:
            traced = (
                self._recorder_meta()["modules"]
                if self._rec is not None
                else self.meta.get("modules") or ()
            )
            called = (
                called_modules(self.events_lazy())
                if stats is None
                else set(stats["module"].drop_nulls().to_list())
            )
            check_module(name, called | set(traced))
        return name


def _module_name(module) -> str | None:
    if module is None or isinstance(module, str):
        return module
    name = getattr(module, "__name__", None)
    if not isinstance(name, str):
        raise TypeError(f"module must be a module or a module name, got {type(module).__name__}")
    return name
