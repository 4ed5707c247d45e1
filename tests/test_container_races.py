"""Races on the items of a traced object's dicts, sets and lists: get-or-create and
check-then-act on a key, `d[k] += 1` lost updates, reported with both accesses, their
threads, locations and locks; concurrent appends and adds (which commute) and accesses
under a common lock are not. While recording, the containers are substitutes that
pickle, copy and serialise as plain ones; stop() puts plain ones back."""

import copy
import json
import pickle
import threading

import polars as pl

import scope_nb as scope


def _line(text):
    with open(__file__) as f:
        return next(i for i, line in enumerate(f, 1) if line.strip() == text)


def _where(text):
    return f"test_container_races.py:{_line(text)}"


class Registry:
    def __init__(self):
        self.by_name = {}
        self.counts = {"hits": 0}
        self.seen = set()
        self.log = []
        self.lock = threading.Lock()

    def get_or_create(self, key, between):
        if key not in self.by_name:
            between()
            self.by_name[key] = object()
        return self.by_name[key]

    def get_or_create_locked(self, key, between):
        with self.lock:
            if key not in self.by_name:
                self.by_name[key] = object()
        between()

    def first_time(self, item, between):
        if item not in self.seen:
            between()
            self.seen.add(item)
            return True
        return False

    def mark(self, key, between):
        if not self.by_name.get(key):
            between()
            self.by_name[key] = True

    def bump(self, key, amount):
        self.counts[key] += amount


class Waiting(int):
    """An int whose addition waits for the other thread's: `counts[k] += x` by two
    threads then reads, reads, writes, writes -- one update lost, every time."""

    gate: threading.Barrier

    def __add__(self, other):
        self.gate.wait()
        return Waiting(int(self) + other)


def _two(target, *names):
    threads = [threading.Thread(target=target, name=n) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _races(trace):
    return [r for r in trace.detect_race_conditions() if r.obj == "reg"]


def test_get_or_create_race_is_reported_with_both_threads_locations_and_locks():
    both_checked = threading.Barrier(2)
    with scope.record() as trace:
        reg = scope.trace_object(Registry(), "reg")
        _two(lambda: reg.get_or_create("alice", both_checked.wait), "maker-1", "maker-2")
    [r] = _races(trace)
    assert (r.kind, r.attribute, r.lost_update) == ("lost_update", "by_name['alice']", True)
    stale_writer = trace.actors().filter(pl.col("actor") == r.second.actor)["name"][0]
    other = trace.actors().filter(pl.col("actor") == r.between[0].actor)["name"][0]
    assert {stale_writer, other} == {"maker-1", "maker-2"}
    assert r.first.actor == r.second.actor
    assert (r.first.op, r.second.op, r.between[0].op) == ("read", "write", "write")
    assert r.first.value == "False"  # the check found no key
    assert r.first.location.endswith(_where("if key not in self.by_name:"))
    assert r.second.location.endswith(_where("self.by_name[key] = object()"))
    assert r.locks == ([], [])
    text = repr(r)
    assert f"{stale_writer} (T" in r.headline and f"after {other} (T" in r.headline
    assert _where("if key not in self.by_name:") in text
    shown = text.split("read at ")[1].split(")")[0]
    assert shown.endswith(_where("if key not in self.by_name:")) and not shown.startswith("/")


def test_get_or_create_under_a_common_lock_is_not_reported():
    taken = threading.Barrier(2)
    with scope.record() as trace:
        reg = scope.trace_object(Registry(), "reg")
        _two(lambda: reg.get_or_create_locked("alice", taken.wait), "maker-1", "maker-2")
    items = trace.events(["read", "write"]).filter(pl.col("target") == "by_name['alice']")
    assert items.height == 3  # two checks, one insert
    assert all(locks == ["reg.lock"] for locks in items["locks_held"].to_list())
    assert _races(trace) == []


def test_item_plus_equals_by_two_threads_loses_an_update():
    with scope.record() as trace:
        reg = Registry()
        Waiting.gate = threading.Barrier(2)
        reg.counts["hits"] = Waiting(0)
        reg = scope.trace_object(reg, "reg")
        _two(lambda: reg.bump("hits", 1), "bumper-1", "bumper-2")
    assert reg.counts["hits"] == 1  # one of the two increments is lost
    [r] = _races(trace)
    assert (r.kind, r.attribute) == ("lost_update", "counts['hits']")
    assert r.first.location.endswith(_where("self.counts[key] += amount"))
    assert r.second.location == r.first.location == r.between[0].location
    names = set(trace.actors().filter(pl.col("actor").is_in(list(r.actors)))["name"])
    names |= set(trace.actors().filter(pl.col("actor") == r.between[0].actor)["name"])
    assert names == {"bumper-1", "bumper-2"}


def test_a_same_value_write_after_a_stale_read_is_still_a_write():
    both_checked = threading.Barrier(2)
    with scope.record() as trace:
        reg = scope.trace_object(Registry(), "reg")
        _two(lambda: reg.mark("done", both_checked.wait), "marker-1", "marker-2")
    [r] = _races(trace)
    assert (r.kind, r.attribute) == ("lost_update", "by_name['done']")
    assert r.second.value == r.between[0].value == "True"  # the same value, written twice
    assert r.first.location.endswith(_where("if not self.by_name.get(key):"))


def test_check_then_add_on_a_set_is_reported_on_that_member():
    both_checked = threading.Barrier(2)
    firsts = []
    with scope.record() as trace:
        reg = scope.trace_object(Registry(), "reg")
        _two(lambda: firsts.append(reg.first_time("job-7", both_checked.wait)), "w1", "w2")
    assert firsts == [True, True]  # both threads took job-7 as new
    [r] = _races(trace)
    assert (r.kind, r.attribute) == ("lost_update", "seen{'job-7'}")
    assert r.second.location.endswith(_where("self.seen.add(item)"))


def test_concurrent_appends_and_adds_of_distinct_items_are_not_reported():
    turn = threading.Barrier(2)

    def work(tag):
        for i in range(20):
            turn.wait()  # the two threads append in lockstep, unordered by any lock
            reg.log.append(f"{tag}-{i}")
            reg.seen.add(f"{tag}-{i}")
            reg.seen.add("shared")  # the same member added by both: adds commute

    with scope.record() as trace:
        reg = scope.trace_object(Registry(), "reg")
        _two(lambda: work(threading.current_thread().name), "a", "b")
    writes = trace.events("write").filter(pl.col("obj") == "reg")
    assert writes.filter(pl.col("target").str.starts_with("log{")).height == 40
    assert writes.filter(pl.col("target") == "seen{'shared'}").height == 40
    assert sorted(reg.log) == sorted(f"{t}-{i}" for t in "ab" for i in range(20))
    assert _races(trace) == []


def test_setdefault_by_two_threads_is_no_race():
    turn = threading.Barrier(2)

    def work():
        turn.wait()
        reg.by_name.setdefault("alice", []).append(threading.current_thread().name)

    with scope.record() as trace:
        reg = scope.trace_object(Registry(), "reg")
        _two(work, "s1", "s2")
    assert sorted(reg.by_name["alice"]) == ["s1", "s2"]
    assert trace.events("read").filter(pl.col("target") == "by_name['alice']").height == 2
    assert _races(trace) == []


def test_containers_pickle_copy_and_serialise_as_plain_ones_and_come_back_plain():
    reg = Registry()
    reg.counts["nested"] = {"deep": [1, 2]}
    reg.log.append(reg.log)  # a list holding itself
    with scope.record():
        scope.trace_object(reg, "reg")
        assert type(reg.counts) is not dict and isinstance(reg.counts, dict)
        assert reg.counts.__class__ is dict
        assert json.loads(json.dumps(reg.counts)) == {"hits": 0, "nested": {"deep": [1, 2]}}
        for out in (pickle.loads(pickle.dumps(reg.counts)), copy.copy(reg.counts)):
            assert type(out) is dict and out == {"hits": 0, "nested": {"deep": [1, 2]}}
        deep = copy.deepcopy(reg.counts)
        assert type(deep) is dict and deep["nested"] is not reg.counts["nested"]
        for out in (pickle.loads(pickle.dumps(reg.log)), copy.deepcopy(reg.log)):
            assert type(out) is list and out[0] is out
        seen = pickle.loads(pickle.dumps(reg.seen | {"x"}))
        assert type(seen) is set and seen == {"x"}
        assert type(pickle.loads(pickle.dumps(reg.seen))) is set
        assert repr(reg.seen) == "set()" and repr(reg.counts).startswith("{'hits': 0")
        made = (reg.counts.copy(), reg.counts | {}, reg.counts.fromkeys("ab"), reg.seen | {1})
        assert [type(x) for x in made] == [dict, dict, dict, set]
        assert [type(x) for x in (reg.log + [], reg.log[:], reg.log * 2)] == [list] * 3
    assert type(reg.by_name) is dict and type(reg.counts) is dict
    assert type(reg.seen) is set and type(reg.log) is list
    assert reg.counts["nested"] == {"deep": [1, 2]} and reg.log[0] is reg.log


def test_a_container_also_held_elsewhere_is_left_alone():
    reg = Registry()
    alias = reg.by_name
    with scope.record() as trace:
        scope.trace_object(reg, "reg")
        assert type(reg.by_name) is dict  # swapping it would split one dict in two
        reg.by_name["k"] = 1
        kept = reg.counts  # taken while recording: the substitute stays, silent, at stop
        shared = []
        reg.log = shared  # assigned while a local still holds it: not adopted at its read
        reg.log.append(1)
        assert reg.log is shared and type(reg.log) is list
    assert alias["k"] == 1 and kept is reg.counts and isinstance(reg.counts, dict)
    assert trace.events("write").filter(pl.col("target").str.starts_with("by_name")).height == 0
    reg.counts["after"] = 1
    assert trace.events("write").filter(pl.col("target") == "counts['after']").height == 0


def test_a_container_assigned_while_recording_is_watched_from_its_first_read():
    both_checked = threading.Barrier(2)
    with scope.record() as trace:
        reg = scope.trace_object(Registry(), "reg")
        reg.by_name = {}  # a new dict, after tracing
        _two(lambda: reg.get_or_create("bob", both_checked.wait), "maker-1", "maker-2")
        assert isinstance(reg.by_name, dict) and type(reg.by_name) is not dict
    assert type(reg.by_name) is dict and set(reg.by_name) == {"bob"}
    [r] = _races(trace)
    assert (r.kind, r.attribute) == ("lost_update", "by_name['bob']")


class Sessions:
    """Not traced: watched by races=True as one of the program's own classes."""

    def __init__(self):
        self.open = {}

    def session_for(self, user, between):
        if user not in self.open:
            between()
            self.open[user] = object()
        return self.open[user]


def test_races_true_watches_the_dicts_of_the_programs_own_instances():
    both_checked = threading.Barrier(2)
    with scope.record(races=True) as trace:
        s = Sessions()
        _two(lambda: s.session_for("carol", both_checked.wait), "login-1", "login-2")
        assert type(s) is Sessions and isinstance(s.open, dict)
    assert type(s.open) is dict and set(s.open) == {"carol"}
    [r] = [r for r in trace.detect_race_conditions() if r.obj == "Sessions-1"]
    assert (r.kind, r.attribute) == ("lost_update", "open['carol']")
    assert r.first.location.endswith(_where("if user not in self.open:"))
    assert r.second.location.endswith(_where("self.open[user] = object()"))


def test_values_under_secret_keys_are_redacted():
    with scope.record() as trace:
        reg = scope.trace_object(Registry(), "reg")
        reg.by_name["password"] = "hunter2"
        reg.by_name["user"] = "ann"
        assert reg.by_name.get("password") == "hunter2"
    rows = trace.events(["read", "write"]).filter(pl.col("target").str.starts_with("by_name["))
    assert rows.select("kind", "target", "detail").rows() == [
        ("write", "by_name['password']", "<redacted>"),
        ("write", "by_name['user']", "'ann'"),
        ("read", "by_name['password']", "<redacted>"),
    ]


def test_update_and_pop_are_writes_of_their_keys():
    with scope.record() as trace:
        reg = scope.trace_object(Registry(), "reg")
        reg.by_name.update({"a": 1}, b=2)
        reg.by_name.pop("a")
        reg.seen.discard("gone")
    rows = trace.events("write").filter(pl.col("obj") == "reg")
    assert rows.select("target", "detail").rows() == [
        ("by_name['a']", "1"),
        ("by_name['b']", "2"),
        ("by_name['a']", "<deleted>"),
        ("seen{'gone'}", "<removed>"),
    ]
    assert reg.by_name == {"b": 2} and type(reg.by_name) is dict
