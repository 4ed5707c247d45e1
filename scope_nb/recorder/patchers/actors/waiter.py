"""The recorder thread that waits on the children a recording's process started and
records each exit code; it is stopped while a child is being started, so that a fork
never happens with a recorder thread running."""

from __future__ import annotations

import functools
import os
import threading
from typing import Any

from ...patching import original
from .exits import exit_code, process_ended, running

_ENDING = 0.05  # s: how long a child whose sentinel is ready may take to end


class ProcessWaiter:
    """One recorder thread waiting on the sentinels of the children this process
    started, recording each exit code. It is stopped while a child is being started,
    so that a fork never happens with a recorder thread running."""

    def __init__(self, rec):
        self.rec = rec
        self.procs: dict[int, tuple[Any, str, int]] = {}  # sentinel -> (process, actor, pid)
        # ended children whose exit code could not be read yet: the program reaped them
        # a moment before and multiprocessing has not stored the code; read again at close
        self.unsure: list[tuple[Any, str, int]] = []
        self.lock = original(threading, "Lock")()
        self.pausers = 0
        self.thread: threading.Thread | None = None
        self.ended = None  # the thread that ended by itself, until someone joined it
        self.wake_r = self.wake_w = None
        self.closed = False

    def add(self, proc, actor: str) -> None:
        with self.lock:
            if not self.closed:
                self.procs[proc.sentinel] = (proc, actor, proc.pid)
                self._ensure()

    def paused(self):
        waiter = self

        class _Paused:
            def __enter__(self):
                with waiter.lock:
                    waiter.pausers += 1
                    thread = waiter._stop_thread()
                    ended, waiter.ended = waiter.ended, None
                for t in (thread, ended):
                    if t is not None:
                        t.join()

            def __exit__(self, *exc):
                with waiter.lock:
                    waiter.pausers -= 1
                    waiter._ensure()

        return _Paused()

    def forget(self) -> None:
        """In a forked child: the thread, its pipe and the children were the parent's."""
        self.lock = original(threading, "Lock")()
        for fd in (self.wake_r, self.wake_w) if self.thread is not None else ():
            try:
                os.close(fd)
            except OSError:
                pass
        self.procs, self.unsure, self.pausers = {}, [], 0
        self.thread = self.ended = None
        self.wake_r = self.wake_w = None

    def close(self) -> None:
        """Stop waiting; children that have already ended get their exit recorded."""
        from multiprocessing.connection import wait

        with self.lock:
            self.closed = True
            thread = self._stop_thread()
            ended, self.ended = self.ended, None
        for t in (thread, ended):
            if t is not None:
                t.join()
        with self.lock:
            procs, self.procs = self.procs, {}
            unsure, self.unsure = self.unsure, []
        ended = [procs[s] for s in wait(list(procs), 0)] if procs else []
        for item in ended + unsure:
            if not running(item[2]):
                process_ended(self.rec, item[1], exit_code(*item))

    def _ensure(self) -> None:  # under self.lock
        if self.thread is None and self.procs and not self.pausers and not self.closed:
            self.wake_r, self.wake_w = os.pipe()
            self.thread = self.rec.own_thread(
                functools.partial(self._run, self.wake_r), "process-waiter"
            )
            self.thread.start()

    def _stop_thread(self):  # under self.lock
        thread, self.thread = self.thread, None
        if thread is not None:
            os.write(self.wake_w, b"x")
            os.close(self.wake_w)
        return thread

    def _run(self, wake_r: int) -> None:
        from multiprocessing.connection import wait

        try:
            while True:
                with self.lock:
                    sentinels = list(self.procs)
                ready = wait([wake_r, *sentinels])
                if wake_r in ready:
                    return
                for s in ready:
                    with self.lock:
                        item = self.procs.pop(s, None)
                    if item is not None:
                        code = exit_code(*item)
                        if code is None and running(item[2]) and not wait([wake_r], _ENDING):
                            code = exit_code(*item)  # it closed its fds a moment before it ended
                        if code is None:
                            with self.lock:
                                self.unsure.append(item)
                        else:
                            process_ended(self.rec, item[1], code)
                with self.lock:
                    if self.thread is None or self.thread.ident != threading.get_ident():
                        # stopped meanwhile: _stop_thread closed the write end (its fd may be
                        # reused)
                        return
                    if not self.procs:
                        # ending by itself: close() still joins it (it is running until
                        # this function has returned)
                        self.ended, self.thread = self.thread, None
                        os.close(self.wake_w)
                        return
        except Exception as e:
            self.rec.fault("process.waiter", e)
        finally:
            os.close(wake_r)
