"""Following child processes: with a persist path set (and follow_children), every
child Python process records too, with the same options, into its own directory
under the same persist path; `load` merges them.

* spawn / forkserver / `subprocess` running Python: an environment variable carries
  the options, and `boot/` (first on PYTHONPATH) holds a `sitecustomize` that starts
  the child's recording (see `boot`).
* fork (multiprocessing "fork", ProcessPoolExecutor workers, os.fork): the child
  inherits the parent's recorder; an at-fork handler drops it (none of its data is
  the child's to write) and starts a fresh one.
* The parent side of multiprocessing children (spawn event, exit code) is recorded
  by `actors`; here the same is done for `subprocess.Popen` children, and the exit
  code of a joined multiprocessing child is recorded at the join itself.
* A child's recording is stopped (final flush) at interpreter exit and by
  multiprocessing's exit finalizers (fork children leave through `os._exit`).
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import os
import subprocess
import sys
import threading
from typing import Any

from .. import session
from ..patching import original, patch, unpatch

ENV = "SCOPE_NB_CHILD"
BOOT_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "boot")
_saved_env: dict[str, str | None] = {}
_fork_hook_installed = False


class _Anchor:
    """multiprocessing's after-fork registry holds weak references: this object lives
    as long as the module."""


_ANCHOR = _Anchor()


def _following(rec) -> bool:
    return rec.options.persisting and rec.options.follow_children


def _options_json(options) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(options).items()}


# -- the parent side ----------------------------------------------------------------------
def install(rec) -> None:
    if not _following(rec):
        return
    global _fork_hook_installed
    payload = json.dumps({"options": _options_json(rec.options), "parent_pid": rec.pid})
    _set_env(ENV, payload)
    old_path = os.environ.get("PYTHONPATH")
    _set_env("PYTHONPATH", BOOT_DIR + (os.pathsep + old_path if old_path else ""))
    if not _fork_hook_installed:
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _fork_hook_installed = True
    _wrap(subprocess.Popen, "__init__", _popen_init)
    _wrap(subprocess.Popen, "wait", _popen_wait)
    import multiprocessing.process as mpp

    _wrap(mpp.BaseProcess, "join", _process_join)


def uninstall(rec) -> None:
    if not _saved_env:
        return
    for name in ("__init__", "wait"):
        unpatch(subprocess.Popen, name)
    import multiprocessing.process as mpp

    unpatch(mpp.BaseProcess, "join")
    for key, value in _saved_env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    _saved_env.clear()


def _set_env(key: str, value: str) -> None:
    _saved_env.setdefault(key, os.environ.get(key))
    os.environ[key] = value


def _wrap(owner, name, make) -> None:
    patch(owner, name, make(original(owner, name)))


def _recording():
    rec = session.ACTIVE
    return rec if rec is not None and rec.running else None


def _child_started(rec, pid: int, name: str) -> None:
    actor = rec.actors.register_process(pid, name, rec.current_actor())
    rec.emit("spawn", target=actor, detail=name, raw=True)


def _child_ended(rec, pid: int, code: int | None) -> None:
    if code is not None:
        from .actors import process_ended

        process_ended(rec, f"P{pid}", code)


def _process_join(orig):
    """The exit code as soon as the program knows it (the waiter thread of `actors`
    may see it later than the program's next step)."""

    def join(self, timeout=None):
        orig(self, timeout)
        rec = _recording()
        if rec is not None and self.exitcode is not None and self.pid is not None:
            try:
                _child_ended(rec, self.pid, self.exitcode)
            except Exception as e:
                rec.fault("children:join", e)

    return join


def _popen_init(orig):
    def __init__(self, args, *a, **kw):
        env = kw.get("env")
        if env is not None and _recording() is not None and ENV in os.environ:
            env = dict(env)
            env[ENV] = os.environ[ENV]
            env["PYTHONPATH"] = BOOT_DIR + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
            kw["env"] = env
        orig(self, args, *a, **kw)
        rec = _recording()
        if rec is not None:
            try:
                prog = args if isinstance(args, str | bytes | os.PathLike) else (args[0] if args else "?")
                _child_started(rec, self.pid, os.path.basename(os.fsdecode(prog)).split()[0] or "subprocess")
            except Exception as e:
                rec.fault("children:popen", e)

    return __init__


def _popen_wait(orig):
    def wait(self, timeout=None):
        code = orig(self, timeout)
        rec = _recording()
        if rec is not None:
            try:
                _child_ended(rec, self.pid, code)
            except Exception as e:
                rec.fault("children:wait", e)
        return code

    return wait


# -- the child side -------------------------------------------------------------------------
def boot() -> None:
    """Start recording in a child started with the parent's environment (sitecustomize)."""
    info = json.loads(os.environ[ENV])
    if info.get("parent_pid") == os.getpid():
        return
    argv = " ".join(getattr(sys, "orig_argv", sys.argv))
    if "multiprocessing.resource_tracker" in argv:
        return  # multiprocessing's helper, not a program
    if "multiprocessing.forkserver" in argv:
        # the fork server only forks the real children: each starts recording at fork
        _install_fork_hook()
        return
    _start_child(info["options"], None)


def _install_fork_hook() -> None:
    global _fork_hook_installed
    if not _fork_hook_installed:
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _fork_hook_installed = True


def _after_fork_in_child() -> None:
    try:
        import scope_nb

        active = scope_nb._active
        if active is not None:
            rec = active[0]
            if not _following(rec):
                return
            parent_actor = rec.current_actor()
            options = _options_json(rec.options)
            _abandon(rec)
            _start_child(options, parent_actor)
        elif os.environ.get(ENV):
            info = json.loads(os.environ[ENV])
            if info.get("parent_pid") != os.getpid():
                _start_child(info["options"], None)
    except Exception as e:
        print(f"scope_nb: recording of forked child {os.getpid()} not started: {e}", file=sys.stderr)


def _abandon(rec) -> None:
    """Drop the recorder inherited through fork: hooks off, nothing written (its data
    belongs to the parent, which writes it)."""
    import scope_nb

    scope_nb._lock = threading.Lock()  # may have been held by another thread at fork time
    session._start_lock = threading.Lock()
    scope_nb._active = None
    session.ACTIVE = None
    rec.extras.pop("flusher", None)
    rec.stop()


def _start_child(options: dict[str, Any], parent_actor: str | None) -> None:
    import scope_nb

    wanted = list(options.get("modules") or ())
    later = [m for m in wanted if not _importable(m)]
    scope_nb.start(**{**options, "modules": [m for m in wanted if m not in later]})
    if later:  # e.g. the parent's modules, importable once multiprocessing set sys.path
        sys.meta_path.insert(0, _TraceOnImport(later))
    rec = scope_nb._active[0]
    rec.extras["child"] = {"parent_actor": parent_actor, "parent_pid": os.getppid()}
    if parent_actor is not None:
        rec.actors.rows[rec.actors.process]["parent"] = parent_actor
    from ...store.flusher import flusher_of

    fl = flusher_of(rec)
    if fl is not None:
        fl.flush()
    atexit.register(stop_child)
    import multiprocessing.util as mpu

    # multiprocessing children leave through os._exit after running the finalizers
    # registered after its own after-fork step; register ours there
    mpu.register_after_fork(_ANCHOR, _register_finalizer)
    _register_finalizer(_ANCHOR)


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
            import scope_nb

            if scope_nb.is_recording():
                scope_nb.trace_module(module)

        loader.exec_module = exec_module
        return spec


def _register_finalizer(_anchor) -> None:
    import multiprocessing.util as mpu

    mpu.Finalize(None, stop_child, exitpriority=-100)


def stop_child() -> None:
    """Stop the child's recording and write its last rows (no frames are built)."""
    import scope_nb

    with scope_nb._lock:
        if scope_nb._active is None:
            return
        rec = scope_nb._active[0]
        scope_nb._active = None
    rec.stop()
    session.ACTIVE = None
    session.LAST = rec
    from ...store.flusher import stop_flusher

    stop_flusher(rec)


if sys.modules[__name__] not in session.PATCHERS:
    session.PATCHERS.append(sys.modules[__name__])
