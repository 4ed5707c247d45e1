"""A small, really buggy bank: the program `scope-nb demo` records.

Three tellers take transfer orders from a queue. The program has three classic bugs:
a lost update on an account balance (two threads read-modify-write it with no common
lock), a lock-order inversion (transfer a->b locks a then b; b->a locks b then a; it
did not hang this time, but it can), and a teller that dies silently on a malformed
order. The interleaving that loses the update is forced with a barrier (standing in
for slow I/O), so the demo finds the same bugs on every run.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable


class Account:
    def __init__(self, name: str, balance: int):
        self.name = name
        self.balance = balance
        self.lock = threading.Lock()

    def deposit(self, amount: int, audit: threading.Barrier | None = None) -> None:
        current = self.balance
        if audit is not None:
            audit.wait()  # the slow audit call: both tellers have read the old balance
        self.balance = current + amount


def transfer(src: Account, dst: Account, amount: int) -> None:
    with src.lock:
        with dst.lock:
            src.balance -= amount
            dst.balance += amount


def teller(orders: queue.Queue, accounts: dict[str, Account], audit: threading.Barrier) -> None:
    while True:
        order = orders.get()
        if order is None:
            return
        kind = order["kind"]
        if kind == "deposit":
            accounts[order["to"]].deposit(order["amount"], audit if order.get("audited") else None)
        elif kind == "transfer":
            transfer(accounts[order["from"]], accounts[order["to"]], order["amount"])


def run_bank(watch: Callable[[Account], object] = lambda account: account) -> dict[str, Account]:
    """Run the tellers to completion; `watch` is applied to each account first (the
    recorder passes `scope_nb.trace_object`)."""
    accounts = {"alice": Account("alice", 100), "bob": Account("bob", 50)}
    for acct in accounts.values():
        watch(acct)
    audit = threading.Barrier(2)
    lanes = [queue.Queue() for _ in range(3)]
    tellers = [
        threading.Thread(target=teller, args=(lane, accounts, audit), name=f"teller-{i}")
        for i, lane in enumerate(lanes)
    ]
    for t in tellers:
        t.start()
    # two audited deposits into alice race: one of them is lost
    lanes[0].put({"kind": "deposit", "to": "alice", "amount": 10, "audited": True})
    lanes[1].put({"kind": "deposit", "to": "alice", "amount": 20, "audited": True})
    # transfers in both directions: locks taken in opposite orders
    lanes[0].put({"kind": "transfer", "from": "alice", "to": "bob", "amount": 5})
    lanes[0].put(None)
    tellers[0].join()
    lanes[1].put({"kind": "transfer", "from": "bob", "to": "alice", "amount": 5})
    lanes[1].put(None)
    # a malformed order kills teller-2 silently
    lanes[2].put({"kind": "deposit", "amount": 1})
    for t in tellers[1:]:
        t.join()
    return accounts
