"""Values are captured without running the program's code: call arguments, return
values, queue items and traced objects' state, for ordinary and hostile objects."""

import dataclasses
import queue
import threading

import calls_sample as cs

import scope_nb as scope
from scope_nb.values import Unpicklable

CALLS: list[str] = []


class Spy:
    """Counts every dunder and property the recorder could be tempted to call."""

    def __repr__(self):
        CALLS.append("repr")
        return "Spy()"

    def __str__(self):
        CALLS.append("str")
        return "spy"

    def __eq__(self, other):
        CALLS.append("eq")
        return self is other

    def __hash__(self):
        CALLS.append("hash")
        return 1

    def __len__(self):
        CALLS.append("len")
        return 1

    def __iter__(self):
        CALLS.append("iter")
        return iter(())

    def __reduce_ex__(self, protocol):
        CALLS.append("reduce")
        return object.__reduce_ex__(self, protocol)

    @property
    def cached(self):
        CALLS.append("property")
        return 1


@dataclasses.dataclass
class Point:
    """Keeps the default reduction: copied through its __dict__, never its __eq__ or repr."""

    x: int
    y: int

    def __eq__(self, other):
        CALLS.append("point eq")
        return type(other) is Point and (self.x, self.y) == (other.x, other.y)

    def __repr__(self):
        CALLS.append("point repr")
        return f"Point({self.x}, {self.y})"


class SpyList(list):
    def __iter__(self):
        CALLS.append("list iter")
        return super().__iter__()

    def __len__(self):
        CALLS.append("list len")
        return super().__len__()


class Holder:
    def __init__(self):
        self.value = None

    def put(self, value):
        self.value = value
        return value


def _fresh():
    CALLS.clear()


def test_call_arguments_and_results_run_no_program_code():
    _fresh()
    spy = Spy()
    with scope.record(modules=[cs]) as trace:
        cs.echo(spy)
        cs.echo(spy)
        cs.echo(SpyList([1, 2]))
        cs.echo({"k": spy, "p": Point(1, 2)})
        cs.echo([1, "a", (2.5, None)])
    assert CALLS == []
    calls = trace.function_calls()
    assert calls["args"].to_list() == [
        "value=<Spy #1>",
        "value=<Spy #1>",
        "value=<SpyList #1>",
        "value={'k': <Spy #1>, 'p': <Point #1>}",
        "value=[1, 'a', (2.5, None)]",
    ]
    assert calls["result"].to_list()[0] == "<Spy #1>"  # the same object keeps its number
    assert trace.errors == {}


def test_queue_items_run_no_program_code():
    _fresh()
    q = queue.Queue()
    with scope.record() as trace:
        t = threading.Thread(target=lambda: [q.get() for _ in range(2)])
        t.start()
        q.put(Spy())
        q.put(SpyList([1]))
        t.join()
    assert CALLS == []
    assert trace.events("send")["detail"].to_list() == ["<Spy #1>", "<SpyList #1>"]
    assert trace.errors == {}


def test_state_of_plain_instances_is_copied_and_comes_back_real():
    _fresh()
    h = Holder()
    with scope.record() as trace:
        scope.trace_object(h, "h")
        h.put(Point(1, 2))
        h.put([Point(3, 4), {"p": Point(0, 0)}])
        h.put(Spy())
    assert CALLS == []
    tl = trace.state_timeline("h")
    assert tl["cause"].to_list() == [
        "trace_object",
        "value = <Point #1>",
        "value = [<Point #2>, {'p': <Point #3>}]",
        "value = <Spy #1>",
    ]
    CALLS.clear()
    assert trace.get_state_at("h", tl["ts"][1]) == {"value": Point(1, 2)}
    assert trace.get_state_at("h", tl["ts"][2])["value"] == [Point(3, 4), {"p": Point(0, 0)}]
    spy = trace.get_state_at("h", tl["ts"][3])["value"]
    assert isinstance(spy, Unpicklable) and repr(spy) == "<Spy #1>"
    assert trace.errors == {}


def test_state_survives_save_and_load(tmp_path):
    h = Holder()
    with scope.record() as trace:
        scope.trace_object(h, "h")
        h.put({"pts": [Point(1, 2)], "spy": Spy()})
    trace.save(tmp_path / "t")
    loaded = scope.load(tmp_path / "t", trusted=True)
    state = loaded.get_state_at("h", loaded.time_range()[1])["value"]
    assert state["pts"] == [Point(1, 2)] and repr(state["spy"]) == "<Spy #1>"


class Slow:
    """A repr that waits for an Event nobody sets."""

    never = threading.Event()
    entered = threading.Event()

    def __repr__(self):
        CALLS.append("slow")
        Slow.entered.set()
        Slow.never.wait()
        return "never"


class Raises:
    def __repr__(self):
        raise RuntimeError("no repr")


class Named:
    def __init__(self):
        self.state = "new"

    def __repr__(self):
        return f"Named({self.state})"


def test_repr_objects_formats_later_off_the_traced_thread():
    _fresh()
    named = Named()
    with scope.record(modules=[cs], repr_objects=True) as trace:
        cs.echo(Spy())
        cs.echo(named)
        named.state = "changed"  # the text is the state when formatted
        cs.echo(Raises())
        cs.echo([1, 2])
        assert CALLS == []  # nothing ran at event time
    args = trace.function_calls()["args"].to_list()
    assert args == ["value=Spy()", "value=Named(changed)", "value=<Raises #1>", "value=[1, 2]"]
    assert CALLS.count("repr") == 2  # the query formatted the argument and the result, once each
    assert trace.errors == {"repr_objects": 2}  # the raising repr, of the argument and the result


def test_repr_objects_gives_up_on_a_repr_that_never_returns(monkeypatch):
    from scope_nb import values

    monkeypatch.setattr(values, "REPR_BUDGET_S", 0.01)
    _fresh()
    with scope.record(modules=[cs], repr_objects=True) as trace:
        cs.echo(Slow())
        cs.echo(Slow())
    assert trace.function_calls()["args"].to_list() == ["value=<Slow #1>", "value=<Slow #2>"]
    assert trace.errors == {"repr_objects": 4}  # arguments and results
    assert Slow.entered.wait(10)
    assert CALLS.count("slow") == 1  # one wait of the budget, then the type is skipped
    Slow.never.set()  # let the waiting repr end


def test_repr_objects_is_an_option_of_run_and_of_the_cell_magic():
    from scope_nb.cli import _parser
    from scope_nb.notebook.magic_args import record_parser

    assert _parser().parse_args(["run", "--repr-objects", "x.py"]).repr_objects
    assert record_parser().parse_args(["--repr-objects"]).repr_objects
    assert not record_parser().parse_args([]).repr_objects


def test_redaction_matches_whole_words_of_names():
    from scope_nb.config import DEFAULT_REDACT
    from scope_nb.values import Redactor, name_tokens

    assert name_tokens("X.Secret") == ("x", "secret") and name_tokens("APIKey") == ("api", "key")
    secret = Redactor(DEFAULT_REDACT)
    for name in (
        "db_password",
        "authToken",
        "api-key",
        "X.Secret",
        "password",
        "APIKey",
        "session_id",
    ):
        assert secret(name), name
    for name in ("sessions", "keyboard", "monkey", "tokenizer", "author", "n"):
        assert not secret(name), name
    assert Redactor(["api_key"])("myApiKey") and not Redactor(["api_key"])("key")


def test_redaction_of_arguments_dict_keys_and_attributes():
    h = Holder()
    with scope.record(modules=[cs]) as trace:
        cs.echo({"authToken": "t0p", "keyboard": "qwerty", "X.Secret": 1, "sessions": 3})
        scope.trace_object(h, "h")
        h.db_password = "hunter2"
        h.monkey = "george"
    assert trace.function_calls()["args"].to_list() == [
        "value={'authToken': <redacted>, 'keyboard': 'qwerty', 'X.Secret': <redacted>, 'sessions': "
        "3}"
    ]
    state = trace.get_state_at("h", trace.time_range()[1])
    assert state == {"value": None, "db_password": "<redacted>", "monkey": "george"}


def test_numbers_stay_with_their_object_and_die_with_it():
    from scope_nb.values import Formatter

    fmt = Formatter()
    a, b = Spy(), Spy()
    assert [fmt.repr(a), fmt.repr(b), fmt.repr(a)] == ["<Spy #1>", "<Spy #2>", "<Spy #1>"]
    del a
    assert fmt.repr(Spy()) == "<Spy #3>"  # a new object, even if it reuses the dead one's id
    plain = [object() for _ in range(3)]  # no weak references: known by id
    assert [fmt.repr(x) for x in (*plain, plain[0])] == [f"<object #{n}>" for n in (1, 2, 3, 1)]


def test_repr_objects_never_runs_a_repr_on_the_thread_of_an_event():
    _fresh()
    q = queue.Queue()
    h = Holder()
    with scope.record(repr_objects=True) as trace:
        scope.trace_object(h, "h")
        h.put(Spy())  # a traced object's call: formatted at event time
        q.put(Spy())  # a message: formatted at event time
        q.get()
    assert CALLS == []
    assert trace.events("send")["detail"].to_list() == ["<Spy #2>"]
    assert trace.errors == {}
