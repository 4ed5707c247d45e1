"""A task stranded on an asyncio Lock, through the public API: real tasks, steps ordered by
asyncio.Events. The rule (scope_nb/recorder/patchers/stranded.py): a waiter is stranded
when no wake-up is in flight and the lock is free or held only by tasks that have ended.
These programs end while the waiter still waits, so the verdict is taken when the loop
stops running, before asyncio.run cancels what is left; no timing is involved."""

from __future__ import annotations

import asyncio
import collections
import json

import polars as pl
import pytest

import scope_nb as scope

pytestmark = pytest.mark.timeout(60)


class _UnfixedLock(asyncio.Lock):
    """asyncio.Lock's acquire without bpo-27585's fix: a woken waiter that is cancelled
    before it runs keeps the wake-up to itself."""

    async def acquire(self):
        if not self._locked and all(w.cancelled() for w in self._waiters or ()):
            self._locked = True
            return True
        if self._waiters is None:
            self._waiters = collections.deque()
        fut = self._get_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        finally:
            self._waiters.remove(fut)
        self._locked = True
        return True


def _hangs(trace) -> list:
    return [r for r in trace.detect_stalls() if r.kind == "hang"]


async def _waiting(lock: asyncio.Lock, name: str) -> asyncio.Task:
    """A task called `name` that waits on `lock`, once it waits (set in the same step)."""
    entered = asyncio.Event()

    async def user():
        entered.set()
        async with lock:
            pass

    task = asyncio.create_task(user(), name=name)
    await entered.wait()
    return task


def _woken_then_cancelled(lock_type) -> None:
    """bpo-27585's order: the release wakes `first`, which is cancelled before it runs;
    the program then ends while `second` may still wait."""

    async def main():
        lock = lock_type()
        await lock.acquire()
        first = await _waiting(lock, "first")
        second = await _waiting(lock, "second")
        lock.release()
        first.cancel()
        await asyncio.wait([first])
        if lock_type is asyncio.Lock:  # the fixed lock passed the wake-up on
            await second

    asyncio.run(main())


def test_a_task_stranded_on_a_free_lock_is_a_hang():
    with scope.record() as trace:
        _woken_then_cancelled(_UnfixedLock)
    (hang,) = _hangs(trace)
    assert hang.headline.startswith("hang: second (A")
    assert hang.headline.endswith("waits on lock lock, which is free: nobody will wake it")
    names = dict(trace.actors().select("actor", "name").iter_rows())
    assert [names[a] for a in hang.actors] == ["second"]
    assert hang.target == "lock lock"
    assert "test_stranded_waits.py" in hang.location
    (wait,) = json.loads(hang.detail)["waits"]
    assert wait["free"] is True and wait["holders"] == []
    stack = hang.stacks[hang.actor]  # the await chain, down to the lock's future
    assert "in user" in stack and "in acquire\n    await fut" in stack


def test_the_fixed_lock_wakes_the_next_waiter_and_nothing_is_reported():
    with scope.record(watchdog=0.05) as trace:
        _woken_then_cancelled(asyncio.Lock)
    assert _hangs(trace) == []


def test_a_lock_kept_by_a_task_that_ended_strands_its_waiter():
    async def main():
        lock = asyncio.Lock()

        async def taker():
            await lock.acquire()  # and never releases it

        await asyncio.create_task(taker(), name="taker")
        await _waiting(lock, "waiter")

    with scope.record() as trace:
        asyncio.run(main())
    (hang,) = _hangs(trace)
    taker = trace.actors().filter(pl.col("name") == "taker").row(0, named=True)
    assert hang.headline.startswith("hang: waiter (A")
    assert hang.headline.endswith(
        f" waits on lock lock held by taker ({taker['actor'].split(':')[0]}), which ended at "
        f"{hang.labels.time(taker['ended'])}: nobody will wake it"
    )
    assert json.loads(hang.detail)["waits"][0]["ended"] == {taker["actor"]: taker["ended"]}


def test_a_contended_lock_whose_waiters_all_get_it_is_no_hang():
    async def main():
        lock = asyncio.Lock()
        await lock.acquire()
        users = [await _waiting(lock, f"user {i}") for i in range(4)]
        users[1].cancel()  # a wait that ends by its cancellation
        await asyncio.wait([users[1]])
        lock.release()
        await asyncio.gather(*users, return_exceptions=True)

    with scope.record(watchdog=0.05) as trace:
        asyncio.run(main())
    assert trace.events("lock_acquire").height == 4  # main's and the three waiters'
    assert _hangs(trace) == []


def test_a_waiter_woken_by_the_last_release_is_not_stranded_before_it_runs():
    """The release runs in the loop's last step (just before asyncio.run's own callback
    stops it): the lock is free and the waiter has not run yet, but its wake-up is in
    flight (its future is done)."""

    async def main():
        lock = asyncio.Lock()
        await lock.acquire()
        await _waiting(lock, "waiter")
        asyncio.get_running_loop().call_soon(lock.release)

    with scope.record() as trace:
        asyncio.run(main())
    assert _hangs(trace) == []


def test_a_waiter_on_a_lock_a_live_task_holds_is_not_judged():
    """The holder is alive when the program ends (it waits on an Event nobody sets): it
    could still release the lock, so its waiter is not called stranded. What stops the
    holder is its own wait, which this rule does not judge (an Event may be set by any
    task), so nothing is reported."""

    async def main():
        lock = asyncio.Lock()
        never = asyncio.Event()
        holding = asyncio.Event()

        async def holder():
            async with lock:
                holding.set()
                await never.wait()

        asyncio.create_task(holder(), name="holder")
        await holding.wait()
        await _waiting(lock, "waiter")

    with scope.record() as trace:
        asyncio.run(main())
    assert _hangs(trace) == []
