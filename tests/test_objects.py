"""Traced objects through the public API: method calls as messages, reads and writes
with actor / location / locks, objects of every shape, refusals, restoration."""

import collections
import copy
import io
import pickle
import threading

import polars as pl
import pytest

import scope_nb as scope
from scope_nb.values import Unpicklable


class Account:
    def __init__(self, balance=0):
        self.balance = balance
        self.history = []
        self.lock = threading.Lock()

    def deposit(self, amount):
        with self.lock:
            self.balance += amount
            self.history.append(amount)
        return self.balance

    def withdraw(self, amount):
        if amount > self.balance:
            raise ValueError("insufficient funds")
        self.balance -= amount

    @property
    def doubled(self):
        return self.balance * 2


class Slotted:
    __slots__ = ("x", "__hidden", "maybe")

    def __init__(self):
        self.x = 1
        self.__hidden = [1]

    def grow(self):
        self.__hidden.append(len(self.__hidden) + 1)

    @property
    def hidden(self):
        return self.__hidden


class Temperature:
    def __init__(self):
        self._celsius = 0.0

    @property
    def celsius(self):
        return self._celsius

    @celsius.setter
    def celsius(self, value):
        self._celsius = float(value)


def _line(text):
    with open(__file__) as f:
        return next(i for i, line in enumerate(f, 1) if line.strip() == text)


def test_method_calls_are_messages_from_the_caller():
    acct = Account(100)
    go = threading.Barrier(2)
    with scope.record() as trace:
        scope.trace_object(acct, "acct")

        def worker():
            go.wait()
            acct.deposit(5)

        t = threading.Thread(target=worker, name="depositor")
        t.start()
        go.wait()
        t.join()
        acct.deposit(7)
        with pytest.raises(ValueError):
            acct.withdraw(10_000)
    calls = trace.events(["call", "return", "exception"]).filter(pl.col("obj") == "acct")
    rows = calls.select("kind", "function", "detail").rows()
    assert rows == [
        ("call", "Account.deposit", "(5,)"),
        ("return", "Account.deposit", "105"),
        ("call", "Account.deposit", "(7,)"),
        ("return", "Account.deposit", "112"),
        ("call", "Account.withdraw", "(10000,)"),
        ("exception", "Account.withdraw", "ValueError|ValueError('insufficient funds')"),
    ]
    depositor = trace.resolve_actor("depositor")
    assert calls["actor"][0] == depositor and calls["actor"][2] != depositor
    assert calls.filter(pl.col("kind") == "return")["duration_ns"].min() >= 0


def test_writes_and_reads_carry_actor_location_and_locks():
    with scope.record() as trace:
        acct = scope.trace_object(Account(), "acct")
        acct.deposit(3)
        acct.balance = 50
    writes = trace.events("write").filter(pl.col("obj") == "acct")
    # the append to its history list is a write of that member (a key-level access)
    assert writes.select("target", "detail").rows() == [
        ("balance", "3"),
        ("history{3}", "<added>"),
        ("balance", "50"),
    ]
    # its lock, named after it
    assert writes["locks_held"].to_list() == [["acct.lock"], ["acct.lock"], []]
    assert writes["location"][0].endswith(f"test_objects.py:{_line('self.balance += amount')}")
    assert writes["location"][2].endswith(f"test_objects.py:{_line('acct.balance = 50')}")
    reads = trace.events("read").filter((pl.col("obj") == "acct") & (pl.col("target") == "balance"))
    assert reads["detail"].to_list()[:1] == ["0"]  # the read of `self.balance += amount`
    assert reads["locks_held"][0].to_list() == ["acct.lock"]
    # the in-place append inside deposit() shows as a state change caused by the method
    causes = trace.state_timeline("acct")["cause"].to_list()
    assert causes == ["trace_object", "balance = 3", "deposit", "balance = 50"]


def test_slots_properties_and_unpicklable_attributes():
    with scope.record() as trace:
        s = scope.trace_object(Slotted(), "s")
        s.grow()
        s.maybe = (i for i in range(3))  # a generator cannot be pickled
        temp = scope.trace_object(Temperature(), "temp")
        temp.celsius = 21
        assert temp.celsius == 21.0 and s.hidden == [1, 2]
    end = trace.time_range()[1]
    state = trace.get_state_at("s", end)
    assert state["x"] == 1 and state["_Slotted__hidden"] == [1, 2]
    assert isinstance(state["maybe"], Unpicklable) and "generator" in repr(state["maybe"])
    # the property is not state; the attribute behind it is
    assert trace.get_state_at("temp", end) == {"_celsius": 21.0}
    assert trace.events("write").filter(pl.col("obj") == "temp")["target"].to_list() == ["_celsius"]
    assert type(s) is Slotted and type(temp) is Temperature


def test_hostile_repr_does_not_break_recording():
    class Hostile:
        def __repr__(self):
            raise RuntimeError("no repr for you")

        def __eq__(self, other):
            raise RuntimeError("no eq either")

        __hash__ = object.__hash__

    holder = Account()
    with scope.record() as trace:
        scope.trace_object(holder, "holder")
        holder.weird = Hostile()
        holder.deposit(1)
    assert trace.errors == {}
    row = trace.state_timeline("holder").filter(pl.col("cause").str.starts_with("weird"))
    assert row["cause"][0] == "weird = <Hostile #1>"  # its __repr__ never ran
    # a class local to a function cannot be pickled: its stand-in keeps type and number
    weird = trace.get_state_at("holder", trace.time_range()[1])["weird"]
    assert isinstance(weird, Unpicklable) and repr(weird) == "<Hostile #1>"


def test_refuses_what_cannot_be_traced():
    with scope.record():
        for bad in (1, "text", [1, 2], object(), collections.OrderedDict(), io.StringIO()):
            with pytest.raises(TypeError, match="implemented in C|cannot trace"):
                scope.trace_object(bad)
        with pytest.raises(TypeError, match="instances of Python classes"):
            scope.trace_object(Account)
        with pytest.raises(TypeError, match="name must be a str"):
            scope.trace_object(Account(), name=5)
        scope.trace_object(Account(), "taken")
        with pytest.raises(ValueError, match="already used"):
            scope.trace_object(Account(), "taken")


def test_class_identity_pickling_and_restore():
    acct = Account(10)
    with scope.record():
        scope.trace_object(acct, "acct")
        assert isinstance(acct, Account) and acct.__class__ is Account
        assert type(acct).__name__ == "Account" and type(acct) is not Account
        del acct.lock  # locks cannot be pickled
        clone = pickle.loads(pickle.dumps(acct))
        assert type(clone) is Account and clone.balance == 10
        assert type(copy.copy(acct)) is Account and type(copy.deepcopy(acct)) is Account
        assert acct.doubled == 20
    assert type(acct) is Account
    acct.balance = 3  # no longer recorded, no error
    assert scope.current().events("write").filter(pl.col("detail") == "3").height == 0


def test_redaction_of_sensitive_attributes():
    class Login:
        def __init__(self):
            self.user = "ann"
            self.password = "hunter2"

    with scope.record() as trace:
        login = scope.trace_object(Login(), "login")
        login.password = "correct horse"
    text = str(trace.events().filter(pl.col("obj") == "login").rows()) + str(
        trace.states().drop("blobs").rows()
    )
    assert "hunter2" not in text and "correct horse" not in text
    assert trace.get_state_at("login", trace.time_range()[1]) == {
        "user": "ann",
        "password": "<redacted>",
    }
    assert trace.events("write").filter(pl.col("obj") == "login")["detail"].to_list() == [
        "<redacted>"
    ]


def test_traced_decorator():
    @scope.traced
    class Job:
        def __init__(self, n):
            self.n = n

        def step(self):
            self.n += 1

    before = Job(0)
    with scope.record() as trace:
        job = Job(5)
        job.step()
    after = Job(1)
    assert type(before) is Job and type(job) is Job and type(after) is Job
    assert trace.states()["obj"].unique().to_list() == ["Job-1"]
    assert trace.get_state_at(job, trace.time_range()[1]) == {"n": 6}


def test_tracing_levels():
    for level, has_calls, has_states in (
        ("full", True, True),
        ("states_only", False, True),
        ("messages_only", False, False),
    ):
        with scope.record(tracing_level=level) as trace:
            acct = scope.trace_object(Account(), "acct")
            acct.deposit(1)
        assert (trace.events("call").height > 0) is has_calls, level
        assert (trace.states().height > 0) is has_states, level
        assert (trace.events("write").height > 0) is has_states, level


def test_no_recorded_state_mixes_old_in_place_changes_with_a_later_write():
    class Ledger:
        def __init__(self):
            self.balances = {"alice": 100, "bob": 50}
            self.applied = 0

        def apply(self, src, dst, amount):
            self.balances[src] -= amount
            self.balances[dst] += amount
            self.applied += 1

    ledger = Ledger()
    with scope.record() as trace:
        scope.trace_object(ledger, "ledger")
        ledger.apply("alice", "bob", 30)
    states = [trace.get_state_at("ledger", t) for t in trace.state_timeline("ledger")["ts"]]
    assert states == [
        {"balances": {"alice": 100, "bob": 50}, "applied": 0},
        {"balances": {"alice": 70, "bob": 80}, "applied": 1},
    ]
