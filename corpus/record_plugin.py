"""pytest plugin: the whole test session under `scope_nb.record(modules=[...])`.

`python -m pytest -p corpus.record_plugin ...` with SCOPE_CORPUS_MODULES (comma-separated)
and SCOPE_CORPUS_OUT (a JSON path). Recording starts in pytest_configure, before the test
modules are imported, so the library is traced the way a user's `record()` around their
own code would trace it; it stops after the last test, and the recorder's own view
(errors, their samples, events, drops) goes to the JSON file for corpus/run.py to compare.
"""

from __future__ import annotations

import json
import os

import scope_nb

_state: dict = {}


def pytest_configure(config) -> None:
    modules = [m for m in os.environ.get("SCOPE_CORPUS_MODULES", "").split(",") if m]
    _state["trace"] = scope_nb.start(modules=modules)


def pytest_unconfigure(config) -> None:
    if "trace" not in _state:
        return
    trace = scope_nb.stop()
    out = os.environ.get("SCOPE_CORPUS_OUT")
    if out:
        with open(out, "w") as f:
            json.dump(summary(trace), f, indent=1, default=repr)


def summary(trace) -> dict:
    """What the corpus reports of one trace: the same for an in-process and a loaded one."""
    return {
        "events": len(trace),
        "errors": dict(trace.errors),
        "error_samples": dict(trace.meta.get("error_samples", {})),
        "dropped": dict(trace.meta.get("dropped", {})),
    }
