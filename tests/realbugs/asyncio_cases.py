"""Real asyncio bugs: blocking calls on the loop, task failures nobody sees, tasks lost
while pending, cancellations swallowed, a cancellation that strands a lock's waiter, and
check-then-act across an await. The interleaving is forced with asyncio.sleep(0) steps
and futures; a stranded task is cancelled once the watchdog has named it."""

from __future__ import annotations

import asyncio
import collections
import gc
import time

import scope_nb as scope

from .harness import WATCHDOG, Case, race, stall, wait_for_kind

SLOW = {"slow_callback": 0.2}


# -- microsoft/kiota-python #505 ---------------------------------------------------------------
def _retry(blocking: bool):
    async def send(attempt):  # the retry handler waits before trying again
        if attempt:
            if blocking:
                time.sleep(0.3)  # the bug: a blocking sleep inside a coroutine
            else:
                await asyncio.sleep(0.3)
        return attempt

    async def main():
        await asyncio.gather(send(1), asyncio.sleep(0))

    asyncio.run(main())


def retry_bug():
    _retry(blocking=True)


def retry_fixed():
    _retry(blocking=False)


# -- chelaxian/tg-ytdlp-bot #462 ---------------------------------------------------------------
def _fire_and_forget(observed: bool):
    async def scan_channel():
        raise OSError("disk quota exceeded")

    def safe_create_task(coro):  # the fix: a done callback that retrieves the exception
        t = asyncio.create_task(coro)
        t.add_done_callback(lambda t: t.cancelled() or t.exception())
        return t

    async def main():
        (safe_create_task if observed else asyncio.create_task)(scan_channel())
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        if not observed:
            gc.collect()  # the collector frees the failed task nobody looked at

    asyncio.run(main())
    gc.collect()


def fire_and_forget_bug():
    _fire_and_forget(observed=False)


def fire_and_forget_fixed():
    _fire_and_forget(observed=True)


# -- indexable-inc/index #1759 -----------------------------------------------------------------
_WATCHERS: dict[str, asyncio.Task] = {}  # a namespace that keeps its tasks alive


def _referenced_failure(reported: bool):
    failures = []

    class Result:
        text = "done"

    async def watcher():
        return Result().output  # the attribute is called text: the watcher dies at once

    async def main():
        t = asyncio.create_task(watcher())
        if reported:  # the fix: report a failure when the task completes, referenced or not
            t.add_done_callback(lambda t: failures.append(t.exception()))
        _WATCHERS["watch"] = t
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    asyncio.run(main())


def referenced_failure_bug():
    _referenced_failure(reported=False)


def referenced_failure_fixed():
    _referenced_failure(reported=True)


# -- BerriAI/litellm #7741 ---------------------------------------------------------------------
def _dangling(keep_reference: bool):
    background: set[asyncio.Task] = set()

    async def main():
        fut = asyncio.get_running_loop().create_future()

        async def log_request(f):
            await f

        t = asyncio.create_task(log_request(fut))
        if keep_reference:  # the fix: a strong reference until the task is done
            background.add(t)
            t.add_done_callback(background.discard)
        del t
        await asyncio.sleep(0)
        if keep_reference:
            fut.set_result(None)
            await asyncio.gather(*background)
        else:
            del fut
            gc.collect()  # nothing holds the task but its own cycle with the future: collected

    asyncio.run(main())
    gc.collect()


def dangling_bug():
    _dangling(keep_reference=False)


def dangling_fixed():
    _dangling(keep_reference=True)


# -- python/cpython bpo-42130 (gh-86296) -------------------------------------------------------
def _wait_for(reraise: bool):
    async def wait_for(inner):  # the shape of wait_for before 3.12
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        inner.add_done_callback(lambda _: waiter.done() or waiter.set_result(None))
        try:
            await waiter
        except asyncio.CancelledError:
            if inner.done() and not reraise:
                return inner.result()  # the bug: the result wins over the cancellation
            raise
        return inner.result()

    async def main():
        inner = asyncio.get_running_loop().create_future()
        outer = asyncio.create_task(wait_for(inner), name="waiting")
        await asyncio.sleep(0)
        inner.set_result("reply")  # in the same step: the reply lands and the caller cancels
        outer.cancel()
        try:
            await outer
        except asyncio.CancelledError:
            pass

    asyncio.run(main())


def wait_for_bug():
    _wait_for(reraise=False)


def wait_for_fixed():
    _wait_for(reraise=True)


# -- python/cpython bpo-27585 ------------------------------------------------------------------
class _HandoffLock(asyncio.Lock):
    """asyncio.Lock as it was before the fix: a woken waiter that is cancelled before it
    runs does not pass the wake-up on (the release already unlocked the lock)."""

    def __init__(self, pass_on: bool):
        super().__init__()
        self.pass_on = pass_on

    async def acquire(self):
        if not self._locked and all(w.cancelled() for w in self._waiters or ()):
            self._locked = True
            return True
        if self._waiters is None:
            self._waiters = collections.deque()
        fut = self._get_loop().create_future()
        self._waiters.append(fut)
        try:
            try:
                await fut
            finally:
                self._waiters.remove(fut)
        except asyncio.CancelledError:
            if self.pass_on and not self._locked:
                self._wake_up_first()  # the fix: a woken waiter that is cancelled wakes the next
            raise
        self._locked = True
        return True


def _handoff(pass_on: bool):
    async def main():
        lock = _HandoffLock(pass_on)
        await lock.acquire()

        async def user():
            async with lock:
                pass

        first = asyncio.create_task(user(), name="first")
        second = asyncio.create_task(user(), name="second")
        await asyncio.sleep(0)
        lock.release()  # wakes first ...
        first.cancel()  # ... which is cancelled before it runs
        for _ in range(5):
            await asyncio.sleep(0)
        if not second.done():  # the bug: second waits for a release that never comes
            await asyncio.to_thread(wait_for_kind, "hang")  # the loop keeps running meanwhile
            second.cancel()
        await asyncio.gather(first, second, return_exceptions=True)

    asyncio.run(main())


def handoff_bug():
    _handoff(pass_on=False)


def handoff_fixed():
    _handoff(pass_on=True)


# -- agronholm/anyio #398 ----------------------------------------------------------------------
class _CheckpointLock:
    """A lock whose acquire yields to the loop once after taking it, like anyio.Lock did."""

    def __init__(self, release_on_cancel: bool):
        self.lock = asyncio.Lock()
        self.release_on_cancel = release_on_cancel

    async def __aenter__(self):
        await self.lock.acquire()
        try:
            await asyncio.sleep(0)  # the checkpoint after taking the lock
        except asyncio.CancelledError:
            if self.release_on_cancel:  # the fix: undo the acquire when cancelled at the checkpoint
                self.lock.release()
            raise

    async def __aexit__(self, *exc):
        self.lock.release()


def _checkpoint(release_on_cancel: bool):
    async def main():
        lock = _CheckpointLock(release_on_cancel)

        async def work():
            async with lock:
                await asyncio.sleep(0)

        holder1 = asyncio.create_task(work(), name="holder 1")
        holder2 = asyncio.create_task(work(), name="holder 2")
        await asyncio.sleep(0)
        holder1.cancel()  # cancelled at the checkpoint inside __aenter__: __aexit__ never runs
        for _ in range(5):
            await asyncio.sleep(0)
        if not holder2.done():  # the bug: holder 2 waits for a lock its holder took with it
            await asyncio.to_thread(wait_for_kind, "hang")  # the loop keeps running meanwhile
            holder2.cancel()
        await asyncio.gather(holder1, holder2, return_exceptions=True)

    asyncio.run(main())


def checkpoint_bug():
    _checkpoint(release_on_cancel=False)


def checkpoint_fixed():
    _checkpoint(release_on_cancel=True)


# -- aio-libs/aiohttp #5259 (fixed by #5285) ---------------------------------------------------
class _Connector:
    def __init__(self):
        self.acquired = 0


def _connector(acquire_first: bool):
    conn = scope.trace_object(_Connector(), "connector")
    limit = 1

    async def trace_hooks():
        await asyncio.sleep(0)

    async def connect():
        if conn.acquired < limit:
            if acquire_first:  # the fix: take the connection before running the trace hooks
                conn.acquired = conn.acquired + 1
                await trace_hooks()
                return True
            await trace_hooks()  # the bug: the hooks run between the check and the acquire
            conn.acquired = conn.acquired + 1
            return True
        return False

    async def main():
        await asyncio.gather(connect(), connect())

    asyncio.run(main())


def connector_bug():
    _connector(acquire_first=False)


def connector_fixed():
    _connector(acquire_first=True)


CASES = [
    Case(
        "blocking sleep in an async retry handler",
        "microsoft/kiota-python #505",
        retry_bug,
        retry_fixed,
        stall("blocked_loop", "send"),
        "detect_stalls: blocked_loop by send",
        SLOW,
    ),
    Case(
        "fire-and-forget task fails and nobody retrieves its exception",
        "chelaxian/tg-ytdlp-bot #462",
        fire_and_forget_bug,
        fire_and_forget_fixed,
        stall("exc_unretrieved", "OSError: disk quota exceeded"),
        "detect_stalls: exc_unretrieved, OSError: disk quota exceeded",
    ),
    Case(
        "task kept referenced fails at once and its failure is never reported",
        "indexable-inc/index #1759",
        referenced_failure_bug,
        referenced_failure_fixed,
        stall("exc_unretrieved", "AttributeError"),
        "detect_stalls: exc_unretrieved, AttributeError (the task is still referenced)",
    ),
    Case(
        "dangling task destroyed while pending",
        "BerriAI/litellm #7741",
        dangling_bug,
        dangling_fixed,
        stall("task_lost"),
        "detect_stalls: task_lost",
    ),
    Case(
        "wait_for returns the result and swallows the caller's cancellation",
        "python/cpython bpo-42130",
        wait_for_bug,
        wait_for_fixed,
        stall("cancel_swallowed", "waiting"),
        "detect_stalls: cancel_swallowed by task waiting",
    ),
    Case(
        "woken lock waiter cancelled before it runs: the next waiter is stranded",
        "python/cpython bpo-27585",
        handoff_bug,
        handoff_fixed,
        stall("hang", "second (A", "waits on lock lock, which is free"),
        "detect_stalls: hang, task second waits forever on the lock, which is free",
        WATCHDOG,
    ),
    Case(
        "lock acquire cancelled at its checkpoint leaves the lock taken",
        "agronholm/anyio #398",
        checkpoint_bug,
        checkpoint_fixed,
        stall("hang", "holder 2 (A", "held by holder 1 (A", ", which ended at"),
        "detect_stalls: hang, task holder 2 waits forever on the lock holder 1 took and kept "
        "when it ended",
        WATCHDOG,
    ),
    Case(
        "connector checks the limit, awaits trace hooks, then acquires",
        "aio-libs/aiohttp #5259",
        connector_bug,
        connector_fixed,
        race("stale_check", "connector", "acquired"),
        "detect_race_conditions: stale check on connector.acquired",
    ),
]
