"""Actor lifecycle and supervision through the public API: real threads, tasks,
executors, TaskGroups and processes; outcomes, parents, supervisors, hooks restored."""

import asyncio
import asyncio.base_events
import concurrent.futures as cf
import multiprocessing
import queue
import sys
import threading

import polars as pl
import pytest
from both_ways import c_then_pure

import scope_nb as scope
from scope_nb.recorder import own_threads

# crashing threads on purpose: pytest's own excepthook (chained by ours) would warn
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")


def _actor(trace, name):
    rows = trace.actors().filter(pl.col("name") == name)
    assert rows.height == 1, rows
    return rows.row(0, named=True)


def _lifecycle(trace, actor):
    ev = trace.events().filter(pl.col("kind").is_in(["spawn", "exit", "crash", "cancel"]))
    return ev.filter((pl.col("actor") == actor) | (pl.col("target") == actor))["kind"].to_list()


def _boom():
    raise KeyError("lost")


def test_threads_spawn_exit_crash_join_with_parent():
    with scope.record() as trace:
        main = trace.resolve_actor(threading.current_thread())
        gate = threading.Barrier(3)

        def worker():
            gate.wait()

        def crasher():
            gate.wait()
            _boom()

        ok = threading.Thread(target=worker, name="ok-worker")
        bad = threading.Thread(target=crasher, name="bad-worker")
        ok.start()
        bad.start()
        gate.wait()
        ok.join()
        bad.join()
    good, crashed = _actor(trace, "ok-worker"), _actor(trace, "bad-worker")
    assert (good["outcome"], good["parent"], good["kind"]) == ("ok", main, "thread")
    assert (crashed["outcome"], crashed["parent"]) == ("crashed", main)
    assert crashed["exception"] == "KeyError|KeyError('lost')"
    assert _lifecycle(trace, good["actor"]) == ["spawn", "exit"]
    assert _lifecycle(trace, crashed["actor"]) == ["spawn", "crash"]
    crash = trace.events("crash").filter(pl.col("actor") == crashed["actor"]).row(0, named=True)
    assert crash["detail"].startswith("KeyError|KeyError('lost')\n")
    assert "_boom" in crash["detail"] and crash["location"].endswith(
        f"{_boom.__code__.co_firstlineno + 1}"
    )
    joins = trace.events("join")
    assert set(joins["target"]) == {good["actor"], crashed["actor"]}
    assert set(joins["actor"]) == {main}
    spawn = trace.events("spawn").filter(pl.col("target") == good["actor"]).row(0, named=True)
    exit_ = trace.events("exit").filter(pl.col("actor") == good["actor"]).row(0, named=True)
    join = joins.filter(pl.col("target") == good["actor"]).row(0, named=True)
    assert spawn["seq"] < exit_["seq"] < join["seq"]


def test_excepthook_chains_to_the_previous_one_and_is_restored():
    seen = []
    before = threading.excepthook

    def custom(args):
        seen.append((args.exc_type, args.thread.name))

    threading.excepthook = custom
    try:
        with scope.record() as trace:
            assert threading.excepthook is not custom
            t = threading.Thread(target=_boom, name="hooked")
            t.start()
            t.join()
        assert threading.excepthook is custom
        assert seen == [(KeyError, "hooked")]
        assert _actor(trace, "hooked")["outcome"] == "crashed"
    finally:
        threading.excepthook = before
    with scope.record():
        pass
    assert threading.excepthook is before


def test_excepthook_replaced_during_recording_is_left_in_place():
    before = threading.excepthook
    calls = []
    with scope.record():
        ours = threading.excepthook

        def theirs(args):
            calls.append(args.exc_type)
            ours(args)

        threading.excepthook = theirs
    try:
        assert threading.excepthook is theirs  # not clobbered by stop()
        t = threading.Thread(target=_boom)
        t.start()
        t.join()
        assert calls == [KeyError]  # our hook stays in their chain, inert, and chains on
    finally:
        threading.excepthook = before


def test_sys_exit_in_a_thread_is_a_normal_exit():
    with scope.record() as trace:
        t = threading.Thread(target=sys.exit, args=(3,), name="leaver")
        t.start()
        t.join()
    assert _actor(trace, "leaver")["outcome"] == "ok"


def test_patches_removed_after_stop():
    loop_cls = asyncio.base_events.BaseEventLoop
    watched = [
        (threading.Thread, "start"),
        (threading.Thread, "_bootstrap_inner"),
        (threading.Thread, "join"),
        (loop_cls, "create_task"),
        (loop_cls, "run_forever"),
        (asyncio.TaskGroup, "create_task"),
        (asyncio.TaskGroup, "__aexit__"),
        (cf.ThreadPoolExecutor, "_adjust_thread_count"),
        (cf.ThreadPoolExecutor, "shutdown"),
        (cf.ProcessPoolExecutor, "_spawn_process"),
        (cf.ProcessPoolExecutor, "shutdown"),
        (multiprocessing.process.BaseProcess, "start"),
    ]
    before = [cls.__dict__[name] for cls, name in watched]
    with scope.record():
        assert threading.Thread.__dict__["start"] is not before[0]
        assert loop_cls.__dict__["create_task"] is not before[3]
    assert [cls.__dict__[name] for cls, name in watched] == before


def test_tasks_parent_and_outcomes():
    async def child_ok():
        return 42

    async def child_bad():
        raise ValueError("task failed")

    async def child_stuck(started):
        started.set()
        await asyncio.Event().wait()

    async def main():
        ok = asyncio.create_task(child_ok(), name="t-ok")
        bad = asyncio.create_task(child_bad(), name="t-bad")
        started = asyncio.Event()
        stuck = asyncio.create_task(child_stuck(started), name="t-stuck")
        await started.wait()
        stuck.cancel()
        await asyncio.gather(ok, bad, stuck, return_exceptions=True)

    with scope.record() as trace:
        asyncio.run(main())
    main_row = trace.actors().filter(
        (pl.col("kind") == "task")
        & (pl.col("parent") == trace.resolve_actor(threading.current_thread()))
    )
    assert main_row.height >= 1
    main_id = _actor(trace, "t-ok")["parent"]
    assert main_id in main_row["actor"].to_list()
    assert _actor(trace, "t-ok")["outcome"] == "ok"
    assert _actor(trace, "t-bad")["outcome"] == "failed"  # gathered: the program retrieved it
    assert _actor(trace, "t-bad")["exception"] == "ValueError|ValueError('task failed')"
    assert _actor(trace, "t-stuck")["outcome"] == "cancelled"
    assert _lifecycle(trace, _actor(trace, "t-stuck")["actor"]) == ["spawn", "cancel"]
    exit_ = trace.events("exit").filter(pl.col("actor") == _actor(trace, "t-ok")["actor"])
    assert exit_["detail"].to_list() == ["42"]


def test_task_factory_already_set_still_runs_and_exception_stays_unretrieved():
    made = []
    seen = {}

    def factory(loop, coro, **kwargs):
        task = asyncio.Task(coro, loop=loop, **kwargs)
        made.append(task)
        return task

    async def fails():
        raise RuntimeError("nobody looks")

    async def main():
        asyncio.get_running_loop().set_task_factory(factory)
        t = asyncio.get_running_loop().create_task(fails(), name="ignored")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        seen["log_traceback"] = t._log_traceback
        t.exception()  # retrieve it now, so the test does not log

    with scope.record() as trace:
        asyncio.run(main())
    assert "ignored" in [t.get_name() for t in made]  # the factory made it (and the later ones)
    assert seen["log_traceback"] is True  # recording did not mark the exception retrieved
    assert _actor(trace, "ignored")["outcome"] == "failed"  # main retrieved it: not a crash


def test_events_inside_tasks_are_attributed_to_the_task():
    import queue

    q = queue.Queue()

    async def producer():
        q.put("from task")

    async def main():
        await asyncio.create_task(producer(), name="producer-task")

    with scope.record() as trace:
        asyncio.run(main())
    send = trace.events("send")
    assert send["actor"].to_list() == [_actor(trace, "producer-task")["actor"]]


async def _one_step():
    await asyncio.sleep(0)


def _after_the_loop():
    return 1


def _runs_a_loop_then_calls():
    asyncio.run(_one_step())
    _after_the_loop()
    return 2


def test_calls_after_an_event_loop_ends_are_the_threads_again(monkeypatch):
    # the loop's last task was the running actor of the call stream: what the thread
    # called after asyncio.run() returned, and its own return, were that task's
    def run(pure):
        with scope.record(modules=[__name__]) as trace:
            assert _runs_a_loop_then_calls() == 2
        calls = trace.function_calls()
        by_name = {r["function"]: r for r in calls.iter_rows(named=True)}
        return trace, by_name

    for trace, by_name in c_then_pure(monkeypatch, run):
        main = trace.actors().filter(pl.col("name") == "MainThread")["actor"].item()
        assert by_name["_after_the_loop"]["actor"] == main
        outer = by_name["_runs_a_loop_then_calls"]
        assert outer["actor"] == main and outer["duration_ns"] is not None
        assert by_name["_one_step"]["actor"] != main
        assert trace.errors == {}


def test_thread_pool_executor_supervises_its_workers():
    with scope.record() as trace:
        with cf.ThreadPoolExecutor(max_workers=2, thread_name_prefix="pool") as ex:
            gate = threading.Barrier(2)
            list(ex.map(lambda _: gate.wait(), range(2)))
    executor = _actor(trace, "pool")
    assert (executor["kind"], executor["outcome"]) == ("executor", "ok")
    workers = trace.find_processes("worker")
    assert workers.height == 2
    assert set(workers["supervisor"]) == {executor["actor"]}
    assert set(workers["outcome"]) == {"ok"}
    tree = trace.supervision_tree()
    for w in workers["actor"]:
        assert tree.edges[executor["actor"], w]["relation"] == "supervises"
        assert tree.nodes[w]["kind"] == "thread" and tree.nodes[w]["outcome"] == "ok"
    assert trace.find_processes("supervisor")["actor"].to_list() == [executor["actor"]]
    rel = trace.process_relationships(executor["actor"])
    assert rel["workers"] == sorted(workers["actor"].to_list())


def test_taskgroup_supervises_tasks_and_records_failure():
    async def fine():
        await asyncio.sleep(0)

    async def forever(started):
        started.set()
        await asyncio.Event().wait()

    async def fails(started):
        await started.wait()
        raise OSError("disk")

    async def main():
        async with asyncio.TaskGroup() as ok_group:
            ok_group.create_task(fine(), name="g-fine")
        started = asyncio.Event()
        with pytest.raises(ExceptionGroup):
            async with asyncio.TaskGroup() as bad_group:
                bad_group.create_task(forever(started), name="g-forever")
                bad_group.create_task(fails(started), name="g-fails")

    with scope.record() as trace:
        asyncio.run(main())
    groups = trace.find_processes("supervisor").sort("started")
    assert groups["kind"].to_list() == ["taskgroup", "taskgroup"]
    assert groups["outcome"].to_list() == ["ok", "failed"]  # main handled the ExceptionGroup
    assert groups["exception"][1].startswith("ExceptionGroup|")
    ok_group, bad_group = groups["actor"].to_list()
    assert _actor(trace, "g-fine")["supervisor"] == ok_group
    assert (_actor(trace, "g-forever")["supervisor"], _actor(trace, "g-forever")["outcome"]) == (
        bad_group,
        "cancelled",
    )
    assert (_actor(trace, "g-fails")["supervisor"], _actor(trace, "g-fails")["outcome"]) == (
        bad_group,
        "failed",
    )
    tree = trace.supervision_tree()
    assert sorted(tree.successors(bad_group)) == sorted(
        [_actor(trace, "g-forever")["actor"], _actor(trace, "g-fails")["actor"]]
    )
    parent = _actor(trace, "g-fine")["parent"]
    assert tree.edges[parent, ok_group]["relation"] == "spawned"


def _exit_with(code):
    sys.exit(code)


def test_processes_exit_codes_from_the_parent_side():
    ctx = multiprocessing.get_context("fork")
    with scope.record() as trace:
        good = ctx.Process(target=_exit_with, args=(0,), name="proc-ok")
        bad = ctx.Process(target=_exit_with, args=(3,), name="proc-bad")
        good.start()
        bad.start()
        good.join()
        bad.join()
        assert (good.exitcode, bad.exitcode) == (0, 3)  # the waiter never reaps the children
    assert not [t for t in own_threads.running() if t.name.startswith("scope_nb-process")]
    ok, crashed = _actor(trace, "proc-ok"), _actor(trace, "proc-bad")
    assert (ok["actor"], ok["kind"], ok["outcome"]) == (f"P{good.pid}", "process", "ok")
    assert (crashed["actor"], crashed["outcome"]) == (f"P{bad.pid}", "crashed")
    assert crashed["exception"] == "exit code 3"
    main = trace.resolve_actor(threading.current_thread())
    assert ok["parent"] == crashed["parent"] == main
    assert _lifecycle(trace, ok["actor"]) == ["spawn", "exit"]
    assert _lifecycle(trace, crashed["actor"]) == ["spawn", "crash"]


def _square(x):
    return x * x


def test_process_pool_executor_supervises_worker_processes():
    with scope.record() as trace:
        with cf.ProcessPoolExecutor(
            max_workers=2, mp_context=multiprocessing.get_context("fork")
        ) as ex:
            assert list(ex.map(_square, range(4))) == [0, 1, 4, 9]
    sup = trace.find_processes("supervisor")
    assert sup["kind"].to_list() == ["executor"] and sup["outcome"].to_list() == ["ok"]
    procs = trace.find_processes("process").filter(pl.col("supervisor") == sup["actor"][0])
    assert procs.height == 2
    assert set(procs["outcome"]) == {"ok"}


def test_find_processes_rejects_unknown_type():
    with scope.record() as trace:
        pass
    with pytest.raises(
        ValueError,
        match=r"type='fiber'.*accepted: thread \| task \| process \| worker \| supervisor",
    ):
        trace.find_processes("fiber")
    with pytest.raises(TypeError, match="type must be a string"):
        trace.find_processes(3)
    assert trace.find_processes("thread").height >= 1


def _is_tree(tree) -> bool:
    return all(tree.in_degree(n) <= 1 for n in tree.nodes)


def test_supervision_tree_gives_pool_workers_one_parent_the_executor():
    ex = cf.ThreadPoolExecutor(max_workers=2, thread_name_prefix="pool")
    gate = threading.Barrier(2)

    def submit():
        list(ex.map(lambda _: gate.wait(), range(2)))

    with scope.record() as trace:
        submitter = threading.Thread(target=submit, name="submitter")
        submitter.start()
        submitter.join()
        ex.shutdown()
    tree = trace.supervision_tree()
    assert _is_tree(tree)
    executor = _actor(trace, "pool")["actor"]
    who_submitted = _actor(trace, "submitter")["actor"]
    workers = trace.find_processes("worker")["actor"].to_list()
    assert len(workers) == 2
    for w in workers:
        assert list(tree.predecessors(w)) == [executor]
        assert tree.edges[executor, w]["relation"] == "supervises"
        assert tree.nodes[w]["spawned_by"] == who_submitted
    assert list(tree.predecessors(who_submitted)) == [tree.nodes[who_submitted]["spawned_by"]]


def test_supervision_tree_gives_taskgroup_tasks_one_parent_the_group():
    async def child(started, go):
        started.release()
        await go.wait()

    async def spawner(group, go):
        started = asyncio.Semaphore(0)
        for i in range(2):
            group.create_task(child(started, go), name=f"member-{i}")
        for _ in range(2):
            await started.acquire()
        go.set()

    async def main():
        go = asyncio.Event()
        async with asyncio.TaskGroup() as group:
            await asyncio.create_task(spawner(group, go), name="spawner")

    with scope.record() as trace:
        asyncio.run(main())
    tree = trace.supervision_tree()
    assert _is_tree(tree)
    (group,) = trace.find_processes("supervisor")["actor"].to_list()
    spawner_id = _actor(trace, "spawner")["actor"]
    for name in ("member-0", "member-1"):
        member = _actor(trace, name)["actor"]
        assert list(tree.predecessors(member)) == [group]
        assert tree.nodes[member]["spawned_by"] == spawner_id
    assert tree.nodes[group]["kind"] == "taskgroup"


def test_names_and_messages_utf8_cannot_hold_are_kept_escaped(monkeypatch, tmp_path):
    # a thread named from undecodable bytes (os.fsdecode gives lone surrogates), a task
    # named so, and an exception and a queue item carrying such text: the trace is built,
    # saved and loaded, each text shown escaped as repr() shows it
    bad = b"name\xff".decode("utf-8", "surrogateescape")
    shown = "name\\udcff"

    def check(pure):
        q = queue.Queue()

        def work():
            q.put(bad)
            q.get()
            raise ValueError(bad)

        async def main():
            await asyncio.create_task(asyncio.sleep(0), name=bad)

        with scope.record() as trace:
            t = threading.Thread(target=work, name=bad)
            t.start()
            t.join()
            asyncio.run(main())
        named = trace.actors().filter(pl.col("name") == shown)
        assert sorted(named["kind"].to_list()) == ["task", "thread"]
        assert named.filter(pl.col("kind") == "thread")["outcome"].to_list() == ["crashed"]
        sends = trace.events().filter(pl.col("kind") == "send")["detail"].to_list()
        assert sends == [repr(bad)]
        [crash] = trace.events().filter(pl.col("kind") == "crash")["detail"].to_list()
        assert repr(ValueError(bad)) in crash
        saved = tmp_path / f"saved-{pure}"
        trace.save(saved)
        assert scope.load(saved).actors().filter(pl.col("name") == shown).height == 2

    c_then_pure(monkeypatch, check)
