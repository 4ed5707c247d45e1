"""Shared by every test: a test that fails while recording must not leave the
recorder running into the next one."""

import pytest

import scope_nb


@pytest.fixture(autouse=True)
def _no_recording_left():
    yield
    if scope_nb.is_recording():
        scope_nb.stop()
    # a persisted recording's last flush (left running by stop()) ends with its test, as
    # it would before the interpreter exits: the next test starts with no recorder thread
    scope_nb._control.settle_all()


@pytest.fixture(scope="session")
def shell():
    """The process's one in-process IPython shell (start_ipython hands it out once)."""
    from IPython.testing import globalipapp

    return globalipapp.start_ipython() or globalipapp.get_ipython()


@pytest.fixture
def ip(shell):
    """The shell with scope_nb's magics loaded for one test."""
    shell.run_line_magic("load_ext", "scope")
    yield shell
    if scope_nb.is_recording():
        scope_nb.stop()
    shell.run_line_magic("unload_ext", "scope")
