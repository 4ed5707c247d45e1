"""Messages between processes: `multiprocessing.Queue` / `SimpleQueue` put/get and
`Connection.send`/`recv` (Pipe ends) become send/receive events paired by a msg id
that includes the sender's pid, so sends and receives recorded by different
processes pair up after `load` merges them.

The id travels with the message: the sender puts an envelope whose pickled form
unpickles to the user's object itself (recording the id on the way, in the
receiving thread), so the receiver gets exactly what was sent, traced or not.
"""

from __future__ import annotations

import functools
import itertools
import os
import threading
from typing import Any

from ... import clock
from .. import session
from ..patching import original, patch, unpatch

_tls = threading.local()
_names = itertools.count(1)
_counter = itertools.count(1)


def _unwrap(msg_id: int, channel: str, sent_ns: int, obj: Any) -> Any:
    """Runs when an envelope is unpickled: note the id for the receiving call."""
    _tls.got = (msg_id, channel, sent_ns)
    return obj


class _Envelope:
    __slots__ = ("msg_id", "channel", "sent_ns", "obj")

    def __init__(self, msg_id, channel, sent_ns, obj):
        self.msg_id, self.channel, self.sent_ns, self.obj = msg_id, channel, sent_ns, obj

    def __reduce__(self):
        return (_unwrap, (self.msg_id, self.channel, self.sent_ns, self.obj))


def new_msg_id() -> int:
    """Unique across processes of one host: the pid in the high bits."""
    return (os.getpid() << 32) | (next(_counter) & 0xFFFFFFFF)


def channel_name(obj) -> str:
    """A name for a queue or pipe end that its other processes see too where possible."""
    name = getattr(obj, "_scope_name", None)
    if name:
        return name
    name = _fresh_name(obj)
    try:
        obj._scope_name = name
    except AttributeError:
        pass
    return name


def _fresh_name(obj) -> str:
    """Queues of the spawn/forkserver contexts have named semaphores, the same in
    every process; otherwise a name is given at creation (fork children inherit it)."""
    kind = type(obj).__name__ if hasattr(obj, "_rlock") and hasattr(obj, "_reader") else "Pipe"
    sem = getattr(getattr(getattr(obj, "_rlock", None), "_semlock", None), "name", None)
    return f"mp.{kind}{sem}" if sem else f"mp.{kind}:{os.getpid()}-{next(_names)}"


def _recording():
    rec = session.ACTIVE
    return rec if rec is not None and rec.running else None


def _qsize(q) -> int | None:
    try:
        return q.qsize()
    except (NotImplementedError, OSError, AttributeError):
        return None


def _send(rec, target, obj, channel: str, put, qsize, envelope: bool = True) -> None:
    msg_id = new_msg_id() if envelope else None
    t = clock.perf_ns()
    put(_Envelope(msg_id, channel, clock.to_epoch(t), obj) if envelope else obj)
    rec.emit(
        "send",
        target=channel,
        detail=obj,
        msg_id=msg_id,
        ts=t,
        qsize=qsize(target) if qsize else None,
    )


def _feed(
    buffer,
    notempty,
    send_bytes,
    writelock,
    reader_close,
    writer_close,
    ignore_epipe,
    onerror,
    queue_sem,
):
    """A multiprocessing.Queue's feeder thread: a message that does not pickle goes to
    `onerror` (the queue's `_on_queue_feeder_error`) as the program's object, not its
    envelope; ProcessPoolExecutor fails the submitted future from there."""
    import multiprocessing.queues as mpq

    original(mpq.Queue, "_feed")(
        buffer,
        notempty,
        send_bytes,
        writelock,
        reader_close,
        writer_close,
        ignore_epipe,
        functools.partial(_feeder_error, onerror),
        queue_sem,
    )


def _feeder_error(onerror, e, obj):
    return onerror(e, obj.obj if type(obj) is _Envelope else obj)


def _unwraps(q) -> bool:
    """Whether an envelope put into `q` reaches its error handler unwrapped: always but
    for a multiprocessing.Queue whose feeder thread was started before the recording."""
    thread = getattr(q, "_thread", None)
    return thread is None or getattr(thread, "_target", None) is _feed


def _received(rec, target, obj, qsize) -> None:
    got = getattr(_tls, "got", None)
    _tls.got = None
    now = clock.perf_ns()
    if got is None:
        rec.emit("receive", target=channel_name(target), detail=obj, ts=now)
        return
    msg_id, channel, sent = got
    rec.emit(
        "receive",
        target=channel,
        detail=obj,
        msg_id=msg_id,
        ts=now,
        duration_ns=max(clock.to_epoch(now) - sent, 0),
        qsize=qsize(target) if qsize else None,
    )


# -- the patches ----------------------------------------------------------------------------
def _q_init(orig):
    def __init__(self, *a, **kw):
        orig(self, *a, **kw)
        if _recording() is not None and not getattr(self, "_scope_name", None):
            self._scope_name = _fresh_name(self)

    return __init__


def _q_put(orig, sized: bool):
    def put(self, obj, *a, **kw):
        rec = _recording()
        if rec is None:
            return orig(self, obj, *a, **kw)
        _send(
            rec,
            self,
            obj,
            channel_name(self),
            lambda env: orig(self, env, *a, **kw),
            _qsize if sized else None,
            _unwraps(self),
        )

    return put


def _q_get(orig, sized: bool):
    def get(self, *a, **kw):
        _tls.got = None
        obj = orig(self, *a, **kw)
        rec = _recording()
        if rec is not None:
            _received(rec, self, obj, _qsize if sized else None)
        return obj

    return get


def _c_send(orig):
    def send(self, obj):
        rec = _recording()
        if rec is None:
            return orig(self, obj)
        _send(rec, self, obj, channel_name(self), lambda env: orig(self, env), None)

    return send


def _c_recv(orig):
    def recv(self):
        _tls.got = None
        obj = orig(self)
        rec = _recording()
        if rec is not None:
            _received(rec, self, obj, None)
        return obj

    return recv


def _pipe(orig):
    def Pipe(duplex=True):  # noqa: N802 - the stdlib name
        a, b = orig(duplex)
        if _recording() is not None:
            name = f"mp.Pipe:{os.getpid()}-{next(_names)}"
            a._scope_name = b._scope_name = name
        return a, b

    return Pipe


def _targets():
    import multiprocessing.connection as mpc
    import multiprocessing.queues as mpq

    return [
        (mpq.Queue, "__init__", _q_init),
        (mpq.Queue, "put", lambda o: _q_put(o, True)),
        (mpq.Queue, "get", lambda o: _q_get(o, True)),
        (mpq.Queue, "_feed", lambda o: staticmethod(_feed)),
        (mpq.SimpleQueue, "__init__", _q_init),
        (mpq.SimpleQueue, "put", lambda o: _q_put(o, False)),
        (mpq.SimpleQueue, "get", lambda o: _q_get(o, False)),
        (mpc._ConnectionBase, "send", _c_send),
        (mpc._ConnectionBase, "recv", _c_recv),
        (mpc, "Pipe", _pipe),
    ]


def install(rec) -> None:
    for owner, name, make in _targets():
        patch(owner, name, make(original(owner, name)))


def uninstall(rec) -> None:
    for owner, name, _ in _targets():
        unpatch(owner, name)
