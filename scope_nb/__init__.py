"""scope_nb: a flight recorder and time machine for concurrent Python.

import scope_nb as scope
with scope.record() as trace:
    run_my_threads()
trace.detect_race_conditions()
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator
from typing import Any

from . import _control
from ._control import current, is_recording, start, stop
from .config import Options
from .trace import Trace

__version__ = "0.1.0"


@contextlib.contextmanager
def record(**options: Any) -> Iterator[Trace]:
    """Record the body of a `with` block; the Trace is live inside and final after. In a
    kernel's cell the trace remembers the cell, so that the kernel's own threads and
    tasks are told apart from the cell's (the explorer hides them by default)."""
    from . import clock
    from .notebook.kernel_actors import kernel_cell, remember_cell

    cell = kernel_cell(clock.now())
    trace = start(**options)
    try:
        yield trace
    finally:
        if cell is not None:
            cell["actor"] = _cell_actor()
        stop()
        if cell is not None:
            remember_cell(trace, cell)


def _cell_actor() -> str | None:
    """The actor this thread runs as in the recording (None on a recorder fault: the
    cell's actor is then counted among the kernel's, never raised into the program)."""
    try:
        return _control.recorder().current_actor()
    except Exception:
        return None


_recorder = _control.recorder


def trace_module(module_or_name: types.ModuleType | str) -> int:
    """Record every call of the module's functions and methods (args, result, exception,
    duration). Returns the number of code objects traced."""
    rec = _recorder()
    if isinstance(module_or_name, str):
        module = rec.import_own(module_or_name)
    elif isinstance(module_or_name, types.ModuleType):
        module = module_or_name
    else:
        raise TypeError(
            f"trace_module takes a module or a module name, got {type(module_or_name).__name__}"
        )
    return rec.trace_module(module)


def trace_all_processes() -> None:
    """Record calls of all user code (not the standard library or site-packages) in every
    thread and task."""
    _recorder().trace_all()


def trace_process(actor: Any) -> str:
    """Record everything one thread / task does (its calls of user code, besides its
    messages and lifecycle). Returns its actor id."""
    rec = _recorder()
    actor_id = current().resolve_actor(actor)
    rec.trace_process(actor_id)
    return actor_id


def trace_object(obj: Any, name: str | None = None) -> Any:
    """Trace a live object: method calls as messages, its state after every change.
    Returns the object (so it can be used inline). Tracing it again under another name
    renames it; while not recording it records nothing and returns the object."""
    from .recorder.patchers.objects import trace_object as _trace_object

    return _trace_object(_control.live_recorder(), obj, name)


def traced(cls: type | None = None):
    """Class decorator: instances created while recording are traced like trace_object."""
    from .recorder.patchers.objects import traced as _traced

    return _traced(cls)


def trace_lock(lock: Any, name: str | None = None) -> Any:
    """Trace a lock created before start(), or name a traced one (its history takes the
    new name); returns the lock to use instead. Not recording: the lock itself."""
    from .recorder.patchers.locks import trace_lock as _trace_lock

    return _trace_lock(_control.live_recorder(), lock, name)


def load(path, *more_paths, trusted: bool = False) -> Trace:
    """Load persisted traces merged on one time axis: a trace directory (or a tree of
    them), several, a list of them, or a glob."""
    from .trace import load_trace

    _control.settle_all()
    trace = load_trace(path, *more_paths, trusted=trusted)
    _control.set_last(trace)
    return trace


from .queries import *  # noqa: E402,F403 - the query twins, written out in queries.py
from .queries import __all__ as _QUERIES  # noqa: E402


def load_ipython_extension(ipython) -> None:
    from .notebook import load_ipython_extension as _load

    _load(ipython)


def unload_ipython_extension(ipython) -> None:
    from .notebook import unload_ipython_extension as _unload

    _unload(ipython)


__all__ = [
    "Options",
    "Trace",
    "start",
    "stop",
    "record",
    "current",
    "is_recording",
    "trace_module",
    "trace_all_processes",
    "trace_process",
    "trace_object",
    "traced",
    "trace_lock",
    "load",
    *_QUERIES,
]
