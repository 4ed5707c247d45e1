"""Where a Trace's frames come from: a recording (live, or stopped and not yet built),
frames already in memory, or files on disk scanned lazily.

A Trace holds one source and asks it for the events as a query (`lazy`) or as a
whole frame (`frames`). Keeping the three behind one interface is what lets a
recorded and a loaded trace answer through the same code, and what lets `stop()`
return at once: a stopped recording builds its frames only when a query first asks,
then lets go of the buffers. (polars is imported by the frames, not here: a process
that records need not load it.)
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from ..schema import ACTORS, EVENTS, STATES, empty_frame

if TYPE_CHECKING:
    import polars as pl

    from ..recorder.session import Recorder

    Frames3 = tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]


class Source:
    """Fixed frames in memory (a Trace made from frames, a subset of another)."""

    def __init__(
        self,
        events: pl.DataFrame | None = None,
        actors: pl.DataFrame | None = None,
        states: pl.DataFrame | None = None,
    ):
        self._frames: Frames3 = (
            events if events is not None else empty_frame(EVENTS),
            actors if actors is not None else empty_frame(ACTORS),
            states if states is not None else empty_frame(STATES),
        )

    @property
    def whole(self) -> bool:
        """The events are a frame in memory: filtering it costs less than a scan."""
        return True

    def ready(self) -> None:
        """Wait until the source can answer (a `Later` waits for its files)."""

    def frames(self) -> Frames3:
        return self._frames

    def lazy(self) -> pl.LazyFrame:
        return self.frames()[0].lazy()

    def actors(self) -> pl.DataFrame:
        return self.frames()[1]

    def states(self) -> pl.DataFrame:
        return self.frames()[2]


class Capture:
    """What a recording holds at one moment, taken without copying the buffers' contents
    (sealed chunks by reference, each thread's unsealed tail as a slice: at most a chunk
    per thread), and the frames are built from it. Taken at stop, it is what the trace
    shows: a lock wait that ends after stop() is not in it."""

    def __init__(self, rec: Recorder):
        from ..recorder.patchers.locks import renamed_locks
        from ..recorder.patchers.objects import renamed_objects

        self.rec = rec
        self.chunks, self.critical = rec.snapshot()
        self.sites = list(rec.sites)
        self.actors = [dict(row) for row in list(rec.actors.rows.values())]
        states = rec.parts.states
        self.n_states = len(states) if states is not None else 0
        self.renamed = renamed_objects(rec)
        self.renamed_locks = renamed_locks(rec)


class Recording(Source):
    """A recorder's buffers. While it runs, the frames are rebuilt when something new
    was recorded (`recording_key`); once it stopped they are built at the first query
    from what it held at stop (`Capture`), once, and the recorder is let go (its
    buffers are freed with it)."""

    def __init__(self, rec: Recorder):
        self._rec: Recorder | None = rec
        # its counters outlive the recorder: building the frames adds faults
        self._store = rec.store
        self._final: Capture | None = None
        self._built: Frames3 | None = None
        self._key = None
        self._stats: pl.DataFrame | None = None  # see call_stats
        self._stats_key = None
        self._lock = threading.Lock()  # two threads asking at once build once

    @property
    def recorder(self) -> Recorder | None:
        """The recorder while its frames are not final (None once they are)."""
        return self._rec

    def counts(self, which: str) -> dict[str, int]:
        """The recording's counters ("dropped", "errors"), as they are now."""
        return dict(getattr(self._store, which))

    def stop(self) -> None:
        """The recording ended: what it holds now is what the frames will show."""
        with self._lock:
            if self._rec is not None and self._final is None:
                self._final = Capture(self._rec)

    def call_stats(self) -> pl.DataFrame | None:
        """Per-function call statistics (model.call_stats) of what the recording holds,
        made from the buffers when the frames are not built yet (the first hotspots
        query need not build them), or read from the pairing while they were built
        (the buffers are let go then), and kept. None without the C extension: the
        frame answers."""
        from .call_stats import available, call_stats
        from .frames import recording_key

        if not available():
            return None
        with self._lock:
            if self._final is not None:  # stopped, not built yet: what it held is final
                if self._stats_key != "final":
                    self._stats, self._stats_key = call_stats(self._final), "final"
                return self._stats
            if self._rec is None:  # stopped and built: the final statistics, if made
                return self._stats if self._stats_key == "final" else None
            key = recording_key(self._rec)
            if self._stats_key != key:
                self._stats, self._stats_key = call_stats(Capture(self._rec)), key
            return self._stats

    def frames(self) -> Frames3:
        from .frames import build_frames, recording_key

        with self._lock:
            if self._final is not None:
                (self._built, self._stats), self._final, self._rec = (
                    build_frames(self._final),
                    None,
                    None,
                )
                self._stats_key = "final"
            elif self._rec is not None:
                key = recording_key(self._rec)
                if self._built is None or key != self._key:
                    (self._built, self._stats), self._key = build_frames(Capture(self._rec)), key
                    self._stats_key = key
            return self._built  # type: ignore[return-value]


class Later(Source):
    """A source that exists once something has finished (the last flush of a trace
    stored on disk): made by `make` at the first question, which waits for it."""

    def __init__(self, make):
        self._make = make
        self._made: Source | None = None
        self._lock = threading.Lock()

    def ready(self) -> None:
        """Wait for what it waits for, and make the source."""
        self._source()

    def _source(self) -> Source:
        with self._lock:
            if self._made is None:
                self._made = self._make()
            return self._made

    @property
    def whole(self) -> bool:
        return self._made is not None and self._made.whole

    def frames(self) -> Frames3:
        return self._source().frames()

    def lazy(self) -> pl.LazyFrame:
        return self._source().lazy()

    def actors(self) -> pl.DataFrame:
        return self._source().actors()

    def states(self) -> pl.DataFrame:
        return self._source().states()


class Scan(Source):
    """Files on disk: the events stay a lazy scan until a query needs them whole (then
    they are collected once); actors and states are small and read at once. `owner` is
    kept as long as the source is: what the files' lifetime hangs on (a cache of them)."""

    def __init__(
        self,
        events: pl.LazyFrame,
        actors: pl.DataFrame,
        states: pl.DataFrame,
        owner: object = None,
    ):
        self._owner = owner
        self._scan = events
        self._actors = actors
        self._states = states
        self._events: pl.DataFrame | None = None
        self._lock = threading.Lock()

    @property
    def whole(self) -> bool:
        return self._events is not None

    def frames(self) -> Frames3:
        with self._lock:
            if self._events is None:
                self._events = self._scan.collect()
        return self._events, self._actors, self._states

    def lazy(self) -> pl.LazyFrame:
        return self._events.lazy() if self._events is not None else self._scan

    def actors(self) -> pl.DataFrame:
        return self._actors

    def states(self) -> pl.DataFrame:
        return self._states
