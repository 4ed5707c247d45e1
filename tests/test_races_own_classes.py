"""Races out of the box: with `races=True` (`scope-nb run --races`, `%%scope --races`)
the attribute accesses of instances of the program's own classes are watched, so a lost
update on an object nobody traced is found; library classes are left alone and every
instance keeps its class."""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import textwrap
import threading

import polars as pl
import pytest
from cells import run

import scope_nb
from scope_nb.analysis.summary import summarize
from scope_nb.recorder.patchers.objects import own_classes

# `first` reads n, waits until `second` has incremented it, then writes its stale value
# plus one: one of the two updates is lost, every time
LOST = textwrap.dedent("""\
    import threading

    class Tally:
        def __init__(self):
            self.n = 0

        def bump_in_two_steps(self, between):
            seen = self.n
            between()
            self.n = seen + 1

    tally = Tally()
    first_read, second_done = threading.Event(), threading.Event()

    def first():
        tally.bump_in_two_steps(lambda: (first_read.set(), second_done.wait()))

    def second():
        first_read.wait()
        tally.n += 1
        second_done.set()

    pair = [
        threading.Thread(target=first, name="first"),
        threading.Thread(target=second, name="second"),
    ]
    for t in pair: t.start()
    for t in pair: t.join()
    print("n =", tally.n, "class kept:", type(tally) is Tally)
""")


def cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "scope_nb", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_run_races_finds_the_lost_update_on_an_untraced_object(tmp_path):
    (tmp_path / "prog.py").write_text(LOST)
    r = cli("run", "-q", "--races", "-o", "trace", "prog.py", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "n = 1 class kept: True" in r.stdout  # the update is lost as it would be untraced
    rep = cli("report", "trace", cwd=tmp_path)
    assert rep.returncode == 0, rep.stderr
    assert "== races (1) ==" in rep.stdout
    assert "lost update on Tally-1.n: first (T" in rep.stdout and "after second (T" in rep.stdout
    assert "read at prog.py:8" in rep.stdout and "write at prog.py:10" in rep.stdout
    assert "write at prog.py:20" in rep.stdout  # the other thread's `tally.n += 1`
    trace = scope_nb.load(tmp_path / "trace")
    [race] = trace.detect_race_conditions()
    assert (race.kind, race.obj, race.attribute) == ("lost_update", "Tally-1", "n")
    assert "races           1 race" in str(trace)


def test_without_races_the_summary_says_it_did_not_watch(tmp_path):
    (tmp_path / "prog.py").write_text(LOST)
    r = cli("run", "-q", "-o", "trace", "prog.py", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    trace = scope_nb.load(tmp_path / "trace")
    [races] = [s for s in summarize(trace) if s.name == "races"]
    assert races.headline == "not watched (no objects traced: --objects, trace_object or --races)"
    assert trace.events(["read", "write"]).filter(pl.col("obj").is_not_null()).height == 0


class Tally:
    def __init__(self):
        self.n = 0


def _lost_update_on(obj) -> None:
    """Two threads, no lock: `first`'s read of obj.n is stale when it writes."""
    first_read, second_done = threading.Event(), threading.Event()

    def first():
        seen = obj.n
        first_read.set()
        second_done.wait()
        obj.n = seen + 1

    def second():
        first_read.wait()
        obj.n += 1
        second_done.set()

    pair = [
        threading.Thread(target=first, name="first"),
        threading.Thread(target=second, name="second"),
    ]
    for t in pair:
        t.start()
    for t in pair:
        t.join()


def test_record_races_in_process_keeps_the_class_and_puts_it_back():
    with scope_nb.record(races=True) as trace:
        tally = Tally()
        assert type(tally) is Tally and "__setattr__" in vars(Tally)
        _lost_update_on(tally)
    assert tally.n == 1
    assert not {"__getattribute__", "__setattr__", "__delattr__"} & set(vars(Tally))
    [race] = trace.detect_race_conditions()
    assert (race.kind, race.obj, race.attribute) == ("lost_update", "Tally-1", "n")
    named = _names(trace)
    assert (named[race.first.actor], named[race.between[0].actor]) == ("first", "second")
    assert race.first.location.endswith(f"{__file__.rsplit('/', 1)[-1]}:{_line('seen = obj.n')}")


def _names(trace) -> dict[str, str]:
    actors = trace.actors()
    return dict(zip(actors["actor"], actors["name"], strict=True))


def _line(text: str) -> int:
    with open(__file__) as f:
        return next(i for i, line in enumerate(f, 1) if text in line)


def test_the_same_updates_under_a_lock_are_no_race():
    with scope_nb.record(races=True) as trace:
        tally, guard = Tally(), threading.Lock()
        go = threading.Barrier(2)

        def bump():
            go.wait()
            for _ in range(50):
                with guard:
                    tally.n += 1

        pair = [threading.Thread(target=bump, name=f"bumper-{i}") for i in range(2)]
        for t in pair:
            t.start()
        for t in pair:
            t.join()
    assert tally.n == 100
    writes = trace.events("write").filter(pl.col("obj") == "Tally-1")
    assert writes.height == 101 and set(writes["actor"].replace_strict(_names(trace))) >= {
        "bumper-0",
        "bumper-1",
    }
    assert trace.detect_race_conditions() == []
    [races] = [s for s in summarize(trace) if s.name == "races"]
    assert races.headline == "none in 1 traced object (Tally-1)"


def test_library_classes_are_not_watched():
    with scope_nb.record(races=True) as trace:
        ns, counts = argparse.Namespace(n=0), collections.Counter()
        assert "__setattr__" not in vars(argparse.Namespace) and "__setattr__" not in vars(
            collections.Counter
        )
        _lost_update_on(ns)
        counts["k"] += 1
    assert type(ns) is argparse.Namespace and ns.n == 1
    assert trace.events(["read", "write"]).filter(pl.col("obj").is_not_null()).height == 0


def test_instances_watched_per_class_are_capped():
    with scope_nb.record(races=True) as trace:
        many = [Tally() for _ in range(own_classes.MAX_PER_CLASS + 20)]
        for t in many:
            t.n += 1
    names = set(trace.events("write")["obj"].drop_nulls())
    assert len(names) == own_classes.MAX_PER_CLASS
    assert f"Tally-{own_classes.MAX_PER_CLASS}" in names and all(t.n == 1 for t in many)


def test_a_class_made_while_recording_is_watched_and_put_back():
    with scope_nb.record(races=True) as trace:

        class Late:
            __slots__ = ("x", "__weakref__")

        late = Late()
        late.x = 1
        late.x = late.x + 1
        assert type(late) is Late
    assert "__setattr__" not in vars(Late)
    rows = trace.events(["read", "write"]).filter(pl.col("obj") == "Late-1")
    assert rows["kind"].to_list() == ["write", "read", "write"] and rows["detail"].to_list() == [
        "1",
        "1",
        "2",
    ]


def test_races_option_must_be_a_bool():
    with pytest.raises(TypeError, match="option races must be True or False"):
        scope_nb.start(races="yes")
    assert not scope_nb.is_recording()


def test_scope_magic_races_finds_the_lost_update(ip):
    result, _ = run(
        ip,
        (
            "%%scope --races --quiet\n"
            "import threading\n"
            "class Account:\n"
            "    def __init__(self):\n"
            "        self.balance = 0\n"
            "acct = Account()\n"
            "first_read, second_done = threading.Event(), threading.Event()\n"
            "def first():\n"
            "    seen = acct.balance\n"
            "    first_read.set(); second_done.wait()\n"
            "    acct.balance = seen + 10\n"
            "def second():\n"
            "    first_read.wait()\n"
            "    acct.balance += 5\n"
            "    second_done.set()\n"
            "pair = [threading.Thread(target=first, name='first'), threading.Thread(target=second, "
            "name='second')]\n"
            "for t in pair: t.start()\n"
            "for t in pair: t.join()\n"
            "type(acct) is Account\n"
        ),
    )
    assert result.success and result.result is True
    [race] = ip.user_ns["_scope"].detect_race_conditions()
    assert (race.kind, race.obj, race.attribute) == ("lost_update", "Account-1", "balance")
    assert "__setattr__" not in vars(ip.user_ns["Account"])
