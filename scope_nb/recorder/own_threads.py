"""The recorder's own threads (flusher, watchdog, memory sampler, stall monitor, process
waiter): invisible to the program.

They are started with `_thread.start_new_thread`, not `threading.Thread`, so that
`threading.enumerate()` and `threading.active_count()` answer as without the recorder,
the interpreter never waits for them at exit (the last flush runs from atexit), and
they are not recorded. Their code must never call `threading.current_thread()`, which
would register a `_DummyThread` for them: they compare `threading.get_ident()`.

Around `os.fork()` (`scope_nb._control` calls the handlers here) the periodic ones
(those given their loop's `stop` event) are stopped before the fork, so none holds a
lock or half-written file the child would inherit, and restarted in the parent after it.
In the child none runs (as the child of any program has only the forking thread); one
asked to start there waits until the child first needs it: a new thread of its own, or a
full chunk of events (`wake`).
"""

from __future__ import annotations

import _thread
import threading
from collections.abc import Callable

IDENTS: set[int] = set()  # the idents of running recorder threads, in this process
_live: list[OwnThread] = []  # started, not yet ended
_pending: list[OwnThread] = []  # asked to start in a forked child, not yet needed
_paused: list[OwnThread] = []  # stopped for a fork, restarted after it
_in_forked_child = False
_FORK_PAUSE_S = 2.0  # the longest a fork waits for a periodic thread to finish its step


class OwnThread:
    """A recorder thread with the part of `threading.Thread`'s interface the recorder
    uses: start, join, is_alive, ident, name."""

    def __init__(self, target: Callable[[], None], name: str, stop: threading.Event | None = None):
        self.target = target
        self.name = f"scope_nb-{name}"
        self.stop = stop  # set: the target returns; given, the thread is paused around fork
        self.ident: int | None = None
        self.finished = False  # stopped for good: never restarted after a fork
        self._done = _thread.allocate_lock()  # held while the target runs

    def start(self) -> None:
        if _in_forked_child:
            if self not in _pending:
                _pending.append(self)
            return
        self._spawn()

    def _spawn(self) -> None:
        self._done.acquire()
        _live.append(self)
        try:
            _thread.start_new_thread(self._run, ())
        except BaseException:
            _live.remove(self)
            self._done.release()
            raise

    def _run(self) -> None:
        self.ident = ident = _thread.get_ident()
        IDENTS.add(ident)
        try:
            self.target()
        except BaseException:  # a thread of the recorder never reports into the program
            pass
        finally:
            IDENTS.discard(ident)
            if self in _live:
                _live.remove(self)
            self._done.release()

    def is_alive(self) -> bool:
        return self._done.locked() or self in _pending

    def join(self, timeout: float | None = None) -> None:
        if self in _pending:
            _pending.remove(self)
            return
        if self.ident == _thread.get_ident():
            return
        if self._done.acquire(True, -1 if timeout is None else timeout):
            self._done.release()

    def finish(self, timeout: float | None = None) -> None:
        """Stop for good (the owner's stop): set the stop event and wait for the end."""
        self.finished = True
        if self.stop is not None:
            self.stop.set()
        self.join(timeout)


def running() -> list[OwnThread]:
    """The recorder threads running now in this process."""
    return list(_live)


def wake() -> None:
    """In a forked child: start the recorder threads asked for there (the child now
    needs them). Cheap when there are none."""
    global _in_forked_child
    if _pending:
        _in_forked_child = False
        pending = list(_pending)
        _pending.clear()
        for t in pending:
            if not t.finished:
                t._spawn()


def before_fork() -> None:
    for t in list(_live):
        if t.stop is not None and not t.finished and t.ident != _thread.get_ident():
            _paused.append(t)
            t.stop.set()
            t.join(_FORK_PAUSE_S)


def after_fork_in_parent() -> None:
    paused = list(_paused)
    _paused.clear()
    for t in paused:
        if not t.finished and not t.is_alive():
            t.stop.clear()
            t._spawn()


def after_fork_in_child() -> None:
    global _in_forked_child
    _in_forked_child = True
    IDENTS.clear()
    for t in _live:  # they did not come along
        t._done = _thread.allocate_lock()
    _live.clear()
    for t in _paused:  # restarted once the child needs them
        t._done = _thread.allocate_lock()
        if not t.finished:
            t.stop.clear()
            _pending.append(t)
    _paused.clear()
