"""Recording keeps nothing of the program's alive: an object the program lets go is
freed when it would be untraced (libraries' tests check this, e.g. anyio's refcycle
tests through `gc.get_referrers`)."""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import weakref

import scope_nb


class _Done(Exception):
    pass


def _task_group_failure() -> list[str]:
    """The referrers of an exception raised in a TaskGroup's task, once the program
    holds it alone (the frames of the handle that ran the task link to it)."""

    async def main():
        async def boom():
            raise _Done

        found = None
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(boom())
        except* _Done as eg:
            found = eg.exceptions[0]
        me = sys._getframe()
        return sorted(type(r).__name__ for r in gc.get_referrers(found) if r is not me)

    gc.disable()  # only reference counts decide, as in the program's own check
    try:
        return asyncio.run(main())
    finally:
        gc.enable()


def test_a_failed_tasks_exception_has_the_same_referrers_recorded():
    untraced = _task_group_failure()
    with scope_nb.record() as trace:
        recorded = _task_group_failure()
    assert "Task" not in recorded
    assert recorded == untraced
    assert trace.errors == {}


def test_a_finished_threads_target_and_result_are_freed():
    class Work:
        def __call__(self, box):
            box.append(self)

    def run() -> weakref.ref:
        work = Work()
        box: list = []
        t = threading.Thread(target=work, args=(box,), name="worker")
        t.start()
        t.join()
        ref = weakref.ref(work)
        del work, box, t
        return ref

    with scope_nb.record() as trace:
        ref = run()
        alive_while_recording = ref() is not None
    assert not alive_while_recording
    assert trace.errors == {}
