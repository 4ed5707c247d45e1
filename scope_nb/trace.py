"""Trace: the recorded data as three polars frames, and the query methods.

A Trace is either live (backed by a running Recorder: every query sees what has
been recorded so far) or final (frames fixed at `stop()`, or loaded from disk).
The methods are thin: each delegates to a pure function of `analysis/`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import clock
from .model.source import Recording, Source

if TYPE_CHECKING:
    import networkx as nx
    import polars as pl


class Trace:
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

    # -- the frames ---------------------------------------------------------------
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

    def freeze(self, written: Trace | None = None, path: str | None = None, settle=None) -> Trace:
        """The recording stopped: keep what describes it, build nothing (the frames are
        built when a query first asks). `written`: the same recording as loaded back from
        `path` (storage="disk", where memory only held what waited for the flusher),
        which becomes this trace's source; `settle`: what save() waits for first (the
        last flush to disk, still running)."""
        if settle is not None:
            self._settle = settle
        if written is not None:
            self._settle = getattr(
                written._source, "ready", None
            )  # a Later: made once the files are
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
            "objects": dict(
                rec.objects
            ),  # name -> traced object, so queries accept the object itself
            "modules": sorted(
                {site.module for site in list(rec.sites)}
            ),  # traced, with calls or not
        }

    def events(self, kind: str | list[str] | None = None) -> pl.DataFrame:
        """The events frame (columns: scope_nb.schema.EVENTS), optionally of some kinds."""
        if kind is None:
            return self._all()[0]
        from .analysis.common import kinds_filter

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

    def _only_kinds(self, *kinds: str) -> pl.DataFrame:
        """The events of these kinds: on a loaded trace only they are read (the query
        then holds them, not the whole trace); the rest's seq order is kept."""
        import polars as pl

        if self._source.whole:
            return self.events()
        return self._subset(pl.col("kind").is_in(kinds)).events()

    def _subset(self, predicate: pl.Expr, drop: tuple[str, ...] = ()) -> Trace:
        """A Trace over only the matching events (same actors, states and meta): on a
        loaded trace the filter is pushed into the scan, and the `drop` columns are left
        null, never read from disk."""
        import polars as pl

        from .schema import EVENTS, polars_schema

        lazy = self.events_lazy()
        if drop:
            lazy = lazy.select(
                [
                    pl.lit(None, dtype=t).alias(c) if c in drop else pl.col(c)
                    for c, t in polars_schema(EVENTS).items()
                ]
            )
        return Trace(
            events=lazy.filter(predicate).collect(),
            actors=self.actors(),
            states=self.states(),
            meta=self.meta,
        )

    def _calls(self, module: str | None = None, light: bool = False) -> Trace:
        """Only what call analyses read: call-stream rows (of `module`, when given);
        `light` keeps call and exception rows of every module (self time needs the
        callees) without the argument texts."""
        import polars as pl

        from .analysis.calls import in_module
        from .schema import CALL_KINDS

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

    def __repr__(self) -> str:
        from .analysis.summary import summary_text

        return summary_text(self)

    def _repr_html_(self) -> str:
        from .analysis.summary import summary_html

        return summary_html(self)

    # -- basic queries --------------------------------------------------------------
    def events_between(self, t0, t1) -> pl.DataFrame:
        """The events from t0 to t1, both included. The window may reach past either end of
        the trace (t1=time.time_ns() after stop() means "from t0 on"), but a window wholly
        outside it is refused: it can only be a wrong time (seconds for ns, another run)."""
        import polars as pl

        from .analysis.common import events_between

        a, b = self._window_in_trace(t0, t1)
        if self._source.whole:
            return events_between(self.events(), a, b)
        return events_between(self._subset(pl.col("ts").is_between(a, b)).events(), a, b)

    def get_events_before(self, ts, seconds: float = 30) -> pl.DataFrame:
        """The events in the `seconds` up to `ts`, a time in the trace."""
        import polars as pl

        from .analysis.common import events_between

        t1 = self._time_in_trace(ts, "ts")
        t0 = t1 - clock.as_duration_ns(seconds)
        if self._source.whole:
            return events_between(self.events(), t0, t1)
        return events_between(self._subset(pl.col("ts").is_between(t0, t1)).events(), t0, t1)

    def function_calls(self, module=None) -> pl.DataFrame:
        """One row per call: function, args, result, exception, duration, depth, parent."""
        from .analysis.calls import function_calls

        name = self._module(module)
        if self._source.whole:
            return function_calls(self.events(), name)
        return function_calls(self._calls(name).events(), name)  # only that module's calls are read

    def interleaved_timeline(self, actors_or_objects) -> pl.DataFrame:
        from .analysis.common import interleaved_timeline

        return interleaved_timeline(self, actors_or_objects)

    # -- actors -------------------------------------------------------------------
    def resolve_actor(self, actor) -> str:
        """An actor argument (Thread, Task, pid, actor id, unique name) as an actor id."""
        from .analysis.common import resolve_actor

        return resolve_actor(self, actor)

    def supervision_tree(self) -> nx.DiGraph:
        from .analysis.actors import supervision_tree
        from .notebook.graphs import SupervisionTree  # a DiGraph that draws itself when displayed

        return SupervisionTree(supervision_tree(self.actors(), self.events()))

    def process_relationships(self, actor) -> dict:
        from .analysis.actors import process_relationships

        return process_relationships(self.actors(), self.events(), self.resolve_actor(actor))

    def find_processes(self, type: str | None = None) -> pl.DataFrame:  # noqa: A002 - contract name
        from .analysis.actors import find_processes

        return find_processes(self.actors(), type)

    # -- messages -----------------------------------------------------------------
    def message_flow(self, a, b, both: bool = False) -> pl.DataFrame:
        from .analysis.messages import message_flow

        return message_flow(self.events(), self.resolve_actor(a), self.resolve_actor(b), both=both)

    def get_messages_to(self, obj_or_actor, before=None) -> pl.DataFrame:
        from .analysis.messages import get_messages_to

        before_ns = clock.as_ns(before, "before") if before is not None else None
        return get_messages_to(self, obj_or_actor, before_ns)

    def message_queue_analysis(self) -> pl.DataFrame:
        from .analysis.messages import message_queue_analysis

        return message_queue_analysis(self._only_kinds("send", "receive"))

    def lock_contention(self) -> pl.DataFrame:
        """Per lock: acquisitions, how many waited and how long, how long it was held."""
        from .analysis.contention import lock_contention

        return lock_contention(
            self._only_kinds("lock_wait", "lock_acquire", "lock_release", "lock_timeout")
        )

    # -- state --------------------------------------------------------------------
    def resolve_object(self, obj) -> str:
        from .analysis.common import resolve_object

        return resolve_object(self, obj)

    def state_timeline(self, obj) -> pl.DataFrame:
        from .analysis.states import state_timeline

        return state_timeline(self.states(), self.resolve_object(obj))

    def get_state_at(self, obj, ts) -> dict:
        from .analysis.states import get_state_at

        return get_state_at(
            self.states(),
            self.resolve_object(obj),
            self._time_in_trace(ts, "ts"),
            trusted=self.meta.get("trusted", True),
        )

    def analyze_state_change(self, obj, t0, t1):
        from .analysis.labels import labels_of
        from .analysis.states import analyze_state_change

        return analyze_state_change(
            self.states(),
            self.events(),
            self.resolve_object(obj),
            self._time_in_trace(t0, "t0"),
            self._time_in_trace(t1, "t1"),
            trusted=self.meta.get("trusted", True),
            labels=labels_of(self.actors(), self.events()),
        )

    def system_snapshot_at(self, ts):
        from .analysis.states import system_snapshot_at

        return system_snapshot_at(self, self._time_in_trace(ts, "ts"))

    # -- detectors ----------------------------------------------------------------
    def get_crash_events(self, obj_or_actor=None):
        from .analysis.crashes import get_crash_events

        return get_crash_events(self, obj_or_actor)

    def analyze_crash(self, obj_or_actor=None, ts=None):
        from .analysis.crashes import analyze_crash

        return analyze_crash(self, obj_or_actor, clock.as_ns(ts, "ts") if ts is not None else None)

    def detect_race_conditions(self, timeline=None) -> list:
        from .analysis.races import detect_race_conditions

        return detect_race_conditions(self.events(), self.actors(), timeline=timeline)

    def analyze_race_condition(self, a, b, window=None) -> list:
        """The races detect_race_conditions() reports between actors a and b, within
        `window` seconds of each other (None: anywhere in the run)."""
        from .analysis.races import analyze_race_condition

        return analyze_race_condition(
            self, a, b, None if window is None else clock.as_duration_ns(window, "window")
        )

    def detect_deadlocks(self) -> list:
        from .analysis.deadlocks import detect_deadlocks

        return detect_deadlocks(self.events(), self.actors())

    def lock_graph(self) -> nx.DiGraph:
        from .analysis.deadlocks import lock_graph
        from .notebook.graphs import LockGraph  # a DiGraph that draws itself when displayed

        return LockGraph(lock_graph(self.events()))

    def detect_stalls(
        self,
        *,
        backlog_depth: int | None = None,
        backlog_s: float | None = None,
        wait_s: float | None = None,
    ) -> list:
        """Blocked loops, lost tasks, unretrieved exceptions, hangs, orphaned queues and
        backlogs that hurt: a queue at least `backlog_depth` deep (default 32) left
        non-empty at the end, that deep for longer than `backlog_s` (default 1 s), or
        keeping a message waiting longer than `wait_s` (default 1 s)."""
        from .analysis.stalls import detect_stalls

        given = {"backlog_depth": backlog_depth, "backlog_s": backlog_s, "wait_s": wait_s}
        return detect_stalls(
            self.events(), self.actors(), **{k: v for k, v in given.items() if v is not None}
        )

    # -- performance and memory -----------------------------------------------------
    def performance_hotspots(self, module=None) -> pl.DataFrame:
        from .analysis.performance import performance_hotspots

        name = self._module(module)
        return performance_hotspots(
            self.events() if self._source.whole else self.events_lazy(), name
        )

    def performance_analysis(self, module=None):
        from .analysis.performance import performance_analysis

        return performance_analysis(self.events(), self._module(module))

    def call_tree_analysis(self, module=None):
        from .analysis.performance import call_tree_analysis

        return call_tree_analysis(self.events(), self._module(module))

    def timing_analysis(self, module=None) -> pl.DataFrame:
        from .analysis.performance import timing_analysis

        name = self._module(module)
        return timing_analysis(
            (self if self._source.whole else self._calls(light=True)).events(), name
        )

    def memory_analysis(self, obj_or_actor=None, duration=None):
        from .analysis.memory import memory_analysis

        return memory_analysis(
            self,
            obj_or_actor,
            clock.as_duration_ns(duration, "duration") if duration is not None else None,
        )

    # -- persistence and the notebook --------------------------------------------------
    def save(self, path) -> str:
        from .store.save import save_trace

        self.wait_written()
        return save_trace(self, path)

    def wait_written(self) -> Trace:
        """Wait until a persisted recording's files are complete: stop() returns while
        its last flush still runs (save(), load() in this process and the interpreter's
        exit wait for it too; a reader of the files, DuckDB for one, calls this first)."""
        if self._settle is not None:
            self._settle()
        return self

    def export_perfetto(self, path) -> str:
        from .store.perfetto import export_perfetto

        return export_perfetto(self, path)

    def explore(self):
        from .notebook.explorer import Explorer

        return Explorer(self)

    # -- helpers --------------------------------------------------------------------
    def time_range(self) -> tuple[int, int]:
        import polars as pl

        if self._source.whole:
            ev = self.events()
            lo, hi = (ev["ts"].min(), ev["ts"].max()) if ev.height else (None, None)
        else:
            lo, hi = (
                self.events_lazy()
                .select(pl.col("ts").min(), pl.col("ts").max().alias("hi"))
                .collect()
                .row(0)
            )
        if lo is None:
            start = self.meta.get("started") or clock.now()
            return start, self.meta.get("stopped") or start
        return int(lo), int(hi)

    def _module(self, module) -> str | None:
        """`module` as a name, refused when the trace never traced it (see calls.check_module)."""
        from .analysis.calls import called_modules, check_module

        name = _module_name(module)
        if name is not None:
            traced = (
                self._recorder_meta()["modules"]
                if self._rec is not None
                else self.meta.get("modules") or ()
            )
            check_module(name, called_modules(self.events_lazy()) | set(traced))
        return name

    def _span(self) -> tuple[int, int | None]:
        """The times the trace saw, as epoch ns: from start() (or its first event, if
        earlier) to stop() (or its last event, if later). The end is None while it
        records: any later time is now, not a time it missed."""
        lo, hi = self.time_range()
        meta = self._recorder_meta() if self._rec is not None else self.meta
        start = min(lo, meta.get("started") or lo)
        return start, None if self.live else max(hi, meta.get("stopped") or hi)

    def _time_in_trace(self, ts, name: str) -> int:
        """A moment the trace must have seen: a state or a snapshot at any other time
        would be a guess."""
        t = clock.as_ns(ts, name)
        start, end = self._span()
        if t < start:
            raise ValueError(
                f"{name}={t} is before the trace starts ({start}); {_accepted(start, end)}"
            )
        if end is not None and t > end:
            raise ValueError(f"{name}={t} is after the trace ends ({end}); {_accepted(start, end)}")
        return t

    def _window_in_trace(self, t0, t1) -> tuple[int, int]:
        """The bounds of a window as epoch ns, refused when the window holds no time the
        trace saw (one reaching past an end of the trace is cut there)."""
        a, b = clock.as_ns(t0, "t0"), clock.as_ns(t1, "t1")
        start, end = self._span()
        if a <= b and b < start:
            raise ValueError(
                f"t1={b} is before the trace starts ({start}): the window holds nothing "
                f"the trace saw; {_accepted(start, end)}"
            )
        if a <= b and end is not None and a > end:
            raise ValueError(
                f"t0={a} is after the trace ends ({end}): the window holds nothing "
                f"the trace saw; {_accepted(start, end)}"
            )
        return a, b


def load_trace(path, *more, trusted: bool = False) -> Trace:
    """Persisted traces (one process directory, a run's directory, several of them) as
    one Trace, whose events stay a scan of the files until a query needs them whole."""
    from .store.load import read_trace

    source, meta = read_trace(path, *more, trusted=trusted)
    return Trace(source=source, meta=meta)


def _accepted(start: int, end: int | None) -> str:
    span = f"from {start} on" if end is None else f"between {start} and {end}"
    return f"accepted: a time {span} (epoch ns), a datetime, or epoch seconds"


def _module_name(module) -> str | None:
    if module is None or isinstance(module, str):
        return module
    name = getattr(module, "__name__", None)
    if not isinstance(name, str):
        raise TypeError(f"module must be a module or a module name, got {type(module).__name__}")
    return name
