"""Actor lifecycle: threads, asyncio tasks and child processes are spawned, exit,
crash or are cancelled; executors and TaskGroups supervise their workers.

All patches are at class level and removed at stop. The package, by concern:
`threads`, `tasks`, `processes` (the patches of each kind of actor), `failures` (the
verdict on a task that ended by an exception: crashed only if nobody retrieved it),
`supervisors` (executors and TaskGroups), `waiter` (the recorder thread that waits on
children) and `exits` (a child's exit code and the row it makes: a crash, unless its
parent asked it to end), `state` (what they share).
"""

from __future__ import annotations

from .exits import process_ended
from .processes import process_patches, unpatch_processes
from .state import State, exc_text
from .supervisors import executor_patches, taskgroup_patches, unpatch_supervisors
from .tasks import task_patches, unpatch_tasks
from .threads import thread_patches, unpatch_threads

__all__ = ["State", "exc_text", "install", "process_ended", "uninstall"]


def install(rec) -> None:
    rec.parts.actors = State(rec)
    thread_patches(rec)
    task_patches(rec)
    taskgroup_patches(rec)
    executor_patches(rec)
    process_patches(rec)


def uninstall(rec) -> None:
    if rec.parts.actors is None:
        return
    unpatch_threads(rec)
    unpatch_tasks(rec)
    unpatch_supervisors()
    unpatch_processes(rec)
