"""Memory sampler: with `memory_interval` set, a recorder thread records the process
RSS, the Python heap (with `tracemalloc=True`), each traced object's shallow size and
the allocation sites that grew most, as `memory` events (detail: JSON)."""

from __future__ import annotations

import json
import os
import sys
import threading
import tracemalloc

from ..own_events import emit_own

TOP_SITES = 10
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rss_bytes() -> int | None:
    """Resident set size now (Linux /proc; psutil elsewhere when installed)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        pass
    try:
        import psutil

        return psutil.Process().memory_info().rss
    except Exception:
        return None


def shallow_size(obj) -> int:
    """The object, its attribute dict and the attributes' own sizes (one level down, so
    a list attribute counts its item references but not the items)."""
    size = sys.getsizeof(obj)
    d = getattr(obj, "__dict__", None)
    if d is not None:
        size += sys.getsizeof(d)
        for v in list(d.values()):
            size += sys.getsizeof(v)
    return size


class Sampler:
    def __init__(self, rec):
        self.rec = rec
        self.interval = rec.options.memory_interval
        self.heap = rec.options.tracemalloc
        self.started_tracemalloc = False
        self.first = None
        self.stop = threading.Event()
        self.thread = None

    def start(self) -> None:
        if self.heap:
            if not tracemalloc.is_tracing():
                tracemalloc.start()
                self.started_tracemalloc = True
            self.first = self._snapshot()
        self.sample()
        self.thread = self.rec.own_thread(self._loop, "memory", self.stop)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop.wait(self.interval):
            self.sample()

    def finish(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.finish(5)
        self.sample()
        if self.started_tracemalloc:
            tracemalloc.stop()

    def _snapshot(self):
        return tracemalloc.take_snapshot().filter_traces(
            (
                tracemalloc.Filter(False, tracemalloc.__file__),
                tracemalloc.Filter(False, _HERE + os.sep + "*"),
            )
        )

    def sample(self) -> None:
        rec = self.rec
        try:
            data: dict = {"rss": rss_bytes()}
            if self.heap and tracemalloc.is_tracing():
                data["heap"] = tracemalloc.get_traced_memory()[0]
                if self.first is not None:
                    top = self._snapshot().compare_to(self.first, "lineno")[:TOP_SITES]
                    data["top"] = [
                        [
                            f"{s.traceback[0].filename}:{s.traceback[0].lineno}",
                            s.size_diff,
                            s.count_diff,
                            s.size,
                        ]
                        for s in top
                        if s.size_diff > 0
                    ]
            sizes = {}
            for name, obj in list(rec.objects.items()):
                try:
                    sizes[name] = shallow_size(obj)
                except Exception:  # noqa: S112 - an object changing under us: skip it this time
                    continue
            if sizes:
                data["objects"] = sizes
            emit_own(rec, "memory", rec.actors.process, "process", json.dumps(data))
        except Exception as e:
            rec.fault("memory:sample", e)


def install(rec) -> None:
    if rec.options.memory_interval is None or "memory" not in rec.kinds:
        return
    s = Sampler(rec)
    rec.parts.memory = s
    s.start()


def uninstall(rec) -> None:
    s, rec.parts.memory = rec.parts.memory, None
    if s is not None:
        s.finish()
