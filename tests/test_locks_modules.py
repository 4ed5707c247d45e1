"""Locks a module makes at import are traced when the module is named in
`record(modules=[...])` and imported by it (with the recording on), also from a
library directory. Of a module imported before recording, the lock objects that can be
traced in place (Semaphore, Event) are; its Lock, RLock and Condition stay the
program's untouched objects."""

import sys
import threading

import polars as pl
import pytest

import scope_nb as scope

_SOURCE = """
import logging
import threading

registry_lock = threading.Lock()
state_lock = threading.RLock()
changed = threading.Condition()
handler = logging.Handler()
slots = threading.BoundedSemaphore(2)
ready = threading.Event()


def register():
    with registry_lock, state_lock:
        with changed:
            changed.notify_all()
    with slots:
        ready.set()
"""


@pytest.fixture
def library(tmp_path, monkeypatch):
    """A module in a directory that reads as installed (site-packages), not imported."""
    lib = tmp_path / "site-packages"
    lib.mkdir()
    names = []

    def make(name):
        (lib / f"{name}.py").write_text(_SOURCE)
        names.append(name)
        return name

    monkeypatch.syspath_prepend(str(lib))
    yield make
    for name in names:
        sys.modules.pop(name, None)


def test_a_named_module_imported_by_the_recording_has_its_import_time_locks_traced(library):
    name = library("scope_nb_lib_locks")
    with scope.record(modules=[name]) as trace:
        mod = sys.modules[name]
        mod.register()
        with mod.handler.lock:
            pass
    assert trace.errors == {}
    taken = trace.events("lock_acquire")["target"].to_list()
    assert taken == ["registry_lock", "state_lock", "changed", "slots", "handler.lock"]
    assert trace.events("event_set")["target"].to_list() == ["ready"]
    assert trace.lock_graph().has_edge("registry_lock", "state_lock")
    assert trace.events("lock_acquire").filter(pl.col("target") == "changed")[
        "locks_held"
    ].to_list() == [["registry_lock", "state_lock"]]


def test_a_module_imported_before_recording_keeps_its_locks(library):
    name = library("scope_nb_lib_early")
    __import__(name)
    mod = sys.modules[name]
    before = (mod.registry_lock, mod.state_lock, mod.changed._lock)
    with scope.record(modules=[name]) as trace:
        mod.register()
    assert (mod.registry_lock, mod.state_lock, mod.changed._lock) == before
    assert type(mod.registry_lock) is type(threading.Lock())  # the program's own object
    # traced in place: the semaphore and the event; the C locks are the documented limit
    assert trace.events("lock_acquire")["target"].to_list() == ["slots"]
    assert trace.events("lock_release")["target"].to_list() == ["slots"]
    assert trace.events("event_set")["target"].to_list() == ["ready"]
    assert trace.errors == {}
