"""State history queries: get_state_at against ground truth captured by the test,
state_timeline, analyze_state_change with causes, system_snapshot_at."""

import copy
import re
import threading

import polars as pl
import pytest

import scope_nb as scope
from scope_nb import clock
from scope_nb.analysis.states import get_state_at
from scope_nb.schema import ACTORS, EVENTS, STATES, polars_schema
from scope_nb.trace import Trace


class Inventory:
    def __init__(self):
        self.items = {}
        self.log = []
        self.total = 0

    def add(self, name, n):
        self.items[name] = self.items.get(name, 0) + n  # in-place dict change
        self.log.append((name, n))  # in-place list change
        self.total += n

    def remove(self, name):
        n = self.items.pop(name)
        self.total -= n

    def rename_log(self):
        self.log = list(self.log)  # a new list object with the same content


def _truth(inv):
    return {k: copy.deepcopy(v) for k, v in vars(inv).items()}


def test_get_state_at_matches_ground_truth_across_threads_and_keyframes():
    inv = Inventory()
    guard = threading.Lock()
    truth = []
    start = threading.Barrier(2)

    def worker(tag):
        start.wait()
        for i in range(120):
            with guard:
                mine = [k for k in inv.items if k.startswith(tag)]
                if i % 7 == 6 and mine:
                    inv.remove(mine[0])
                elif i % 11 == 10:
                    inv.rename_log()
                elif i % 13 == 12:
                    inv.extra = i  # a new attribute...
                elif i % 13 == 0 and hasattr(inv, "extra"):
                    del inv.extra  # ...and gone again
                else:
                    inv.add(f"{tag}{i}", i)
                truth.append((clock.now(), _truth(inv)))

    with scope.record(max_events=1_000_000) as trace:
        scope.trace_object(inv, "inv")
        truth.append((clock.now(), _truth(inv)))
        threads = [threading.Thread(target=worker, args=(tag,)) for tag in "ab"]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert trace.errors == {}
    states = trace.states()
    assert states.filter(pl.col("keyframe")).height >= 3  # the history crossed several keyframes
    assert set(states["ops"].explode().unique()) >= {"set", "dict"}
    for ts, expected in truth:
        assert trace.get_state_at(inv, ts) == expected
    assert trace.state_timeline("inv")["actor"].n_unique() == 3  # main thread + both workers


def test_state_timeline_columns_and_errors():
    with scope.record() as trace:
        before = clock.now()
        inv = scope.trace_object(Inventory(), "inv")
        inv.add("x", 2)
    tl = trace.state_timeline("inv")
    assert {"ts", "actor", "cause", "changed", "state"} <= set(tl.columns)
    # the write of total inside add() also records the in-place changes made before it,
    # so no state that never existed (new total, old items) is ever recorded
    assert tl["cause"].to_list() == ["trace_object", "total = 2"]
    assert tl["changed"].to_list()[1:] == [["items", "log", "total"]]
    assert tl["state"][-1] == "{items: {'x': 2}, log: [('x', 2)], total: 2}"
    with pytest.raises(ValueError, match="before 'inv' was traced"):
        get_state_at(trace.states(), "inv", before)
    with pytest.raises(ValueError, match="no traced object named"):
        trace.get_state_at("nobody", trace.time_range()[1])
    untrusted = get_state_at(trace.states(), "inv", trace.time_range()[1], trusted=False)
    assert untrusted == {
        "items": {"x": 2},
        "log": [("x", 2)],
        "total": 2,
    }  # typed, nothing unpickled


def test_analyze_state_change_links_each_change_to_its_event():
    class Cfg:
        def __init__(self):
            self.a = 1
            self.b = [1]
            self.items = []

        def add_c(self):
            self.c = "new"

        def push(self, x):
            self.items.append(x)

    with scope.record() as trace:
        cfg = scope.trace_object(Cfg(), "cfg")
        t0 = clock.now()
        cfg.a = 2
        cfg.add_c()
        del cfg.b
        cfg.push(9)
        t1 = clock.now()
        cfg.a = 3  # after t1: not part of the diff
    diff = trace.analyze_state_change(cfg, t0, t1)
    assert diff.added == {"c": "new"}
    assert diff.removed == {"b": [1]}
    assert diff.changed == {"a": (1, 2), "items": ([], [9])}
    by_attr = {c.attribute: c for c in diff.changes}
    ev = trace.events().filter(pl.col("obj") == "cfg")
    for attr, kind in (("a", "write"), ("c", "write"), ("b", "write"), ("items", "call")):
        change = by_attr[attr]
        assert change.event_kind == kind, attr
        row = ev.filter(pl.col("seq") == change.event_seq).row(0, named=True)
        assert row["kind"] == kind
        if kind == "write":
            assert row["target"] == attr
        else:
            assert row["function"].endswith(".push")
    frame = diff.to_frame()
    assert sorted(frame["attribute"]) == ["a", "b", "c", "items"]
    assert "~ a: 1 -> 2" in repr(diff) and "<table>" in diff._repr_html_()
    assert not trace.analyze_state_change(cfg, t1, t1)


def test_system_snapshot_at_shows_actors_objects_and_locks():
    with scope.record() as trace:
        inv = scope.trace_object(Inventory(), "inv")
        inv.add("apples", 3)
        shared = threading.Lock()
        holding = threading.Event()
        done = threading.Event()

        def holder():
            with shared:
                holding.set()
                done.wait()

        def waiter():
            holding.wait()
            assert not shared.acquire(timeout=0.01)  # the holder keeps it: a real wait

        h = threading.Thread(target=holder, name="holder")
        w = threading.Thread(target=waiter, name="waiter")
        h.start()
        w.start()
        w.join()
        done.set()
        h.join()
    wait = trace.events("lock_wait").filter(pl.col("target") == "shared")
    assert wait.height == 1
    snap = trace.system_snapshot_at(wait["ts"][0])
    holder_id, waiter_id = trace.resolve_actor("holder"), trace.resolve_actor("waiter")
    assert {holder_id, waiter_id} <= set(snap.actors["actor"])
    assert snap.held_by(holder_id) == ["shared"]
    assert snap.waiting_for(waiter_id) == ["shared"]
    assert snap.objects["inv"] == {"items": {"apples": 3}, "log": [("apples", 3)], "total": 3}
    row = snap.to_frame().filter(pl.col("actor") == holder_id).row(0, named=True)
    assert row["holding"] == ["shared"] and row["waiting_for"] == []
    assert "waits for shared" in repr(snap) and "<table" in snap._repr_html_()
    end = trace.system_snapshot_at(trace.time_range()[1])
    assert end.locks.height == 0


def test_snapshot_queue_depths_from_send_and_receive():
    def ev(seq, kind, target, qsize):
        return {
            "seq": seq,
            "ts": 1_000 + seq,
            "kind": kind,
            "actor": "T1:1",
            "target": target,
            "qsize": qsize,
        }

    events = pl.DataFrame(
        [
            ev(0, "send", "jobs", 1),
            ev(1, "send", "jobs", 2),
            ev(2, "send", "done", 1),
            ev(3, "receive", "jobs", 1),
            ev(4, "send", "jobs", 2),
        ],
        schema=polars_schema(EVENTS),
    )
    actors = pl.DataFrame(
        [{"actor": "T1:1", "kind": "thread", "name": "w", "started": 0}],
        schema=polars_schema(ACTORS),
    )
    trace = Trace(events=events, actors=actors, states=pl.DataFrame(schema=polars_schema(STATES)))
    snap = trace.system_snapshot_at(1_003)
    assert dict(snap.queues.select("target", "depth").rows()) == {"done": 1, "jobs": 1}
    assert snap.actors["actor"].to_list() == ["T1:1"] and snap.objects == {}


class _Basket:
    def __init__(self):
        self.owner = "al"
        self.items: list[str] = []

    def rename(self, name):
        self._set_owner(name)

    def _set_owner(self, name):
        self.owner = name


def test_state_change_names_the_write_and_the_call_that_made_it():
    basket = _Basket()
    with scope.record() as trace:
        scope.trace_object(basket, name="basket")
        t = threading.Thread(target=basket.rename, args=("bob",), name="basket-worker")
        t.start()
        t.join()
    t0, t1 = trace.time_range()
    diff = trace.analyze_state_change(basket, t0, t1)
    (change,) = diff.changes
    assert (change.attribute, change.before, change.after) == ("owner", "al", "bob")
    assert change.cause == "owner = 'bob'" and change.event_kind == "write"
    assert change.call == "rename('bob')"  # the program's call, not the helper it went through
    calls = trace.events("call").filter(pl.col("seq") == change.call_seq)
    assert calls["function"].to_list() == ["_Basket.rename"]
    row = diff.to_frame().row(0, named=True)
    assert (row["call"], row["actor"]) == ("rename('bob')", trace.resolve_actor("basket-worker"))
    assert re.search(r"owner = 'bob' in rename\('bob'\) by basket-worker \(T\d+\)", repr(diff)), (
        repr(diff)
    )
