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

import importlib
import os
import platform
import random
import sys
import sysconfig
import threading
from array import array
from collections import deque
from typing import NamedTuple

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


class BackendStatus(NamedTuple):
    """Which implementation of the hot paths this process uses, and why (backend_status)."""

    backend: str  # "native" (the C extension) or "pure" (the Python callbacks)
    reason: str  # why pure; "" when native
    frames: str  # native: how the call hooks read arguments (frame mirror or public API)
    python: str  # this Python's version
    tested: bool  # False for a Python newer than the newest one the extension is tested on


NEWEST_TESTED = (3, 15)

_native: tuple | None = None  # (module or None, reason, frames): the first look, kept


def _frame_probe(mod, a, b, c=None, *rest, **kw):
    """A frame with arguments of every kind and a local still unbound, for frame_probe()."""
    found = mod.frame_probe()
    late = found
    return late


def _self_test(mod) -> tuple[str, str]:
    """The extension against this interpreter before any recording uses it: what is wrong
    with it ("" when nothing), and how the call hooks read arguments. The frame mirror (a
    copy of a private CPython layout) is turned on only when it reads a frame exactly as
    the public API does."""
    try:
        col = mod.Col("q")
        for x in (-(1 << 40), 7):
            col.append(x)
        if len(col) != 2 or col[0] != -(1 << 40) or col[1] != 7:
            return "Col does not keep int64 values", ""
        why = _frame_probe(mod, object(), "b", 3, 4, k=5)
        if mod.use_frame_mirror(why is None):
            return "", f"frame mirror of {mod.FRAME_MIRROR}"
    except Exception as e:  # anything at all: the pure path is the safe one
        return f"{type(e).__name__}: {e}", ""
    if mod.FRAME_MIRROR is None:
        return "", "public frame API (no frame mirror for this Python)"
    return "", f"public frame API (frame mirror self-test failed: {why})"


def _load_native() -> tuple:
    global _native
    if _native is None:
        if sysconfig.get_config_var("Py_GIL_DISABLED"):
            _native = (None, "free-threaded build (the C hot paths need the GIL)", "")
        else:
            try:  # by its full name, so that the error names it
                mod = importlib.import_module(f"{__package__}._fasthooks")
            except ImportError as e:
                _native = (None, f"the C extension is not built: {e}", "")
            else:
                problem, frames = _self_test(mod)
                if problem:
                    _native = (None, f"self-test failed: {problem}", "")
                else:
                    _native = (mod, "", frames)
    return _native


def fast_module():
    """scope_nb.recorder._fasthooks (C versions of the hot paths: call callbacks, lock core,
    queue hooks, decoder), or None when it is not built, failed its self-test, the build
    is free-threaded, or SCOPE_NB_PURE is set in the environment (backend_status says
    which)."""
    if os.environ.get("SCOPE_NB_PURE", "") not in ("", "0"):
        return None
    return _load_native()[0]


def backend_status() -> BackendStatus:
    """The back-end fast_module() gives, with the reason when it is the pure one."""
    python = platform.python_version()
    tested = sys.version_info[:2] <= NEWEST_TESTED
    if os.environ.get("SCOPE_NB_PURE", "") not in ("", "0"):
        return BackendStatus("pure", "SCOPE_NB_PURE is set", "", python, tested)
    mod, reason, frames = _load_native()
    return BackendStatus("native" if mod else "pure", reason, frames, python, tested)


class ThreadBuffer:
    """The events of one thread, oldest first, in the current (unsealed) chunk."""

    __slots__ = (
        "ts",
        "ks",
        "vals",
        "actor",
        "ident",
        "store",
        "task",
        "loopy",
        "pos",
        "stack",
        "index",
        "on",
    )

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
        if sample_rate >= 1.0:  # every call kept: no draws (4,096 of them cost ~1 ms)
            self.mask = b"\x01" * (1 << MASK_BITS)
        else:
            rng = random.Random(seed)
            self.mask = bytes(rng.random() < sample_rate for _ in range(1 << MASK_BITS))
        # sampling: the frames (ids) of the generators and coroutines whose call was kept;
        # their resumes follow that decision (an abandoned one stays until its frame's
        # address starts another generator, which takes its own decision)
        self.gens_kept: set[int] = set()
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
