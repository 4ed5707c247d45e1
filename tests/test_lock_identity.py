"""A traced lock answers as the interpreter's lock where programs look at its type.

The recorder sees `threading.Lock()` / `RLock()` made by the program through a wrapper;
programs and libraries that inspect the type (trio asserts its lock's class lives in
`_thread`; CPython's tests call `type(lock)()` and expect the interpreter's answer) must
not see the difference.
"""

import _thread
import copy
import pickle
import threading

import pytest

import scope_nb


def _refusal(make):
    try:
        return type(make())()
    except TypeError as e:
        return str(e)


def _pickle_error(obj):
    with pytest.raises(TypeError) as e:
        pickle.dumps(obj)
    return str(e.value)


@pytest.mark.parametrize("factory", ["Lock", "RLock"])
def test_a_traced_lock_type_reads_as_the_interpreters(factory):
    real = getattr(threading, factory)()
    real_type = type(real)
    want_new = _refusal(getattr(threading, factory))
    want_pickle = _pickle_error(real)
    with scope_nb.record() as trace:
        lock = getattr(threading, factory)()
        with lock:
            pass
        got_type = type(lock)
        got_new = _refusal(getattr(threading, factory))
        got_pickle = _pickle_error(lock)
    assert (got_type.__module__, got_type.__name__, got_type.__qualname__) == (
        real_type.__module__,
        real_type.__name__,
        real_type.__qualname__,
    )
    assert repr(got_type) == repr(real_type)
    # the same TypeError text where the interpreter refuses, else the same kind of lock
    assert type(got_new) is type(want_new)
    if isinstance(want_new, str):
        assert got_new == want_new
    else:
        assert type(got_new) is real_type
    assert got_pickle == want_pickle
    acquired = trace.events().filter(trace.events()["kind"] == "lock_acquire")
    assert acquired.height == 1, "the lock is still recorded"


@pytest.mark.parametrize("factory", ["Lock", "RLock"])
def test_copying_a_traced_lock_fails_as_copying_the_interpreters(factory):
    with pytest.raises(TypeError) as want:
        copy.copy(getattr(threading, factory)())
    with scope_nb.record():
        lock = getattr(threading, factory)()
        with pytest.raises(TypeError) as got:
            copy.copy(lock)
    assert str(got.value) == str(want.value)


def test_isinstance_answers_as_for_the_interpreters_locks():
    with scope_nb.record():
        lock, rlock = threading.Lock(), threading.RLock()
        assert isinstance(rlock, _thread.RLock) and not isinstance(lock, _thread.RLock)
        if isinstance(threading.Lock, type):  # 3.13 on: threading.Lock is the type itself
            assert isinstance(lock, threading.Lock) and not isinstance(rlock, threading.Lock)


def test_trio_runs_when_imported_while_recording():
    """trio's entry queue is an `attrs.Factory(threading.RLock)` made at import and checked
    to be the interpreter's RLock; imported under recording, its runs must still work."""
    import subprocess
    import sys

    code = (
        "import scope_nb\n"
        "with scope_nb.record() as t:\n"
        "    import trio\n"
        "    async def main():\n"
        "        async with trio.open_nursery() as n:\n"
        "            n.start_soon(trio.sleep, 0)\n"
        "        return 42\n"
        "    print(trio.run(main))\n"
        "print(dict(t.errors))\n"
    )
    pytest.importorskip("trio")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["42", "{}"]
