"""A program's own queue classes that override `_put` / `_get` (a de-duplicating
queue, a LIFO made by hand, one that calls `super()`), defined before or during the
recording, thread or asyncio: every put is one send, every get one receive, paired by
the item, and the classes are restored after stop."""

import asyncio
import collections
import queue
import threading

import polars as pl
import pytest
from both_ways import c_then_pure
from programs import threads

import scope_nb as scope

pytestmark = pytest.mark.timeout(60)


class UniqueQueue(queue.Queue):
    """An item already waiting is not queued twice."""

    def _init(self, maxsize):
        self.queue = collections.OrderedDict()

    def _put(self, item):
        self.queue[item] = None

    def _get(self):
        return self.queue.popitem(last=False)[0]

    def _qsize(self):
        return len(self.queue)


class Counted(queue.Queue):
    """Overrides `_put` and calls the stock one: still one send per put."""

    def _put(self, item):
        self.puts = getattr(self, "puts", 0) + 1
        super()._put(item)


class AsyncStack(asyncio.Queue):
    def _put(self, item):
        self._queue.append(item)

    def _get(self):
        return self._queue.pop()


def _messages(trace, name):
    ev = trace.events().filter(
        pl.col("kind").is_in(["send", "receive"]) & (pl.col("target") == name)
    )
    return ev.select("kind", "detail", "msg_id", "qsize", "actor")


def test_a_deduplicating_queue_between_threads(monkeypatch):
    def run(_pure):
        queued = threading.Event()  # the consumer starts once all is queued: depths are exact
        with scope.record() as trace:
            jobs = UniqueQueue()
            got = []

            def producer():
                for x in ("a", "b", "a", "c"):  # the second "a" joins the waiting one
                    jobs.put(x)
                jobs.put("stop")
                queued.set()

            def consumer():
                queued.wait()
                while (x := jobs.get()) != "stop":
                    got.append(x)

            threads(producer, consumer)
        return trace, got

    for trace, got in c_then_pure(monkeypatch, run):
        assert got == ["a", "b", "c"]
        ev = _messages(trace, "jobs")
        sends, receives = (
            ev.filter(pl.col("kind") == "send"),
            ev.filter(pl.col("kind") == "receive"),
        )
        assert sends["detail"].to_list() == ["'a'", "'b'", "'a'", "'c'", "'stop'"]
        assert sends["qsize"].to_list() == [1, 2, 2, 3, 4]  # the queue's own count
        assert receives["detail"].to_list() == ["'a'", "'b'", "'c'", "'stop'"]
        assert receives["qsize"].to_list() == [3, 2, 1, 0]
        # paired by the item: "a" with its first send, the one it was queued by
        assert receives["msg_id"].to_list() == sends["msg_id"].gather([0, 1, 3, 4]).to_list()
        assert set(sends["actor"]) != set(receives["actor"])
        assert trace.errors == {}


def test_an_override_calling_super_is_one_message(monkeypatch):
    def run(_pure):
        with scope.record() as trace:
            counted = Counted()
            for i in range(3):
                counted.put(i)
            got = [counted.get() for _ in range(3)]
        return trace, got, counted.puts

    for trace, got, puts in c_then_pure(monkeypatch, run):
        assert (got, puts) == ([0, 1, 2], 3)
        ev = _messages(trace, "counted")
        assert ev["kind"].to_list() == ["send"] * 3 + ["receive"] * 3
        assert (
            ev.filter(pl.col("kind") == "receive")["msg_id"].to_list() == ev["msg_id"].to_list()[:3]
        )


def test_a_class_defined_while_recording_and_an_asyncio_subclass(monkeypatch):
    def run(_pure):
        with scope.record() as trace:

            class Stack(queue.Queue):  # LIFO by hand
                def _get(self):
                    return self.queue.pop()

            stack = Stack()
            for i in range(3):
                stack.put(i)
            got = [stack.get() for _ in range(3)]

            async def main():
                tasks = AsyncStack()
                for i in range(3):
                    await tasks.put(i)
                return [await tasks.get() for _ in range(3)]

            agot = asyncio.run(main())
        return trace, got, agot, Stack

    for trace, got, agot, stack_cls in c_then_pure(monkeypatch, run):
        assert got == agot == [2, 1, 0]
        for name in ("stack", "tasks"):
            ev = _messages(trace, name)
            sends = ev.filter(pl.col("kind") == "send")["msg_id"].to_list()
            assert ev.filter(pl.col("kind") == "receive")["msg_id"].to_list() == sends[::-1]
        assert "_get" not in stack_cls.__dict__ or stack_cls.__dict__["_get"].__name__ == "_get"


def test_classes_restored_after_stop():
    before = {
        cls: (cls.__dict__.get("_put"), cls.__dict__.get("_get"))
        for cls in (UniqueQueue, Counted, AsyncStack)
    }
    with scope.record():

        class Late(queue.Queue):
            def _put(self, item):
                self.queue.appendleft(item)

        late_put = Late.__dict__["_put"]
        assert UniqueQueue.__dict__["_put"] is not before[UniqueQueue][0]
        assert "__init_subclass__" in queue.Queue.__dict__
    assert {cls: (cls.__dict__.get("_put"), cls.__dict__.get("_get")) for cls in before} == before
    assert "_get" not in Counted.__dict__ and "_get" not in Late.__dict__
    assert Late.__dict__["_put"] is late_put.__wrapped__
    assert (
        "__init_subclass__" not in queue.Queue.__dict__
        and "__init_subclass__" not in asyncio.Queue.__dict__
    )
    late = Late()  # and it still works
    late.put(1)
    late.put(2)
    assert late.get() == 2


@pytest.mark.skipif(not hasattr(queue.Queue, "shutdown"), reason="Queue.shutdown is new in 3.13")
def test_items_drained_by_an_immediate_shutdown_are_not_received(monkeypatch):
    class Stack(queue.Queue):
        def _get(self):
            return self.queue.pop()

    def run(_pure):
        with scope.record() as trace:
            plain, stack = queue.Queue(), Stack()

            async def main():
                aq = AsyncStack()
                for i in range(3):
                    aq.put_nowait(i)
                assert aq.get_nowait() == 2
                aq.shutdown(immediate=True)
                return aq.empty()

            for q in (plain, stack):
                for i in range(3):
                    q.put(i)
                q.get()
                q.shutdown(immediate=True)
            assert asyncio.run(main())
        return trace

    for trace in c_then_pure(monkeypatch, run):
        for name in ("plain", "stack", "aq"):
            assert _messages(trace, name)["kind"].to_list() == ["send"] * 3 + ["receive"], name


def test_a_put_that_is_no_plain_method_is_left_alone():
    with scope.record() as trace:

        class Odd(queue.Queue):
            _put = staticmethod(lambda item: None)  # drops everything: its own business

        odd = Odd()
        odd.put(1)
        assert (
            odd.qsize() == 0
            and "_put" in Odd.__dict__
            and isinstance(Odd.__dict__["_put"], staticmethod)
        )
    assert _messages(trace, "odd").height == 0 and trace.errors == {}
