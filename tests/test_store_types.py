"""Persistence keeps types: a traced object's state read back from a saved or a
persisted trace, trusted or not, equals the live one for every value the live trace
gives as a real value; what could not be kept is a marked stand-in, never text."""

from __future__ import annotations

import json
import pickle
import threading

import pytest

import scope_nb as scope
from scope_nb.typed import decode, encode_payload
from scope_nb.values import Unpicklable


class Holder:
    """A plain class: its instances are copied through their __dict__."""

    def __init__(self):
        self.x = 1


class Account:
    def __init__(self):
        self.n = 0

    def fill(self, **values):
        for k, v in values.items():
            setattr(self, k, v)


VALUES = {
    "n": 6,
    "neg": -3,
    "f": 1.5,
    "tiny": 5e-324,
    "zero": -0.0,
    "yes": True,
    "no": False,
    "none": None,
    "s": "six",
    "empty": "",
    "nested": [1, [2, "x"], {"a": [None, 2.5], "b": {"c": True}}],
    "big": 10**40,
    "neg_big": -(2**64),
    "tup": (1, ("a", 2.0)),
    "st": {1, 2},
    "fs": frozenset({"k"}),
    "by": b"\x00\xff",
    "cx": 1 + 2j,
    "odd_keys": {1: "one", (2, 3): [4], "$marker": "kept"},
    "dollar": {"$int": "not a marker"},
    "inf": float("inf"),
}


def record(tmp_path, storage):
    """A traced object given every kind of value (and a lock, a plain instance and a
    list holding itself) by a real thread, persisted to disk while it runs."""
    acct = Account()
    ready = threading.Event()
    scope.start(
        persist_to_disk=True,
        persist_path=str(tmp_path / "persisted"),
        storage=storage,
        flush_interval=0.05,
    )
    scope.trace_object(acct, name="acct")

    def work():
        acct.fill(**VALUES)
        loop: list = [1]
        loop.append(loop)
        acct.fill(lock=threading.Lock(), holder=Holder(), loop=loop, holders=[Holder(), 2])
        acct.n += 1
        ready.set()

    t = threading.Thread(target=work, name="writer")
    t.start()
    t.join()
    assert ready.is_set()
    return scope.stop().wait_written()


@pytest.fixture(scope="module", params=["memory", "disk"])
def traces(request, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp(request.param)
    live = record(tmp_path, request.param)
    saved = live.save(tmp_path / "saved")
    return live, {
        "saved": scope.load(saved),
        "saved, trusted": scope.load(saved, trusted=True),
        "persisted": scope.load(tmp_path / "persisted"),
        "persisted, trusted": scope.load(tmp_path / "persisted", trusted=True),
    }


def _end(trace) -> int:
    return trace.state_timeline("acct")["ts"][-1]


def test_every_real_value_reads_back_equal_with_its_type(traces):
    live, loaded = traces
    want = live.get_state_at("acct", _end(live))
    assert want["n"] == 7 and type(want["big"]) is int
    for how, trace in loaded.items():
        got = trace.get_state_at("acct", _end(trace))
        for name, value in VALUES.items():
            if name == "n":
                value = 7
            assert got[name] == value and type(got[name]) is type(value), (how, name, got[name])
        assert repr(got["zero"]) == "-0.0" and got["nested"][2]["b"] == {"c": True}
        # a stand-in both ways
        assert got["lock"] == want["lock"] and isinstance(got["lock"], Unpicklable)
        assert repr(got["lock"]).startswith("<lock #")


def test_an_earlier_state_reads_back_too(traces):
    live, loaded = traces
    first = live.state_timeline("acct")["ts"][0]
    assert live.get_state_at("acct", first) == {"n": 0}
    for trace in loaded.values():
        assert trace.get_state_at("acct", first) == {"n": 0}


def test_what_untrusted_cannot_rebuild_is_marked_not_text(traces):
    live, loaded = traces
    want = live.get_state_at("acct", _end(live))
    assert type(want["holder"]) is Holder and want["holder"].x == 1  # live: the real instance
    assert want["loop"][1] is want["loop"]
    for how in ("saved", "persisted"):
        got = loaded[how].get_state_at("acct", _end(loaded[how]))
        # a program class is not imported untrusted: a stand-in of its type and number
        assert isinstance(got["holder"], Unpicklable) and repr(got["holder"]) == "<Holder #1>"
        assert isinstance(got["holders"][0], Unpicklable) and repr(got["holders"][0]) == "<Holder>"
        assert got["holders"][1] == 2
        # a list holding itself has no typed form: marked, with its recorded text
        assert isinstance(got["loop"], Unpicklable) and repr(got["loop"]) == "[1, <recursive list>]"
    for how in ("saved, trusted", "persisted, trusted"):
        got = loaded[how].get_state_at("acct", _end(loaded[how]))
        assert type(got["holder"]) is Holder and got["holder"].x == 1
        assert got["loop"][1] is got["loop"]


def test_the_typed_column_is_json_other_engines_read(traces):
    _, loaded = traces
    states = loaded["persisted"].states()
    typed: dict[str, str] = {}
    for row in states.iter_rows(named=True):
        for attr, text in zip(row["attrs"], row["json"], strict=True):
            typed.setdefault(attr, text)
    assert json.loads(typed["big"]) == {"$int": str(10**40)}  # exact as text, past int64
    assert json.loads(typed["nested"]) == [1, [2, "x"], {"a": [None, 2.5], "b": {"c": True}}]
    assert json.loads(typed["neg"]) == -3 and json.loads(typed["s"]) == "six"


@pytest.mark.parametrize(
    "value", [v for v in VALUES.values()] + [[], {}, (), Unpicklable.from_text("<X #2>", "X")]
)
def test_encoding_round_trips(value):
    """Through the recorder's own pickle of the value, as a states row holds it."""
    back = decode(encode_payload(pickle.dumps(value)))
    assert back == value and type(back) is type(value)


def test_a_pickle_naming_other_code_is_not_run_and_has_no_typed_form():
    class Boom:
        def __reduce__(self):
            return (print, ("ran",))

    assert encode_payload(pickle.dumps(Boom())) is None  # print is never looked up, nor called
    assert encode_payload(pickle.dumps(Holder)) is None  # a class is not a recorded value
    assert encode_payload(pickle.dumps((getattr, (1, "real")))) is None
    with pytest.raises(ValueError, match="unknown typed JSON marker"):
        decode('{"$code": "print(1)"}')
