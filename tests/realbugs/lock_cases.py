"""Real lock bugs: lock-order inversions through logging handlers, locks taken again on the
same thread from a destructor or a signal handler, and a fork while another thread holds a
lock. Each bug program forces the interleaving of its report; each fixed twin does what
the real fix did."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import queue
import signal
import threading

import scope_nb as scope

from .harness import Case, both, fork_hazard, join, lock_cycle, lock_cycle_through, start


class _ListHandler(logging.Handler):
    """A handler that keeps its lines: logging.Handler's own lock guards every emit."""

    def __init__(self, on_emit=None):
        super().__init__()
        self.lines: list[str] = []
        self.on_emit = on_emit

    def emit(self, record):
        if self.on_emit is not None:
            self.on_emit()
        self.lines.append(self.format(record))


def _logger(name: str, handler: logging.Handler) -> logging.Logger:
    log = logging.getLogger(name)
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    return log


# -- storaged-project/blivet #1500 -------------------------------------------------------------
def _blivet(str_takes_lock: bool):
    blivet_lock = threading.RLock()

    class Device:
        def __str__(self):
            if str_takes_lock:  # the bug: __str__ was wrapped to run under the global lock
                with blivet_lock:
                    return "sda"
            return "sda"

    handler = _ListHandler()
    log = _logger("realbugs.blivet", handler)
    logged = threading.Event()

    def storage_task():  # holds the global lock and logs: takes the handler's lock inside it
        with blivet_lock:
            log.info("populating the device tree")
        logged.set()

    def dbus_main():  # logs a device: the handler's lock is held while __str__ runs
        logged.wait()
        log.info("device %s", Device())

    try:
        join(start(storage_task, dbus_main))
    finally:
        log.removeHandler(handler)


def blivet_bug():
    _blivet(str_takes_lock=True)


def blivet_fixed():
    _blivet(str_takes_lock=False)


# -- python/cpython gh-96727 -------------------------------------------------------------------
def _dict_config(emit_takes_module_lock: bool):
    module_lock = threading.RLock()  # stands for logging's module-level lock
    loggers: dict[str, logging.Logger] = {}

    def get_logger(name):  # like logging.getLogger: the module lock guards the registry
        with module_lock:
            return loggers.setdefault(name, logging.getLogger(name))

    side = get_logger("realbugs.library")
    handler = _ListHandler(
        on_emit=(lambda: get_logger("realbugs.library")) if emit_takes_module_lock else None
    )
    log = _logger("realbugs.app", handler)
    configured = threading.Event()

    def configure():  # dictConfig: module lock, then every handler's lock to flush and close it
        with module_lock:
            handler.acquire()
            try:
                handler.flush()
            finally:
                handler.release()
        configured.set()

    def app():  # an emit that calls into a library using getLogger: handler lock, then module lock
        configured.wait()
        log.info("request served by %s", side.name)

    try:
        join(start(configure, app))
    finally:
        log.removeHandler(handler)


def dict_config_bug():
    _dict_config(emit_takes_module_lock=True)


def dict_config_fixed():
    _dict_config(emit_takes_module_lock=False)


# -- getsentry/sentry-python #803 --------------------------------------------------------------
class _Deferred:
    """An object in a reference cycle whose destructor logs: only the collector frees it."""

    def __init__(self, on_del):
        self.me = self
        self.on_del = on_del

    def __del__(self):
        self.on_del()


@contextlib.contextmanager
def _collector_paused():
    """No automatic collection until the program collects: the destructor runs exactly there."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def sentry_gc_bug():
    queue_lock = threading.Lock()
    items: list[str] = []

    def destructor_log():  # the destructor reaches the transport queue while its lock is held
        if queue_lock.acquire(timeout=0.05):  # the same thread holds it: never granted
            items.append("destructor event")
            queue_lock.release()

    def worker():
        with _collector_paused():
            _Deferred(destructor_log)
            with queue_lock:
                gc.collect()  # a collection runs while the worker holds the queue lock
                items.clear()

    join(start(worker))


def sentry_gc_fixed():
    transport = queue.SimpleQueue()  # the fix: a queue whose put is safe from a destructor

    def worker():
        with _collector_paused():
            _Deferred(lambda: transport.put("destructor event"))
            transport.put("event")
            gc.collect()
        while not transport.empty():
            transport.get()

    join(start(worker))


# -- sabnzbd/sabnzbd #3534 ---------------------------------------------------------------------
def _sabnzbd(flag_first: bool):
    init_lock = threading.Lock()
    state = {"stopping": False, "signals": 0}

    def halt():
        # held by the interrupted frame below: never granted
        if not init_lock.acquire(timeout=0.05):
            return
        try:
            if state["signals"] == 1:
                signal.raise_signal(signal.SIGUSR1)  # a second termination signal during shutdown
        finally:
            init_lock.release()

    def sig_handler(signum, frame):
        state["signals"] += 1
        if state["stopping"]:
            return
        if flag_first:  # the fix: mark the shutdown as begun before halting
            state["stopping"] = True
        halt()
        state["stopping"] = True

    old = signal.signal(signal.SIGUSR1, sig_handler)
    try:
        signal.raise_signal(signal.SIGUSR1)
    finally:
        signal.signal(signal.SIGUSR1, old)


def sabnzbd_bug():
    _sabnzbd(flag_first=False)


def sabnzbd_fixed():
    _sabnzbd(flag_first=True)


# -- python/cpython gh-126434 ------------------------------------------------------------------
class _FlagEvent:
    """The shape of multiprocessing.Event: a flag read and written under one lock."""

    def __init__(self, event_lock):
        self._lock = event_lock
        self._flag = False

    def is_set(self):
        with self._lock:
            signal.raise_signal(signal.SIGUSR2)  # the signal lands while is_set holds the lock
            return self._flag

    def set(self):
        if self._lock.acquire(timeout=0.05):  # the same thread holds a plain Lock: never granted
            try:
                self._flag = True
            finally:
                self._lock.release()


def _mp_event(reentrant: bool):
    event_lock = threading.RLock() if reentrant else threading.Lock()  # the fix: a reentrant lock
    shutdown = _FlagEvent(event_lock)
    old = signal.signal(signal.SIGUSR2, lambda signum, frame: shutdown.set())
    try:
        shutdown.is_set()
    finally:
        signal.signal(signal.SIGUSR2, old)


def mp_event_bug():
    _mp_event(reentrant=False)


def mp_event_fixed():
    _mp_event(reentrant=True)


# -- python/cpython bpo-6721 -------------------------------------------------------------------
class _ForkLog:
    def __init__(self):
        self.child = None
        self.child_exit = None


# the fix as logging first made it: every handler's lock is taken before a fork and let go
# on both sides after, so no other thread is inside a handler when the process forks
_HELD_ACROSS_FORK: list = []


def _acquire_for_fork():
    for lock in _HELD_ACROSS_FORK:
        lock.acquire()


def _release_after_fork():
    for lock in reversed(_HELD_ACROSS_FORK):
        lock.release()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_acquire_for_fork,
        after_in_parent=_release_after_fork,
        after_in_child=_release_after_fork,
    )


def _fork(fixed: bool):
    handler_lock = threading.Lock()
    forks = scope.trace_object(_ForkLog(), "forks")
    held, done = threading.Event(), threading.Event()

    def emitter():  # another thread is inside a handler when the process forks
        with handler_lock:
            held.set()
            done.wait()

    ts = start(emitter)
    held.wait()
    if fixed:  # the fork takes the handler's lock first: it waits for the emit to end
        _HELD_ACROSS_FORK.append(handler_lock)
        done.set()
    try:
        pid = os.fork()
        if pid == 0:  # the child: only the forking thread survives
            os._exit(0 if handler_lock.acquire(timeout=0.05) else 3)
    finally:
        if fixed:
            _HELD_ACROSS_FORK.remove(handler_lock)
    forks.child = pid
    _, status = os.waitpid(pid, 0)
    forks.child_exit = os.waitstatus_to_exitcode(status)
    done.set()
    join(ts)


def fork_bug():
    _fork(fixed=False)


def fork_fixed():
    _fork(fixed=True)


def _child_stuck(trace):
    """The child exited with the code it uses for 'could not take the lock' (its wait is in
    a process the recording does not follow): the report is true of the run."""
    states = trace.state_timeline("forks")
    last = trace.get_state_at("forks", states["ts"][-1]) if states.height else {}
    return True if last.get("child_exit") == 3 else None


CASES = [
    Case(
        "lock-order inversion between a global lock and a logging handler's lock",
        "storaged-project/blivet #1500",
        blivet_bug,
        blivet_fixed,
        lock_cycle_through("potential", "blivet_lock", 2),
        "detect_deadlocks: potential cycle blivet_lock -> handler lock",
    ),
    Case(
        "logging config takes module lock then handler lock, emit takes them the other way",
        "python/cpython gh-96727",
        dict_config_bug,
        dict_config_fixed,
        lock_cycle_through("potential", "module_lock", 2),
        "detect_deadlocks: potential cycle module_lock -> handler lock",
    ),
    Case(
        "destructor run by the collector takes the queue lock its thread already holds",
        "getsentry/sentry-python #803",
        sentry_gc_bug,
        sentry_gc_fixed,
        lock_cycle("self", "queue_lock"),
        "detect_deadlocks: self-deadlock on queue_lock",
    ),
    Case(
        "second signal during shutdown re-enters a non-reentrant lock",
        "sabnzbd/sabnzbd #3534",
        sabnzbd_bug,
        sabnzbd_fixed,
        lock_cycle("self", "init_lock"),
        "detect_deadlocks: self-deadlock on init_lock",
    ),
    Case(
        "Event.set from a signal handler while is_set holds the same lock",
        "python/cpython gh-126434",
        mp_event_bug,
        mp_event_fixed,
        lock_cycle("self", "event_lock"),
        "detect_deadlocks: self-deadlock on event_lock",
    ),
    Case(
        "fork while another thread holds a logging handler's lock",
        "python/cpython bpo-6721",
        fork_bug,
        fork_fixed,
        both(fork_hazard("handler_lock", "emitter"), _child_stuck),
        "detect_deadlocks: fork_with_held_lock, handler_lock held by emitter at the fork",
    ),
]
