"""A fleet on several hosts: processes that name their host with $SCOPE_NB_HOST write
to one tree, and one `load` puts them on one time axis through each process's
wall-clock anchor (`clock_offset` in its metadata.json), even when their perf
counters count from different boots. The members take turns through pipes, so the
order the merged trace must show is the causal one the test enforces."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

import scope_nb as scope

HERE = Path(__file__).parent
ROUNDS = 3
BOOT_SHIFT_S = 86_400  # the other host's perf counter: a day ahead, as after another boot


def other_boot_prefix() -> list[str] | None:
    """A command prefix running a process whose monotonic clock (perf_counter's) is
    shifted by BOOT_SHIFT_S (a Linux time namespace), or None where none can be made."""
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return None
    prefix = ["unshare", "-U", "-r", "-T", "--monotonic", str(BOOT_SHIFT_S)]
    probe = subprocess.run(
        [*prefix, sys.executable, "-c", "import time; print(time.perf_counter())"],
        capture_output=True,
        text=True,
    )
    if probe.returncode or float(probe.stdout) < time.perf_counter() + BOOT_SHIFT_S / 2:
        return None
    return prefix


def same_pid_prefix() -> list[str] | None:
    """A command prefix running a process as pid 1 of a PID namespace of its own (as in
    a container), or None where none can be made."""
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return None
    prefix = ["unshare", "-U", "-r", "-p", "-f"]
    probe = subprocess.run(
        [*prefix, sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
    )
    return prefix if probe.returncode == 0 and probe.stdout.strip() == "1" else None


def run_fleet(
    root: Path, prefix_b: list[str], prefix_a: tuple[str, ...] = ()
) -> tuple[int, int, dict[str, int]]:
    """Hosts alpha and beta take ROUNDS turns each, alpha first; the wall-clock window
    around the whole run and each host's pid."""
    a_to_b, b_to_a = os.pipe(), os.pipe()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), str(HERE)])}
    script = str(HERE / "fleet_member.py")

    def member(host, first, read_fd, write_fd, prefix):
        argv = [*prefix, sys.executable, script, str(root), first, str(ROUNDS)]
        return subprocess.Popen(
            [*argv, str(read_fd), str(write_fd)],
            env={**env, "SCOPE_NB_HOST": host},
            pass_fds=(read_fd, write_fd),
        )

    before = time.time_ns()
    members = {
        "alpha": member("alpha", "1", b_to_a[0], a_to_b[1], list(prefix_a)),
        "beta": member("beta", "0", a_to_b[0], b_to_a[1], prefix_b),
    }
    for fd in (*a_to_b, *b_to_a):
        os.close(fd)  # a member that dies ends its peer's read, instead of a hang
    codes = {host: p.wait(120) for host, p in members.items()}
    after = time.time_ns()
    assert codes == {"alpha": 0, "beta": 0}
    pids = {}
    for d in root.iterdir():
        meta = json.loads((d / "metadata.json").read_text())
        assert d.name == f"{meta['host']}-{meta['pid']}"
        pids[meta["host"]] = meta["pid"]
    return before, after, pids


def raw_ts(unit: Path) -> pl.Series:
    return pl.concat([pl.read_parquet(f, columns=["ts"]) for f in unit.glob("raw-*.parquet")])["ts"]


@pytest.fixture(scope="module", params=["one boot", "two boots"])
def fleet(request, tmp_path_factory):
    """alpha and beta's tree (beta in another boot's clock for "two boots"), the
    wall-clock window around the run and each host's pid."""
    prefix = []
    if request.param == "two boots":
        prefix = other_boot_prefix()
        if prefix is None:
            pytest.skip("no Linux time namespace here (unshare -U -r -T) to give beta its boot")
    root = tmp_path_factory.mktemp("fleet")
    before, after, pids = run_fleet(root, prefix)
    return request.param, root, before, after, pids


def test_one_load_puts_two_hosts_on_one_axis_in_causal_order(fleet):
    boots, root, before, after, pids = fleet
    assert sorted(pids) == ["alpha", "beta"] and len(list(root.iterdir())) == 2
    alpha, beta = (root / f"{h}-{pids[h]}" for h in ("alpha", "beta"))
    shift = raw_ts(beta).min() - raw_ts(alpha).min()  # what each perf counter wrote
    if boots == "two boots":  # beta's raw times are a day ahead: only the anchors align them
        assert shift > BOOT_SHIFT_S * 10**9 // 2
    else:
        assert abs(shift) < BOOT_SHIFT_S * 10**9 // 2

    trace = scope.load(root)
    ev = trace.events()
    assert ev["ts"].is_sorted() and ev["seq"].to_list() == list(range(ev.height))
    assert before <= ev["ts"].min() and ev["ts"].max() <= after  # epoch ns, the run's window
    steps = ev.filter((pl.col("kind") == "call") & (pl.col("function") == "step"))
    want = [(h, f"host='{h}', turn={t}") for t in range(ROUNDS) for h in ("alpha", "beta")]
    by_pid = {pid: h for h, pid in pids.items()}
    assert [(by_pid[p], d) for p, d in steps.select("pid", "detail").iter_rows()] == want
    assert {m["host"] for m in trace.meta["processes"]} == {"alpha", "beta"}
    processes = trace.actors().filter(pl.col("kind") == "process")
    assert sorted(processes["pid"].to_list()) == sorted(pids.values())


def test_duckdb_puts_the_raw_files_on_the_same_axis_with_each_process_anchor(fleet):
    """docs/storage.md's query: raw ts plus the clock_offset of the metadata.json
    beside each file."""
    duckdb = pytest.importorskip("duckdb")
    _, root, before, after, pids = fleet
    rows = duckdb.sql(f"""
        SELECT m.host, min(r.ts + m.clock_offset), max(r.ts + m.clock_offset), count(*)
        FROM read_parquet('{root}/*/raw-*.parquet', filename = true) AS r
        JOIN read_json('{root}/*/metadata.json', filename = true) AS m
          ON parse_dirpath(r.filename) = parse_dirpath(m.filename)
        GROUP BY m.host ORDER BY m.host
    """).fetchall()
    assert [host for host, *_ in rows] == ["alpha", "beta"]
    for _, first, last, n in rows:
        assert before <= first <= last <= after and n > 0
    total = sum(n for *_, n in rows)
    assert total == sum(raw_ts(d).len() for d in root.iterdir())


def test_scope_nb_host_names_the_host_of_a_persisted_process(tmp_path, monkeypatch):
    monkeypatch.setenv("SCOPE_NB_HOST", "rack-2/node-7")
    scope.start(persist_to_disk=True, persist_path=str(tmp_path), flush_interval=0.05)
    scope.stop().wait_written()
    (unit,) = tmp_path.iterdir()
    assert unit.name == f"rack_2_node_7-{os.getpid()}"
    assert json.loads((unit / "metadata.json").read_text())["host"] == "rack_2_node_7"
    saved = Path(scope.load(tmp_path).save(tmp_path.parent / "saved"))
    assert json.loads((saved / "metadata.json").read_text())["host"] == "rack_2_node_7"


def test_a_loaded_trace_answers_message_and_lock_queries_from_their_rows_alone(tmp_path):
    """On a loaded trace these two read only the send/receive and lock rows (so a large
    trace is never held whole for them), and answer as the live trace does."""
    import queue
    import threading

    scope.start(persist_to_disk=True, persist_path=str(tmp_path / "raw"), flush_interval=0.05)
    lock, q = threading.Lock(), queue.Queue(maxsize=2)

    def produce():
        for i in range(5):
            with lock:
                q.put(i)

    producers = [threading.Thread(target=produce) for _ in range(3)]
    for t in producers:
        t.start()
    got = [q.get() for _ in range(15)]
    for t in producers:
        t.join()
    live = scope.stop().wait_written()
    assert sorted(got) == sorted(list(range(5)) * 3)
    loaded = scope.load(live.save(tmp_path / "saved"))
    assert not loaded._source.whole  # a scan: the queries below take only their rows
    for query in ("message_queue_analysis", "lock_contention"):
        want, have = getattr(live, query)(), getattr(loaded, query)()
        assert want.height >= 1 and have.equals(want), query
    assert not loaded._source.whole


def test_hosts_whose_processes_share_a_pid_keep_their_actors_apart(tmp_path):
    """Two containers' processes, both pid 1: actor ids hold the pid, so the load
    gives each its host (`T1:1@alpha`) instead of merging the two."""
    prefix = same_pid_prefix()
    if prefix is None:
        pytest.skip("no Linux PID namespace here (unshare -U -r -p -f) to share a pid")
    root = tmp_path / "fleet"
    _, _, pids = run_fleet(root, prefix, tuple(prefix))
    assert pids == {"alpha": 1, "beta": 1}
    trace = scope.load(root)
    actors = trace.actors()
    processes = actors.filter(pl.col("kind") == "process")
    assert sorted(processes["actor"].to_list()) == ["P1@alpha", "P1@beta"]
    ev = trace.events()
    assert set(ev["actor"].drop_nulls().to_list()) <= set(actors["actor"].to_list())
    steps = ev.filter((pl.col("kind") == "call") & (pl.col("function") == "step"))
    want = [(h, f"host='{h}', turn={t}") for t in range(ROUNDS) for h in ("alpha", "beta")]
    have = [(a.rsplit("@", 1)[1], d) for a, d in steps.select("actor", "detail").iter_rows()]
    assert have == want
    for host in ("alpha", "beta"):  # each host's threads: the process's own, apart
        mine = actors.filter(pl.col("actor").str.ends_with(f"@{host}"))
        assert mine.height >= 2 and set(mine["parent"].drop_nulls()) <= {f"P1@{host}"}


def test_hosts_with_distinct_pids_keep_the_ids_they_were_recorded_with(fleet):
    _, root, _, _, pids = fleet
    actors = scope.load(root).actors()
    assert not actors["actor"].str.contains("@").any()
    assert sorted(actors.filter(pl.col("kind") == "process")["actor"].to_list()) == sorted(
        f"P{p}" for p in pids.values()
    )
