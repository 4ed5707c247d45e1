"""The lock a logging.Handler makes for itself is traced when the program makes the
handler while recording: logging through it while holding a lock orders the two."""

import logging
import threading

import polars as pl

import scope_nb as scope


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def _logger(handler):
    log = logging.getLogger("test_locks_handlers")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    return log


def test_a_handler_made_by_the_program_has_its_lock_traced():
    with scope.record() as trace:
        handler = _Lines()
        log = _logger(handler)
        registry = threading.Lock()
        try:
            with registry:
                log.info("under the registry lock")
        finally:
            log.removeHandler(handler)
    assert handler.lines == ["under the registry lock"]
    assert handler.lock.name == "handler.lock"
    taken = trace.events("lock_acquire").filter(pl.col("target") == "handler.lock")
    assert taken["locks_held"].to_list() == [["registry"]]
    assert trace.lock_graph().has_edge("registry", "handler.lock")
    assert trace.errors == {}


def test_handlers_made_before_recording_or_by_the_standard_library_keep_their_lock():
    before = _Lines()
    root = logging.getLogger()
    kept = list(root.handlers)
    with scope.record() as trace:
        logging.basicConfig(force=True)  # its StreamHandler is the standard library's own
        made = [h for h in root.handlers if h not in kept]
        try:
            with before.lock:
                pass
            with made[0].lock:
                pass
        finally:
            for h in made:
                root.removeHandler(h)
            for h in kept:
                root.addHandler(h)
    assert type(before.lock) is type(threading.RLock())
    assert type(made[0].lock) is type(threading.RLock())
    assert trace.events("lock_acquire").height == 0


def test_a_handler_made_after_stop_gets_the_interpreters_lock():
    with scope.record():
        pass
    assert type(_Lines().lock) is type(threading.RLock())
