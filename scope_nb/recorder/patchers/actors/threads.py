"""Threads: `Thread.start` registers the thread (parent = the starting actor) and
records a spawn; `Thread._bootstrap_inner` runs in the new thread and records its
exit; `threading.excepthook` (chained to the hook found at start) records a crash;
`Thread.join` records a join (a happens-before edge)."""

from __future__ import annotations

import threading

from .... import clock
from ...patching import patch, unpatch
from .state import crashed, ctx, state


def thread_patches(rec) -> None:
    Thread = threading.Thread
    orig_start, orig_inner, orig_join = Thread.start, Thread._bootstrap_inner, Thread.join

    def start(self):
        actor = parent = None
        try:
            if self._initialized and not self._started.is_set():
                t0 = clock.perf_ns()
                parent = rec.current_actor()
                actor = rec.actors.register_thread(self, parent, getattr(ctx, "supervisor", None))
        except Exception as e:
            rec.fault("thread.start", e)
            actor = None
        if actor is None:
            return orig_start(self)
        try:
            orig_start(self)
        except BaseException:
            rec.actors.rows.pop(actor, None)
            rec.actors.forget_thread(self)
            raise
        rec.emit("spawn", actor, self.name, actor=parent, ts=t0, raw=True)

    def _bootstrap_inner(self):
        actor = None
        try:
            try:
                actor = rec.local.b.actor
            except AttributeError:
                actor = rec._new_buffer(self).actor
        except Exception as e:
            rec.fault("thread.bootstrap", e)
        try:
            orig_inner(self)
        finally:
            if actor is not None and actor not in state(rec).crashed:
                rec.actors.end(actor, "ok")
                rec.emit("exit", None, None, actor=actor)

    def join(self, timeout=None):
        orig_join(self, timeout)
        try:
            if not self.is_alive():
                target = rec.actors._threads.get(id(self))
                if target is not None:
                    rec.emit("join", target, None)
        except Exception as e:
            rec.fault("thread.join", e)

    patch(Thread, "start", start)
    patch(Thread, "_bootstrap_inner", _bootstrap_inner)
    patch(Thread, "join", join)

    st = state(rec)
    st.prev_hook = threading.excepthook

    def excepthook(args):
        if st.hook_active:
            _thread_crashed(rec, args)
        st.prev_hook(args)

    st.hook = excepthook
    threading.excepthook = excepthook


def _thread_crashed(rec, args) -> None:
    t = args.thread
    if t is None or t.ident != threading.get_ident() or args.exc_type is SystemExit:
        return
    crashed(
        rec,
        lambda: args.exc_value if args.exc_value is not None else args.exc_type(),
        "thread.excepthook",
    )


def unpatch_threads(rec) -> None:
    for name in ("start", "_bootstrap_inner", "join"):
        unpatch(threading.Thread, name)
    st = state(rec)
    if threading.excepthook is st.hook:
        threading.excepthook = st.prev_hook
    else:  # replaced by someone else since: ours stays in their chain, inert
        st.hook_active = False
