"""The benchmark workloads.

* `call_heavy()`: recursion and method calls (module `callheavy`, traced as one module);
* `threads_queue()`: 4 threads (2 producers, 2 consumers) passing messages through one
  `queue.Queue`, updating shared counters under one `threading.Lock`;
* `asyncio_tasks()`: ~2,000 asyncio tasks (producer/consumer pairs) exchanging messages
  through bounded `asyncio.Queue`s;
* the "code outside the traced modules" case runs `call_heavy()` while only the small
  `unrelated` module is traced.

Every workload calls a little user code per message (`make_msg`, `handle`), as a
real program would; these functions live in this module, which is the "one module"
traced on the queue and asyncio workloads.
"""

from __future__ import annotations

import asyncio
import queue
import threading

import callheavy

# -- call-heavy ---------------------------------------------------------------------


def call_heavy(scale: int = 4) -> int:
    return callheavy.run(scale)


# -- user code run per message ---------------------------------------------------------


def make_msg(src, i):
    return (src, i, i & 7)


def handle(msg):
    return msg[1] % 3 + msg[2]


# -- 4 threads, queue.Queue, a Lock -----------------------------------------------------


def _producer(q, lock, counts, src, n):
    for i in range(n):
        msg = make_msg(src, i)
        with lock:
            counts["sent"] += 1
        q.put(msg)
    q.put(None)


def _consumer(q, lock, counts, done):
    total = 0
    while True:
        msg = q.get()
        if msg is None:
            break
        v = handle(msg)
        with lock:
            counts["received"] += 1
            total += v
    done.append(total)


def threads_queue(messages: int = 200_000, producers: int = 2, consumers: int = 2) -> int:
    """`messages` messages from `producers` threads to `consumers` threads (4 in all)."""
    q = queue.Queue(maxsize=1_000)
    lock = threading.Lock()
    counts = {"sent": 0, "received": 0}
    done: list[int] = []
    per = messages // producers
    # each producer sends one None per consumer when it finishes
    threads = [
        threading.Thread(target=_consumer, args=(q, lock, counts, done), name=f"consumer-{i}")
        for i in range(consumers)
    ]
    threads += [
        threading.Thread(
            target=_producer, args=(q, lock, counts, f"p{i}", per), name=f"producer-{i}"
        )
        for i in range(producers)
    ]
    for t in threads:
        t.start()
    for t in threads[consumers:]:
        t.join()
    for t in threads[:consumers]:
        t.join()
    assert counts["sent"] == counts["received"] == per * producers, counts
    return sum(done)


# -- ~2,000 asyncio tasks ---------------------------------------------------------------


async def _aproducer(q, src, n):
    for i in range(n):
        await q.put(make_msg(src, i))
    await q.put(None)


async def _aconsumer(q, results):
    total = 0
    while True:
        msg = await q.get()
        if msg is None:
            break
        total += handle(msg)
    results.append(total)


async def _amain(pairs, per_pair):
    results: list[int] = []
    tasks = []
    for p in range(pairs):
        q = asyncio.Queue(maxsize=4)
        tasks.append(asyncio.create_task(_aproducer(q, p, per_pair)))
        tasks.append(asyncio.create_task(_aconsumer(q, results)))
    await asyncio.gather(*tasks)
    return sum(results)


def asyncio_tasks(tasks: int = 2_000, messages: int = 60_000) -> int:
    """`tasks` tasks (half producers, half consumers, one bounded queue per pair)
    exchanging `messages` messages in all."""
    pairs = tasks // 2
    return asyncio.run(_amain(pairs, messages // pairs))
