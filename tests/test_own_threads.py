"""The recorder's own threads are invisible: none for an in-memory recording, none in
`threading.enumerate()` / `active_count()` when persisting, sampling memory and
watching for hangs, none in a forked child until it needs one, and none that keeps
the interpreter from exiting."""

import json
import os
import subprocess
import sys
import textwrap
import threading

import pytest

import scope_nb as scope
from scope_nb.recorder import own_threads, session
from scope_nb.store.flusher import flusher_of

_THREADS = {"scope_nb-flusher", "scope_nb-memory", "scope_nb-watchdog"}
_FORK_WARNING = pytest.mark.filterwarnings(
    "ignore:This process .* is multi-threaded:DeprecationWarning"
)


def _visible():
    return [t.name for t in threading.enumerate()], threading.active_count()


def _work():
    lock, done = threading.Lock(), []
    threads = [
        threading.Thread(target=lambda: done.append(lock.acquire() and lock.release()))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(done)


def _dummies():
    return [t for t in threading._active.values() if isinstance(t, threading._DummyThread)]


def _until(check) -> None:
    """Wait, without a fixed sleep, for what a recorder thread does on its own."""
    pause = threading.Event()
    for _ in range(3000):
        if check():
            return
        pause.wait(0.01)
    raise AssertionError("the recorder thread never did it")


def test_an_in_memory_recording_starts_no_thread():
    frames, visible = len(sys._current_frames()), _visible()
    with scope.record():
        assert _work() == 3
        assert own_threads.running() == [] and len(sys._current_frames()) == frames
        assert _visible() == visible


def test_recorder_threads_run_but_threading_does_not_list_them(tmp_path):
    visible, frames, dummies = _visible(), len(sys._current_frames()), _dummies()
    with scope.record(
        persist_to_disk=True,
        persist_path=str(tmp_path),
        flush_interval=0.01,
        watchdog=0.05,
        memory_interval=0.01,
    ) as trace:
        rec = session.ACTIVE
        assert {t.name for t in own_threads.running()} == _THREADS
        _until(lambda: len(sys._current_frames()) == frames + 3)  # they run
        fl = flusher_of(rec)
        first = fl.flushes
        _until(lambda: fl.flushes > first + 2)  # the flusher thread wrote, more than once
        _until(lambda: trace.events("memory").height >= 3)  # the sampler emitted from its thread
        assert _work() == 3
        assert _visible() == visible
        assert _dummies() == dummies
        assert trace.actors().filter(kind="thread")["name"].str.starts_with("scope_nb").sum() == 0
    assert _visible() == visible
    trace.wait_written()  # stop() left the last flush running on a recorder thread
    assert own_threads.running() == []
    _until(lambda: len(sys._current_frames()) == frames)  # ended, not only told to


def _fork_and_report(child_work) -> dict:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, and leave without running the parent's cleanups
        try:
            os.close(r)
            report = child_work()
            os.write(w, json.dumps(report).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    return json.loads(data)


def _right_after_fork() -> dict:
    report = {
        "frames": len(sys._current_frames()),
        "own": [t.name for t in own_threads.running()],
        "visible": threading.active_count(),
        "recording": scope.is_recording(),
        "pid_recorded": session.ACTIVE.pid == os.getpid() if session.ACTIVE else None,
    }
    _work()  # the child's first thread: now it needs its recorder's threads
    report["own_later"] = sorted(t.name for t in own_threads.running())
    return report


@_FORK_WARNING
@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork")
@pytest.mark.parametrize("follow", [True, False], ids=["followed", "not-followed"])
def test_a_forked_child_has_no_recorder_thread(tmp_path, follow):
    with scope.record(
        persist_to_disk=True,
        persist_path=str(tmp_path),
        watchdog=0.5,
        memory_interval=0.5,
        follow_children=follow,
    ) as trace:
        assert {t.name for t in own_threads.running()} == _THREADS
        report = _fork_and_report(_right_after_fork)
        assert {t.name for t in own_threads.running()} == _THREADS  # the parent's came back
    trace.wait_written()
    assert report["frames"] == 1 and report["own"] == [] and report["visible"] == 1
    assert report["recording"] is True
    if follow:  # its own recording, whose threads start once it needs them
        assert report["pid_recorded"] is True
        assert report["own_later"] == sorted(_THREADS)
    else:  # the inherited recording goes on, unpersisted: it never writes the parent's files
        assert report["pid_recorded"] is False
        assert report["own_later"] == sorted(_THREADS - {"scope_nb-flusher"})


def test_the_interpreter_exits_with_a_recording_running_and_writes_its_last_rows(tmp_path):
    program = textwrap.dedent(f"""
        import threading
        import scope_nb as scope
        scope.start(persist_to_disk=True, persist_path={str(tmp_path)!r}, flush_interval=3600,
                    watchdog=0.5, memory_interval=3600)
        go = threading.Event()
        worker = threading.Thread(target=go.wait, name="last-worker")  # not a daemon
        worker.start()
        go.set()
        print(threading.active_count(), sorted(t.name for t in threading.enumerate()))
    """)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (os.getcwd(), os.environ.get("PYTHONPATH")) if p),
    }
    out = subprocess.run(
        [sys.executable, "-c", program],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert out.stderr == ""
    count, names = out.stdout.split(" ", 1)
    assert int(count) == 2 and "scope_nb" not in names
    trace = scope.load(tmp_path)
    worker = trace.actors().filter(name="last-worker").row(0, named=True)
    assert worker["outcome"] == "ok"  # written by the last flush, at exit, after the thread ended
