"""trace_object never raises for an ordinary intent: naming a traced object again
renames it, tracing while not recording records nothing, wrong types are refused
with what was given and what is accepted."""

import threading

import polars as pl
import pytest

import scope_nb as scope


class Account:
    def __init__(self):
        self.balance = 0

    def deposit(self, n):
        self.balance += n


def test_naming_a_traced_object_again_renames_its_whole_history():
    acct = Account()
    done = threading.Event()
    with scope.record() as trace:
        scope.trace_object(acct)  # named after its variable
        acct.deposit(1)
        assert scope.trace_object(acct, "alice") is acct
        t = threading.Thread(target=lambda: (acct.deposit(2), done.set()))
        t.start()
        t.join()
        scope.trace_object(acct, "alice-2")
        acct.balance = 10
    assert done.is_set()
    assert set(trace.states()["obj"]) == {"alice-2"}
    assert set(trace.events().filter(pl.col("obj").is_not_null())["obj"]) == {"alice-2"}
    assert trace.state_timeline("alice-2")["cause"].to_list() == [
        "trace_object",
        "balance = 1",
        "balance = 3",
        "balance = 10",
    ]
    assert trace.get_state_at(acct, trace.time_range()[1]) == {"balance": 10}
    with pytest.raises(ValueError, match="acct"):
        trace.state_timeline("acct")  # the old name is gone: one identity
    assert trace.errors == {}


def test_a_name_of_another_object_is_refused():
    a, b = Account(), Account()
    with scope.record():
        scope.trace_object(a, "a")
        scope.trace_object(b, "b")
        with pytest.raises(ValueError, match="'a' is already used by another traced object"):
            scope.trace_object(b, "a")


def test_not_recording_or_level_off_records_nothing_and_returns_the_object():
    acct = Account()
    assert scope.trace_object(acct, "acct") is acct and type(acct) is Account
    with scope.record(tracing_level="off") as trace:
        assert scope.trace_object(acct, "acct") is acct
        acct.deposit(1)
    assert type(acct) is Account and trace.states().height == 0
    assert trace.events().height == 0


@pytest.mark.parametrize("recording", [False, True])
def test_wrong_types_name_what_was_given_and_what_is_accepted(recording):
    if recording:
        scope.start()
    try:
        with pytest.raises(TypeError, match="name must be a str or None, got int"):
            scope.trace_object(Account(), 3)
        with pytest.raises(
            TypeError, match="got the type .*accepted: an instance of a class defined in Python"
        ):
            scope.trace_object(Account)
        with pytest.raises(TypeError, match="got the module .*for a module use trace_module"):
            scope.trace_object(threading)
    finally:
        if recording:
            scope.stop()
