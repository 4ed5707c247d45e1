"""Per-thread columnar event buffers, the critical lane, the max_events bound and
seeded sampling.

A hook appends to the calling thread's own `ThreadBuffer` (no lock: only that
thread writes it). Each event is three columns: `ts` (perf ns, int64), `ks`
(kind code | site id << 5, uint32) and `vals` (one Python reference). Full chunks
are sealed into a shared deque; the bound is enforced whenever a chunk is sealed,
dropping the oldest sealed chunks first and counting every event dropped.
Critical events (spawn, exit, crash, deadlock...) never enter a chunk: they go to
their own lane, which is never pruned.
"""

from __future__ import annotations

import os
import random
import threading
from array import array
from collections import deque

from ..schema import KIND_CODE

KIND_BITS = 5
KIND_MASK = (1 << KIND_BITS) - 1

# Hot-path codes. The low bits of `ks` hold one of these; the high bits a site id
# (calls) or 0. Codes below len(EVENT_KINDS) are the schema kinds.
CALL = KIND_CODE["call"]
RETURN = KIND_CODE["return"]
EXCEPTION = KIND_CODE["exception"]
SUSPEND = 28  # a generator/coroutine frame yielded (vals: frame id)
RESUME = 29  # it was resumed (vals: frame id)
SWITCH = 30  # the actor running on this thread changed (vals: actor id)
RICH = 31  # a non-call event; vals holds a RichEvent tuple
assert len(KIND_CODE) <= SUSPEND

MASK_BITS = 12  # a sampling mask of 4096 decisions, replayed cyclically per thread


def fast_module():
    """scope_nb.recorder._fasthooks (C versions of the hot paths: call callbacks, lock core,
    queue hooks, decoder), or None when it is not built or SCOPE_NB_PURE is set in
    the environment."""
    if os.environ.get("SCOPE_NB_PURE", "") not in ("", "0"):
        return None
    try:
        from . import _fasthooks
    except ImportError:
        return None
    return _fasthooks


class ThreadBuffer:
    """The events of one thread, oldest first, in the current (unsealed) chunk."""

    __slots__ = ("ts", "ks", "vals", "actor", "ident", "store", "task", "loopy", "pos", "stack", "index", "on")

    def __init__(self, store: Store, actor: str, ident: int, index: int):
        self.store = store
        self.actor = actor  # the thread's actor id
        self.ident = ident
        self.index = index  # creation order, to break ts ties deterministically
        self.task = None  # the asyncio task last seen running here
        self.loopy = False  # an event loop runs in this thread
        self.pos = 0  # sampling position
        self.stack: list[bool] = []  # sampling decisions of open calls (sampled mode only)
        self.on = True  # calls of this thread are recorded (trace_process narrows this)
        self._fresh()

    def _fresh(self) -> None:
        col = self.store.col
        self.ts = array("q") if col is None else col("q")
        self.ks = array("I") if col is None else col("I")
        self.vals: list = []

    def seal(self) -> None:
        """Hand the current chunk to the store and start a new one."""
        if len(self.ts):
            ts, ks = self.ts, self.ks
            if type(ts) is not array:  # C columns: sealed chunks hold array.array
                ts, ks = ts[:], ks[:]
                self.store.fast.seal_list(self.vals)
            chunk = Chunk(ts, ks, self.vals, self.actor, self.index)
            self._fresh()
            self.store.add_chunk(chunk)


class Chunk:
    __slots__ = ("ts", "ks", "vals", "actor", "index")

    def __init__(self, ts, ks, vals, actor, index):
        self.ts, self.ks, self.vals, self.actor, self.index = ts, ks, vals, actor, index

    def __len__(self) -> int:
        return len(self.ts)


class Store:
    """All buffers of one recording, with the bound and the drop counters."""

    def __init__(self, max_events: int, sample_rate: float, seed: int):
        self.max_events = max_events
        self.chunk_size = max(64, min(4096, max_events // 16))
        self.sealed: deque[Chunk] = deque()
        self.sealed_count = 0
        self.critical: list[tuple] = []  # (perf ts, actor, RichEvent); list.append is atomic
        self.buffers: list[ThreadBuffer] = []
        self.dropped = {"bound": 0, "sampled": 0}
        self.errors: dict[str, int] = {}
        self.error_samples: dict[str, str] = {}
        self._seal_lock = threading.Lock()  # taken once per chunk, never per event
        self.sample_rate = sample_rate
        rng = random.Random(seed)
        self.mask = bytes(rng.random() < sample_rate for _ in range(1 << MASK_BITS))
        # the C callbacks and columns of record/_fasthooks.c, when built and allowed;
        # live thread buffers then use its Col (slices of which are array.array)
        self.fast = fast_module()
        self.col = None if self.fast is None else self.fast.Col

    def add_chunk(self, chunk: Chunk) -> None:
        with self._seal_lock:
            self.sealed.append(chunk)
            self.sealed_count += len(chunk)
            live = sum(len(b.ts) for b in self.buffers)
            while self.sealed and self.sealed_count + live > self.max_events:
                old = self.sealed.popleft()
                self.sealed_count -= len(old)
                self.dropped["bound"] += len(old)

    def fault(self, where: str, exc: BaseException) -> None:
        """Count a failure inside the recorder; it never reaches the program."""
        self.errors[where] = self.errors.get(where, 0) + 1
        self.error_samples.setdefault(where, f"{type(exc).__name__}: {exc}")

    def snapshot(self) -> tuple[list[Chunk], list[tuple]]:
        """A consistent copy of everything recorded so far (the recording goes on)."""
        with self._seal_lock:
            chunks = list(self.sealed)
            for b in list(self.buffers):
                n = len(b.ts)
                if n:
                    chunks.append(Chunk(b.ts[:n], b.ks[:n], b.vals[:n], b.actor, b.index))
            return chunks, list(self.critical)

    def take_unflushed(self, cursor: dict, drain: bool) -> tuple[list[Chunk], list[tuple]]:
        """What the disk flusher has not written yet: the new part of every sealed chunk
        and of every thread's unsealed tail, and the new critical events.

        `cursor` is the flusher's own bookkeeping (kept across calls): how far each
        chunk was written, keyed by the id of its `vals` list (the list itself is kept
        so the id cannot be reused), and how much of the critical lane. With `drain`,
        sealed chunks leave memory once taken (storage="disk"); the critical lane is
        never removed. The hot path is untouched: this reads under the seal lock only.
        """
        done: dict[int, tuple] = cursor.get("arrays", {})
        with self._seal_lock:
            sealed = [(c.ts, c.ks, c.vals, c.actor, c.index, len(c.ts)) for c in self.sealed]
            if drain:
                self.sealed.clear()
                self.sealed_count = 0
            tails = []
            for b in list(self.buffers):
                ts, ks, vals = b.ts, b.ks, b.vals
                tails.append((ts, ks, vals, b.actor, b.index, min(len(ts), len(ks), len(vals))))
            crit_from = cursor.get("critical", 0)
            crit = self.critical[crit_from:]
            cursor["critical"] = crit_from + len(crit)
        out: list[Chunk] = []
        keep: dict[int, tuple] = {}
        for group, remember in ((sealed, not drain), (tails, True)):
            for ts, ks, vals, actor, index, n in group:
                key = id(vals)  # the one column a sealed chunk shares with its buffer
                start = done[key][1] if key in done else 0
                if n > start:
                    out.append(Chunk(ts[start:n], ks[start:n], vals[start:n], actor, index))
                if remember:
                    keep[key] = (vals, max(n, start))
        cursor["arrays"] = keep
        return out, crit
