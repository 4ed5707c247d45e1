"""Past one process: `load` takes paths, lists and globs; a fleet of independent
processes writing to one directory tree is merged by one `load(tree)` on one time
axis; and the same files are read as they are by another engine (DuckDB)."""

from __future__ import annotations

import multiprocessing as mp
import queue
import sys
import threading

import polars as pl
import pytest

import scope_nb as scope

CALL_STREAM_MARKERS = "('suspend', 'resume', 'switch')"


def square(x):
    return x * x


def arrive(order):
    """A fleet member's mark: called once, after the work."""
    return order


def squares(n):
    for i in range(n):
        yield square(i)


def workload(n_threads: int = 3) -> None:
    """Threads taking a lock, running a generator and sending on a queue."""
    lock, q = threading.Lock(), queue.Queue()

    def work():
        with lock:
            list(squares(4))
        q.put("done")

    threads = [threading.Thread(target=work, name=f"w{i}") for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [q.get_nowait() for _ in threads] == ["done"] * n_threads


def record(path, storage="memory"):
    scope.start(
        persist_to_disk=True,
        persist_path=str(path),
        storage=storage,
        flush_interval=0.05,
        modules=[__name__],
    )
    workload()
    return scope.stop().wait_written()


def kind_counts(events: pl.DataFrame) -> dict[str, int]:
    return dict(events.group_by("kind").len().iter_rows())


@pytest.fixture
def duckdb():
    return pytest.importorskip("duckdb")


def duckdb_counts(duckdb, glob: str) -> dict[str, int]:
    """The README's query."""
    return dict(
        duckdb.sql(f"""
        SELECT kind, count(*) AS n FROM read_parquet('{glob}')
        WHERE kind NOT IN {CALL_STREAM_MARKERS} GROUP BY kind
    """).fetchall()
    )


# -- load's arguments ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    heights = [record(root / name).events().height for name in ("run-a", "run-b")]
    return root, heights


def test_load_takes_several_paths_a_list_a_tuple_or_a_glob(two_runs):
    root, (ha, hb) = two_runs
    a, b = root / "run-a", root / "run-b"
    assert scope.load(a).events().height == ha
    for args in (
        (a, b),
        ([a, b],),
        ((str(a), str(b)),),
        (a, [b]),
        (str(root / "run-*"),),
        (root / "run-[ab]",),
        (str(root / "*" / "*" / "metadata.json"),),
    ):
        trace = scope.load(*args)
        assert trace.events().height == ha + hb, args
        assert trace.events()["seq"].to_list() == list(range(ha + hb))
    # a directory named twice is read once
    assert scope.load(a, [a], str(root / "run-a*")).events().height == ha


def test_load_says_what_was_wrong_and_what_is_accepted(two_runs):
    root, _ = two_runs
    with pytest.raises(
        TypeError, match=r"got int \(42\); accepted: a trace directory .* a list .* or a glob"
    ):
        scope.load(42)
    with pytest.raises(TypeError, match=r"got NoneType .*accepted"):
        scope.load([root / "run-a", None])
    with pytest.raises(ValueError, match=r"an empty list of paths; accepted"):
        scope.load([])
    with pytest.raises(
        FileNotFoundError, match=r"the glob '.*nothing-\*' matches no path; accepted"
    ):
        scope.load(root / "nothing-*")
    with pytest.raises(FileNotFoundError, match="no such trace path"):
        scope.load(root / "missing")


# -- another engine -------------------------------------------------------------------------
@pytest.mark.parametrize("storage", ["memory", "disk"])
def test_duckdb_reads_a_persisted_trace_as_it_is(tmp_path, storage, duckdb):
    record(tmp_path / "app", storage)
    trace = scope.load(tmp_path / "app")
    want = kind_counts(trace.events())
    comprehensions = 2 if sys.version_info < (3, 12) else 0  # functions of their own before 3.12
    assert want["call"] == 1 + 3 * (1 + 1 + 4) + comprehensions
    assert want["lock_acquire"] == 3 and want["send"] == 3
    assert duckdb_counts(duckdb, f"{tmp_path}/app/**/raw-*.parquet") == want
    saved = trace.save(tmp_path / "saved")  # the final layout: the events frame itself
    assert duckdb_counts(duckdb, f"{saved}/events-*.parquet") == want
    same = duckdb.sql(
        f"SELECT seq, kind, actor, function FROM read_parquet('{saved}/events-*.parquet') ORDER BY "
        "seq"
    ).pl()
    assert same.equals(trace.events().select("seq", "kind", "actor", "function"))


def test_duckdb_reads_typed_state_values(tmp_path, duckdb):
    class Counter:
        def __init__(self):
            self.n = 0

    counter = Counter()
    scope.start(persist_to_disk=True, persist_path=str(tmp_path), flush_interval=0.05)
    scope.trace_object(counter, name="counter")
    t = threading.Thread(target=lambda: [setattr(counter, "n", counter.n + 1) for _ in range(3)])
    t.start()
    t.join()
    scope.stop().wait_written()  # before another engine reads the files
    rows = duckdb.sql(f"""
        SELECT CAST(value AS BIGINT) AS n FROM (
            SELECT ts, unnest(attrs) AS attr, unnest(json) AS value
            FROM read_parquet('{tmp_path}/**/states-*.parquet'))
        WHERE attr = 'n' ORDER BY ts
    """).fetchall()
    assert [n for (n,) in rows] == [0, 1, 2, 3]


# -- a fleet ----------------------------------------------------------------------------------
def fleet_member(root: str, first, second, order: int) -> None:
    """One independent process of a fleet: records itself into its own directory of the
    tree; member 1 arrives only after member 0 did (and said so)."""
    scope.start(
        persist_to_disk=True,
        persist_path=root,
        flush_interval=0.05,
        modules=[fleet_member.__module__],
    )
    if order == 1:
        assert first.wait(60)
    workload(2)
    arrive(order)
    if order == 0:
        first.set()
    scope.stop()
    second.set()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """Two independent processes (not children of a recording), each persisting to its
    own directory of one tree: the tree and their pids."""
    root = tmp_path_factory.mktemp("fleet")
    ctx = mp.get_context("spawn")
    first = ctx.Event()
    done = [ctx.Event(), ctx.Event()]
    members = [
        ctx.Process(target=fleet_member, args=(str(root / f"host-{i}"), first, done[i], i))
        for i in range(2)
    ]
    for p in members:
        p.start()
    for p in members:
        p.join(120)
    assert [p.exitcode for p in members] == [0, 0] and all(e.is_set() for e in done)
    return root, [p.pid for p in members]


def test_a_fleet_writes_one_tree_and_one_load_merges_it(fleet):
    root, pids = fleet
    trace = scope.load(root)
    ev = trace.events()
    assert sorted(ev["pid"].unique().to_list()) == sorted(pids)
    assert ev["seq"].to_list() == list(range(ev.height)) and ev["ts"].is_sorted()
    arrivals = ev.filter((pl.col("kind") == "call") & (pl.col("function") == "arrive"))
    # member 1 arrived after member 0 (it waited for it): so it is on the one axis
    assert arrivals["pid"].to_list() == pids and arrivals["detail"].to_list() == [
        "order=0",
        "order=1",
    ]
    assert set(trace.actors().filter(pl.col("kind") == "process")["pid"].to_list()) == set(pids)


def test_duckdb_reads_the_fleet_tree_as_it_is(fleet, duckdb):
    root, _ = fleet
    assert duckdb_counts(duckdb, f"{root}/**/raw-*.parquet") == kind_counts(
        scope.load(root).events()
    )
