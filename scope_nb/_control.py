"""The one owner of a recording's life: start, stop, the live and the last Trace, what
a fork does to a recording, and the recordings of child processes.

The package root's `start`/`stop`/`record`/`current` and the command line ask this
module; nothing else starts or stops a Recorder. The recorder's hooks find the live
Recorder through `recorder.session.ACTIVE`, which only this module sets.

Child processes (with a persist path and follow_children):

* spawn / forkserver / `subprocess` running Python: `boot`'s sitecustomize
  calls `boot_child`, which starts the child's recording with the parent's options.
* fork: the child inherits the parent's recorder; the at-fork handler drops it (none
  of its data is the child's to write) and starts a fresh one.
* A child's recording stops (final flush, no frames built) at interpreter exit, and by
  multiprocessing's exit finalizers (fork children leave through `os._exit`). The same
  at-exit stop writes the last rows of any recording still running when the
  interpreter exits.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
from typing import Any

from .config import make_options
from .recorder import own_threads, session
from .recorder.patchers import children
from .trace import Trace

_lock = threading.Lock()
_live: tuple[session.Recorder, Trace] | None = None
_last: Trace | None = None
_settling: list = []  # flushers whose last flush stop() left running
_fork_starts_children = False  # a fork server: every fork is a child to record


class _Anchor:
    """multiprocessing's after-fork registry holds weak references: this object lives
    as long as the module."""


_ANCHOR = _Anchor()


# -- the life of a recording -------------------------------------------------------------
def start(**options: Any) -> Trace:
    """Start recording; returns the live Trace. Starting while recording is an error."""
    global _live
    opts = make_options(**options)
    with _lock:
        if _live is not None:
            raise RuntimeError("scope_nb: already recording; call scope_nb.stop() first")
        rec = session.Recorder(opts)
        rec.start()
        session.ACTIVE = rec
        trace = Trace(rec)
        _live = (rec, trace)
    if opts.persisting:
        from .store.flusher import start_flusher

        start_flusher(rec)
    return trace


def stop() -> Trace:
    """Stop recording, restore every hook and patch, and return the final Trace."""
    global _last
    rec, trace = _take_live()
    if rec is None:
        raise RuntimeError("scope_nb: not recording; call scope_nb.start() first")
    fl = _finish(rec, wait=False)  # the last flush goes on while the program does
    if fl is not None:
        _settling.append(fl)
        from .model.source import Later

        if fl.drain:
            # with storage="disk" the memory only held what waited for the flusher: the
            # trace reads the files once they are complete (and imports the reader, polars
            # with it, only then: a program that never asks pays nothing at its exit)
            def written():
                from .store.load import read_trace

                _settled(fl)
                return read_trace(fl.dir, trusted=True)[0]

            trace.freeze(Trace(source=Later(written)), path=str(fl.dir))
        else:
            trace.freeze(settle=lambda: _settled(fl), path=str(fl.dir))
    trace.freeze()
    _last = trace
    return trace


def _settled(fl) -> None:
    fl.settle()
    if fl in _settling:
        _settling.remove(fl)


def settle_all() -> None:
    """Wait for the last flushes stop() left running: before the interpreter exits, and
    before this process loads traces (it may read the files being finished)."""
    for fl in list(_settling):
        _settled(fl)


def stop_at_exit() -> None:
    """Stop a recording still running and write its last rows; no frames are built."""
    rec, _ = _take_live()
    if rec is not None:
        _finish(rec)


def _take_live() -> tuple[session.Recorder | None, Trace | None]:
    global _live
    with _lock:
        live, _live = _live, None
    return live if live is not None else (None, None)


def _finish(rec: session.Recorder, wait: bool = True):
    """The steps of every stop: hooks and patches off, then the last flush (left
    running with `wait=False`: see Flusher.settle)."""
    rec.stop()
    session.ACTIVE = None
    if rec.flusher is None:
        return None
    from .store.flusher import stop_flusher

    return stop_flusher(rec, wait)


def current() -> Trace | None:
    """The live Trace while recording, else the last one recorded (or loaded)."""
    live = _live
    return live[1] if live is not None else _last


def is_recording() -> bool:
    return _live is not None


def live_recorder() -> session.Recorder | None:
    """The live Recorder, or None: for the convenience calls that do nothing when off."""
    live = _live
    return live[0] if live is not None else None


def recorder() -> session.Recorder:
    """The live Recorder, for the calls that add to what it traces."""
    live = _live
    if live is None:
        raise RuntimeError("scope_nb: not recording; call scope_nb.start() first")
    return live[0]


def set_last(trace: Trace) -> None:
    """A loaded trace becomes the one `current()` answers when not recording."""
    global _last
    _last = trace


# -- fork and child processes ------------------------------------------------------------
def boot_child() -> None:
    """Start recording in a child started with the parent's environment (sitecustomize)."""
    global _fork_starts_children
    info = json.loads(os.environ[children.ENV])
    if info.get("parent_pid") == os.getpid():
        return
    argv = " ".join(getattr(sys, "orig_argv", sys.argv))
    if "multiprocessing.resource_tracker" in argv:
        return  # multiprocessing's helper, not a program
    if "multiprocessing.forkserver" in argv:
        _fork_starts_children = True  # it only forks the real children: each records
        return
    _start_child(info["options"], None)


def _before_fork() -> None:
    live = _live
    for p in reversed(live[0].installed if live is not None else ()):
        _guarded(p.before_fork, "fork:before")
    own_threads.before_fork()  # none of them holds a lock or half a file at the fork


def _after_fork_in_parent() -> None:
    own_threads.after_fork_in_parent()
    live = _live
    for p in live[0].installed if live is not None else ():
        _guarded(p.after_fork_in_parent, "fork:parent")


def _guarded(hook, where: str) -> None:
    try:
        hook()
    except Exception as e:  # never into the program's fork
        live = _live
        if live is not None:
            live[0].fault(where, e)


def _after_fork_in_child() -> None:
    global _lock, _live
    _lock = threading.Lock()  # may have been held by another thread at fork time
    own_threads.after_fork_in_child()
    try:
        live = _live
        if live is not None:
            rec = live[0]
            for p in rec.installed:
                _guarded(p.after_fork_in_child, "fork:child")
            # the inherited flusher writes the parent's directory: never from here
            if rec.flusher is not None:
                rec.flusher.thread.finish()
                rec.flusher = None
            if not children.following(rec.options):
                return  # the inherited recording goes on, unpersisted
            parent_actor = rec.current_actor()
            options = children.options_json(rec.options)
            # drop the inherited recorder: hooks off, nothing written (its data belongs
            # to the parent, which writes it)
            _live = None
            session.ACTIVE = None
            rec.stop()
            _start_child(options, parent_actor)
        elif _fork_starts_children and os.environ.get(children.ENV):
            info = json.loads(os.environ[children.ENV])
            if info.get("parent_pid") != os.getpid():
                _start_child(info["options"], None)
    except Exception as e:
        print(
            f"scope_nb: recording of forked child {os.getpid()} not started: {e}", file=sys.stderr
        )


def _start_child(options: dict[str, Any], parent_actor: str | None) -> None:
    wanted = list(options.get("modules") or ())
    later = [m for m in wanted if not _importable(m)]
    start(**{**options, "modules": [m for m in wanted if m not in later]})
    if later:  # e.g. the parent's modules, importable once multiprocessing set sys.path
        sys.meta_path.insert(0, _TraceOnImport(later))
    rec = recorder()
    rec.child = session.ChildOf(parent_actor, os.getppid())
    if parent_actor is not None:
        rec.actors.rows[rec.actors.process]["parent"] = parent_actor
    if rec.flusher is not None:
        rec.flusher.flush()
    import multiprocessing.util as mpu

    # multiprocessing children leave through os._exit after running the finalizers
    # registered after its own after-fork step; register ours there
    mpu.register_after_fork(_ANCHOR, _register_finalizer)
    _register_finalizer(_ANCHOR)


def _register_finalizer(_anchor) -> None:
    import multiprocessing.util as mpu

    mpu.Finalize(None, stop_at_exit, exitpriority=-100)
    mpu.Finalize(None, settle_all, exitpriority=-101)


def _importable(name: str) -> bool:
    import importlib.util

    try:
        return name in sys.modules or importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


class _TraceOnImport:
    """A meta path entry that traces the named modules once they are imported."""

    def __init__(self, names: list[str]):
        self.names = set(names)

    def find_spec(self, name, path=None, target=None):
        if name not in self.names:
            return None
        import importlib.machinery

        self.names.discard(name)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader
        run = loader.exec_module

        def exec_module(module):
            run(module)
            live = _live
            if live is not None:
                live[0].trace_module(module)

        loader.exec_module = exec_module
        return spec


atexit.register(stop_at_exit)
atexit.register(settle_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )
