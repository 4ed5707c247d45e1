"""Child processes: `BaseProcess.start` records a child (the waiter thread records
its exit code); `BaseProcess.terminate` / `kill` note that the parent asked the child
to end (a pool's terminate() ends its workers so: they are terminated, not crashed);
in a child, `BaseProcess._bootstrap` records the crash of what escapes `run()`, in
the thread that ran it."""

from __future__ import annotations

import functools
import os
import signal

from ... import session
from ...patching import original, patch, unpatch
from .state import crashed, ctx, state


def process_patches(rec) -> None:
    import multiprocessing.process as mpp

    orig_start = mpp.BaseProcess.start  # chains a wrapper already installed (children.py)
    waiter = state(rec).waiter

    def start(self):
        parent = sup = None
        try:
            parent, sup = rec.current_actor(), getattr(ctx, "supervisor", None)
        except Exception as e:
            rec.fault("process.start", e)
        with waiter.paused():  # no recorder thread alive while the program forks
            orig_start(self)
        if parent is None or self._popen is None:
            return
        try:
            known = f"P{self.pid}" in rec.actors.rows  # recorded by an inner wrapper already
            actor = rec.actors.register_process(self.pid, self.name, parent, sup)
            if not known:
                rec.emit("spawn", actor, self.name, actor=parent, raw=True)
            waiter.add(self, actor)
        except Exception as e:
            rec.fault("process.start", e)

    patch(mpp.BaseProcess, "start", start)

    def asking(name: str, signum: int):
        orig = getattr(mpp.BaseProcess, name)

        @functools.wraps(orig)
        def method(self):
            try:
                if self._popen is not None and self.pid is not None:
                    state(rec).asked[f"P{self.pid}"] = signum
            except Exception as e:
                rec.fault("process.terminate", e)
            return orig(self)

        patch(mpp.BaseProcess, name, method)

    asking("terminate", signal.SIGTERM)
    asking("kill", signal.SIGKILL)

    orig_bootstrap = original(mpp.BaseProcess, "_bootstrap")

    def _bootstrap(self, *args, **kwargs):
        # in a child process: multiprocessing catches what escapes run() and exits
        # with code 1, so the crash is recorded here, in the thread that ran it
        self.run = _recording_run(self.run)
        return orig_bootstrap(self, *args, **kwargs)

    patch(mpp.BaseProcess, "_bootstrap", _bootstrap)


def _recording_run(run):
    @functools.wraps(run)
    def recorded():
        try:
            return run()
        except SystemExit as e:
            if e.code not in (None, 0):
                _main_crashed(e)
            raise
        except BaseException as e:
            _main_crashed(e)
            raise

    return recorded


def _main_crashed(exc: BaseException) -> None:
    rec = session.ACTIVE
    if rec is None or rec.parts.actors is None or rec.pid != os.getpid():
        return  # a fork child without a recording of its own: nobody would read it
    crashed(rec, lambda: exc, "process.run")


def unpatch_processes(rec) -> None:
    import multiprocessing.process as mpp

    for name in ("start", "_bootstrap", "terminate", "kill"):
        unpatch(mpp.BaseProcess, name)
    state(rec).waiter.close()
