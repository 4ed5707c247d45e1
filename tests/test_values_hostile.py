"""Hostile values recorded as call arguments, results and traced objects' attributes:
the program sees no difference (none of their code runs) and the recorder reports no
error."""

import threading

import calls_sample as cs
import pytest

import scope_nb as scope

RAN: list[str] = []
NEVER = threading.Event()  # never set: a repr waiting on it would hang the recording


class RaisingRepr:
    def __repr__(self):
        RAN.append("raise")
        raise RuntimeError("no repr")


class HangingRepr:
    def __repr__(self):
        RAN.append("hang")
        NEVER.wait()
        return "never"


class RecursingRepr:
    def __repr__(self):
        RAN.append("recurse")
        return repr(self)


class MutatingRepr:
    def __init__(self):
        self.reprs = 0

    def __repr__(self):
        RAN.append("mutate")
        self.reprs += 1
        return "mutated"


class Everything:
    """Every hook a capture could call, each counting its calls."""

    def __getattribute__(self, name):
        RAN.append(f"getattribute {name}")
        return object.__getattribute__(self, name)

    def __getattr__(self, name):
        RAN.append(f"getattr {name}")
        raise AttributeError(name)

    def __eq__(self, other):
        RAN.append("eq")
        return False

    def __hash__(self):
        RAN.append("hash")
        return 0

    def __len__(self):
        RAN.append("len")
        return 0

    def __iter__(self):
        RAN.append("iter")
        return iter(())

    def __str__(self):
        RAN.append("str")
        return ""

    def __reduce_ex__(self, protocol):
        RAN.append("reduce_ex")
        raise TypeError("no")

    def __copy__(self):
        RAN.append("copy")
        return self


class Box:
    def __init__(self):
        self.v = None

    def set(self, v):
        self.v = v


def _recursive_list():
    x = [1]
    x.append(x)
    return x


def _recursive_dict():
    d = {"a": 1}
    d["self"] = d
    return d


HOSTILE = {
    "raising repr": RaisingRepr,
    "hanging repr": HangingRepr,
    "recursing repr": RecursingRepr,
    "mutating repr": MutatingRepr,
    "every hook": Everything,
    "huge list": lambda: list(range(1_000_000)),
    "huge dict": lambda: {i: str(i) for i in range(200_000)},
    "huge str": lambda: "x" * 10_000_000,
    "recursive list": _recursive_list,
    "recursive dict": _recursive_dict,
    "generator": lambda: (i for i in range(3)),
    "lock": threading.Lock,
    "nested hostile": lambda: {"k": [RaisingRepr(), (Everything(), {HangingRepr()})]},
}


@pytest.mark.parametrize("make", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_argument_and_result(make):
    RAN.clear()
    value = make()
    with scope.record(modules=[cs]) as trace:
        assert cs.echo(value) is value
    calls = trace.function_calls()
    assert (
        calls.height == 1 and calls["args"][0].startswith("value=") and len(calls["args"][0]) <= 220
    )
    assert RAN == []
    assert trace.errors == {}


@pytest.mark.parametrize("make", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_attribute_of_a_traced_object(make):
    RAN.clear()
    box = Box()
    value = make()
    with scope.record() as trace:
        scope.trace_object(box, "box")
        box.set(value)
        box.v = value
        assert box.v is value
    assert RAN == []
    assert trace.errors == {}
    assert trace.state_timeline("box").height >= 2
    trace.get_state_at("box", trace.time_range()[1])  # decoding runs none of their code either
    assert RAN == []
    if isinstance(value, MutatingRepr):
        assert value.reprs == 0


def test_recursive_containers_come_back_recursive():
    box = Box()
    with scope.record() as trace:
        scope.trace_object(box, "box")
        box.set(_recursive_list())
    v = trace.get_state_at("box", trace.time_range()[1])["v"]
    assert v[0] == 1 and v[1] is v


def test_tracing_an_object_that_already_holds_hostile_values():
    RAN.clear()
    box = Box()
    box.v = [Everything(), RaisingRepr()]
    box.w = Everything()
    with scope.record() as trace:
        scope.trace_object(box, "box")
        box.set(None)
    assert RAN == []
    assert trace.errors == {}
    assert (
        trace.state_timeline("box")["state"][0]
        == "{v: [<Everything #1>, <RaisingRepr #1>], w: <Everything #2>}"
    )
