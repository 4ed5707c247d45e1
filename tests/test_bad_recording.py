"""Bad input on the recording side: refused at the call that got it with a message
naming it, or recorded without changing what the program does, with no recorder
fault lost or raised."""

import math
import queue
import sys
import threading

import pytest

import scope_nb as scope
from scope_nb.values import Unpicklable


def _outcome(fn):
    try:
        return "ok", fn()
    except Exception as e:
        return type(e), str(e)


# -- options -------------------------------------------------------------------------------


def test_start_with_a_module_that_does_not_import_undoes_every_patch():
    put, lock = queue.Queue.__dict__["_put"], threading.Lock
    with pytest.raises(ValueError, match="no_such_module_xyz"):
        scope.start(modules=["no_such_module_xyz"])
    assert not scope.is_recording()
    assert queue.Queue.__dict__["_put"] is put and threading.Lock is lock
    if sys.version_info >= (3, 12):
        assert "scope_nb" not in [sys.monitoring.get_tool(i) for i in range(6)]
    with scope.record() as trace:  # and the next recording works
        q = queue.Queue()
        q.put(1)
        q.get()
    assert trace.events("send").height == 1


@pytest.mark.parametrize(
    "name, value",
    [
        ("sample_rate", math.nan),
        ("flush_interval", math.nan),
        ("memory_interval", math.nan),
        ("watchdog", math.inf),
        ("slow_callback", math.inf),
        ("memory_interval", 1e300),
    ],
)
def test_rates_and_durations_must_be_finite(name, value):
    with pytest.raises(ValueError, match=f"option {name}=.*accepted"):
        scope.start(**{name: value})
    assert not scope.is_recording()


def test_names_option_refuses_bytes_and_non_str_redactions():
    with pytest.raises(TypeError, match="option modules takes a list of names, got bytes"):
        scope.start(modules=b"json")
    with pytest.raises(TypeError, match=r"option redact takes names \(str\), got <module 'math'"):
        scope.start(redact=[math])


# -- messages ------------------------------------------------------------------------------


class _LenRaises(list):
    def __len__(self):
        raise RuntimeError("len!")


class _ItemsRaise(dict):
    def items(self):
        raise RuntimeError("items!")


def _producer_consumer(n):
    q = queue.Queue()
    got = []
    start = threading.Barrier(2)

    def consume():
        start.wait()
        for _ in range(n):
            got.append(type(q.get()).__name__)

    t = threading.Thread(target=consume)
    t.start()
    start.wait()
    for i in range(n):
        q.put(_LenRaises([i]) if i % 2 else _ItemsRaise(a=i))
    t.join()
    return got


def test_messages_whose_container_methods_raise_are_recorded():
    plain = _producer_consumer(6)
    with scope.record() as trace:
        traced = _producer_consumer(6)
    assert traced == plain
    assert trace.errors == {}
    sends = trace.events("send")
    assert sends.height == 6 and trace.events("receive").height == 6
    # subclasses of built-in containers are not walked: their methods are the program's
    assert sends["detail"].to_list() == [
        f"<{k} #{n}>" for n in (1, 2, 3) for k in ("_ItemsRaise", "_LenRaises")
    ]
    assert trace.message_queue_analysis()["sends"].to_list() == [6]


# -- traced objects ------------------------------------------------------------------------


class _LoadsWrong:
    """Pickles, but does not load back."""

    def __reduce__(self):
        return int, ("not a number",)

    def __repr__(self):
        return "LW"


class _Box:
    def __init__(self):
        self.n = 0

    def fill(self):
        self.d = {i: _LoadsWrong() for i in range(20)}
        self.items = [_LoadsWrong() for _ in range(20)]

    def bump(self):
        self.n += 1


def test_attribute_values_that_do_not_unpickle_lose_no_state():
    box = _Box()
    with scope.record() as trace:
        scope.trace_object(box, "box")
        ready = threading.Barrier(2)

        def worker():
            ready.wait()
            box.fill()
            for _ in range(3):
                box.bump()

        t = threading.Thread(target=worker)
        t.start()
        ready.wait()
        t.join()
    assert box.n == 3
    assert trace.errors == {}
    st = trace.states()
    assert [c for c in st["cause"] if c.startswith("n = ")] == ["n = 1", "n = 2", "n = 3"]
    last = trace.get_state_at("box", st["ts"].max())
    assert last["n"] == 3
    # a custom __reduce__ is never called: each value is kept as type + number
    assert list(last["d"]) == list(range(20)) and len(last["items"]) == 20
    assert all(isinstance(v, Unpicklable) for v in [*last["d"].values(), *last["items"]])
    assert (
        repr(last["d"][0]) == "<_LoadsWrong #1>" and repr(last["items"][0]) == "<_LoadsWrong #21>"
    )
    assert trace.events("send").height == 0 and trace.message_queue_analysis().height == 0


class _Plain:
    def __init__(self):
        self.x = 1


def test_trace_object_refuses_an_empty_name_and_the_recorder():
    a = _Plain()
    with scope.record() as trace:
        assert scope.trace_object(a, "a") is a
        assert scope.trace_object(a) is a and scope.trace_object(a, "a") is a
        with pytest.raises(ValueError, match="name must not be empty"):
            scope.trace_object(_Plain(), "")
        with pytest.raises(TypeError, match="Trace is part of scope_nb"):
            scope.trace_object(trace)
        with pytest.raises(TypeError, match="use trace_lock"):
            scope.trace_object(threading.Lock())
        a.x = 2
    assert set(trace.states()["obj"]) == {"a"}
    assert trace.get_state_at(a, trace.states()["ts"].max()) == {"x": 2}


def _make_classes():
    class NoInit:
        pass

    class TakesNew:
        def __new__(cls, x):
            return super().__new__(cls)

    class Sub(NoInit):
        pass

    return NoInit, TakesNew, Sub


def _construct(deco):
    no_init, takes_new, sub = (deco(c) for c in _make_classes())
    return [
        _outcome(lambda: type(no_init()).__name__),
        _outcome(lambda: no_init(1)),
        _outcome(lambda: type(takes_new(5)).__name__),
        _outcome(lambda: sub(k=1)),
    ]


def test_traced_decorator_keeps_what_constructors_accept():
    plain = _construct(lambda c: c)
    assert plain[1] == (TypeError, "NoInit() takes no arguments")
    assert _construct(scope.traced) == plain
    with scope.record() as trace:
        assert _construct(scope.traced) == plain
    assert sorted(trace.states()["obj"]) == ["NoInit-1", "TakesNew-1"]
    with pytest.raises(TypeError, match="traced: dict cannot be traced"):
        scope.traced(dict)


# -- locks and modules ---------------------------------------------------------------------


def test_trace_lock_names_stay_unique_and_a_lock_named_again_is_renamed():
    early = [threading.Lock() for _ in range(3)]
    with scope.record() as trace:
        a = scope.trace_lock(early[0], "x")
        b = scope.trace_lock(early[1], "x")
        c = scope.trace_lock(early[2], "x-2")
        assert (a.name, b.name) == ("x", "x-2") and c.name not in ("x", "x-2")
        assert scope.trace_lock(early[0]) is a and scope.trace_lock(early[0], "x") is a
        assert scope.trace_lock(early[0], "y") is a and a.name == "y"  # named again: renamed
        assert scope.trace_lock(threading.RLock(), "").name not in ("", "x", "y")
        done = threading.Barrier(2)

        def other():
            with c:
                done.wait()

        t = threading.Thread(target=other)
        t.start()
        with b:
            done.wait()
        t.join()
    assert trace.errors == {}
    held = trace.events("lock_acquire")["target"].to_list()
    assert sorted(held) == sorted([b.name, c.name])


def test_trace_module_bad_names_are_value_errors(tmp_path, monkeypatch):
    (tmp_path / "scope_nb_getattr_mod.py").write_text(
        "def __getattr__(name):\n    raise RuntimeError('no ' + name)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with scope.record():
        with pytest.raises(
            ValueError, match="cannot trace module ''; accepted: an absolute module name"
        ):
            scope.trace_module("")
        with pytest.raises(ValueError, match=r"cannot trace module '\.json'; accepted"):
            scope.trace_module(".json")
        with pytest.raises(
            ValueError, match="'scope_nb_getattr_mod.K': importing it raised RuntimeError"
        ):
            scope.trace_module("scope_nb_getattr_mod.K")
        assert scope.trace_module("json") > 0
    sys.modules.pop("scope_nb_getattr_mod", None)
