"""Who is who: the actor ids of threads, asyncio tasks and processes, and the rows of
the actors frame (kind, name, parent, supervisor, times, outcome)."""

from __future__ import annotations

import itertools
import threading
from typing import Any

from .. import clock


class ActorRegistry:
    def __init__(self, pid: int):
        self.pid = pid
        self.process = f"P{pid}"
        self.rows: dict[str, dict[str, Any]] = {}
        self._n = itertools.count(1)
        self._threads: dict[int, str] = {}  # id(Thread object) -> actor
        self._tasks: dict[int, str] = {}  # id(Task) -> actor, removed when the task is done
        self.lock = threading.Lock()  # only on spawn / end, never per event

    def new(
        self,
        kind: str,
        name: str,
        parent: str | None,
        supervisor: str | None = None,
        started: int | None = None,
    ) -> str:
        letter = {"thread": "T", "task": "A", "executor": "X", "taskgroup": "G", "process": "P"}[
            kind
        ]
        actor = f"{letter}{next(self._n)}:{self.pid}"
        self.rows[actor] = {
            "actor": actor,
            "kind": kind,
            "name": name,
            "parent": parent,
            "supervisor": supervisor,
            "pid": self.pid,
            "started": started if started is not None else clock.now(),
            "ended": None,
            "outcome": "running",
            "exception": None,
        }
        return actor

    def start_process(self, rec) -> None:
        import multiprocessing

        self.rows[self.process] = {
            "actor": self.process,
            "kind": "process",
            "name": multiprocessing.current_process().name,
            "parent": None,
            "supervisor": None,
            "pid": self.pid,
            "started": clock.to_epoch(rec.started_perf),
            "ended": None,
            "outcome": "running",
            "exception": None,
        }

    def register_thread(
        self, thread: threading.Thread, parent: str | None, supervisor: str | None = None
    ) -> str:
        """A thread about to be started by `parent` (called from the Thread.start patch)."""
        with self.lock:
            actor = self.new("thread", thread.name, parent, supervisor)
            self._threads[id(thread)] = actor
            return actor

    def register_process(
        self, pid: int, name: str, parent: str | None, supervisor: str | None = None
    ) -> str:
        """A child OS process started from this one, seen from the parent side ("P<pid>").
        A row already made for it (by another patch of the same start) is kept."""
        actor = f"P{pid}"
        with self.lock:
            row = self.rows.get(actor)
            if row is None:
                self.rows[actor] = {
                    "actor": actor,
                    "kind": "process",
                    "name": name,
                    "parent": parent,
                    "supervisor": supervisor,
                    "pid": pid,
                    "started": clock.now(),
                    "ended": None,
                    "outcome": "running",
                    "exception": None,
                }
            elif supervisor is not None and row["supervisor"] is None:
                row["supervisor"] = supervisor
        return actor

    def thread_actor(self, thread: threading.Thread, ident: int) -> str:
        actor = self._threads.get(id(thread))
        if actor is None or self.rows[actor]["ended"] is not None:
            with self.lock:
                # a thread that was already running when recording started
                actor = self.new("thread", thread.name, self.process, started=None)
                self.rows[actor]["started"] = None
                self._threads[id(thread)] = actor
        return actor

    def forget_thread(self, thread: threading.Thread) -> None:
        self._threads.pop(id(thread), None)

    def task_actor(
        self, task, rec=None, parent: str | None = None, supervisor: str | None = None
    ) -> str:
        actor = self._tasks.get(id(task))
        if actor is None:
            with self.lock:
                actor = self._tasks.get(id(task))
                if actor is None:
                    name = task.get_name() if hasattr(task, "get_name") else repr(task)
                    actor = self.new("task", name, parent, supervisor)
                    self._tasks[id(task)] = actor
                    task.add_done_callback(self._task_gone)
        return actor

    def _task_gone(self, task) -> None:
        self._tasks.pop(id(task), None)

    def end(
        self, actor: str, outcome: str, exception: str | None = None, ts: int | None = None
    ) -> None:
        row = self.rows.get(actor)
        if row is not None and row["ended"] is None:
            row["ended"] = ts if ts is not None else clock.now()
            row["outcome"] = outcome
            row["exception"] = exception

    def finish(self, rec) -> None:
        """At stop: the process row gets its end; live actors stay 'running'."""
        self.rows[self.process]["ended"] = clock.to_epoch(rec.stopped_perf)
