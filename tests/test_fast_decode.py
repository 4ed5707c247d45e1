"""The C decode loop (scope_nb.recorder._fasthooks.Decoder) gives exactly what the Python
loop of scope_nb.model.decode.decode() gives: the same Decoded, on real recordings and on
hand-made chunks of awkward values."""

import asyncio
import contextlib
import math
import queue
import threading
from array import array
from types import SimpleNamespace

import calls_sample as cs
import fasthooks_sample as fs
import pytest
from both_ways import c_then_pure

import scope_nb as scope
from scope_nb.model import decode as dec
from scope_nb.recorder.buffer import (
    CALL,
    EXCEPTION,
    KIND_BITS,
    RESUME,
    RETURN,
    RICH,
    SUSPEND,
    SWITCH,
    Chunk,
)
from scope_nb.values import Formatted, Formatter

fast = pytest.importorskip("scope_nb.recorder._fasthooks", reason="the C extension is not built")


class Hostile:
    def __repr__(self):
        raise RuntimeError("no repr for you")


def _columns(d: dec.Decoded) -> dict:
    """Every column of a Decoded, with each item's type beside it (1, True and 1.0 must
    not compare equal by accident)."""
    return {
        "ts": [list(p) for p in d.ts_parts],
        "ks": [list(p) for p in d.ks_parts],
        "segments": d.segments,
        "critical": (d.critical_buf, d.critical_actor),
        "detail": [(type(x).__name__, x) for x in d.detail],
        "actor": sorted(d.actor.items()),
        "fid": sorted(d.fid.items()),
        "rich": (d.rich_rows, [[(type(x).__name__, x) for x in col] for col in d.rich_cols]),
        "rich_actor": d.rich_actor,
    }


def _decode_both(monkeypatch, chunks, critical, sites, fmt, bases=None) -> tuple[dict, dict]:
    """decode() with the C loop, then with SCOPE_NB_PURE=1 (the Python loop)."""

    def run(pure):
        assert (getattr(dec.fast_module(), "Decoder", None) is None) == pure
        b = None if bases is None else dict(bases)
        out = _columns(dec.decode(chunks, critical, sites, fmt, b))
        if b is not None:
            out["bases"] = b
        return out

    return c_then_pure(monkeypatch, run)


def _snapshot(trace) -> tuple:
    """What a live trace's frames are built from: (chunks, critical, sites, fmt)."""
    rec = trace._rec
    chunks, critical = rec.snapshot()
    return chunks, critical, list(rec.sites), rec.fmt


def _check(monkeypatch, snap) -> dict:
    chunks, critical, sites, fmt = snap
    c, py = _decode_both(monkeypatch, chunks, critical, sites, fmt)
    assert c == py
    # without texts (what call statistics read): every other column the same
    bare = _columns(dec.decode(chunks, critical, sites, fmt, texts=False))
    assert bare["detail"] == [] and {**bare, "detail": c["detail"]} == c
    c2, py2 = _decode_both(monkeypatch, chunks, critical, sites, fmt, bases={chunks[0].index: 7})
    assert c2 == py2
    return c


def _details(cols: dict) -> list:
    return [x for _, x in cols["detail"]]


def test_calls_sample_values(monkeypatch):
    loop = []
    loop.append(loop)
    with scope.record(modules=[cs, fs]) as trace:
        assert cs.fib(15) == 610
        for x in (3, "x"):
            with pytest.raises(ValueError):
                cs.fail(x, password="pw")
        with pytest.raises(ValueError):
            cs.fail(1.5)
        for v in (
            1,
            True,
            1.0,
            0,
            False,
            0.0,
            -0.0,
            None,
            10**15 - 1,
            10**15,
            -(10**15) + 1,
            -(10**15),
            10**40,
            -(10**40),
            2**63,
            -5,
            1023,
            1024,
            -6,
            1.5e300,
            math.inf,
            -math.inf,
            math.nan,
            0.1,
            1e16,
            "s",
            "y" * 10_000,
            b"z" * 10,
            2j,
            (1, "a"),
            Hostile(),
            loop,
            list(range(100_000)),
            {"token": "abc", "user": "bob"},
            fs.Shown("s"),
        ):
            cs.echo(v)
            cs.echo(v)
        for a, b in (
            (1, True),
            (True, 1.0),
            (1.0, 1),
            (10**15, -(10**15)),
            (None, 2.5),
            ([1], {"k": Hostile()}),
            ("a", b"b"),
            (math.nan, -0.0),
            (fs.Shown("t"), 3),
        ):
            fs.pair(a, b)
        fs.login("ann", "tok", 1, 2, mode="x")
        fs.nothing()
        fs.Shown("a").rename(7, secret=8)
        c = cs.Counter()
        c.bump()
        c.bump(by=True)
        assert cs.Counter.Inner.twice(4) == 8
        assert list(cs.countdown(3)) == [3, 2, 1]
        assert asyncio.run(cs.main(4)) == [0, 2, 4, 6]
        with pytest.raises(ZeroDivisionError):
            fs.boom(3)
        snap = _snapshot(trace)
    cols = _check(monkeypatch, snap)
    details = _details(cols)
    for text in (
        "value=1",
        "value=True",
        "value=1.0",
        "value=None",
        "value=999999999999999",
        "value=1000000000000000",
        "value=-999999999999999",
        "value=inf",
        "value=nan",
        "value=1e+16",
        "a=1, b=True",
        "a=True, b=1.0",
        "a=1.0, b=1",
        "a=None, b=2.5",
        "x=3, password='<redacted>'",
        "by=True",
    ):
        assert text in details, text
    for text in ("1", "True", "1.0", "610", "1000000000000000", "None"):
        assert text in details, text
    assert any(d is not None and d.startswith("value=[0, 1, 2") for d in details)


def test_threads_tasks_queues_and_locks(monkeypatch):
    def worker(n, q, lock):
        for i in range(50):
            with lock:
                cs.fib(n)
            q.put((n, i))
            cs.echo(i * 1.5)
            with contextlib.suppress(ValueError):
                cs.fail(i)

    async def tasks():
        aq = asyncio.Queue()

        async def produce(n):
            for i in range(20):
                await aq.put((n, i))
                await cs.double(i)

        async def consume(k):
            return [await aq.get() for _ in range(k)]

        got = await asyncio.gather(*(produce(n) for n in range(3)), consume(60))
        return got[-1]

    with scope.record(modules=[cs]) as trace:
        q: queue.Queue = queue.Queue()
        lock = threading.Lock()
        threads = [threading.Thread(target=worker, args=(n, q, lock)) for n in (5, 6, 7, 8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        while not q.empty():
            q.get()
        assert len(asyncio.run(tasks())) == 60
        snap = _snapshot(trace)
    cols = _check(monkeypatch, snap)
    assert cols["rich"][0] and cols["actor"] and cols["fid"]
    assert len({actor for _, actor, _, _ in cols["segments"]}) >= 5


def test_many_chunks_and_a_bound(monkeypatch):
    with scope.record(modules=[cs], max_events=3_000) as trace:
        for i in range(40):
            cs.fib(8)
            cs.echo(i)
        snap = _snapshot(trace)
    assert len(snap[0]) > 3
    _check(monkeypatch, snap)


def _site(*names, is_gen=False):
    return SimpleNamespace(argnames=tuple(names), is_gen=is_gen)


def test_hand_made_chunks(monkeypatch):
    """Values the recorder may keep, straight into chunks: the cache by (site, type,
    value) (1 and True are different keys; floats are not cached, so -0.0 keeps its
    sign), Formatted texts, odd shapes that go to the Python functions, every marker,
    a ks that is a plain list."""
    sites = [
        _site("x"),
        _site("a", "b", "c"),
        _site(),
        _site("g", is_gen=True),
        _site("p", "q", is_gen=True),
    ]
    fmt = Formatter()
    call = [CALL | (s << KIND_BITS) for s in range(len(sites))]
    big = 10**15
    rich = ("T1", "queue-1", "payload", 3, "obj", None, 12, "mod", "fn", ("lock-1",), 2)
    events = [
        (call[0], 0.0),
        (call[0], -0.0),
        (call[0], 1),
        (call[0], True),
        (call[0], 1.0),
        (call[0], None),
        (call[0], big),
        (call[0], -big + 1),
        (call[0], "s"),
        (call[0], b"b"),
        (call[0], Formatted("F")),
        (call[0], [1, 2]),
        (call[0], (1, 2)),
        (call[0], math.nan),
        (call[0], math.nan),
        (call[1], (1, True, 1.0)),
        (call[1], (Formatted("<f>"), None, big)),
        (call[1], ("t", b"u", -big)),
        (call[1], (1, 2)),
        (call[1], (1, 2, 3, 4)),
        (call[1], ()),
        (call[1], None),
        (call[1], [7, 8, 9]),
        (call[2], None),
        (call[2], (1,)),
        (call[3], (11, 5)),
        (call[3], (12, Formatted("G"))),
        (call[4], (13, (2.5, False))),
        (RETURN, 5),
        (RETURN, True),
        (RETURN, 2.0),
        (RETURN, None),
        (RETURN, big),
        (RETURN, -big),
        (RETURN, "r"),
        (RETURN, Formatted("R")),
        (RETURN, (1, 2)),
        (RETURN, 2**70),
        (RETURN, -3),
        (EXCEPTION, Formatted("ValueError('e')")),
        (EXCEPTION, None),
        (EXCEPTION, 4),
        (EXCEPTION, "text"),
        (SUSPEND, 11),
        (RESUME, 11),
        (SWITCH, "Task-1"),
        (RICH | (7 << KIND_BITS), rich),
        (RICH, ("T2", None, (1, 2.5), None, None, None, None, None, None, None, None)),
        (RICH | (7 << KIND_BITS), rich),  # the same tuple again, as a lock reuses its events
        *(
            (RICH, ("T3", "q", m, None, None, None, None, None, None, None, None))
            for m in (
                tuple(range(12)),
                ("x" * 300,),
                (b"y" * 300, 1),
                2**70,
                -0.0,
                True,
                Formatted("<m>"),
                "text " * 100,
                (1.234567890123e-300,) * 10,
                [1, 2],
                Hostile(),
            )
        ),
        # a message's send and receive: two events, one message object (its text kept)
        *(
            (RICH, (actor, "q", m, 5, None, 1))
            for m in (("a", 1), tuple(range(12)), ("x" * 300,), (b"y" * 300, 2.5))
            for actor in ("T5", "T6")
        ),
    ]
    ks = [k for k, _ in events]
    vals = [v for _, v in events]
    chunks = [
        Chunk(array("q", range(len(ks))), array("I", ks), vals, "T0", 0),
        Chunk(array("q", range(len(ks))), fast.Col("I"), [], "T1", 1),
        Chunk(list(range(len(ks))), list(ks), list(vals), "T2", 2),
    ]
    critical = [(99, 4, 0, rich)]
    c, py = _decode_both(monkeypatch, chunks[:1] + chunks[2:], critical, sites, fmt)
    assert c == py
    details = _details(c)
    assert details[:6] == ["x=0.0", "x=-0.0", "x=1", "x=True", "x=1.0", "x=None"]
    assert "a=1, b=True, c=1.0" in details and "a=<f>, b=None, c=1000000000000000" in details
    assert details.count("") >= 2
    assert details.count("('a', 1)") == 4  # two events in each of the two chunks
    col = fast.Col("I")
    for k in ks:
        col.append(k)
    chunks[1] = Chunk(array("q", range(len(ks))), col, vals, "T1", 1)
    c, py = _decode_both(monkeypatch, chunks, [], sites, fmt, bases={1: 3})
    assert c == py


def test_errors_match(monkeypatch):
    """A mismatch of ks and vals fails in both loops."""
    sites = [_site("x")]
    chunk = Chunk(array("q", [1, 2]), array("I", [CALL, CALL]), [1], "T0", 0)
    for pure in ("", "1"):
        monkeypatch.setenv("SCOPE_NB_PURE", pure)
        with pytest.raises(ValueError):
            dec.decode([chunk], [], sites, Formatter())


def test_negative_zero_keeps_its_sign():
    with scope.record(modules=[cs]) as trace:
        cs.echo(0.0)
        cs.echo(-0.0)
    assert trace.function_calls()["args"].to_list() == ["value=0.0", "value=-0.0"]
