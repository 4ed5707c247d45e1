"""`scope-nb demo`: record the buggy bank of `scope_nb.examples.bank` and print what
the recorder found, the way a person would ask for it."""

from __future__ import annotations

import threading

import polars as pl

import scope_nb as scope
from scope_nb.examples import bank

EXPECTED_BALANCE = 100 + 10 + 20


def main() -> int:
    print("Recording a bank: three teller threads, a queue each, two traced accounts...")
    quiet = threading.excepthook
    # the crash is reported below, not as a stray traceback
    threading.excepthook = lambda args: None
    try:
        with scope.record(modules=[bank]) as trace:
            accounts = bank.run_bank(watch=lambda acct: scope.trace_object(acct, name=acct.name))
    finally:
        threading.excepthook = quiet
    print(
        f"alice's balance: {accounts['alice'].balance} (expected {EXPECTED_BALANCE}); "
        f"{len(trace)} events, {trace.actors().height} actors recorded\n"
    )
    found = 0

    print("== Why did a worker crash?")
    for actor in trace.actors().filter(pl.col("outcome") == "crashed")["actor"]:
        print(trace.analyze_crash(actor))
        found += 1

    print("\n== Where is the race?")
    for race in trace.detect_race_conditions():
        print(race)
        found += 1

    print("\n== Where can it deadlock?")
    for deadlock in trace.detect_deadlocks():
        print(deadlock)
        found += 1

    print("\n== How did alice's balance change?")
    with pl.Config(tbl_rows=20, fmt_str_lengths=60):
        print(trace.state_timeline("alice").select("actor", "cause", "state"))

    print("\n== Where did the time go?")
    with pl.Config(tbl_cols=6):
        print(
            trace.performance_hotspots()
            .select("function", "count", "total_ns", "self_ns", "actors")
            .head(5)
        )

    print(f"\n{found} problems found (expected 3: a crash, a lost update, a lock-order inversion).")
    return 0 if found >= 3 else 1


if __name__ == "__main__":
    raise SystemExit(main())
