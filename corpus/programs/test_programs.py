"""Realistic small programs written against real libraries, each checking its own result.

They are the shapes a user records most: log records crossing threads through a queue, a
thread pool mapping work, asyncio handing blocking work to threads, loguru's enqueue=True
writer thread. Each asserts what the program computed, so a recorder that loses, reorders
or duplicates an item, or hangs a join, turns a pass into a failure.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import logging
import logging.handlers
import queue
import threading


def test_queue_handler_to_listener():
    """Four threads log through a QueueHandler; one QueueListener thread writes them all."""
    q: queue.Queue = queue.Queue()
    out = io.StringIO()
    listener = logging.handlers.QueueListener(q, logging.StreamHandler(out))
    log = logging.getLogger("corpus.programs.queue")
    log.propagate = False
    log.setLevel(logging.INFO)
    handler = logging.handlers.QueueHandler(q)
    log.addHandler(handler)
    listener.start()
    try:
        def work(n):
            for i in range(50):
                log.info("w%d-%d", n, i)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        listener.stop()
        log.removeHandler(handler)
    lines = out.getvalue().split()
    assert sorted(lines) == sorted(f"w{n}-{i}" for n in range(4) for i in range(50))
    for n in range(4):  # each thread's records stay in its order
        mine = [line for line in lines if line.startswith(f"w{n}-")]
        assert mine == [f"w{n}-{i}" for i in range(50)]


def test_thread_pool_map_and_as_completed():
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(lambda x: x * x, range(200))) == [x * x for x in range(200)]
        futures = {pool.submit(sum, range(n)): n for n in range(1, 50)}
        done = {futures[f]: f.result() for f in concurrent.futures.as_completed(futures)}
    assert done == {n: sum(range(n)) for n in range(1, 50)}


def test_locked_counter_under_contention():
    lock = threading.Lock()
    cond = threading.Condition(lock)
    state = {"n": 0, "ready": 0}

    def work():
        with cond:
            state["ready"] += 1
            cond.notify_all()
            cond.wait_for(lambda: state["ready"] == 8)
        for _ in range(1000):
            with lock:
                state["n"] += 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert state["n"] == 8000


def test_asyncio_to_thread_and_queue():
    async def main():
        q: asyncio.Queue = asyncio.Queue(maxsize=5)

        async def producer():
            for i in range(100):
                await q.put(await asyncio.to_thread(lambda i=i: i * 2))
            await q.put(None)

        got = []

        async def consumer():
            while (item := await q.get()) is not None:
                got.append(item)

        async with asyncio.TaskGroup() as tg:
            tg.create_task(producer())
            tg.create_task(consumer())
        return got

    assert asyncio.run(main()) == [i * 2 for i in range(100)]


def test_loguru_enqueue_writer_thread():
    """loguru's enqueue=True: records go through a queue to its own writer thread."""
    from loguru import logger

    out = io.StringIO()
    sink = logger.add(out, enqueue=True, format="{message}")
    try:
        def work(n):
            for i in range(30):
                logger.info(f"t{n}-{i}")

        threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        logger.complete()
    finally:
        logger.remove(sink)
    expected = sorted(f"t{n}-{i}" for n in range(3) for i in range(30))
    assert sorted(out.getvalue().split()) == expected
