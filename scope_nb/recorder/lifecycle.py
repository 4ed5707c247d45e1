"""A recording's life: `start()` installs the patchers and switches the recording on,
`stop()` switches it off and takes them out, the last installed first; a failure on
the way in undoes everything. Also the modules named to be traced are imported here (as
the program's own code), and the recorder's own threads are made here.

Apart from session.py, which keeps what the hooks talk to while the recording runs
(buffers, actors, `emit()`), because none of this runs on a hot path.

A part of the Recorder (its attributes: `actors`, `installed`, `options`, `running`,
`switches`, `is_user_code`, `stopped_perf`, `buffer`, `trace_module`, `trace_all`,
`fault`)."""

from __future__ import annotations

import sys
import threading
import types
from collections.abc import Callable

from .. import clock
from . import own_threads


class Lifecycle:
    """The Recorder's start and stop."""

    def start(self) -> None:
        from .patchers.table import PATCHERS

        self.actors.start_process(self)
        self.buffer()  # the starting thread gets its actor first
        try:
            for cls in PATCHERS:
                if cls.wanted(self):
                    p = cls()
                    p.install(self)
                    self.installed.append(p)
        except BaseException:
            self._uninstall()
            raise
        self._switch(True)
        try:
            # imported with the recording on, so what they make at import (a module's
            # locks) is the program's; a bad name fails start() with everything undone
            for name in self.options.modules:
                self.trace_module(self.import_own(name))
        except BaseException:
            self._switch(False)
            self._uninstall()
            raise
        if self.options.trace_all:
            self.trace_all()

    def _switch(self, on: bool) -> None:
        self.running = on
        for switch in self.switches:
            switch.running = on

    def import_own(self, name: str) -> types.ModuleType:
        """The module `name`, imported if it is not yet, as the program's own code: its
        file counts as the program's before its code runs, so that the locks, queues
        and tasks it makes at import are traced as the program's."""
        if name not in sys.modules:
            origin = _origin(name)
            if origin is not None:
                self.is_user_code.include([origin])
        return _import(name)

    def stop(self) -> None:
        if not self.running:
            return
        self._switch(False)
        self._uninstall()
        self.stopped_perf = clock.perf_ns()
        self.actors.finish(self)

    def _uninstall(self) -> None:
        """Every installed patcher out, the last installed first; a failure is counted."""
        while self.installed:
            p = self.installed.pop()
            try:
                p.uninstall()
            except Exception as e:
                self.fault(f"uninstall:{p.name}", e)

    def own_thread(
        self, target: Callable[[], None], name: str, stop: threading.Event | None = None
    ) -> own_threads.OwnThread:
        """A recorder-internal thread (flusher, watchdog, sampler): never recorded, never
        listed by threading; `stop` (its loop's stop event) pauses it around fork."""
        return own_threads.OwnThread(target, name, stop)


def _origin(name: str) -> str | None:
    """The source file importing `name` would run, or None (not found, not a file, a
    bad name: `_import` says why)."""
    import importlib.util

    if not name or name.startswith("."):
        return None
    try:
        spec = importlib.util.find_spec(name)
    except Exception:
        return None
    return spec.origin if spec is not None and spec.has_location else None


def _import(name: str) -> types.ModuleType:
    import importlib

    if name in sys.modules:
        return sys.modules[name]
    if not name or name.startswith("."):
        raise ValueError(
            f"scope_nb: cannot trace module {name!r}; accepted: an absolute module name such as "
            "'pkg.mod'"
        )
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise ValueError(f"scope_nb: cannot trace module {name!r}: {e}") from None
    except Exception as e:
        # the module's own code (or a module __getattr__ asked for __path__) raised
        raise ValueError(
            f"scope_nb: cannot trace module {name!r}: importing it raised {type(e).__name__}: {e}"
        ) from e
