"""Bad arguments to the queries: each raises ValueError/TypeError naming the argument
and what is accepted, never an unrelated exception, and the trace still answers."""

import asyncio
import datetime as dt
import json
import math
import queue
import threading

import pytest

import scope_nb as scope


class Counter:
    def __init__(self):
        self.n = 0

    def inc(self):
        self.n += 1


@pytest.fixture(scope="module")
def run():
    """Two threads through a queue and a lock into a traced object, then an asyncio task."""
    with scope.record() as trace:
        q = queue.Queue()
        lock = threading.Lock()
        counter = scope.trace_object(Counter(), name="counter")
        start = threading.Barrier(2)

        def producer():
            start.wait()
            for i in range(3):
                q.put(i)
            q.put(None)

        def consumer():
            start.wait()
            while q.get() is not None:
                with lock:
                    counter.inc()

        threads = [
            threading.Thread(target=producer, name="producer"),
            threading.Thread(target=consumer, name="consumer"),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        async def work():
            counter.inc()

        async def main():
            task = asyncio.create_task(work(), name="worker-task")
            await task
            return task

        task = asyncio.run(main())
    return trace, counter, task


def _same_answers(trace):
    """What must not change after a bad call."""
    return (
        trace.events().height,
        trace.get_state_at("counter", trace.time_range()[1]),
        trace.message_flow("producer", "consumer").height,
    )


@pytest.mark.parametrize(
    "bad", [math.inf, -math.inf, math.nan, 10**30, -(10**30), dt.datetime.max, dt.datetime.min]
)
def test_times_no_trace_can_hold_name_the_argument(run, bad):
    trace, counter, _ = run
    before = _same_answers(trace)
    lo, hi = trace.time_range()
    calls = [
        ("ts", lambda: trace.get_state_at(counter, bad)),
        ("ts", lambda: trace.system_snapshot_at(bad)),
        ("ts", lambda: trace.get_events_before(bad)),
        ("ts", lambda: trace.analyze_crash(None, ts=bad)),
        ("t0", lambda: trace.events_between(bad, hi)),
        ("t1", lambda: trace.events_between(lo, bad)),
        ("t0", lambda: trace.analyze_state_change(counter, bad, hi)),
        ("before", lambda: trace.get_messages_to("consumer", before=bad)),
    ]
    for name, call in calls:
        with pytest.raises(
            ValueError, match=rf"^{name}=.*accepted: epoch ns \(int\), a datetime or epoch seconds"
        ):
            call()
    assert _same_answers(trace) == before


@pytest.mark.parametrize("bad", [math.nan, dt.timedelta(seconds=-1)])
def test_bad_durations_name_the_argument(run, bad):
    trace, _, _ = run
    hi = trace.time_range()[1]
    for name, call in [
        ("seconds", lambda: trace.get_events_before(hi, seconds=bad)),
        ("window", lambda: trace.analyze_race_condition("producer", "consumer", bad)),
        ("duration", lambda: trace.memory_analysis(duration=bad)),
    ]:
        with pytest.raises(
            ValueError, match=rf"^{name} must be a non-negative number of seconds or timedelta"
        ):
            call()


def test_an_infinite_duration_means_unbounded(run):
    trace, _, _ = run
    hi = trace.time_range()[1]
    everything = trace.events().filter(trace.events()["ts"] <= hi).height
    assert trace.get_events_before(hi, seconds=math.inf).height == everything
    assert trace.get_events_before(hi, seconds=dt.timedelta.max).height == everything
    assert trace.analyze_race_condition(
        "producer", "consumer", math.inf
    ) == trace.analyze_race_condition("producer", "consumer", 3600)
    assert (
        trace.memory_analysis(duration=math.inf).samples.height
        == trace.memory_analysis().samples.height
    )


@pytest.mark.parametrize("bad", [5, 1.5, b"send"])
def test_kind_of_a_wrong_type_names_kind(run, bad, tmp_path):
    trace, _, _ = run
    trace.save(tmp_path / "t")
    for t in (trace, scope.load(tmp_path / "t")):
        with pytest.raises(
            TypeError,
            match=r"^kind must be an event kind \(str\) or a list of them; got .*accepted: call",
        ):
            t.events(kind=bad)
        assert t.events(kind=["send", "receive"]).height == 8  # 4 puts, 4 gets


def test_interleaved_timeline_takes_one_task_thread_or_object(run):
    trace, counter, task = run
    for one in (task, "worker-task"):
        tl = trace.interleaved_timeline(one)
        assert tl.height > 0 and set(tl["actor"]) == {trace.resolve_actor(task)}
    assert (
        trace.interleaved_timeline(counter).height
        == trace.interleaved_timeline([counter]).height
        > 0
    )
    both = trace.interleaved_timeline([task, "producer"])
    assert set(both["actor"]) == {trace.resolve_actor(task), trace.resolve_actor("producer")}
    assert both["seq"].is_sorted()


@pytest.mark.parametrize("bad", [b"producer", "nobody", None, [None], 1.5])
def test_interleaved_timeline_names_its_argument(run, bad):
    trace, _, _ = run
    with pytest.raises(
        ValueError, match=r"^actors_or_objects: .* is neither an actor \(.*\) nor a traced object"
    ):
        trace.interleaved_timeline(bad)


@pytest.mark.parametrize("bad", ["nobody", 999_999_999, 1.5, Counter()])
def test_obj_or_actor_errors_say_both_what_was_tried(run, bad):
    trace, _, _ = run
    for call in (
        trace.memory_analysis,
        trace.get_crash_events,
        trace.analyze_crash,
        trace.get_messages_to,
    ):
        with pytest.raises(
            ValueError,
            match=r"^obj_or_actor: .* is neither an actor \(actor: .*\) "
            r"nor a traced object \(obj: ",
        ):
            call(bad)
    assert trace.memory_analysis("producer").actor == trace.resolve_actor("producer")
    assert trace.memory_analysis("counter").actor is None


def _saved(trace, path, **changes):
    trace.save(path)
    meta_file = path / "metadata.json"
    meta = json.loads(meta_file.read_text())
    for k, v in changes.items():
        if v is None:
            meta.pop(k, None)
        else:
            meta[k] = v
    meta_file.write_text(json.dumps(meta))
    return path


@pytest.mark.parametrize("bad", [None, 5, ["a", 5], b"/tmp"])
def test_load_a_path_of_the_wrong_type(bad):
    with pytest.raises(
        TypeError,
        match=r"^scope_nb.load: a path must be a str or os.PathLike, got \w+ .*; accepted: ",
    ):
        scope.load(bad)


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"layout": "raw", "pid": None}, "pid"),
        ({"started": "yesterday"}, "started"),
        ({"stopped": 1.5}, "stopped"),
        ({"dropped": {"max_events": "many"}}, "dropped"),
        ({"errors": ["hook"]}, "errors"),
    ],
)
def test_load_corrupt_metadata_names_the_field(run, tmp_path, changes, field):
    trace, _, _ = run
    path = _saved(trace, tmp_path / "t", **changes)
    with pytest.raises(ValueError, match=rf"metadata.json.* {field} "):
        scope.load(path)
    assert scope.load(_saved(trace, tmp_path / "ok")).events().height == trace.events().height
