"""The call-heavy workload: recursion and method calls, in a module of its own so that
it can be traced as "one module".

Arguments are mostly small ints and short strings (kept by reference by scope_nb);
`Ledger.transfer` and `Tree.insert`'s callers pass objects, whose repr is taken at
call time, as a real program would.
"""

from __future__ import annotations


def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


class Account:
    __slots__ = ("name", "balance")

    def __init__(self, name, balance):
        self.name = name
        self.balance = balance

    def deposit(self, amount):
        self.balance += amount
        return self.balance

    def withdraw(self, amount):
        if amount > self.balance:
            return False
        self.balance -= amount
        return True

    def __repr__(self):
        return f"Account({self.name!r}, {self.balance})"


class Ledger:
    def __init__(self, n):
        self.accounts = [Account(f"acct{i}", 1_000) for i in range(n)]

    def transfer(self, src, dst, amount):
        if src.withdraw(amount):
            dst.deposit(amount)
            return True
        return False

    def step(self, i):
        accts = self.accounts
        a = accts[i % len(accts)]
        b = accts[(i * 7 + 3) % len(accts)]
        return self.transfer(a, b, i % 50)


class Node:
    __slots__ = ("key", "left", "right")

    def __init__(self, key):
        self.key = key
        self.left = None
        self.right = None


def insert(node, key):
    if node is None:
        return Node(key)
    if key < node.key:
        node.left = insert(node.left, key)
    else:
        node.right = insert(node.right, key)
    return node


def depth(node):
    if node is None:
        return 0
    return 1 + max(depth(node.left), depth(node.right))


def run(scale: int = 1) -> int:
    """About 125,000 calls per unit of scale (so ~250,000 call + return events)."""
    total = 0
    for _ in range(scale):
        for _ in range(20):
            total += fib(15)  # 1,973 calls each
        ledger = Ledger(16)
        for i in range(20_000):
            total += ledger.step(i)  # step + transfer + withdraw (+ deposit)
        root = None
        for k in range(1_000):
            root = insert(root, (k * 7919) % 1_000)  # a few thousand recursive calls
        total += depth(root)
    return total
