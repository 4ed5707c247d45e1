"""The patched standard library behaves exactly like the original: CPython's own
tests of queue, threading, asyncio queues, locks and TaskGroups give the same results
with a recording running as without. The asyncio lock tests are recorded as the
program's own code (named in `modules`), so that every lock they make is traced.

Each module runs twice, in two subprocesses at once (recorded and not), and the
outcomes are compared test by test; recorded once through `scope_nb.start()` and once
under `scope-nb run` (persistence, its flusher thread and the tracing of all user code).
The whole modules run (each takes seconds, not minutes: together about 30 s per
interpreter); test_threading's tests that start fresh interpreters exercise the recorder
only in the parent, which is the point.
"""

import json
import subprocess
import sys

import pytest

RUNNER = r"""
import json, sys, unittest
record = sys.argv[1] != "plain"
if record:
    import scope_nb
    scope_nb.start(max_events=20_000, modules=sys.argv[2:] if sys.argv[1] == "own" else ())
suite = unittest.defaultTestLoader.loadTestsFromNames(sys.argv[2:])
result = unittest.TextTestRunner(stream=sys.stderr, verbosity=0).run(suite)
trace = scope_nb.stop() if record else None
errors = trace.errors if record else {}
# the trace's frames are built too (test_threading names threads from undecodable bytes)
shown = (trace.events().height, trace.actors().height) if record else (0, 0)
bad = sorted(t.id() for t, _ in result.failures + result.errors)
bad += sorted(t.id() for t in result.unexpectedSuccesses)
for t, tb in result.failures + result.errors:
    print(t.id(), tb[-2000:], file=sys.stderr)
out = {"run": result.testsRun, "skipped": len(result.skipped), "bad": bad, "shown": shown}
print(json.dumps({**out, "recorder_errors": errors}))
"""

MODULES = [
    "test.test_queue",
    "test.test_threading",
    "test.test_threading_local",
    "test.test_asyncio.test_queues",
    "test.test_asyncio.test_taskgroups",
    "test.test_asyncio.test_locks",
]
OWN = {"test.test_asyncio.test_locks"}  # recorded as the program's own code


def _start(mode: str, module: str, cwd) -> subprocess.Popen:
    if mode == "cli":  # the runner itself untouched, recorded from outside by the CLI
        runner = cwd / "runner.py"
        runner.write_text(RUNNER)
        cmd = [
            sys.executable,
            "-m",
            "scope_nb",
            "run",
            "-q",
            "-o",
            str(cwd / "trace"),
            str(runner),
            "plain",
            module,
        ]
    else:
        cmd = [sys.executable, "-c", RUNNER, mode, module]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd)


def _outcome(proc: subprocess.Popen) -> tuple[dict, str]:
    out, err = proc.communicate(timeout=240)
    lines = out.strip().splitlines()
    assert lines, f"the test runner printed nothing (exit code {proc.returncode}):\n{err[-3000:]}"
    return json.loads(lines[-1]), err


@pytest.mark.timeout(300)
@pytest.mark.parametrize("module", MODULES)
def test_cpython_tests_same_results_under_recording(module, tmp_path):
    plain, recorded, log = _both(module, "own" if module in OWN else "record", tmp_path)
    assert recorded["bad"] == plain["bad"], f"differs under recording:\n{log[-4000:]}"
    assert (recorded["run"], recorded["skipped"]) == (plain["run"], plain["skipped"])
    assert recorded["recorder_errors"] == {}
    assert min(recorded["shown"]) > 0


@pytest.mark.timeout(300)
@pytest.mark.parametrize("module", MODULES)
def test_cpython_tests_same_results_under_scope_nb_run(module, tmp_path):
    import scope_nb

    plain, recorded, log = _both(module, "cli", tmp_path)
    assert recorded["bad"] == plain["bad"], f"differs under scope-nb run:\n{log[-4000:]}"
    assert (recorded["run"], recorded["skipped"]) == (plain["run"], plain["skipped"])
    trace = scope_nb.load(tmp_path / "recorded" / "trace")
    assert dict(trace.errors) == {}
    assert len(trace) > 0


def _both(module: str, mode: str, tmp_path) -> tuple[dict, dict, str]:
    (tmp_path / "plain").mkdir()
    (tmp_path / "recorded").mkdir()
    plain_proc = _start("plain", module, tmp_path / "plain")
    recorded_proc = _start(mode, module, tmp_path / "recorded")
    plain, _ = _outcome(plain_proc)
    recorded, log = _outcome(recorded_proc)
    assert plain["run"] > 0
    return plain, recorded, log
