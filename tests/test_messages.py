"""Messages through the public API: queue.Queue and its variants, asyncio queues and
futures; exact counts, pairing, depth against the truth, latency, patches restored."""

import asyncio
import concurrent.futures as cf
import queue
import threading

import polars as pl
import pytest

import scope_nb as scope


def _names(trace, *names):
    return [trace.resolve_actor(n) for n in names]


def test_exact_counts_and_pairing_with_several_producers():
    n_prod, per = 3, 50
    jobs = queue.Queue()  # created before start(): covered too
    with scope.record(tracing_level="messages_only") as trace:
        start = threading.Barrier(n_prod + 1)

        def producer(i):
            start.wait()
            for k in range(per):
                jobs.put((i, k))

        def consumer(out):
            for _ in range(n_prod * per):
                out.append(jobs.get())

        got = []
        threads = [
            threading.Thread(target=producer, args=(i,), name=f"prod-{i}") for i in range(n_prod)
        ]
        cons = threading.Thread(target=consumer, args=(got,), name="cons")
        for t in [*threads, cons]:
            t.start()
        start.wait()
        for t in [*threads, cons]:
            t.join()
    assert sorted(got) == sorted((i, k) for i in range(n_prod) for k in range(per))
    sends, receives = trace.events("send"), trace.events("receive")
    assert sends.height == receives.height == n_prod * per
    assert set(sends["target"]) == {"jobs"}  # the queue's variable name
    assert sends["msg_id"].n_unique() == n_prod * per
    assert sorted(sends["msg_id"]) == sorted(receives["msg_id"])
    pairs = sends.join(receives, on="msg_id", suffix="_r")
    assert (pairs["detail"] == pairs["detail_r"]).all()  # each receive is the message sent
    assert (pairs["seq"] < pairs["seq_r"]).all()
    assert (receives["duration_ns"] >= 0).all()
    (cons_id,) = _names(trace, "cons")
    for i in range(n_prod):
        flow = trace.message_flow(f"prod-{i}", "cons")
        assert flow.height == per
        assert flow["detail"].to_list() == [repr((i, k)) for k in range(per)]  # FIFO per producer
        assert set(flow["receiver"]) == {cons_id}
    assert trace.message_flow("cons", "prod-0").height == 0
    assert trace.message_flow("cons", "prod-0", both=True).height == per


def test_queue_depth_matches_the_truth():
    q = queue.Queue()
    truth = []
    with scope.record() as trace:
        for i in range(5):
            q.put(i)
            truth.append(q.qsize())
        for _ in range(3):
            q.get()
            truth.append(q.qsize())
        q.put_nowait("x")
        truth.append(q.qsize())
    msgs = trace.events(["send", "receive"]).sort("seq")
    assert msgs["qsize"].to_list() == truth
    stats = trace.message_queue_analysis().filter(pl.col("queue") == "q").row(0, named=True)
    assert (stats["sends"], stats["receives"], stats["in_flight"]) == (6, 3, 3)
    assert (stats["max_depth"], stats["final_depth"]) == (5, 3)
    assert stats["depth"] == truth
    assert 0 < stats["mean_depth"] <= 5
    main = trace.resolve_actor(threading.current_thread())
    assert stats["producers"] == [main] and stats["consumers"] == [main]
    assert 0 <= stats["latency_p50_ns"] <= stats["latency_p95_ns"] <= stats["latency_max_ns"]


@pytest.mark.parametrize("kind", ["lifo", "priority"])
def test_lifo_and_priority_pair_each_item_with_its_own_send(kind):
    items = [(3, "c"), (1, "a"), (2, "b"), (1, "a")]  # equal values, distinct objects
    with scope.record() as trace:
        q = queue.LifoQueue() if kind == "lifo" else queue.PriorityQueue()
        sent = []
        for it in items:
            obj = tuple(it)
            sent.append(obj)
            q.put(obj)
        out = [q.get() for _ in items]
    assert all(any(o is s for s in sent) for o in out)  # items are never wrapped
    sends = trace.events("send").select("msg_id", "detail")
    receives = trace.events("receive").select("msg_id", "detail")
    assert receives["detail"].to_list() == [repr(o) for o in out]
    paired = receives.join(sends, on="msg_id", suffix="_sent")
    assert paired.height == len(items)
    assert (paired["detail"] == paired["detail_sent"]).all()
    if kind == "lifo":  # last in, first out: message ids come back in reverse
        assert receives["msg_id"].to_list() == sends["msg_id"].to_list()[::-1]


@pytest.mark.parametrize("cls", [queue.Queue, queue.LifoQueue])
def test_items_put_before_start_are_received_without_a_send(cls):
    q = cls()
    q.put("early")
    with scope.record() as trace:
        assert q.get() == "early"
        q.put("late")
        assert q.get() == "late"
    rec = trace.events("receive")
    assert rec["detail"].to_list() == ["'early'", "'late'"]
    assert rec["msg_id"].null_count() == 1
    stats = trace.message_queue_analysis().row(0, named=True)
    assert (stats["sends"], stats["receives"], stats["in_flight"]) == (1, 2, 0)


def test_items_waiting_when_a_queue_is_first_seen_at_a_put():
    """The FIFO pairing skips the items already waiting: they come out first, unsent."""
    q = queue.Queue()
    q.put("early-1")
    q.put("early-2")
    with scope.record() as trace:
        q.put("late-1")
        q.put("late-2")
        assert [q.get() for _ in range(4)] == ["early-1", "early-2", "late-1", "late-2"]
    sends, rec = trace.events("send"), trace.events("receive")
    assert rec["msg_id"].to_list()[:2] == [None, None]
    assert rec["msg_id"].to_list()[2:] == sends["msg_id"].to_list()


def test_asyncio_queues_between_tasks():
    async def main():
        for cls in (asyncio.Queue, asyncio.LifoQueue, asyncio.PriorityQueue):
            box = cls(maxsize=2)

            async def producer(box):
                for i in range(6):
                    await box.put(i)

            async def consumer(box):
                return [await box.get() for _ in range(6)]

            p = asyncio.create_task(producer(box), name=f"p-{cls.__name__}")
            c = asyncio.create_task(consumer(box), name=f"c-{cls.__name__}")
            await asyncio.gather(p, c)

    with scope.record() as trace:
        asyncio.run(main())
    stats = trace.message_queue_analysis()
    assert stats.height == 3
    assert stats["sends"].to_list() == [6, 6, 6] and stats["receives"].to_list() == [6, 6, 6]
    assert stats["max_depth"].max() <= 2
    for cls in ("Queue", "LifoQueue", "PriorityQueue"):
        flow = trace.message_flow(f"p-{cls}", f"c-{cls}")
        assert flow.height == 6
        assert flow["latency_ns"].min() >= 0


def test_futures_set_and_result_pair_once_per_reader():
    with scope.record() as trace:
        with cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="fw") as ex:
            ok = ex.submit(pow, 2, 10)
            bad = ex.submit(int, "nope")
            assert ok.result() == 1024
            assert ok.result() == 1024  # read again: the same message
            with pytest.raises(ValueError):
                bad.result()
    worker = trace.find_processes("worker")["actor"][0]
    main = trace.resolve_actor(threading.current_thread())
    flow = trace.message_flow(worker, main)
    assert flow.height == 2
    assert flow["detail"][0] == "1024"
    assert flow["detail"][1].startswith("ValueError")
    assert flow["queue"].str.starts_with("Future-").all()
    received = trace.get_messages_to(main)
    assert received["sender"].to_list() == [worker, worker]
    assert trace.get_messages_to(main, before=int(received["ts"][1])).height == 1


def test_get_messages_to_rejects_unknown():
    with scope.record() as trace:
        pass
    with pytest.raises(ValueError, match="neither an actor"):
        trace.get_messages_to("nobody")


def test_queue_classes_unpatched_after_stop_and_not_patched_without_messages():
    classes = [
        queue.Queue,
        queue.LifoQueue,
        queue.PriorityQueue,
        asyncio.Queue,
        asyncio.LifoQueue,
        asyncio.PriorityQueue,
    ]
    before = [(c.__dict__["_put"], c.__dict__["_get"]) for c in classes]
    fut = [cf.Future.__dict__[n] for n in ("set_result", "set_exception", "result", "exception")]
    with scope.record():
        assert queue.Queue.__dict__["_put"] is not before[0][0]
    assert [(c.__dict__["_put"], c.__dict__["_get"]) for c in classes] == before
    assert [
        cf.Future.__dict__[n] for n in ("set_result", "set_exception", "result", "exception")
    ] == fut
    with scope.record(tracing_level="states_only") as trace:
        assert queue.Queue.__dict__["_put"] is before[0][0]
        q = queue.Queue()
        q.put(1)
        q.get()
    assert trace.events(["send", "receive"]).height == 0
