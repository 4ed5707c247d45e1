"""More bad input: a traced value whose pickle does not load back, a saved trace whose
Parquet columns have the wrong type, and call queries about a module never traced.
Each gets an answer or a ValueError naming what is wrong, never a polars or pickle
error from deep inside, and what was recorded stays queryable."""

import threading
from pathlib import Path

import calls_sample  # noqa: F401  (traced below, never called)
import polars as pl
import pytest

import scope_nb as scope
from scope_nb.values import Unpicklable


class Lie:
    """Pickles, but loading it back raises (int("x"))."""

    def __reduce__(self):
        return (int, ("x",))


class Account:
    def __init__(self):
        self.n = 0
        self.tag = None
        self.items = list(range(20))

    def set(self, tag):
        self.tag = tag
        self.n += 1

    def fill(self, items):
        self.items = items
        self.n += 1

    def push(self, item):
        self.items.append(item)
        self.n += 1


def _in_thread(target, *args):
    """Run target in a real thread; the Event says it ran to the end."""
    done = threading.Event()

    def run():
        target(*args)
        done.set()

    t = threading.Thread(target=run, name="writer")
    t.start()
    t.join()
    assert done.is_set()


@pytest.fixture(scope="module")
def lying():
    """A traced object given a Lie in `tag`, a list holding a Lie in `items` (then
    appended to: a patch of a value that does not load), then a real value in `tag`."""
    acct = Account()
    with scope.record() as trace:
        scope.trace_object(acct, name="acct")
        _in_thread(acct.set, Lie())
        _in_thread(acct.fill, [Lie(), *range(20)])
        _in_thread(acct.push, 5)
        _in_thread(acct.set, [1, 2])
    return trace


def _times(trace, attribute) -> list[int]:
    """When `attribute` changed, after the first state."""
    tl = trace.state_timeline("acct")[1:]
    return tl.filter(pl.col("changed").list.contains(attribute))["ts"].to_list()


def _check_lying(trace):
    first, last = trace.state_timeline("acct")["ts"][0], trace.state_timeline("acct")["ts"][-1]
    (lie, real), (filled, pushed) = _times(trace, "tag"), _times(trace, "items")
    assert trace.get_state_at("acct", first) == {"n": 0, "tag": None, "items": list(range(20))}
    state = trace.get_state_at("acct", lie)
    # its __reduce__ is the program's: never called, the object is kept as type + number
    assert isinstance(state["tag"], Unpicklable) and repr(state["tag"]) == "<Lie #1>"
    assert state == {"n": 0, "tag": state["tag"], "items": list(range(20))}
    for ts, n in ((filled, 1), (pushed, 3)):
        state = trace.get_state_at("acct", ts)
        head = state["items"][0]
        assert isinstance(head, Unpicklable) and repr(head) == "<Lie #2>"
        assert state["items"][1:21] == list(range(20))  # the rest keeps its real values
        assert state["n"] == n
    assert trace.get_state_at("acct", pushed)["items"][21:] == [5]  # the append
    assert trace.get_state_at("acct", real)["tag"] == [1, 2]
    assert trace.system_snapshot_at(pushed).objects["acct"]["n"] == 3
    diff = trace.analyze_state_change("acct", first, last)
    assert {c.attribute for c in diff.changes} == {"n", "tag", "items"}
    assert diff.after["n"] == 4 and diff.after["tag"] == [1, 2]


def test_value_that_does_not_unpickle_keeps_its_text(lying):
    _check_lying(lying)


def test_value_that_does_not_unpickle_in_a_loaded_trace(lying, tmp_path):
    lying.save(tmp_path / "t")
    _check_lying(scope.load(tmp_path / "t", trusted=True))
    _check_lying(scope.load(tmp_path / "t"))  # untrusted: the same, from the typed values


# -- a saved trace with wrong column types ------------------------------------------------
def _worker(n):
    return n + 1


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A trace of two threads calling _worker and a traced object, saved."""
    acct = Account()
    start = threading.Barrier(2)

    def body(i):
        start.wait()
        _worker(i)
        acct.set(i)

    with scope.record(modules=[__name__]) as trace:
        scope.trace_object(acct, name="acct")
        threads = [threading.Thread(target=body, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    path = tmp_path_factory.mktemp("saved") / "t"
    trace.save(path)
    return path


def _worker_calls(trace) -> int:
    return trace.function_calls(__name__).filter(pl.col("function") == "_worker").height


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


@pytest.mark.parametrize(
    ("file", "change", "column", "expected"),
    [
        ("events-000001.parquet", pl.col("ts").cast(pl.String), "ts", "Int64"),
        ("events-000001.parquet", pl.col("duration_ns").cast(pl.Float64), "duration_ns", "Int64"),
        ("events-000001.parquet", "drop", "kind", "String"),
        ("states.parquet", pl.col("ts").cast(pl.String), "ts", "Int64"),
        ("actors.parquet", "drop", "pid", "Int64"),
    ],
)
def test_wrong_column_type_refused_at_load(saved, tmp_path, file, change, column, expected):
    assert _worker_calls(scope.load(saved)) == 2
    bad = _copy(saved, tmp_path / "bad")
    df = pl.read_parquet(bad / file)
    df = df.drop(column) if isinstance(change, str) else df.with_columns(change)
    df.write_parquet(bad / file)
    with pytest.raises(ValueError, match=rf"{file}.*'{column}'.*{expected}"):
        scope.load(bad)
    assert _worker_calls(scope.load(saved)) == 2  # the good copy still loads


def test_wrong_column_type_refused_in_a_raw_trace(tmp_path):
    done = threading.Event()
    with scope.record(persist_to_disk=True, persist_path=str(tmp_path), modules=[__name__]):
        t = threading.Thread(target=lambda: (_worker(1), done.set()))
        t.start()
        t.join()
    assert done.is_set()
    assert _worker_calls(scope.load(tmp_path)) == 1
    segment = sorted(tmp_path.glob("*/raw-*.parquet"))[0]
    pl.read_parquet(segment).with_columns(pl.col("ts").cast(pl.String)).write_parquet(segment)
    with pytest.raises(ValueError, match=rf"{segment.name}.*'ts'.*Int64"):
        scope.load(tmp_path)


# -- call queries about a module never traced ----------------------------------------------
QUERIES = [
    "function_calls",
    "performance_hotspots",
    "performance_analysis",
    "call_tree_analysis",
    "timing_analysis",
]


def _rows(answer) -> int:
    """Rows of a call query's answer: a frame, a CallTree or a PerformanceReport."""
    if isinstance(answer, pl.DataFrame):
        return answer.height
    return (answer.frame if hasattr(answer, "frame") else answer.hotspots).height


def _record_calls():
    """_worker called from two threads; calls_sample traced but never called."""
    start = threading.Barrier(2)

    def body(i):
        start.wait()
        _worker(i)

    with scope.record(modules=[__name__, "calls_sample"]) as trace:
        threads = [threading.Thread(target=body, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with pytest.raises(
            ValueError, match=r"module: 'no_such_module' .*traced modules: calls_sample"
        ):
            scope.performance_hotspots("no_such_module")  # live, on scope.current()
    return trace


@pytest.fixture(scope="module")
def calls():
    return _record_calls()


def _check_modules(query):
    with pytest.raises(
        ValueError, match=rf"module: 'no_such_module' .*traced modules: calls_sample, {__name__}"
    ):
        query("no_such_module")
    assert _rows(query("calls_sample")) == 0  # traced, made no calls: empty, no error
    assert _rows(query(__name__)) >= 1


@pytest.mark.parametrize("name", QUERIES)
def test_unknown_module_refused_like_function_calls(calls, name):
    _check_modules(getattr(calls, name))


def test_unknown_module_refused_at_module_level():
    trace = _record_calls()
    assert scope.current() is trace
    for name in QUERIES:
        _check_modules(getattr(scope, name))


@pytest.mark.parametrize("name", QUERIES)
def test_unknown_module_refused_in_a_loaded_trace(calls, tmp_path, name):
    calls.save(tmp_path / "t")
    _check_modules(getattr(scope.load(tmp_path / "t"), name))
