"""Shared by every test: a test that fails while recording must not leave the
recorder running into the next one."""

import pytest

import scope_nb


@pytest.fixture(autouse=True)
def _no_recording_left():
    yield
    if scope_nb.is_recording():
        scope_nb.stop()
