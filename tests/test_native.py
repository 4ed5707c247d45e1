"""Which back-end records (native C extension or pure Python), why, and what
`scope-nb version` says about it; the frame mirror's fallback to the public API."""

import importlib
import os
import platform
import subprocess
import sys
import sysconfig
import types
from collections import deque

import pytest

from scope_nb import cli
from scope_nb.recorder import buffer

SUPPORTED = (3, 11) <= sys.version_info[:2] <= (3, 15)
FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
# The suites comparing C with Python skip themselves when the extension is missing: on a
# Python it supports, a missing build must fail here rather than pass unnoticed.
MUST_BE_NATIVE = (
    platform.python_implementation() == "CPython"
    and SUPPORTED
    and not FREE_THREADED
    and os.environ.get("SCOPE_NB_PURE", "") in ("", "0")
)


def _scope_nb(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "scope_nb", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


@pytest.fixture
def fresh(monkeypatch):
    """backend_status() looks again (the first look is kept per process)."""
    monkeypatch.setattr(buffer, "_native", None)
    monkeypatch.delenv("SCOPE_NB_PURE", raising=False)


@pytest.mark.skipif(not MUST_BE_NATIVE, reason="no native back-end expected here")
def test_native_in_use_on_supported_pythons():
    st = buffer.backend_status()
    assert (st.backend, st.reason) == ("native", "")
    assert buffer.fast_module() is importlib.import_module("scope_nb.recorder._fasthooks")
    assert st.tested


@pytest.mark.skipif(not MUST_BE_NATIVE, reason="no native back-end expected here")
def test_frame_mirror_verified_on_supported_pythons():
    mod = buffer.fast_module()
    assert mod.FRAME_MIRROR.startswith(f"CPython {sys.version_info[0]}.{sys.version_info[1]} ")
    assert buffer.backend_status().frames == f"frame mirror of {mod.FRAME_MIRROR}"
    assert buffer._frame_probe(mod, object(), "b", 1, 2, k=3) is None


def test_version_command():
    out = _scope_nb("version")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("scope-nb ")
    assert lines[1].startswith(f"Python {platform.python_version()}")
    st = buffer.backend_status()
    assert lines[2].startswith(f"back-end: {st.backend} (")
    if MUST_BE_NATIVE:
        assert lines[2] == f"back-end: native ({st.frames})"
    assert _scope_nb("--version").stdout == out.stdout


def test_version_says_why_pure():
    out = _scope_nb("version", env=dict(os.environ, SCOPE_NB_PURE="1"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[2] == "back-end: pure (SCOPE_NB_PURE is set)"


def test_not_built(fresh, monkeypatch):
    real = importlib.import_module

    def no_extension(name, *args):
        if name.endswith("._fasthooks"):
            raise ImportError(f"No module named {name!r}")
        return real(name, *args)

    monkeypatch.setattr(buffer.importlib, "import_module", no_extension)
    st = buffer.backend_status()
    assert st.backend == "pure"
    assert (
        st.reason == "the C extension is not built: No module named 'scope_nb.recorder._fasthooks'"
    )
    assert buffer.fast_module() is None
    assert "back-end: pure (the C extension is not built: " in cli._version_text()


def test_free_threaded(fresh, monkeypatch):
    real = sysconfig.get_config_var
    monkeypatch.setattr(
        buffer.sysconfig,
        "get_config_var",
        lambda name: 1 if name == "Py_GIL_DISABLED" else real(name),
    )
    st = buffer.backend_status()
    assert (st.backend, st.reason) == ("pure", "free-threaded build (the C hot paths need the GIL)")
    assert buffer.fast_module() is None


def test_self_test_failure(fresh, monkeypatch):
    broken = types.SimpleNamespace(Col=lambda typecode: deque(maxlen=1))  # keeps one value only
    monkeypatch.setattr(buffer.importlib, "import_module", lambda name, *a: broken)
    st = buffer.backend_status()
    assert (st.backend, st.reason) == ("pure", "self-test failed: Col does not keep int64 values")


def test_frame_mirror_mismatch_falls_back_to_public_api(fresh, monkeypatch):
    mod = pytest.importorskip("scope_nb.recorder._fasthooks", reason="the C extension is not built")
    on = []
    fake = types.SimpleNamespace(
        Col=mod.Col,
        FRAME_MIRROR="CPython x.y test",
        frame_probe=lambda: "local 0 differs",
        use_frame_mirror=lambda flag: on.append(flag) or False,
    )
    monkeypatch.setattr(buffer.importlib, "import_module", lambda name, *a: fake)
    st = buffer.backend_status()
    assert st.backend == "native"
    assert st.frames == "public frame API (frame mirror self-test failed: local 0 differs)"
    assert on == [False]


def test_untested_python(monkeypatch):
    monkeypatch.setattr(buffer, "NEWEST_TESTED", (3, 10))
    assert buffer.backend_status().tested is False
    assert "(untested: newer than 3.10)" in cli._version_text().splitlines()[1]


@pytest.mark.skipif(not MUST_BE_NATIVE, reason="no native back-end expected here")
@pytest.mark.parametrize("capture_args", [True, False])
def test_public_frame_path_records_the_same(monkeypatch, capture_args):
    """With the mirror off (as after a failed self-test), the C callbacks read arguments
    through the public API and still record what the Python ones do."""
    import test_fasthooks

    mod = buffer.fast_module()
    assert mod.use_frame_mirror(False) is False
    try:
        test_fasthooks.test_same_calls_single_thread(monkeypatch, capture_args)
    finally:
        assert mod.use_frame_mirror(True) is True
