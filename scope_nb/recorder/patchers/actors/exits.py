"""A child process's end, read from its exit code without reaping it, and recorded
once whoever sees it first (the waiter thread, the program's join or wait). A
non-zero exit is a crash, unless it is the signal the parent sent to end the child
(`terminate()` / `kill()`): then the child was terminated."""

from __future__ import annotations

import os
import signal
from typing import Any

from .... import clock


def exit_code(proc: Any, actor: str, pid: int) -> int | None:
    """The child's exit code, read without reaping it (the program's join does that);
    None while it runs. Never blocks: a child that exec'd another program has closed
    its sentinel but runs on, and waiting for it would hang the program's next
    Process.start() (which pauses the waiter thread) and stop()."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG)
        if info is None:
            return None
        return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status
    except (ChildProcessError, AttributeError, OSError):
        popen = getattr(proc, "_popen", None)
        return getattr(popen, "returncode", None)


def running(pid: int) -> bool:
    """The child has not ended, though its sentinel is ready (see exit_code)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is None
    except (AttributeError, OSError):
        return False


def process_ended(rec, actor: str, code: int | None) -> None:
    """A child process's end from its exit code, recorded once, whoever (the waiter
    thread, the program's join or wait) sees it first."""
    why = f"exit code {code}"
    if code is not None and code < 0:
        try:
            why = f"killed by {signal.Signals(-code).name} (exit code {code})"
        except ValueError:
            pass
    lifecycle = rec.parts.actors
    asked = lifecycle is not None and code is not None and lifecycle.asked.get(actor) == -code
    with rec.actors.lock:
        row = rec.actors.rows.get(actor)
        if row is None or row["ended"] is not None:
            return
        ok = code is None or code == 0
        outcome = "ok" if ok else "terminated" if asked else "crashed"
        row.update(ended=clock.now(), outcome=outcome, exception=None if ok or asked else why)
    if ok:
        rec.emit(
            "exit", None, "exit code 0" if code == 0 else "exit code unknown", actor=actor, raw=True
        )
    elif asked:
        rec.emit("exit", None, f"{why}, as its parent asked", actor=actor, raw=True)
    else:
        rec.emit("crash", None, f"ChildProcessError|{why}", actor=actor, raw=True)
