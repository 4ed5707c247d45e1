"""Following child processes, the parent's side: with a persist path set (and
follow_children), every child Python process records too, with the same options, into
its own directory under the same persist path; `load` merges them.

* spawn / forkserver / `subprocess` running Python: an environment variable carries
  the options, and `boot/` (first on PYTHONPATH) holds a `sitecustomize` that starts
  the child's recording (`scope_nb._control.boot_child`).
* fork: `scope_nb._control`'s at-fork handler starts the child's own recording.
* The parent side of multiprocessing children (spawn event, exit code) is recorded
  by `actors`; here the same is done for `subprocess.Popen` children, and the exit
  code of a joined multiprocessing child is recorded at the join itself.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from typing import Any

from .. import session
from ..patching import original, patch, unpatch

ENV = "SCOPE_NB_CHILD"
# scope_nb/boot: the child's side, beside the module that owns recordings (`_control`)
BOOT_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "boot"
)
_saved_env: dict[str, str | None] = {}


def following(options) -> bool:
    """Whether a recording with these options follows its child processes."""
    return options.persisting and options.follow_children


def options_json(options) -> dict[str, Any]:
    """The options as the child's environment carries them."""
    return {
        k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(options).items()
    }


# -- the parent side ----------------------------------------------------------------------
def install(rec) -> None:
    if not following(rec.options):
        return
    payload = json.dumps({"options": options_json(rec.options), "parent_pid": rec.pid})
    _set_env(ENV, payload)
    old_path = os.environ.get("PYTHONPATH")
    _set_env("PYTHONPATH", BOOT_DIR + (os.pathsep + old_path if old_path else ""))
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
            env["PYTHONPATH"] = BOOT_DIR + (
                os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
            )
            kw["env"] = env
        orig(self, args, *a, **kw)
        rec = _recording()
        if rec is not None:
            try:
                prog = (
                    args
                    if isinstance(args, str | bytes | os.PathLike)
                    else (args[0] if args else "?")
                )
                _child_started(
                    rec, self.pid, os.path.basename(os.fsdecode(prog)).split()[0] or "subprocess"
                )
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
