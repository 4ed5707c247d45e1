"""Actor lifecycle: threads, asyncio tasks and child processes are spawned, exit,
crash or are cancelled; executors and TaskGroups supervise their workers.

Patches (all at class level, removed at stop):

* `Thread.start` registers the thread (parent = the starting actor) and records a
  spawn; `Thread._bootstrap_inner` runs in the new thread and records its exit;
  `threading.excepthook` (chained to the hook found at start) records a crash;
  `Thread.join` records a join (a happens-before edge).
* `BaseEventLoop.create_task` (so a task factory already set still runs) records
  the spawn of a task and, by a done callback, its exit / crash / cancel.
  `BaseEventLoop.run_forever` marks the thread as an event-loop thread so events
  are attributed to the running task.
* `BaseProcess.start` records a child process; one recorder thread waits on the
  children's sentinels and records each exit code.
* ThreadPoolExecutor / ProcessPoolExecutor / TaskGroup become supervisor actors
  of the threads, processes and tasks they start.
"""

from __future__ import annotations

import asyncio
import asyncio.base_events
import concurrent.futures as cf
import functools
import itertools
import os
import signal
import sys
import threading
import traceback
import weakref
from typing import Any

from ... import clock
from .. import session
from ..patching import original, patch, unpatch

_NAMED_LATE = sys.version_info < (3, 13)
_ctx = threading.local()  # .supervisor: the executor / TaskGroup starting a worker right now
_TB_FRAMES = 50
_ENDING = 0.05  # s: how long a child whose sentinel is ready may take to end


def exc_text(rec, exc: BaseException) -> tuple[str, str, str | None]:
    """(short "ExcType|repr", detail with the traceback lines, file:line that raised)."""
    short = f"{type(exc).__qualname__}|{rec.fmt.repr(exc)}"
    tb = exc.__traceback__
    location = None
    if tb is not None:
        last = tb
        while last.tb_next is not None:
            last = last.tb_next
        location = f"{last.tb_frame.f_code.co_filename}:{last.tb_lineno}"
        lines = "".join(traceback.format_tb(tb, limit=-_TB_FRAMES))
        return short, f"{short}\n{lines}", location
    return short, short, location


class _State:
    """What one recording's lifecycle patches keep between install and uninstall."""

    def __init__(self, rec):
        self.rec = rec
        self.crashed: set[str] = set()  # thread actors whose crash was recorded
        self.supervisors: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.numbers = itertools.count(1)
        self.prev_hook: Any = None
        self.hook: Any = None
        self.hook_active = True
        self.waiter = _ProcessWaiter(rec)
        self.live_tasks: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # before 3.13 only


def _state(rec) -> _State:
    return rec.parts.actors


# -- supervisors --------------------------------------------------------------------------
def _supervisor(rec, owner, kind: str, name: str | None) -> str:
    """The actor of an executor / TaskGroup, registered (with a spawn) at first sight."""
    st = _state(rec)
    actor = st.supervisors.get(owner)
    if actor is None:
        parent = rec.current_actor()
        label = name or f"{type(owner).__name__}-{next(st.numbers)}"
        with rec.actors.lock:
            actor = rec.actors.new(kind, label, parent)
        st.supervisors[owner] = actor
        rec.emit("spawn", actor, label, actor=parent, raw=True)
    return actor


def _end_supervisor(rec, owner, failure: BaseException | None) -> None:
    actor = _state(rec).supervisors.get(owner)
    if actor is None or rec.actors.rows[actor]["ended"] is not None:
        return
    if failure is None:
        rec.actors.end(actor, "ok")
        rec.emit("exit", None, None, actor=actor)
    elif isinstance(failure, asyncio.CancelledError):
        rec.actors.end(actor, "cancelled")
        rec.emit("cancel", None, None, actor=actor)
    else:
        short, detail, location = exc_text(rec, failure)
        rec.actors.end(actor, "crashed", short)
        rec.emit("crash", None, detail, actor=actor, location=location, raw=True)


class _supervising:
    """Within this block, workers started in this thread belong to `actor`."""

    def __init__(self, actor: str | None):
        self.actor = actor

    def __enter__(self):
        self.prev = getattr(_ctx, "supervisor", None)
        _ctx.supervisor = self.actor

    def __exit__(self, *exc):
        _ctx.supervisor = self.prev


# -- threads ------------------------------------------------------------------------------
def _thread_patches(rec) -> None:
    Thread = threading.Thread
    orig_start, orig_inner, orig_join = Thread.start, Thread._bootstrap_inner, Thread.join

    def start(self):
        actor = parent = None
        try:
            if self._initialized and not self._started.is_set():
                t0 = clock.perf_ns()
                parent = rec.current_actor()
                actor = rec.actors.register_thread(self, parent, getattr(_ctx, "supervisor", None))
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
            if actor is not None and actor not in _state(rec).crashed:
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

    st = _state(rec)
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
    _crashed(rec, lambda: args.exc_value if args.exc_value is not None else args.exc_type(), "thread.excepthook")


def _crashed(rec, exception, where: str) -> None:
    """The running thread's actor ends, crashed by `exception()` (a critical event);
    a failure is counted under `where`."""
    try:
        actor = rec.buffer().actor
        short, detail, location = exc_text(rec, exception())
        _state(rec).crashed.add(actor)
        rec.actors.end(actor, "crashed", short)
        rec.emit("crash", None, detail, actor=actor, location=location, raw=True)
    except Exception as e:
        rec.fault(where, e)


def _unpatch_threads(rec) -> None:
    for name in ("start", "_bootstrap_inner", "join"):
        unpatch(threading.Thread, name)
    st = _state(rec)
    if threading.excepthook is st.hook:
        threading.excepthook = st.prev_hook
    else:  # replaced by someone else since: ours stays in their chain, inert
        st.hook_active = False


# -- asyncio tasks --------------------------------------------------------------------------
def _task_patches(rec) -> None:
    Loop = asyncio.base_events.BaseEventLoop
    orig_create, orig_run = Loop.create_task, Loop.run_forever

    def create_task(self, coro, *args, **kwargs):
        sup = getattr(_ctx, "supervisor", None)
        _ctx.supervisor = None  # an eager first step must not inherit it
        parent = None
        try:
            t0 = clock.perf_ns()
            b = rec.buffer()
            if not b.loopy and asyncio._get_running_loop() is self:
                b.loopy = True
            parent = rec.current_actor(b)
        except Exception as e:
            rec.fault("task.create", e)
        try:
            task = orig_create(self, coro, *args, **kwargs)
        finally:
            _ctx.supervisor = sup
        if parent is not None and hasattr(task, "add_done_callback"):
            try:
                _task_spawned(rec, task, parent, sup, t0)
            except Exception as e:
                rec.fault("task.create", e)
        return task

    def run_forever(self):
        b = rec.buffer()
        was, b.loopy = b.loopy, True
        try:
            return orig_run(self)
        finally:
            b.loopy = was

    patch(Loop, "create_task", create_task)
    patch(Loop, "run_forever", run_forever)
    if asyncio._get_running_loop() is not None:  # installed from inside a loop (a notebook cell)
        rec.buffer().loopy = True


def _task_spawned(rec, task, parent: str, sup: str | None, t0: int) -> None:
    actor = rec.actors.task_actor(task, rec, parent=parent, supervisor=sup)
    row = rec.actors.rows[actor]
    if row["parent"] is None:  # first seen while its eager first step ran
        row["parent"], row["supervisor"] = parent, sup
    rec.emit("spawn", actor, task.get_name(), actor=parent, ts=t0, raw=True)
    task.add_done_callback(functools.partial(_task_done, rec, actor))
    if _NAMED_LATE:
        _state(rec).live_tasks[actor] = task


def _rename(rec, actor: str, task) -> None:
    """Before 3.13, asyncio.create_task names a task after the loop created it."""
    if _NAMED_LATE:
        rec.actors.rows[actor]["name"] = task.get_name()


def _task_done(rec, actor: str, task) -> None:
    try:
        _rename(rec, actor, task)
        if task.cancelled():
            rec.actors.end(actor, "cancelled")
            rec.emit("cancel", None, None, actor=actor)
            return
        exc = task._exception  # read without marking it retrieved
        if exc is None:
            rec.actors.end(actor, "ok")
            rec.emit("exit", None, task.result(), actor=actor)
        else:
            short, detail, location = exc_text(rec, exc)
            rec.actors.end(actor, "crashed", short)
            rec.emit("crash", None, detail, actor=actor, location=location, raw=True)
    except Exception as e:
        rec.fault("task.done", e)


def _taskgroup_patches(rec) -> None:
    TG = asyncio.TaskGroup
    orig_create, orig_exit = TG.create_task, TG.__aexit__

    def create_task(self, coro, *args, **kwargs):
        group = None
        try:
            if getattr(self, "_entered", False) and not getattr(self, "_exiting", False):
                group = _supervisor(rec, self, "taskgroup", None)
        except Exception as e:
            rec.fault("taskgroup", e)
        with _supervising(group):
            task = orig_create(self, coro, *args, **kwargs)
        actor = rec.actors._tasks.get(id(task))
        if actor is not None:  # before 3.13 the task is named after it was created
            rec.actors.rows[actor]["name"] = task.get_name()
        return task

    async def __aexit__(self, et, exc, tb):
        failure = None
        try:
            return await orig_exit(self, et, exc, tb)
        except BaseException as e:
            failure = e
            raise
        finally:
            et = exc = tb = None
            try:
                _end_supervisor(rec, self, failure)
            except Exception as e:
                rec.fault("taskgroup", e)
            failure = None

    patch(TG, "create_task", create_task)
    patch(TG, "__aexit__", __aexit__)


# -- executors ------------------------------------------------------------------------------
def _executor_patches(rec) -> None:
    TPE, PPE = cf.ThreadPoolExecutor, cf.ProcessPoolExecutor

    def supervised(cls, name, label):
        orig = getattr(cls, name)

        @functools.wraps(orig)
        def method(self, *args, **kwargs):
            try:
                actor = _supervisor(rec, self, "executor", label(self))
            except Exception as e:
                rec.fault("executor", e)
                actor = None
            with _supervising(actor):
                return orig(self, *args, **kwargs)

        patch(cls, name, method)

    def ended(cls):
        orig = cls.shutdown

        @functools.wraps(orig)
        def shutdown(self, *args, **kwargs):
            result = orig(self, *args, **kwargs)
            try:
                _end_supervisor(rec, self, None)
            except Exception as e:
                rec.fault("executor", e)
            return result

        patch(cls, "shutdown", shutdown)

    supervised(TPE, "_adjust_thread_count", lambda ex: getattr(ex, "_thread_name_prefix", None))
    supervised(PPE, "_spawn_process", lambda ex: None)
    supervised(PPE, "_start_executor_manager_thread", lambda ex: None)
    ended(TPE)
    ended(PPE)


_EXECUTOR_PATCHES = (
    (cf.ThreadPoolExecutor, ("_adjust_thread_count", "shutdown")),
    (cf.ProcessPoolExecutor, ("_spawn_process", "_start_executor_manager_thread", "shutdown")),
)


# -- processes --------------------------------------------------------------------------------
def _process_patches(rec) -> None:
    import multiprocessing.process as mpp

    orig_start = mpp.BaseProcess.start  # chains a wrapper already installed (children.py)
    waiter = _state(rec).waiter

    def start(self):
        parent = sup = None
        try:
            parent, sup = rec.current_actor(), getattr(_ctx, "supervisor", None)
        except Exception as e:
            rec.fault("process.start", e)
        with waiter.paused():  # no recorder thread alive while the program forks
            orig_start(self)
        if parent is None or self._popen is None:
            return
        try:
            known = f"P{self.pid}" in rec.actors.rows  # recorded by an inner wrapper already
            actor = rec.actors.register_process(self.pid, self.name, parent, sup)
            if not known:
                rec.emit("spawn", actor, self.name, actor=parent, raw=True)
            waiter.add(self, actor)
        except Exception as e:
            rec.fault("process.start", e)

    patch(mpp.BaseProcess, "start", start)

    orig_bootstrap = original(mpp.BaseProcess, "_bootstrap")

    def _bootstrap(self, *args, **kwargs):
        # in a child process: multiprocessing catches what escapes run() and exits
        # with code 1, so the crash is recorded here, in the thread that ran it
        self.run = _recording_run(self.run)
        return orig_bootstrap(self, *args, **kwargs)

    patch(mpp.BaseProcess, "_bootstrap", _bootstrap)


def _recording_run(run):
    @functools.wraps(run)
    def recorded():
        try:
            return run()
        except SystemExit as e:
            if e.code not in (None, 0):
                _main_crashed(e)
            raise
        except BaseException as e:
            _main_crashed(e)
            raise

    return recorded


def _main_crashed(exc: BaseException) -> None:
    rec = session.ACTIVE
    if rec is None or rec.parts.actors is None or rec.pid != os.getpid():
        return  # a fork child without a recording of its own: nobody would read it
    _crashed(rec, lambda: exc, "process.run")


class _ProcessWaiter:
    """One recorder thread waiting on the sentinels of the children this process
    started, recording each exit code. It is stopped while a child is being started,
    so that a fork never happens with a recorder thread running."""

    def __init__(self, rec):
        self.rec = rec
        self.procs: dict[int, tuple[Any, str, int]] = {}  # sentinel -> (process, actor, pid)
        # ended children whose exit code could not be read yet: the program reaped them
        # a moment before and multiprocessing has not stored the code; read again at close
        self.unsure: list[tuple[Any, str, int]] = []
        self.lock = original(threading, "Lock")()
        self.pausers = 0
        self.thread: threading.Thread | None = None
        self.wake_r = self.wake_w = None
        self.closed = False

    def add(self, proc, actor: str) -> None:
        with self.lock:
            if not self.closed:
                self.procs[proc.sentinel] = (proc, actor, proc.pid)
                self._ensure()

    def paused(self):
        waiter = self

        class _Paused:
            def __enter__(self):
                with waiter.lock:
                    waiter.pausers += 1
                    thread = waiter._stop_thread()
                if thread is not None:
                    thread.join()

            def __exit__(self, *exc):
                with waiter.lock:
                    waiter.pausers -= 1
                    waiter._ensure()

        return _Paused()

    def forget(self) -> None:
        """In a forked child: the thread, its pipe and the children were the parent's."""
        self.lock = original(threading, "Lock")()
        for fd in (self.wake_r, self.wake_w) if self.thread is not None else ():
            try:
                os.close(fd)
            except OSError:
                pass
        self.procs, self.unsure, self.pausers = {}, [], 0
        self.thread = None
        self.wake_r = self.wake_w = None

    def close(self) -> None:
        """Stop waiting; children that have already ended get their exit recorded."""
        from multiprocessing.connection import wait

        with self.lock:
            self.closed = True
            thread = self._stop_thread()
        if thread is not None:
            thread.join()
        with self.lock:
            procs, self.procs = self.procs, {}
            unsure, self.unsure = self.unsure, []
        ended = [procs[s] for s in wait(list(procs), 0)] if procs else []
        for item in ended + unsure:
            if not _running(item[2]):
                process_ended(self.rec, item[1], _exit_code(*item))

    def _ensure(self) -> None:  # under self.lock
        if self.thread is None and self.procs and not self.pausers and not self.closed:
            self.wake_r, self.wake_w = os.pipe()
            self.thread = self.rec.own_thread(functools.partial(self._run, self.wake_r), "process-waiter")
            self.thread.start()

    def _stop_thread(self):  # under self.lock
        thread, self.thread = self.thread, None
        if thread is not None:
            os.write(self.wake_w, b"x")
            os.close(self.wake_w)
        return thread

    def _run(self, wake_r: int) -> None:
        from multiprocessing.connection import wait

        try:
            while True:
                with self.lock:
                    sentinels = list(self.procs)
                ready = wait([wake_r, *sentinels])
                if wake_r in ready:
                    return
                for s in ready:
                    with self.lock:
                        item = self.procs.pop(s, None)
                    if item is not None:
                        code = _exit_code(*item)
                        if code is None and _running(item[2]) and not wait([wake_r], _ENDING):
                            code = _exit_code(*item)  # it closed its fds a moment before it ended
                        if code is None:
                            with self.lock:
                                self.unsure.append(item)
                        else:
                            process_ended(self.rec, item[1], code)
                with self.lock:
                    if self.thread is None or self.thread.ident != threading.get_ident():
                        return  # stopped meanwhile: _stop_thread closed the write end (its fd may be reused)
                    if not self.procs:
                        self.thread = None
                        os.close(self.wake_w)
                        return
        except Exception as e:
            self.rec.fault("process.waiter", e)
        finally:
            os.close(wake_r)


def _exit_code(proc, actor: str, pid: int) -> int | None:
    """The child's exit code, read without reaping it (the program's join does that);
    None while it runs. Never blocks: a child that exec'd another program has closed
    its sentinel but runs on, and waiting for it would hang the program's next
    Process.start() (which pauses this thread) and stop()."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG)
        if info is None:
            return None
        return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status
    except (ChildProcessError, AttributeError, OSError):
        popen = getattr(proc, "_popen", None)
        return getattr(popen, "returncode", None)


def _running(pid: int) -> bool:
    """The child has not ended, though its sentinel is ready (see _exit_code)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is None
    except (AttributeError, OSError):
        return False


def process_ended(rec, actor: str, code: int | None) -> None:
    """A child process's end from its exit code, recorded once, whoever (the waiter
    thread, the program's join or wait) sees it first."""
    why = f"exit code {code}"
    if code is not None and code < 0:
        try:
            why = f"killed by {signal.Signals(-code).name} (exit code {code})"
        except ValueError:
            pass
    with rec.actors.lock:
        row = rec.actors.rows.get(actor)
        if row is None or row["ended"] is not None:
            return
        ok = code is None or code == 0
        row.update(ended=clock.now(), outcome="ok" if ok else "crashed", exception=None if ok else why)
    if code is None or code == 0:
        rec.emit("exit", None, "exit code 0" if code == 0 else "exit code unknown", actor=actor, raw=True)
    else:
        rec.emit("crash", None, f"ChildProcessError|{why}", actor=actor, raw=True)


# -- install ------------------------------------------------------------------------------------
def install(rec) -> None:
    rec.parts.actors = _State(rec)
    _thread_patches(rec)
    _task_patches(rec)
    _taskgroup_patches(rec)
    _executor_patches(rec)
    _process_patches(rec)


def uninstall(rec) -> None:
    import multiprocessing.process as mpp

    st = rec.parts.actors
    if st is None:
        return
    _unpatch_threads(rec)
    for name in ("create_task", "run_forever"):
        unpatch(asyncio.base_events.BaseEventLoop, name)
    for name in ("create_task", "__aexit__"):
        unpatch(asyncio.TaskGroup, name)
    for cls, names in _EXECUTOR_PATCHES:
        for name in names:
            unpatch(cls, name)
    unpatch(mpp.BaseProcess, "start")
    unpatch(mpp.BaseProcess, "_bootstrap")
    st.waiter.close()
    for actor, task in list(st.live_tasks.items()):
        _rename(rec, actor, task)

