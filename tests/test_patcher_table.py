"""The declared patcher table: whatever the order patchers go in and come out, the
interpreter is exactly as it was (every attribute of the patched modules and their
classes, the profile/trace/monitoring hooks, the exception hooks, the environment)."""

import _thread
import asyncio
import builtins
import concurrent.futures
import logging
import multiprocessing.connection
import multiprocessing.process
import multiprocessing.queues
import multiprocessing.synchronize
import os
import queue
import random
import subprocess
import sys
import threading

import polars  # noqa: F401 - its import sets a malloc variable: before any snapshot
import pytest

import scope_nb as scope
from scope_nb.config import make_options
from scope_nb.recorder import own_threads, session
from scope_nb.recorder.patchers.table import PATCHERS

asyncio.get_event_loop_policy()  # made once, here, not by the first snapshot

_MODULES = [
    threading,
    queue,
    asyncio.locks,
    asyncio.queues,
    asyncio.tasks,
    asyncio.base_events,
    asyncio.events,
    asyncio.taskgroups,
    asyncio.futures,
    subprocess,
    multiprocessing.process,
    multiprocessing.queues,
    multiprocessing.connection,
    multiprocessing.synchronize,
    concurrent.futures.thread,
    concurrent.futures.process,
    concurrent.futures._base,
    _thread,
    logging,
]


def _interpreter() -> dict:
    """Every attribute of the patched modules and of the classes they define, by
    identity; and the process-wide hooks."""
    seen: dict = {}
    for module in _MODULES:
        for name, value in vars(module).items():
            seen[(module.__name__, name)] = id(value)
            if isinstance(value, type) and value.__module__ == module.__name__:
                for attr, v in vars(value).items():
                    seen[(module.__name__, name, attr)] = id(v)
    seen["hooks"] = (
        sys.getprofile(),
        sys.gettrace(),
        threading.getprofile(),
        threading.gettrace(),
        sys.excepthook,
        sys.unraisablehook,
        threading.excepthook,
        builtins.__build_class__,
    )
    if hasattr(sys, "monitoring"):
        seen["monitoring"] = [
            (sys.monitoring.get_tool(i), sys.monitoring.get_events(i)) for i in range(6)
        ]
    seen["environ"] = dict(os.environ)
    seen["meta_path"] = list(sys.meta_path)
    loop = asyncio.new_event_loop()
    try:
        seen["task_factory"] = loop.get_task_factory()
    finally:
        loop.close()
    return seen


def _diff(before: dict, after: dict) -> list:
    return sorted(str(k) for k in before.keys() | after.keys() if before.get(k) != after.get(k))


def _options(tmp_path):
    return make_options(
        persist_to_disk=True,
        persist_path=str(tmp_path),
        watchdog=0.5,
        memory_interval=0.5,
        slow_callback=0.05,
        races=True,
    )


_ORDERS = [("table", None), ("reverse", None), *((f"random-{seed}", seed) for seed in (1, 2, 3))]


@pytest.mark.parametrize(("name", "seed"), _ORDERS, ids=[n for n, _ in _ORDERS])
def test_any_install_and_uninstall_order_leaves_the_interpreter_as_it_was(tmp_path, name, seed):
    before = _interpreter()
    rec = session.Recorder(_options(tmp_path))
    rec.actors.start_process(rec)
    order = list(PATCHERS)
    if name == "reverse":
        order.reverse()
    elif seed is not None:
        random.Random(seed).shuffle(order)
    installed = []
    for cls in order:
        assert cls.wanted(rec), cls.name  # these options want every one of them
        p = cls()
        p.install(rec)
        installed.append(p)
    during = _interpreter()
    assert len(_diff(before, during)) > 20  # they did patch: the check can fail
    out = list(installed) if name == "table" else list(reversed(installed))
    if seed is not None:
        random.Random(seed + 100).shuffle(out)  # and out in yet another order
    for p in out:
        p.uninstall()
    assert _diff(before, _interpreter()) == []
    assert own_threads.running() == []


def test_every_table_entry_is_a_patcher_with_a_unique_name():
    names = [cls.name for cls in PATCHERS]
    assert len(set(names)) == len(names) == 11
    assert names[:4] == ["calls", "children", "mp_messages", "actors"]
    for cls in PATCHERS:
        for hook in (
            "install",
            "uninstall",
            "before_fork",
            "after_fork_in_parent",
            "after_fork_in_child",
        ):
            assert callable(getattr(cls, hook)), (cls.name, hook)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"tracing_level": "messages_only"},
        {"patch": False},
        {"watchdog": 0.5, "memory_interval": 0.5, "trace_all": True},
        {"persist_to_disk": True, "watchdog": 0.5, "memory_interval": 0.5},
        {"races": True},
    ],
)
def test_start_and_stop_leave_the_interpreter_as_it_was(tmp_path, options):
    if options.get("persist_to_disk"):
        options = {**options, "persist_path": str(tmp_path)}
    before = _interpreter()
    with scope.record(**options) as trace:
        lock = threading.Lock()
        q = queue.Queue()
        t = threading.Thread(target=lambda: q.put(1) if lock.acquire() else None)
        t.start()
        t.join()
        assert q.get() == 1
    assert _diff(before, _interpreter()) == []
    trace.wait_written()  # stop() left the last flush running on a recorder thread
    assert own_threads.running() == []
    assert session.ACTIVE is None and scope.current() is not None and not scope.is_recording()


def test_a_failed_start_undoes_every_patcher():
    before = _interpreter()
    with pytest.raises(ValueError, match="no_such_module_here"):
        scope.start(watchdog=0.5, memory_interval=0.5, modules=["no_such_module_here"])
    assert not scope.is_recording() and session.ACTIVE is None
    assert _diff(before, _interpreter()) == []
    assert own_threads.running() == []
