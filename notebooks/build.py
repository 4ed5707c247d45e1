"""Write the teaching notebooks from the cell lists below, run each one top to bottom
in a fresh kernel, and store it with its outputs.

    python notebooks/build.py            # every notebook
    python notebooks/build.py 03 04      # the ones whose name starts with 03 or 04

Each notebook runs in a temporary directory (files it writes, like 07's trace
directory, stay out of the repository). Stored outputs are made to read well on
GitHub and in nbconvert: live widget views are dropped (no widget state is saved, so
they could not be shown anyway) and the static HTML picture every widget of scope_nb
carries is kept; charts and graphs carry a PNG drawn offline in the kernel (and the
Vega-Lite spec, which JupyterLab draws with the Vega it ships), so every figure shows
when the notebook is opened untrusted.
"""

from __future__ import annotations

import os
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
WIDGET = "application/vnd.jupyter.widget-view+json"
CELL_TIMEOUT = 120


def md(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(textwrap.dedent(text).strip())


def code(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(textwrap.dedent(text).strip())


# ---------------------------------------------------------------------------------------------
NB01 = [
    md("""
    # 01 · Quickstart: record a threaded program and look inside it

    scope_nb is a flight recorder for concurrent Python. You wrap a cell in `%%scope`,
    run your threads, and afterwards you can ask what happened: who started whom, which
    messages went through which queue, what a shared object held at any instant.

    In ten minutes you will record a tiny kitchen (two cook threads fed by a queue,
    one shared pantry), read the summary, open the explorer, and query the recording as
    DataFrames.
    """),
    code("%load_ext scope"),
    md("""
    ## The program

    Orders arrive on a `queue.Queue`. Two cook threads take them and use the shared
    `Pantry` under a lock. `None` tells a cook to go home.
    """),
    code('''
    import queue
    import threading


    class Pantry:
        """What is left in the kitchen, and what was served."""

        def __init__(self):
            self.eggs = 6
            self.served = []

        def cook(self, dish, eggs):
            self.eggs -= eggs
            self.served.append(dish)


    pantry = Pantry()
    pantry_lock = threading.Lock()


    def cook(orders):
        while (dish := orders.get()) is not None:
            with pantry_lock:
                pantry.cook(dish, eggs=2)
    '''),
    md("""
    ## Record it

    `%%scope` records everything the cell starts: threads, queue traffic, locks.
    `--objects pantry` also traces the pantry (every method call and every state it
    went through), and `-o kitchen` keeps the recording in a variable (it is always
    kept as `_scope` too). The cell ends with a summary.
    """),
    code("""
    %%scope --objects pantry -o kitchen
    orders = queue.Queue()
    cooks = [threading.Thread(target=cook, args=(orders,), name=f"cook-{i}") for i in (1, 2)]
    for c in cooks:
        c.start()
    for dish in ["omelette", "frittata", "shakshuka"]:
        orders.put(dish)
    for c in cooks:
        orders.put(None)
    for c in cooks:
        c.join()
    """),
    md("""
    The summary lists the actors (the main thread and the two cooks), the events by
    kind, and the four questions scope_nb always asks: did anything crash, race,
    deadlock or stall? Here: nothing. In a live notebook, its buttons open the explorer.

    ## Everything is a DataFrame

    A recording is three polars frames: `actors()`, `events()` and `states()`.
    Who ran, who started them, and how they ended:
    """),
    code('kitchen.actors().select("actor", "kind", "name", "parent", "outcome")'),
    md("Which kinds of events were recorded:"),
    code('kitchen.events().group_by("kind").len().sort("len", descending=True)'),
    md("""
    Actors have ids like `T3:1234` (thread 3 of process 1234); `actors()` maps them to
    names. Every `put` on the queue is a `send`, every `get` a `receive`; the two are
    paired by `msg_id`, so you can see which cook received each order and how long it
    waited (which cook gets which order depends on the scheduler):
    """),
    code("""
    import polars as pl

    names = kitchen.actors().select("actor", "name")
    received = (
        kitchen.events("receive")
        .filter(pl.col("detail") != "None")
        .join(names, on="actor", how="left")
    )
    received.select("name", "target", "detail", (pl.col("duration_ns") / 1e3).alias("waited_us"))
    """),
    md("""
    ## Time travel on a traced object

    `state_timeline` lists every state the pantry went through, with the thread and the
    call that caused each one. `get_state_at` rebuilds the whole object as it was at any
    instant (real values, not text):
    """),
    code('kitchen.state_timeline(pantry).select("actor", "cause", "changed", "state")'),
    code("""
    after_first_dish = kitchen.state_timeline(pantry)["ts"][1]
    kitchen.get_state_at(pantry, after_first_dish)
    """),
    md("""
    ## Pictures

    Charts render offline (no CDN, nothing to enable): each carries a picture drawn in
    the kernel, which also reads well when the notebook is saved. The timeline has one
    lane per actor; green lines are messages from sender to receiver.
    """),
    code("""
    from scope_nb.notebook import charts

    charts.timeline_chart(kitchen)
    """),
    md("Who started whom (the supervision tree, a `networkx.DiGraph` that draws itself):"),
    code("kitchen.supervision_tree()"),
    md("""
    ## The explorer

    `%scope explore` (or `kitchen.explore()`) opens a time slider over the recording with
    step / play buttons and panels that follow the cursor: the events around it, the
    pantry's state at that moment, the actors alive, the timeline. Saved notebooks show
    a static picture of it, as below; run the notebook to get the live widget.
    """),
    code("%scope explore"),
    md("""
    ## What you can now do

    - record any cell with `%%scope` (add `--objects x,y` for objects whose state you care
      about, `-o name` to keep the trace);
    - read the summary: crashes, races, deadlocks, stalls, hotspots;
    - query `actors()`, `events(kind)`, `states()` with polars;
    - follow an object through time with `state_timeline` and `get_state_at`;
    - draw the timeline and supervision tree offline, and scrub through time with the explorer.

    Next: [02 · why did my worker crash?](02-worker-crash-postmortem.ipynb)
    """),
]

# ---------------------------------------------------------------------------------------------
NB02 = [
    md("""
    # 02 · Why did my worker crash? A post-mortem

    A worker thread applies payments it receives on a queue to a ledger. One day it
    stops. The log says one line. Elixir people would ask "why did my GenServer crash?"
    and expect the answer to include the messages it handled and its state before and
    after. This notebook gets exactly that from a recording.
    """),
    code("%load_ext scope"),
    code("""
    import queue
    import threading


    class Ledger:
        def __init__(self):
            self.balances = {"alice": 100, "bob": 50}
            self.applied = 0

        def apply(self, payment):
            self.balances[payment["from"]] -= payment["amount"]
            self.balances[payment["to"]] += payment["amount"]
            self.applied += 1


    ledger = Ledger()


    def ledger_worker(inbox):
        while (payment := inbox.get()) is not None:
            ledger.apply(payment)
    """),
    md("""
    Like many services, this one sends a dead thread's report to its log as one line
    (instead of the default traceback on stderr):
    """),
    code("""
    def log_thread_death(args):
        print(f"[log] thread {args.thread.name} stopped: {args.exc_type.__name__}")


    threading.excepthook = log_thread_death
    """),
    md("## Reproduce it under the recorder"),
    code("""
    %%scope --objects ledger -o payday
    inbox = queue.Queue()
    worker = threading.Thread(target=ledger_worker, args=(inbox,), name="ledger-worker")
    worker.start()
    for payment in [
        {"from": "alice", "to": "bob", "amount": 30},
        {"from": "bob", "to": "carol", "amount": 20},
        {"from": "alice", "to": "bob", "amount": 10},
    ]:
        inbox.put(payment)
    inbox.put(None)
    worker.join()
    """),
    md("""
    The log line says `KeyError` and nothing more. The summary already names the crash;
    let's take it apart.

    ## The crash

    `get_crash_events` finds every actor that died; `analyze_crash` puts together what a
    person needs: the exception and traceback, the last messages the worker received,
    the calls it was making, and the traced objects' state before and after.
    """),
    code("""
    crash = payday.get_crash_events("ledger-worker")
    crash
    """),
    code('payday.analyze_crash("ledger-worker")'),
    md("""
    On the timeline, the payments travel from the cell's thread to the worker (green
    lines) and the worker's lane ends with the crash (red cross):
    """),
    code("""
    from scope_nb.notebook import charts

    charts.timeline_chart(payday)
    """),
    md("""
    ## The message that killed it

    The messages the worker received before it died, most recent last. The second one
    names a payee, `carol`, that the ledger does not know:
    """),
    code("""
    messages = payday.get_messages_to("ledger-worker", before=crash.ts)
    messages.select("ts", "sender", "via", "detail")
    """),
    md("""
    ## State before and after: money vanished

    Every state the ledger went through, with the thread and the call that caused it:
    """),
    code('payday.state_timeline(ledger).select("actor", "cause", "changed", "state")'),
    md("""
    Rebuild the ledger as it was when the fatal message arrived, and as it was at the
    crash:
    """),
    code("""
    fatal_received = messages["ts"][-1]
    print("when the fatal message arrived:", payday.get_state_at(ledger, fatal_received))
    print("at the crash:                  ", payday.get_state_at(ledger, crash.ts))
    """),
    code("payday.analyze_state_change(ledger, fatal_received, crash.ts)"),
    md("""
    Bob was debited 20 that arrived nowhere, `applied` did not move, and the third
    payment is still sitting in the queue: nobody is left to take it (the summary's
    stall line says so: the queue lost its consumer).

    ## `%scope postmortem`

    Like `%debug` for a single stack, `%scope postmortem` shows the analysis of the most
    recent failure in the last recording: a crashed thread or task, or the `%%scope`
    cell itself if it raised.
    """),
    code("%scope postmortem"),
    code("threading.excepthook = threading.__excepthook__  # back to the default"),
    md("""
    ## What you can now do

    - find every dead thread or task with `get_crash_events()`;
    - get the full story of one crash with `analyze_crash(actor)` or `%scope postmortem`;
    - list the messages an actor received before a moment with `get_messages_to(actor, before=ts)`;
    - compare an object's state at two instants with `get_state_at` and `analyze_state_change`.

    Next: [03 · the lost update](03-lost-update.ipynb)
    """),
]

# ---------------------------------------------------------------------------------------------
NB03 = [
    md("""
    # 03 · The lost update: two tellers, one account

    `balance = balance + amount` is a read followed by a write. If another thread writes
    in between, its update is lost. This bug hides in tests because the window is tiny;
    here we force the bad interleaving, watch it on the timeline, read the race report,
    then fix it and get a clean trace.

    To make the bug happen on every run, the tellers synchronise with a `Barrier` (both
    read before either writes) and an `Event` (teller-1 writes first). scope_nb does not
    treat a Barrier as ordering the two tellers' accesses, so the race stays visible.
    """),
    code("%load_ext scope"),
    code("""
    import threading


    class Account:
        def __init__(self, balance):
            self.balance = balance


    account = Account(100)
    """),
    md("## The racy run"),
    code("""
    %%scope --objects account -o racy
    both_have_read = threading.Barrier(2)
    teller_1_wrote = threading.Event()


    def deposit(amount, first):
        seen = account.balance            # 1. read
        both_have_read.wait()             # (forced) both tellers have read 100
        if not first:
            teller_1_wrote.wait()         # (forced) teller-1 writes first
        account.balance = seen + amount   # 2. write
        if first:
            teller_1_wrote.set()


    tellers = [
        threading.Thread(target=deposit, args=(50, True), name="teller-1"),
        threading.Thread(target=deposit, args=(25, False), name="teller-2"),
    ]
    for t in tellers:
        t.start()
    for t in tellers:
        t.join()
    print("balance:", account.balance, "(expected 175)")
    """),
    md("""
    ## Watch the interleaving

    `interleaved_timeline` merges what both tellers did, in global order. Both read 100;
    teller-1 writes 150; teller-2 writes 125, computed from its stale read:
    """),
    code("""
    import polars as pl

    steps = racy.interleaved_timeline(["teller-1", "teller-2"])
    steps.filter(pl.col("kind").is_in(["read", "write"])).select(
        "seq", "actor", "kind", "target", "detail"
    )
    """),
    md("The same on the timeline (purple: state reads and writes):"),
    code("""
    from scope_nb.notebook import charts

    charts.timeline_chart(racy)
    """),
    md("""
    ## The race report

    `detect_race_conditions` finds it without being told where to look. The report names
    the object and attribute, both threads, the line of the stale read and of each
    write, the locks each held (none), and whether an update was actually lost:
    """),
    code("""
    races = racy.detect_race_conditions()
    races
    """),
    code("""
    race = races[0]
    print(race.kind, "on", f"{race.obj}.{race.attribute}", "- update lost:", race.lost_update)
    print(
        "stale read: ", race.first.actor, race.first.op, "value", race.first.value,
        "holding", race.first.locks,
    )
    print("in between: ", race.between[0].actor, race.between[0].op, "value", race.between[0].value)
    print("bad write:  ", race.second.actor, race.second.op, "value", race.second.value)
    """),
    md("""
    The balance's history tells the same story from the object's side: 100, 150, then
    back down to 125.
    """),
    code('racy.state_timeline(account).select("actor", "cause", "state")'),
    md("""
    ## The fix: make read-modify-write atomic

    Hold one lock across the read and the write. (The forced interleaving cannot happen
    any more: a teller now waits for the lock instead of for the other teller.)
    """),
    code("""
    account = Account(100)


    def deposit(amount):
        with account_lock:
            account.balance = account.balance + amount
    """),
    md("""
    Locks created while recording are traced automatically, so the lock is made inside
    the recorded cell (for a lock that already exists, use `%scope trace lock NAME` or
    `scope_nb.trace_lock(lock, name)`).
    """),
    code("""
    %%scope --objects account -o fixed --quiet
    account_lock = threading.Lock()
    tellers = [threading.Thread(target=deposit, args=(amount,), name=f"teller-{i}")
               for i, amount in ((1, 50), (2, 25))]
    for t in tellers:
        t.start()
    for t in tellers:
        t.join()
    print("balance:", account.balance)
    """),
    code("""
    print("races:", fixed.detect_race_conditions())
    fixed.state_timeline(account).select("actor", "cause", "state")
    """),
    md("""
    Both tellers now read and write `balance` with `account_lock` held (the detector
    checks the locks held at each access; the last read is the cell's own `print`,
    after both tellers were joined, which orders it after their writes):
    """),
    code("""
    fixed.events(["read", "write"]).select("actor", "kind", "target", "detail", "locks_held")
    """),
    md("""
    ## What you can now do

    - force an interleaving with a `Barrier` and an `Event` so a race shows on every run;
    - follow two threads step by step with `interleaved_timeline([...])`;
    - read a `RaceReport`: object, attribute, threads, lines, locks held, whether an update
      was lost;
    - check a fix: the same recording with `detect_race_conditions() == []`.

    Next: [04 · deadlocks](04-deadlock.ipynb)
    """),
]

# ---------------------------------------------------------------------------------------------
NB04 = [
    md("""
    # 04 · Deadlocks you did not hit (yet)

    Two threads that take the same two locks in opposite orders can deadlock, but only
    if their timing overlaps. Most runs get lucky, so the bug survives testing. scope_nb
    keeps a lock-order graph, as Linux's lockdep does: every time a thread takes lock B
    while holding lock A, it adds the edge A → B. A cycle in that graph is a deadlock
    waiting to happen, even in a run that finished fine.

    Both programs below are forced (with an `Event`) **not** to hang, and the cycle is
    still found.
    """),
    code("%load_ext scope"),
    code("""
    import threading

    import scope_nb as scope


    class Account:
        def __init__(self, name, balance):
            self.name = name
            self.balance = balance
            self.lock = threading.Lock()


    def transfer(src, dst, amount):
        with src.lock:          # lock the payer...
            with dst.lock:      # ...then the payee
                src.balance -= amount
                dst.balance += amount


    alice, bob = Account("alice", 100), Account("bob", 100)
    """),
    md("""
    ## AB-BA: two transfers in opposite directions

    The locks were created before recording, so the cell hands them to the recorder
    with names (`scope.trace_lock`). The second transfer starts only after the first
    one finished: this run cannot hang.
    """),
    code("""
    %%scope -o transfers
    alice.lock = scope.trace_lock(alice.lock, "alice.lock")
    bob.lock = scope.trace_lock(bob.lock, "bob.lock")
    first_done = threading.Event()


    def pay_bob():
        transfer(alice, bob, 10)   # takes alice.lock, then bob.lock
        first_done.set()


    def pay_alice():
        first_done.wait()          # (forced) never overlaps with pay_bob
        transfer(bob, alice, 5)    # takes bob.lock, then alice.lock


    threads = [threading.Thread(target=pay_bob, name="pay-bob"),
               threading.Thread(target=pay_alice, name="pay-alice")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("balances:", alice.balance, bob.balance)
    """),
    md("""
    The run finished, yet the summary lists a potential deadlock. The report gives the
    cycle, the threads, and the line where each lock was taken while the other was held:
    """),
    code("""
    report = transfers.detect_deadlocks()[0]
    report
    """),
    md("The evidence, straight from the events frame: who held what when taking which lock."),
    code("""
    transfers.events("lock_acquire").select("actor", "target", "locks_held", "location")
    """),
    md("The lock graph, with the cycle in red:"),
    code("""
    from scope_nb.notebook import graphs

    graphs.lock_graph_svg(transfers)
    """),
    md("""
    `lock_graph()` returns the same graph as a `networkx.DiGraph`, if you want to query it:
    """),
    code("""
    import networkx as nx

    g = transfers.lock_graph()
    print("edges:", list(g.edges()))
    print("cycles:", list(nx.simple_cycles(g)))
    """),
    md("""
    ## Dining philosophers

    Five philosophers, five forks; each takes the fork on the left, then the one on the
    right. If all five pick up their left fork at the same moment, nobody eats again.
    Here they eat one after the other (each waits for the previous one's `Event`), so
    the run cannot hang, and the five-lock cycle is still there.
    """),
    code("""
    raw_forks = [threading.Lock() for _ in range(5)]


    def dinner(forks, ordered):
        turns = [threading.Event() for _ in range(6)]
        turns[0].set()

        def philosopher(i):
            left, right = forks[i], forks[(i + 1) % 5]
            if ordered:  # the fix: always take the lower-numbered fork first
                left, right = sorted((left, right), key=forks.index)
            turns[i].wait()   # (forced) one philosopher at a time
            with left:
                with right:
                    pass      # eat
            turns[i + 1].set()

        diners = [
            threading.Thread(target=philosopher, args=(i,), name=f"philosopher-{i}")
            for i in range(5)
        ]
        for d in diners:
            d.start()
        for d in diners:
            d.join()
    """),
    code("""
    %%scope -o table --quiet
    forks = [scope.trace_lock(f, f"fork-{i}") for i, f in enumerate(raw_forks)]
    dinner(forks, ordered=False)
    """),
    code("""
    cycle = next(r for r in table.detect_deadlocks() if len(r.cycle) == 5)
    print(" -> ".join(cycle.cycle + cycle.cycle[:1]))
    cycle.to_frame().select("holding", "taking", "actor", "location")
    """),
    code("graphs.lock_graph_svg(table)"),
    md("""
    ## The fix: one global lock order

    If every thread takes locks in the same global order (here: the lower-numbered fork
    first), the graph cannot have a cycle:
    """),
    code("""
    %%scope -o ordered_table --quiet
    forks = [scope.trace_lock(f, f"fork-{i}") for i, f in enumerate(raw_forks)]
    dinner(forks, ordered=True)
    """),
    code("""
    print("deadlocks:", ordered_table.detect_deadlocks())
    graphs.lock_graph_svg(ordered_table)
    """),
    md("""
    ## What you can now do

    - find lock-order inversions from a run that did not hang, with `detect_deadlocks()`;
    - read a `DeadlockReport`: the cycle, the threads, where each lock was taken while
      holding the previous one;
    - draw the lock graph (`graphs.lock_graph_svg`) or query it (`lock_graph()` is a
      networkx graph);
    - name locks that existed before recording with `scope.trace_lock(lock, name)`;
    - check a fix by recording again: no cycle, no report.

    Next: [05 · asyncio stalls](05-asyncio-stalls.ipynb)
    """),
]

# ---------------------------------------------------------------------------------------------
NB05 = [
    md("""
    # 05 · asyncio: the blocked loop and the race across `await`

    asyncio has one thread, so people expect it to be free of concurrency bugs. Two
    classics say otherwise:

    1. a **blocking call inside a coroutine** freezes every other task on the loop;
    2. **check-then-act across an `await`**: another task runs at the `await`, so what
       you checked is no longer true when you act.

    `%%scope` runs cells with top-level `await` (on a private event loop), so both can be
    recorded right here. asyncio is deterministic enough that both bugs show on every run.
    """),
    code("%load_ext scope"),
    md("""
    ## 1. A blocking call in a coroutine

    A heartbeat task should tick every 50 ms while two requests are served. The
    requests compute a checksum with a synchronous function that takes 300 ms
    (`time.sleep` stands in for CPU work or a blocking client library).
    """),
    code("""
    import asyncio
    import time


    def checksum(data):
        time.sleep(0.3)  # blocking: the loop can do nothing else meanwhile
        return sum(data) % 256


    async def handle(request):
        return checksum(bytes(range(request)))


    async def heartbeat(beats):
        for _ in range(5):
            beats.append(time.perf_counter())
            await asyncio.sleep(0.05)


    async def serve():
        beats = []
        async with asyncio.TaskGroup() as tg:
            tg.create_task(heartbeat(beats), name="heartbeat")
            tg.create_task(handle(10), name="request-1")
            tg.create_task(handle(20), name="request-2")
        return [round((b - a) * 1000) for a, b in zip(beats, beats[1:])]
    """),
    code("""
    %%scope -o blocked
    gaps = await serve()
    print("heartbeat gaps (ms):", gaps)
    """),
    md("""
    The first heartbeat gap is about 600 ms instead of 50. `detect_stalls` says why:
    each request held the loop for 300 ms, at a line it names, with the stack:
    """),
    code("""
    stalls = blocked.detect_stalls()
    for s in stalls:
        print(s.headline)
    """),
    code("stalls[0]"),
    md("""
    On the timeline, the two requests run one after the other, each for 300 ms, and
    nothing else on the loop runs meanwhile (the red marks are the stalls):
    """),
    code("""
    from scope_nb.notebook import charts

    charts.timeline_chart(blocked)
    """),
    md("""
    The fix is to move the blocking work off the loop with `asyncio.to_thread` (or use
    an async client). The stall detector has nothing more to say:
    """),
    code("""
    async def handle(request):
        return await asyncio.to_thread(checksum, bytes(range(request)))
    """),
    code("""
    %%scope -o unblocked --quiet
    gaps = await serve()
    print("heartbeat gaps (ms):", gaps)
    """),
    code("""
    print("loop stalls:", [s for s in unblocked.detect_stalls() if s.kind == "blocked_loop"])
    """),
    md("""
    ## 2. Check-then-act across `await`

    A cache of an exchange rate. Two requests arrive together; each sees an empty cache,
    fetches the rate, and stores it. The `await` in the middle is where the other task
    runs: two fetches instead of one, and the first result is overwritten.
    """),
    code("""
    class RateCache:
        def __init__(self):
            self.rate = None


    rates = RateCache()
    fetches = []


    async def fetch_rate(who):
        fetches.append(who)
        await asyncio.sleep(0.01)  # the network
        return {"request-a": 1.0821, "request-b": 1.0823}[who]


    async def get_rate(who):
        if rates.rate is None:                 # check
            rates.rate = await fetch_rate(who)  # ... act, after an await
        return rates.rate
    """),
    code("""
    %%scope --objects rates -o cache_race
    async with asyncio.TaskGroup() as tg:
        a = tg.create_task(get_rate("request-a"), name="request-a")
        b = tg.create_task(get_rate("request-b"), name="request-b")
    print("fetches:", fetches, "answers:", a.result(), b.result())
    """),
    md("""
    The same race report as with threads: the actors are tasks this time, and the
    stale read is the `if rates.rate is None` check.
    """),
    code("""
    race = cache_race.detect_race_conditions()[0]
    race
    """),
    code('cache_race.state_timeline(rates).select("actor", "cause", "state")'),
    md("""
    The fix: an `asyncio.Lock` around check-and-fetch, so the second request waits and
    then finds the cache filled.
    """),
    code("""
    rates = RateCache()
    fetches = []


    async def get_rate(who, lock):
        async with lock:
            if rates.rate is None:
                rates.rate = await fetch_rate(who)
        return rates.rate
    """),
    code("""
    %%scope --objects rates -o cache_fixed --quiet
    lock = asyncio.Lock()
    async with asyncio.TaskGroup() as tg:
        a = tg.create_task(get_rate("request-a", lock), name="request-a")
        b = tg.create_task(get_rate("request-b", lock), name="request-b")
    print("fetches:", fetches, "answers:", a.result(), b.result())
    """),
    code('print("races:", cache_fixed.detect_race_conditions())'),
    md("""
    ## What you can now do

    - record asyncio code with `%%scope` and top-level `await`;
    - find the coroutine that blocked the event loop, and the line, with `detect_stalls()`;
    - recognise check-then-act across `await` in a race report whose actors are tasks;
    - check both fixes (`asyncio.to_thread`, `asyncio.Lock`) with a second recording.

    Next: [06 · performance](06-performance.ipynb)
    """),
]

# ---------------------------------------------------------------------------------------------
NB06 = [
    md("""
    # 06 · Performance: hotspots, call tree, and the slow consumer behind a growing queue

    An ingest pipeline: a reader thread parses JSON lines and puts records on a queue; a
    writer thread stores each record. It is slower than it should be. Which function
    takes the time, who calls it, and what does the queue between the two threads tell
    us?

    Calls are recorded for the modules you name (`--modules`), so the pipeline lives in
    its own module.
    """),
    code("%load_ext scope"),
    code('''
    %%writefile pipeline.py
    """A small ingest pipeline: a reader thread and a writer thread joined by a queue."""
    import json
    import time


    def parse(line):
        return json.loads(line)


    def enrich(record):
        record["total"] = record["price"] * record["qty"]
        return record


    def read(lines, records):
        for line in lines:
            records.put(enrich(parse(line)))
        records.put(None)


    def store(record, db):
        time.sleep(0.003)  # one round trip to the database per record
        db.append(record)


    def write(records, db):
        while (record := records.get()) is not None:
            store(record, db)
    '''),
    code("""
    import json
    import queue
    import threading

    import pipeline

    lines = [json.dumps({"id": i, "price": 3, "qty": i % 7}) for i in range(500)]
    """),
    code("""
    %%scope --modules pipeline -o slow
    records = queue.Queue()
    db = []
    reader = threading.Thread(target=pipeline.read, args=(lines, records), name="reader")
    writer = threading.Thread(target=pipeline.write, args=(records, db), name="writer")
    reader.start()
    writer.start()
    reader.join()
    writer.join()
    print(len(db), "records stored")
    """),
    md("""
    ## Hotspots

    Every function of `pipeline`, by total (inclusive) time: `write` runs for the whole
    recording, and nearly all of it is spent in `store`, 3 ms a call, 500 calls.
    """),
    code("""
    import polars as pl

    ms = lambda col: (pl.col(col) / 1e6).round(2).alias(col.replace("_ns", "_ms"))
    slow.performance_hotspots("pipeline").select("function", "count", ms("total_ns"), ms("max_ns"))
    """),
    code("""
    from scope_nb.notebook import charts

    charts.hotspots_chart(slow)
    """),
    md("""
    ## The call tree

    Inclusive and self time per call path: `read → parse/enrich` is cheap; the time is
    `write → store`.
    """),
    code('slow.call_tree_analysis("pipeline")'),
    md("""
    ## The queue tells the same story from outside

    `message_queue_analysis` has one row per queue: messages in and out, maximum depth,
    and how long messages waited. The reader finished in a few milliseconds and the
    records piled up waiting for the writer:
    """),
    code("""
    slow.message_queue_analysis().select(
        "queue", "sends", "receives", "max_depth", ms("latency_p50_ns"), ms("latency_max_ns")
    )
    """),
    code("charts.queue_depth_chart(slow)"),
    md("""
    A queue that backs up for a moment is not yet a problem: a logging queue catching up
    after a burst drains in a few milliseconds. `detect_stalls()` reports a backlog only
    when it hurt: the queue was at least `backlog_depth` deep (32) and was left
    non-empty at the end, or stayed that deep for longer than `backlog_s` (1 s), or kept
    a message waiting longer than `wait_s` (1 s). `queue_bottlenecks` shows the numbers
    it judges by, for every queue that reached the depth (`performance_analysis().bottlenecks`):
    """),
    code("""
    slow.performance_analysis("pipeline").bottlenecks.select(
        "queue", "peak_depth", "final_depth", ms("above_ns"), ms("wait_max_ns")
    )
    """),
    md("""
    Here the last record waited well over a second for the writer, and the queue stayed
    deep for most of the run: a backlog that hurt. The stall names the slow consumer,
    both rates, and why it counts:
    """),
    code("""
    backlog = next(s for s in slow.detect_stalls() if s.kind == "backlog")
    backlog
    """),
    md("""
    ## The fix: batch the round trips

    `store` pays one round trip per record. Storing what is waiting in the queue in one
    round trip removes the bottleneck:
    """),
    code("""
    %%writefile -a pipeline.py


    def store_many(batch, db):
        time.sleep(0.003)  # one round trip for the whole batch
        db.extend(batch)


    def write_batched(records, db):
        done = False
        while not done:
            batch = [records.get()]
            while not records.empty():
                batch.append(records.get())
            if batch[-1] is None:
                batch.pop()
                done = True
            store_many(batch, db)
    """),
    code("""
    import importlib

    pipeline = importlib.reload(pipeline)
    """),
    code("""
    %%scope --modules pipeline -o fast --quiet
    records = queue.Queue()
    db = []
    reader = threading.Thread(target=pipeline.read, args=(lines, records), name="reader")
    writer = threading.Thread(target=pipeline.write_batched, args=(records, db), name="writer")
    reader.start()
    writer.start()
    reader.join()
    writer.join()
    print(len(db), "records stored")
    """),
    code("""
    def wall_ms(trace):
        lo, hi = trace.time_range()
        return round((hi - lo) / 1e6, 1)

    print("before:", wall_ms(slow), "ms   after:", wall_ms(fast), "ms")
    print("backlogs after:", [s for s in fast.detect_stalls() if s.kind == "backlog"])
    fast.performance_hotspots("pipeline").select("function", "count", ms("total_ns"))
    """),
    md("""
    ## Threads queueing on a lock

    Another way to be slow: four writer threads share one database connection, guarded
    by a lock, and each holds the lock for its whole round trip. Four threads, yet one
    store at a time. `lock_contention()` ranks the locks by the time spent waiting for
    them, with how long each was held:
    """),
    code("""
    %%writefile -a pipeline.py


    def write_locked(records, db, db_lock):
        while (record := records.get()) is not None:
            with db_lock:  # held for the whole round trip
                store(record, db)
    """),
    code("""
    %%scope --modules pipeline -o locked --quiet
    pipeline = importlib.reload(pipeline)
    records = queue.Queue()
    db = []
    db_lock = threading.Lock()
    writers = [threading.Thread(target=pipeline.write_locked, args=(records, db, db_lock),
                                name=f"writer-{i}")
               for i in range(4)]
    for w in writers:
        w.start()
    for line in lines[:80]:
        records.put(pipeline.enrich(pipeline.parse(line)))
    for w in writers:
        records.put(None)
    for w in writers:
        w.join()
    print(len(db), "records stored")
    """),
    code("""
    locked.lock_contention().select(
        "lock", "acquisitions", "actors", "waited", ms("wait_ns"), ms("hold_max_ns")
    )
    """),
    md("""
    Most acquisitions waited, and the waits add up to several times the wall time:
    the threads spent their lives in line for `db_lock`. Holding the lock only for what
    needs it (the `append`), or giving each writer its own connection, lets the round
    trips overlap.

    ## What you can now do

    - record function calls of chosen modules with `--modules` (or `scope_nb.trace_module`);
    - rank functions with `performance_hotspots(module)` and draw them with `charts.hotspots_chart`;
    - read inclusive and self time per call path with `call_tree_analysis(module)`;
    - spot a slow consumer from its queue: `message_queue_analysis()`,
      `charts.queue_depth_chart`, and the `backlog` stall, reported only when the backlog
      hurt;
    - find the lock threads queue on with `lock_contention()`;
    - measure a fix with a second recording.

    Next: [07 · production post-mortem](07-production-postmortem.ipynb)
    """),
]

# ---------------------------------------------------------------------------------------------
NB07 = [
    md("""
    # 07 · Production post-mortem: record a multi-process app, read it later

    Outside a notebook you record with the `scope-nb` command (or `scope_nb.start(...)`
    inside the application). The recording goes to disk as Parquet, one directory per
    process, written by a background thread as the program runs; a crash or a kill
    loses at most the last second. Later, anywhere, `scope_nb.load` merges the
    directories onto one time axis.

    The app: a dispatcher process sends orders to two warehouse worker processes over
    `multiprocessing` queues. In production one warehouse died, and the only log line
    is its exit code.
    """),
    code('''
    %%writefile shop.py
    """A tiny order service: a dispatcher and two warehouse worker processes."""
    import multiprocessing as mp

    STOCK = {"apple": 10, "pear": 4, "fig": 2}


    def warehouse(name, orders, done):
        stock = dict(STOCK)
        while (order := orders.get()) is not None:
            item, qty = order
            stock[item] -= qty
            done.put((name, item, stock[item]))


    def main():
        ctx = mp.get_context("spawn")
        done = ctx.Queue()
        inboxes = [ctx.Queue() for _ in range(2)]
        workers = [ctx.Process(target=warehouse, args=(f"warehouse-{i}", inboxes[i], done),
                               name=f"warehouse-{i}")
                   for i in range(2)]
        for w in workers:
            w.start()
        orders = [("apple", 3), ("pear", 1), ("fig", 1), ("plum", 2), ("apple", 2), ("pear", 2)]
        for i, order in enumerate(orders):
            inboxes[i % 2].put(order)  # round robin
        for inbox in inboxes:
            inbox.put(None)
        for w in workers:
            w.join()
            print(f"{w.name} exited with code {w.exitcode}")


    if __name__ == "__main__":
        main()
    '''),
    md("""
    ## Record it with the CLI

    `scope-nb run -o DIR script.py` runs the script like `python script.py` would, with
    the recorder on: every thread, process (child Python processes are followed),
    message, lock, and the calls of your code. Here it is called as
    `python -m scope_nb`, the same command, so the notebook does not depend on `PATH`.
    The app's own output is its log; its stderr went nowhere, as in many deployments.
    """),
    code("""
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "scope_nb", "run", "--quiet",
                          "-o", "traces/shop", "shop.py"],
                         capture_output=True, text=True, timeout=120)
    print("exit code:", run.returncode)
    print(run.stdout)
    """),
    md("One directory per process, each a small Parquet dataset:"),
    code("""
    from pathlib import Path

    for d in sorted(Path("traces/shop").iterdir()):
        print(d.name.split("-")[0] + "-<pid>", sorted(f.name for f in d.iterdir()))
    """),
    md("""
    `scope-nb report DIR` prints the findings without a notebook (it is what you would
    run on the server first):
    """),
    code("""
    report = subprocess.run([sys.executable, "-m", "scope_nb", "report", "traces/shop"],
                            capture_output=True, text=True, timeout=120)
    print(report.stdout.split("== hotspots")[0])
    """),
    md("""
    ## Load the directory

    `scope_nb.load` (or `%scope load DIR`) merges every process directory into one Trace:
    """),
    code("""
    import polars as pl

    import scope_nb as scope

    shop = scope.load("traces/shop")
    shop
    """),
    md("Three processes, who started them, and how they ended:"),
    code("""
    shop.actors().filter(pl.col("kind") == "process").select(
        "actor", "name", "parent", "pid", "outcome", "exception"
    )
    """),
    code("""
    from scope_nb.notebook import charts, graphs

    graphs.supervision_svg(shop)
    """),
    md("""
    ## Find the failure

    The crash is the warehouse process, exit code 1. The exit code is all the parent
    saw; the recording has what happened inside that process.
    """),
    code("""
    crash = shop.get_crash_events()[0]
    crash
    """),
    code("""
    dead_pid = shop.actors().filter(pl.col("actor") == crash.actor)["pid"][0]
    inside = shop.events().filter(pl.col("pid") == dead_pid)
    inside.filter(pl.col("kind").is_in(["receive", "send", "exception", "exit"])).select(
        "seq", "actor", "kind", "function", "detail")
    """),
    md("""
    The calls of the application's code were recorded too; the one that raised, with
    its arguments:
    """),
    code("""
    shop.function_calls().filter(pl.col("exception").is_not_null()).select(
        "pid", "function", "args", "exception", "location")
    """),
    md("""
    And the messages the warehouse's main thread received before it died: the order for
    `plum`, an item the warehouse does not stock.
    """),
    code("""
    main_thread = inside.filter(pl.col("kind") == "receive")["actor"][0]
    shop.get_messages_to(main_thread, before=crash.ts).select("sender", "via", "detail")
    """),
    md("""
    Every process on one timeline (messages between processes are the green lines):
    """),
    code("charts.timeline_chart(shop)"),
    md("""
    The same directory opens in Perfetto (`scope-nb export DIR --perfetto out.json`, or
    `shop.export_perfetto(...)`), and any Arrow engine (DuckDB, Spark) reads the Parquet
    files as they are.

    ## Recording from inside the application

    Instead of the CLI, an application can record itself:

    ```python
    import scope_nb

    scope_nb.start(persist_to_disk=True, persist_path="/var/tmp/shop-trace", max_events=1_000_000)
    try:
        main()
    finally:
        scope_nb.stop()
    ```

    ## What you can now do

    - record a whole application, child processes included, with `scope-nb run -o DIR`;
    - read the findings on the server with `scope-nb report DIR`;
    - load one or many process directories into one Trace with `scope_nb.load` or `%scope load`;
    - go from "exit code 1" to the message, the call and the line that killed a process.

    Back to the [index](README.md).
    """),
]

NOTEBOOKS: dict[str, list] = {
    "01-quickstart": NB01,
    "02-worker-crash-postmortem": NB02,
    "03-lost-update": NB03,
    "04-deadlock": NB04,
    "05-asyncio-stalls": NB05,
    "06-performance": NB06,
    "07-production-postmortem": NB07,
}


# ---------------------------------------------------------------------------------------------
def as_javascript_holds(value):
    """`value` with every whole float made an int. JupyterLab holds a notebook as
    JavaScript values, where 0.0 is 0, and saves it so: a notebook stored this way is
    written back byte for byte when a person opens and saves it unchanged."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return type(value)((k, as_javascript_holds(v)) for k, v in value.items())
    if isinstance(value, list):
        return [as_javascript_holds(v) for v in value]
    return value


def clean(nb: nbformat.NotebookNode) -> None:
    """Make stored outputs static: no live widget views and no widget state, numbers as
    JupyterLab writes them."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)
        for out in cell.outputs:
            if "data" in out:
                out["data"].pop(WIDGET, None)
                out["data"] = as_javascript_holds(out["data"])
            if "metadata" in out:
                out["metadata"] = as_javascript_holds(out["metadata"])


def execute(nb: nbformat.NotebookNode, workdir: str, timeout: int = CELL_TIMEOUT) -> None:
    NotebookClient(
        nb,
        kernel_name="python3",
        timeout=timeout,
        allow_errors=bool(os.environ.get("SCOPE_NB_DRAFT")),
        resources={"metadata": {"path": workdir}},
    ).execute()


def build(name: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [nbformat.from_dict(c) for c in NOTEBOOKS[name]]
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{name[:2]}-{i:02d}"
    with tempfile.TemporaryDirectory(prefix="scope-nb-") as tmp:
        workdir = str(Path(tmp).resolve())
        started = time.perf_counter()
        execute(nb, workdir)
        clean(nb)
        print(f"{name}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
    # the kernel's own words for itself (JupyterLab writes them into a notebook it opens:
    # stored as they are, opening the notebook leaves it unmodified)
    nb.metadata["kernelspec"]["display_name"] = (
        KernelSpecManager().get_kernel_spec("python3").display_name
    )
    path = HERE / f"{name}.ipynb"
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return path


def main(argv: list[str]) -> int:
    names = [n for n in NOTEBOOKS if not argv or any(n.startswith(a) for a in argv)]
    for name in names:
        build(name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
