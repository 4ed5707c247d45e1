"""Persistence: segments on disk, loading, merging, damaged files, permissions,
save, Perfetto export."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import polars as pl
import pytest

import scope_nb as scope
from scope_nb.store.load import TraceLoadWarning


def square(x):
    return x * x


def work(n):
    return sum(square(i) for i in range(n))


def record_some(path, storage="memory", **options):
    scope.start(
        persist_to_disk=True,
        persist_path=str(path),
        storage=storage,
        flush_interval=0.05,
        modules=[__name__],
        **options,
    )
    threads = [threading.Thread(target=work, args=(300,), name=f"w{i}") for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return scope.stop().wait_written()  # the tests read the files


def process_dir(root: Path) -> Path:
    (d,) = [p for p in root.iterdir() if p.is_dir()]
    return d


@pytest.mark.parametrize("storage", ["memory", "disk"])
def test_roundtrip_matches_memory(tmp_path, storage):
    trace = record_some(tmp_path, storage)
    loaded = scope.load(tmp_path)
    calls = loaded.events("call").filter(pl.col("function") == "square")
    assert calls.height == 900
    assert trace.events("call").filter(pl.col("function") == "square").height == 900
    assert loaded.events()["seq"].is_unique().all()
    cols = ["kind", "actor", "function", "detail", "depth"]
    assert loaded.events().select(cols).sort(cols).equals(trace.events().select(cols).sort(cols))
    assert set(loaded.actors()["name"]) >= {"w0", "w1", "w2"}
    meta = json.loads((process_dir(tmp_path) / "metadata.json").read_text())
    assert (
        meta["schema_version"] == 1 and meta["pid"] == os.getpid() and meta["stopped"] is not None
    )
    assert (
        meta["options"]["flush_interval"] == 0.05 and "clock_offset" in meta and "dropped" in meta
    )


@pytest.mark.parametrize("storage", ["memory", "disk"])
def test_roundtrip_keeps_every_field_of_lock_and_message_events(tmp_path, storage):
    """Sparse columns (targets, message ids, depths, locks held, locations) come back
    from the segments exactly, for few and for many such rows."""
    import queue

    scope.start(
        persist_to_disk=True,
        persist_path=str(tmp_path),
        storage=storage,
        flush_interval=0.05,
        modules=[__name__],
    )
    q, lock, outer = queue.Queue(), threading.Lock(), threading.RLock()

    def producer():
        for i in range(200):
            with outer, lock:
                q.put((i, "m"))
            work(3)
        q.put(None)

    t = threading.Thread(target=producer, name="producer")
    t.start()
    while q.get() is not None:
        pass
    t.join()
    trace = scope.stop()
    loaded = scope.load(tmp_path)
    cols = [
        "kind",
        "actor",
        "target",
        "msg_id",
        "detail",
        "location",
        "locks_held",
        "qsize",
        "function",
    ]
    mine, back = trace.events().select(cols), loaded.events().select(cols)
    assert (
        back.height == mine.height and mine.filter(pl.col("kind") == "lock_acquire").height == 400
    )
    key = [c for c in cols if c != "locks_held"]
    assert back.sort(key).equals(mine.sort(key))


def test_files_are_owner_only(tmp_path):
    root = tmp_path / "trace"
    record_some(root)
    for p in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode == (0o700 if p.is_dir() else 0o600), (p, oct(mode))


def test_segments_rotate_and_retention_drops_oldest(tmp_path):
    scope.start(
        persist_to_disk=True,
        persist_path=str(tmp_path),
        flush_interval=0.05,
        segment_bytes=1,
        retention_segments=2,
        modules=[__name__],
    )
    fl = __import__("scope_nb.store.flusher", fromlist=["x"]).flusher_of(scope.current()._rec)
    for _ in range(5):
        work(50)
        fl.flush()  # each flush writes a segment over 1 byte: it rotates
    scope.stop()
    d = process_dir(tmp_path)
    segs = sorted(p.name for p in d.glob("raw-*.parquet"))
    assert len(segs) <= 2 and segs[-1] > "raw-000004.parquet"
    meta = json.loads((d / "metadata.json").read_text())
    assert meta["dropped"]["retention"] > 0
    loaded = scope.load(tmp_path)
    assert loaded.dropped_by_reason["retention"] == meta["dropped"]["retention"]
    assert loaded.events("call").height > 0


def test_corrupt_segment_warns_and_rest_loads(tmp_path):
    scope.start(
        persist_to_disk=True,
        persist_path=str(tmp_path),
        flush_interval=0.05,
        segment_bytes=1,
        modules=[__name__],
    )
    fl = __import__("scope_nb.store.flusher", fromlist=["x"]).flusher_of(scope.current()._rec)
    for _ in range(3):
        work(20)
        fl.flush()
    scope.stop()
    d = process_dir(tmp_path)
    segs = sorted(d.glob("raw-*.parquet"))
    assert len(segs) >= 3
    good = scope.load(tmp_path).events("call").height
    victim = segs[1]
    victim.write_bytes(victim.read_bytes()[:40])  # truncated
    with pytest.warns(TraceLoadWarning, match=victim.name):
        loaded = scope.load(tmp_path)
    assert 0 < loaded.events("call").height < good
    victim.write_bytes(b"garbage, not parquet")
    with pytest.warns(TraceLoadWarning, match=victim.name):
        scope.load(tmp_path)


def test_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        scope.load(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no scope_nb trace in .*empty"):
        scope.load(tmp_path / "empty")
    record_some(tmp_path / "t")
    meta_file = process_dir(tmp_path / "t") / "metadata.json"
    meta = json.loads(meta_file.read_text())
    meta["schema_version"] = 99
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"metadata.json .*schema version 99"):
        scope.load(tmp_path / "t")
    meta_file.write_text("{not json")
    with pytest.raises(ValueError, match="metadata.json"):
        scope.load(tmp_path / "t")


def test_several_processes_merge_on_one_axis(tmp_path):
    record_some(tmp_path / "a")
    record_some(tmp_path / "b")
    one = scope.load(tmp_path / "a")
    merged = scope.load(tmp_path / "a", tmp_path / "b")
    ev = merged.events()
    assert ev.height == 2 * one.events().height
    assert ev["seq"].to_list() == list(range(ev.height))
    assert ev["ts"].is_sorted()
    # links between rows survive the renumbering: every return points at a call row
    rets = ev.filter(kind="return")
    calls = ev.filter(kind="call").select(
        pl.col("seq").alias("call_seq"), pl.col("function").alias("f")
    )
    joined = rets.join(calls, on="call_seq", how="left")
    assert joined["f"].null_count() == 0 and (joined["f"] == joined["function"]).all()


def test_save_and_reload_lazy(tmp_path):
    trace = record_some(tmp_path / "rec")
    out = trace.save(tmp_path / "saved")
    again = scope.load(out)
    assert again.events().equals(trace.events())
    fresh = scope.load(out)
    lo, hi = fresh.time_range()
    assert (lo, hi) == again.time_range() and not fresh._source.whole
    mid = (lo + hi) // 2
    window = fresh.events_between(lo, mid)
    assert not fresh._source.whole  # answered from the scan, nothing collected whole
    assert window.height == trace.events_between(lo, mid).height
    assert fresh.performance_hotspots().equals(trace.performance_hotspots())
    # a loaded trace saves too, and saving over a saved trace replaces it
    fresh.save(tmp_path / "saved")
    assert scope.load(tmp_path / "saved").events().height == trace.events().height
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="other"):
        trace.save(tmp_path / "other")


def test_untrusted_by_default(tmp_path):
    record_some(tmp_path)
    assert scope.load(tmp_path).meta["trusted"] is False
    assert scope.load(tmp_path, trusted=True).meta["trusted"] is True


REQUIRED = {
    "X": {"name", "ph", "ts", "pid", "tid", "dur"},
    "i": {"name", "ph", "ts", "pid", "tid", "s"},
    "M": {"name", "ph", "pid", "args"},
    "s": {"name", "ph", "ts", "pid", "tid", "id", "cat"},
    "f": {"name", "ph", "ts", "pid", "tid", "id", "cat", "bp"},
}


def test_perfetto_export_is_valid_trace_event_json(tmp_path):
    import queue

    scope.start(modules=[__name__])
    q = queue.Queue()
    t = threading.Thread(target=lambda: [q.put(work(i)) for i in range(5)], name="producer")
    t.start()
    got = [q.get() for _ in range(5)]
    t.join()
    trace = scope.stop()
    assert len(got) == 5
    path = trace.export_perfetto(tmp_path / "out.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    doc = json.loads(Path(path).read_text())
    events = doc["traceEvents"]
    assert isinstance(events, list) and events
    for e in events:
        assert e["ph"] in REQUIRED, e
        missing = REQUIRED[e["ph"]] - set(e)
        assert not missing, (missing, e)
        assert isinstance(e["pid"], int) and isinstance(e.get("tid", 0), int)
        if "ts" in e:
            assert isinstance(e["ts"], int | float) and e["ts"] >= 0
        if e["ph"] == "X":
            assert e["dur"] >= 0
    starts = {e["id"] for e in events if e["ph"] == "s"}
    ends = {e["id"] for e in events if e["ph"] == "f"}
    assert len(starts) == 5 and starts == ends  # one arrow per message, send -> receive
    names = {e["args"]["name"] for e in events if e["ph"] == "M"}
    assert any("producer" in n for n in names)
    assert sum(1 for e in events if e["ph"] == "X" and e["name"].endswith(".square")) > 0


def test_a_failed_flush_is_in_the_loaded_traces_errors(tmp_path, monkeypatch):
    # a segment the flusher cannot write is lost: the metadata written after the failure
    # says so, where the failure used to skip the metadata write and hide it
    from scope_nb.store import flusher

    def fails(*args):
        raise OSError("disk gone")

    monkeypatch.setattr(flusher, "spill_table", fails)
    record_some(tmp_path / "t")
    errors = dict(scope.load(tmp_path / "t").errors)
    assert any(key.startswith("flusher") for key in errors), errors
