"""The Recorder: one recording, from `start()` to `stop()`.

It owns the buffers, the call-capture back-end, the actor registry and the patches
of threads, queues, locks and tasks, and it is the only object the hooks talk to.
Nothing here imports polars: frames are built later, from `snapshot()`. Its start and
stop are in lifecycle.py, its choice of code to trace in traced_code.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
import threading
from typing import TYPE_CHECKING, Any

from .. import clock
from ..config import Options
from ..schema import CRITICAL_KINDS as _CRITICAL
from ..schema import KIND_CODE, LEVEL_KINDS
from ..values import Formatter
from . import own_threads
from .actors_registry import ActorRegistry
from .buffer import KIND_BITS, MASK_BITS, RICH, SWITCH, Store, ThreadBuffer
from .lifecycle import Lifecycle
from .sites import Site, UserCodeFilter
from .traced_code import TracedCode

# The recording in progress, for the hooks; set only by `scope_nb._control`, the owner
# of a recording's life.
if TYPE_CHECKING:
    from .patchers import actors as _actors
    from .patchers import locks as _locks
    from .patchers import memory as _memory
    from .patchers import messages as _messages
    from .patchers import objects as _objects
    from .patchers import stalls as _stalls
    from .patchers import watchdog as _watchdog
    from .patchers.table import Patcher

ACTIVE: Recorder | None = None
RECORDER_ACTOR = "recorder"  # the actor of events made by the recorder's own threads
_SAMPLE_MASK = (1 << MASK_BITS) - 1


@dataclasses.dataclass
class Parts:
    """What the patchers of one recording keep and share, each part set by the patcher
    that owns it (None while that patcher is not installed)."""

    actors: _actors.State | None = None
    messages: _messages._Mail | None = None
    locks: _locks.LockState | None = None
    objects: _objects.Objects | None = None
    races: Any = None  # objects.own_classes.OwnClasses: the program's classes hooked (races=True)
    states: list | None = None  # raw rows of the states frame (objects), kept after stop
    stalls: _stalls.StallState | None = None
    memory: _memory.Sampler | None = None
    watchdog: _watchdog.Watchdog | None = None


@dataclasses.dataclass(frozen=True)
class ChildOf:
    """A child process's recording: where in the parent it came from."""

    parent_actor: str | None
    parent_pid: int


class Recorder(TracedCode, Lifecycle):
    def __init__(self, options: Options):
        self.options = options
        self.pid = os.getpid()
        self.offset = clock.OFFSET
        self.started_perf = clock.perf_ns()
        self.stopped_perf: int | None = None
        self.store = Store(options.max_events, options.sample_rate, options.seed)
        self.fmt = Formatter(
            options.max_repr,
            options.max_depth,
            options.redact,
            options.repr_objects,
            self.fault,
            self.own_thread,
        )
        self.kinds = LEVEL_KINDS[options.tracing_level]
        self.calls_on = "call" in self.kinds
        self.sites: list[Site] = []
        self.site_of: dict[int, int] = {}  # id(code) -> site id
        # the same by id(code), for the hot path: a code object's hash is recomputed on
        # every call and costs more than the rest of the hook (sites keep codes alive)
        self.site_by_code: dict[int, Site] = {}
        self.is_user_code = UserCodeFilter()
        self.trace_everything = False
        self.process_filter: set[str] | None = None  # trace_process(): only these actors
        self.actors = ActorRegistry(self.pid)
        self.local = threading.local()
        self.own_idents = own_threads.IDENTS  # the recorder's own threads: never recorded
        self.msg_ids = itertools.count(1)
        self.objects: dict[str, Any] = {}  # traced objects by name (record/objects.py)
        self.queues: dict[str, Any] = {}  # queue names -> live queue (record/messages.py)
        self.parts = Parts()
        self.flusher: Any = None  # store.flusher.Flusher while persisting
        self.child: ChildOf | None = None  # set in a child process's recording
        self.installed: list[Patcher] = []  # the patchers in place, in installation order
        self.backend = None
        self.running = False
        self.switches: list = []  # C objects whose `running` mirrors this one (record/_fastlocks.c)
        self._buf_index = itertools.count()

    # -- the per-thread buffer ------------------------------------------------
    def buffer(self) -> ThreadBuffer:
        """This thread's buffer, created (and its actor registered) on first use."""
        try:
            return self.local.b
        except AttributeError:
            return self._new_buffer()

    def _new_buffer(self, thread: threading.Thread | None = None) -> ThreadBuffer:
        # `thread` is passed by code running in a thread that threading does not list
        # as active yet / any more, where current_thread() would invent a dummy thread
        ident = threading.get_ident()
        internal = ident in self.own_idents  # asked before current_thread(): no dummy for it
        t = thread if thread is not None or internal else threading.current_thread()
        # the recorder's own threads are not actors of the program
        actor = RECORDER_ACTOR if internal else self.actors.thread_actor(t, ident)
        b = ThreadBuffer(self.store, actor, ident, next(self._buf_index))
        if internal:
            b.on = False
        elif self.process_filter is not None:
            b.on = actor in self.process_filter
        self.local.b = b
        self.store.buffers.append(b)
        own_threads.wake()  # in a forked child: the recorder's threads start when needed
        return b

    # -- actors ---------------------------------------------------------------
    def current_actor(self, b: ThreadBuffer | None = None) -> str:
        """The running actor: the asyncio task if one runs in this thread, else the thread."""
        b = b or self.buffer()
        if b.loopy:
            task = _current_task()
            if task is not None:
                # a task first seen here was created before start(): its thread is its parent
                return self.actors.task_actor(task, self, parent=b.actor)
        return b.actor

    def sync_task(self, b: ThreadBuffer) -> None:
        """In an event-loop thread, note a change of running task in the call stream."""
        task = _current_task()
        if task is not b.task:
            b.task = task
            actor = (
                self.actors.task_actor(task, self, parent=b.actor) if task is not None else b.actor
            )
            b.ts.append(clock.perf_ns())
            b.ks.append(SWITCH)
            b.vals.append(actor)

    # -- non-call events --------------------------------------------------------
    def emit(
        self,
        kind: str,
        target: str | None = None,
        detail: Any = None,
        *,
        obj: str | None = None,
        msg_id: int | None = None,
        duration_ns: int | None = None,
        location: str | None = None,
        module: str | None = None,
        function: str | None = None,
        actor: str | None = None,
        locks_held: tuple[str, ...] | None = None,
        ts: int | None = None,
        qsize: int | None = None,
        raw: bool = False,
    ) -> None:
        """Record one non-call event. `detail` is captured (bounded repr) unless raw.
        Never raises: a fault is counted in `errors`."""
        if kind not in self.kinds:
            return
        try:
            b = self.buffer()
            if actor is None and not b.on and b.ident in self.own_idents:
                return  # a recorder thread reporting on another actor passes it explicitly
            if actor is None:
                actor = self.current_actor(b)
            if not raw and detail is not None:
                b_on, b.on = b.on, False  # a user __repr__ must not be recorded as a call
                try:
                    detail = self.fmt.show(self.fmt.capture(detail))
                finally:
                    b.on = b_on
            ev = (
                actor,
                target,
                detail,
                msg_id,
                obj,
                location,
                duration_ns,
                module,
                function,
                locks_held,
                qsize,
            )
            now = clock.perf_ns() if ts is None else ts
            code = KIND_CODE[kind]
            if kind in _CRITICAL:
                self.store.critical.append((now, code, b.index, ev))
                return
            push(self.store, b, RICH | (code << KIND_BITS), ev, now)
        except Exception as e:  # never into the program
            self.store.fault(f"emit:{kind}", e)

    def new_msg_id(self) -> int:
        return next(self.msg_ids)

    def fault(self, where: str, exc: BaseException) -> None:
        self.store.fault(where, exc)

    # -- reading ----------------------------------------------------------------
    def snapshot(self):
        return self.store.snapshot()

    @property
    def dropped(self) -> int:
        return sum(self.store.dropped.values())


def push(store: Store, b: ThreadBuffer, code: int, ev: tuple, now: int) -> None:
    """Append one ready non-critical event (`code`: RICH | kind << KIND_BITS; `ev`: the
    emitted-event tuple) to the thread's buffer: what `Recorder.emit` does once the
    kind is known to be enabled and the fields are final. Samples, seals when full.
    The recorder's hot paths (locks, queues, traced objects) call this directly."""
    if store.sample_rate < 1.0:
        b.pos += 1
        if not store.mask[b.pos & _SAMPLE_MASK]:
            store.dropped["sampled"] += 1
            return
    b.ts.append(now)
    b.ks.append(code)
    b.vals.append(ev)
    if len(b.ts) >= store.chunk_size:
        b.seal()
        own_threads.wake()


def _current_task():
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None
