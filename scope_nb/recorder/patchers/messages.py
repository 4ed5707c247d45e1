"""Messages: `put` / `get` on `queue.Queue`, `LifoQueue`, `PriorityQueue` and the
asyncio queues, and `concurrent.futures.Future` set / result, as send / receive
events paired by a message id.

The queues' internal `_put` / `_get` are patched at class level, so queues created
before `start()` are covered. Items are never wrapped or changed: each queue has a
parallel record of the messages waiting in it (message id, send time), consulted when
an item comes out: a deque for the FIFO queues (the n-th item out is the n-th in), a
map from the item's identity for the LIFO and priority ones (and for the program's own
subclasses that override `_put` / `_get`: theirs are wrapped too, existing classes at
start, new ones as they are defined). `_put` / `_get` run under
the queue's own mutex (thread queues) or in the loop's thread (asyncio queues), so
that record needs no lock of its own. For the FIFO queues the patched methods are C
method descriptors (record/_fastqueues.c) when the extension is built: the time spent
under a queue's mutex is time every other producer and consumer waits.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import itertools
import operator
import queue
import sys
import threading
import types
import weakref
from collections import deque

from ... import clock
from ...schema import KIND_CODE
from ...values import kept_tuple
from .. import session
from ..buffer import KIND_BITS, RICH, ThreadBuffer
from ..naming import bound_name
from ..patching import original, patch, unpatch

_THREAD_QUEUES = (queue.Queue, queue.LifoQueue, queue.PriorityQueue)
_ASYNC_QUEUES = (asyncio.Queue, asyncio.LifoQueue, asyncio.PriorityQueue)
_LIFO = (queue.LifoQueue, asyncio.LifoQueue)
_FIFO = (queue.Queue, asyncio.Queue)  # exactly these classes: their _put / _get are FIFO
# their stock _put / _get: a C hook wrapping one of these does its body itself
_STOCK = frozenset(cls.__dict__[name] for cls in _FIFO for name in ("_put", "_get"))
# shutdown(immediate=True) drains a queue through _get (3.13): those items are discarded
_DRAINS = sys.version_info >= (3, 13)
# asyncio (3.15) copies a concurrent future's outcome into its own through _get_snapshot,
# not result(): the loop's receipt of a to_thread / run_in_executor result is read there
_FUTURE_METHODS = ("set_result", "set_exception", "result", "exception") + (
    ("_get_snapshot",) if "_get_snapshot" in cf.Future.__dict__ else ()
)
_QUEUE_MODULES = frozenset({"queue", "asyncio.queues", __name__})
# messages kept by reference in their events (str and bytes are not: emit shows them now)
_BY_REFERENCE = frozenset({int, float, bool, complex, type(None)})
_getframe = sys._getframe
_push = session.push


def _code(kind: str, kinds) -> int:
    """The buffer code of a message event kind, 0 when the tracing level leaves it out."""
    return RICH | (KIND_CODE[kind] << KIND_BITS) if kind in kinds else 0


class _Box:
    """One queue's bookkeeping: its name and the messages waiting in it."""

    __slots__ = ("name", "pending", "fifo", "untracked", "lifo", "ref", "outer")

    def __init__(self, name: str, fifo: bool, lifo: bool, untracked: int, ref: weakref.ref):
        self.name = name
        self.outer = (
            False  # a wrapper of a program's _put / _get runs: inner hooks leave the message to it
        )
        self.lifo = lifo
        self.ref = ref
        # FIFO queues: (msg_id, put perf ns) in queue order, or the send's event (a C
        # MessageEvent: .msg_id, .sent); the items already waiting when the queue was
        # first seen come out first, without a message id
        self.fifo: deque | None = deque() if fifo else None
        self.untracked = untracked
        # others: id(item) -> [(msg_id, put perf ns)]
        self.pending: dict[int, list[tuple[int, int]]] = {}


class _Letter:
    """A future's message: its id, when it was set, who has taken it already."""

    __slots__ = ("msg_id", "sent", "name", "takers")

    def __init__(self, msg_id: int | None, sent: int | None, name: str):
        self.msg_id, self.sent, self.name = msg_id, sent, name
        self.takers: set[str] = set()


class _Mail:
    """All queues and futures seen by one recording, keyed by identity; an entry
    leaves when its queue or future is garbage-collected."""

    def __init__(self, rec):
        self.rec = rec
        self.boxes: dict[int, _Box] = {}
        self.letters: dict[int, tuple[weakref.ref, _Letter]] = {}
        self.names: set[str] = set()
        # the program's queue classes whose _put / _get are wrapped
        self.user_classes: list[type] = []
        self.numbers = itertools.count(1)
        self.lock = original(threading, "Lock")()  # new queues / futures only, never per message

    def box(self, q, fifo: bool, waiting: int) -> _Box:
        """The box of queue `q`, made on first sight, when `waiting` items are in it that
        no recorded put sent."""
        box = self.boxes.get(id(q))
        if box is None:
            key = id(q)
            with self.lock:
                name = self._unique(_variable_name(q), type(q).__name__)
                ref = weakref.ref(q, lambda _r: self.boxes.pop(key, None))
                box = self.boxes[key] = _Box(name, fifo, isinstance(q, _LIFO), waiting, ref)
            self.rec.queues[name] = ref
        return box

    def letter(self, fut, msg_id: int | None, sent: int | None) -> _Letter:
        key = id(fut)
        with self.lock:
            name = self._unique(None, "Future")
            letter = _Letter(msg_id, sent, name)
            self.letters[key] = (weakref.ref(fut, lambda _r: self.letters.pop(key, None)), letter)
        return letter

    def _unique(self, name: str | None, kind: str) -> str:
        n = next(self.numbers)
        if name is None or name in self.names:
            name = f"{kind}-{n}"
        self.names.add(name)
        return name


def _variable_name(q) -> str | None:
    """The name the program knows the queue by, found once at its first message: what
    it is bound to in the first frame outside the queue modules (and this one)."""
    try:
        f = sys._getframe(1)
        for _ in range(12):
            if f is None or f.f_globals.get("__name__") not in _QUEUE_MODULES:
                break
            f = f.f_back
        return None if f is None else bound_name(q, f)
    except Exception:
        return None


# -- queues ----------------------------------------------------------------------------------
def _queue_patches(rec, mail: _Mail, cls, threaded: bool, user: bool = False) -> None:
    """Send and receive events go straight into the thread's buffer (as in
    session.push), their message kept by reference when atomic, as a short tuple
    (actor, queue, message, msg id, waited, depth): see decode.rich_values. The depth is
    `q._qsize()` for the thread queues, `len(q._queue)` for the asyncio ones.

    `user`: a program's subclass that overrides `_put` / `_get` (a de-duplicating
    queue, say). Both are wrapped and its messages paired by item identity; while a
    wrapper runs, the hooked methods it may call (`super()._put`) see `box.outer` and
    leave the message to it."""
    orig_put, orig_get = (getattr(cls, n) if user else cls.__dict__[n] for n in ("_put", "_get"))
    fifo = cls in _FIFO
    boxes, box_of, ids, perf = mail.boxes, mail.box, rec.msg_ids, clock.perf_ns
    local, store, current_actor, own = rec.local, rec.store, rec.current_actor, rec.own_idents
    k_send = _code("send", rec.kinds)
    k_receive = _code("receive", rec.kinds)

    def depth(q) -> int | None:
        if user:
            return _depth(q._qsize() if threaded else q.qsize())
        return _depth(q._qsize()) if threaded else len(q._queue)

    def new_box(q, after_put: bool) -> _Box:
        # whatever _qsize says
        waiting = _waiting(q, threaded) if user else len(q.queue if threaded else q._queue)
        return box_of(q, fifo, waiting - 1 if after_put else waiting)

    def sent(q, box: _Box, item) -> None:
        mid, t = next(ids), perf()
        if box.fifo is not None:
            box.fifo.append((mid, t))
        else:
            waiting = box.pending.get(id(item))
            if waiting is None:
                box.pending[id(item)] = [(mid, t)]
            else:
                waiting.append((mid, t))
        if k_send:
            record(q, box, item, k_send, mid, None, t)

    def taken(q, box: _Box, item, t: int) -> tuple[int | None, int | None]:
        """The message id and wait of an item that came out."""
        if box.fifo is not None:
            if box.untracked > 0:
                box.untracked -= 1
            elif box.fifo:
                entry = box.fifo.popleft()  # (msg id, time), or a C send's MessageEvent
                mid, sent = entry if type(entry) is tuple else (entry.msg_id, entry.sent)
                return mid, t - sent
            return None, None
        waiting = box.pending.get(id(item))
        if not waiting:
            return None, None
        mid, sent = waiting.pop() if box.lifo else waiting.pop(0)
        if not waiting:
            del box.pending[id(item)]
        return mid, t - sent

    def received(q, box: _Box, item, t: int, drained: bool) -> None:
        """An item came out at t (`drained`: by shutdown(immediate=True), no receive; only
        looked at when receives are recorded)."""
        mid, waited = taken(q, box, item, t)
        if k_receive and not drained:
            record(q, box, item, k_receive, mid, waited, t)

    def record(q, box: _Box, item, k: int, mid, waited, t: int) -> None:
        try:
            b = local.b
        except AttributeError:
            b = rec.buffer()
        if not b.on and b.ident in own:
            return  # the recorder's own threads are not recorded
        ev = (
            current_actor(b) if b.loopy else b.actor,
            box.name,
            item if type(item) in _BY_REFERENCE else _detail(rec, b, item),
            mid,
            waited,
            depth(q),
        )
        _push(store, b, k, ev, t)

    def _put(self, item):
        orig_put(self, item)
        try:
            box = boxes.get(id(self))
            if box is None:
                box = new_box(self, True)
            elif box.outer:
                return  # a program's override called this one: its wrapper records
            sent(self, box, item)
        except Exception as e:
            rec.fault("queue.put", e)

    def _get(self):
        item = orig_get(self)
        try:
            t = perf()
            box = boxes.get(id(self))
            if box is None:
                box = new_box(self, False)
            elif box.outer:
                return item
            received(self, box, item, t, bool(k_receive) and _DRAINS and _draining(self, threaded))
        except Exception as e:
            rec.fault("queue.get", e)
        return item

    def outer_box(q) -> _Box | None:
        """The box of a user queue, for a wrapper about to run the program's method;
        None when another wrapper of the same queue runs already (or on a fault)."""
        try:
            box = boxes.get(id(q))
            if box is None:
                box = new_box(q, False)
            return None if box.outer else box
        except Exception as e:
            rec.fault("queue.box", e)
            return None

    def _user_put(self, item):
        box = outer_box(self)
        if box is None:
            return orig_put(self, item)
        box.outer = True
        try:
            orig_put(self, item)
        finally:
            box.outer = False
        try:
            sent(self, box, item)
        except Exception as e:
            rec.fault("queue.put", e)

    def _user_get(self):
        box = outer_box(self)
        if box is None:
            return orig_get(self)
        box.outer = True
        try:
            item = orig_get(self)
        finally:
            box.outer = False
        try:
            received(
                self, box, item, perf(), bool(k_receive) and _DRAINS and _draining(self, threaded)
            )
        except Exception as e:
            rec.fault("queue.get", e)
        return item

    put, get = (_user_put, _user_get) if user else (_put, _get)
    hook = getattr(store.fast, "QueueHook", None)
    if fifo and hook is not None and store.sample_rate == 1.0:
        common = dict(
            threaded=threaded,
            boxes=boxes,
            box_type=_Box,
            ids=ids,
            own=own,
            detail=lambda b, item: _detail(rec, b, item),
            fault=rec.fault,
            local=local,
            new_buffer=rec.buffer,
            buffer_type=ThreadBuffer,
            current_actor=current_actor,
            chunk=store.chunk_size,
            plain_qsize=queue.Queue.__dict__["_qsize"],
        )
        put = hook(
            orig=orig_put,
            py=_put,
            get=False,
            k=k_send,
            box_of=lambda q: new_box(q, True),
            plain=orig_put in _STOCK,
            **common,
        )
        get = hook(
            orig=orig_get,
            py=_get,
            get=True,
            k=k_receive,
            box_of=lambda q: new_box(q, False),
            plain=orig_get in _STOCK,
            **common,
        )
    for name, new, old in (("_put", put, orig_put), ("_get", get, orig_get)):
        if user:
            new.__wrapped__ = old
            new.__qualname__ = f"{cls.__qualname__}.{name}"
        patch(cls, name, new)


def _waiting(q, threaded: bool) -> int:
    """How many items a program's queue holds: its own count, whatever it stores them in."""
    try:
        n = q._qsize() if threaded else q.qsize()
        return n if type(n) is int and n >= 0 else 0
    except Exception:
        return 0


def _depth(n) -> int | None:
    """A thread queue's `_qsize()` as its events hold it (an Int64 column): a custom
    `_qsize` that gives no integer, or one beyond int64, leaves the depth unknown."""
    if type(n) is not int:
        try:
            n = operator.index(n)
        except TypeError:
            return None
    return n if -(2**63) <= n < 2**63 else None


def _draining(q, threaded: bool) -> bool:
    """This `_get` is shutdown(immediate=True) emptying the queue (its caller is
    `shutdown`, the queue is shut down)."""
    return (
        getattr(q, "is_shutdown" if threaded else "_is_shutdown", False) is True
        and _getframe(2).f_code.co_name == "shutdown"
    )


def _detail(rec, b, item):
    """A message as its event keeps it: an atomic value (a number, None, a tuple of at
    most 4 atomics, none of them long text) by reference, formatted when frames are
    built (decode.rich_detail); anything else, text included, formatted now, as
    `Recorder.emit` does."""
    t = type(item)
    if t in _BY_REFERENCE:
        return item
    if kept_tuple(item):
        return item
    b_on, b.on = b.on, False  # a user __repr__ must not be recorded as a call
    try:
        return rec.fmt.show(rec.fmt.capture(item))
    finally:
        b.on = b_on


# -- futures ---------------------------------------------------------------------------------
def _future_patches(rec, mail: _Mail) -> None:
    F = cf.Future
    orig = {name: F.__dict__[name] for name in _FUTURE_METHODS}

    def sent(fut, value) -> None:
        try:
            t = clock.perf_ns()
            letter = mail.letter(fut, rec.new_msg_id(), t)
            rec.emit("send", letter.name, value, msg_id=letter.msg_id, ts=t)
        except Exception as e:
            rec.fault("future.set", e)

    def taken(fut, value) -> None:
        try:
            t = clock.perf_ns()
            entry = mail.letters.get(id(fut))
            letter = entry[1] if entry is not None else mail.letter(fut, None, None)
            actor = rec.current_actor()
            if actor in letter.takers:
                return  # the same message read again
            letter.takers.add(actor)
            waited = t - letter.sent if letter.sent is not None else None
            rec.emit(
                "receive",
                letter.name,
                value,
                msg_id=letter.msg_id,
                duration_ns=waited,
                actor=actor,
                ts=t,
            )
        except Exception as e:
            rec.fault("future.result", e)

    def set_result(self, result):
        orig["set_result"](self, result)
        sent(self, result)

    def set_exception(self, exception):
        orig["set_exception"](self, exception)
        sent(self, exception)

    def result(self, timeout=None):
        try:
            value = orig["result"](self, timeout)
        except BaseException as e:
            if e is getattr(self, "_exception", None):
                taken(self, e)
            raise
        else:
            taken(self, value)
            return value
        finally:
            self = None  # no cycle through a raised exception's traceback

    def exception(self, timeout=None):
        exc = orig["exception"](self, timeout)
        if exc is not None:
            taken(self, exc)
        return exc

    def _get_snapshot(self):
        snapshot = orig["_get_snapshot"](self)
        done, cancelled, value, exc = snapshot
        if done and not cancelled:
            taken(self, value if exc is None else exc)
        return snapshot

    for name, fn in (
        ("set_result", set_result),
        ("set_exception", set_exception),
        ("result", result),
        ("exception", exception),
        ("_get_snapshot", _get_snapshot),
    ):
        if name not in orig:
            continue
        fn.__doc__ = orig[name].__doc__
        fn.__qualname__ = orig[name].__qualname__
        patch(F, name, fn)


# -- install ---------------------------------------------------------------------------------
def install(rec) -> None:
    if "send" not in rec.kinds and "receive" not in rec.kinds:
        return
    mail = rec.parts.messages = _Mail(rec)
    for cls in _THREAD_QUEUES:
        _queue_patches(rec, mail, cls, True)
    for cls in _ASYNC_QUEUES:
        _queue_patches(rec, mail, cls, False)
    for base in _FIFO:
        for cls in _overriding(base):
            _user_queue(rec, mail, cls)
        patch(base, "__init_subclass__", _subclass_hook(rec, mail, base))
    _future_patches(rec, mail)


def _overriding(base) -> list[type]:
    """The subclasses of `base`, outside the standard library's, that define their own
    `_put` or `_get`, bases before their subclasses."""
    found, seen, todo = [], set(), list(base.__subclasses__())
    while todo:
        cls = todo.pop(0)
        if cls in seen:
            continue
        seen.add(cls)
        if cls not in _THREAD_QUEUES + _ASYNC_QUEUES and (
            "_put" in cls.__dict__ or "_get" in cls.__dict__
        ):
            found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def _user_queue(rec, mail: _Mail, cls) -> None:
    """Wrap a program's queue class, unless its `_put` or `_get` is something other
    than a plain method (a staticmethod, say): the wrappers call them as methods, so
    such a class is left exactly as it is, unrecorded."""
    hook = getattr(rec.store.fast, "QueueHook", None)
    for name in ("_put", "_get"):
        raw = next(k.__dict__[name] for k in cls.__mro__ if name in k.__dict__)
        if not (isinstance(raw, types.FunctionType) or (hook is not None and type(raw) is hook)):
            return
    _queue_patches(rec, mail, cls, issubclass(cls, queue.Queue), user=True)
    mail.user_classes.append(cls)


def _subclass_hook(rec, mail: _Mail, base):
    """`base.__init_subclass__` while recording: a queue class the program defines now
    and that overrides `_put` / `_get` gets its wrappers."""
    prior = base.__dict__.get("__init_subclass__")

    def __init_subclass__(cls, **kwargs):
        if prior is not None:
            prior.__get__(None, cls)(**kwargs)
        else:
            super(base, cls).__init_subclass__(**kwargs)
        if "_put" in cls.__dict__ or "_get" in cls.__dict__:
            try:
                _user_queue(rec, mail, cls)
            except Exception as e:
                rec.fault("queue.subclass", e)

    return classmethod(__init_subclass__)


def uninstall(rec) -> None:
    mail, rec.parts.messages = rec.parts.messages, None
    if mail is None:
        return
    for cls in (*_THREAD_QUEUES, *_ASYNC_QUEUES, *mail.user_classes):
        unpatch(cls, "_put")
        unpatch(cls, "_get")
    for base in _FIFO:
        unpatch(base, "__init_subclass__")
    for name in _FUTURE_METHODS:
        unpatch(cf.Future, name)
