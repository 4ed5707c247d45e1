"""The lock-order graph (lockdep): an edge a -> b each time an actor takes b while
holding a; a new edge that closes a cycle is a potential deadlock, reported once per
set of locks as a `lock_order` event while the program runs."""

from __future__ import annotations

from collections import deque

from ...sites import location_text


class LockOrder:
    """The edges seen in one recording, with who made each and where."""

    def __init__(self, rec, taken):
        self.rec = rec
        self._taken = taken  # (actor, lock) -> where the actor took the lock it holds
        # a->b: actor, a at, b at
        self.edges: dict[tuple[str, str], tuple[str, tuple | None, tuple | None]] = {}
        self.succ: dict[str, set[str]] = {}
        self.reported: set[frozenset[str]] = set()

    def add(self, before: tuple[str, ...], name: str, actor: str, loc) -> None:
        """`actor` took `name` at `loc` while holding the locks `before`."""
        for a in before:
            if a == name or (a, name) in self.edges:
                continue
            self.edges[(a, name)] = (actor, self._taken(actor, a), loc)
            self.succ.setdefault(a, set()).add(name)
            path = self._path(name, a)
            if path is not None:
                cycle = [a, *path]  # a -> name -> ... -> a
                key = frozenset(cycle)
                if key in self.reported:
                    continue
                self.reported.add(key)
                self.rec.emit(
                    "lock_order",
                    f"{a} -> {name}",
                    self._describe(cycle),
                    actor=actor,
                    location=loc,
                    locks_held=before,
                    raw=True,
                )

    def rename(self, old: str, new: str) -> None:
        """Lock `old` is called `new` from now on: its edges follow it."""
        ren = lambda n: new if n == old else n  # noqa: E731 - one use, right here
        self.edges = {(ren(a), ren(b)): v for (a, b), v in self.edges.items()}
        self.succ = {ren(a): {ren(b) for b in bs} for a, bs in self.succ.items()}
        self.reported = {frozenset(ren(n) for n in k) for k in self.reported}

    def _path(self, src: str, dst: str) -> list[str] | None:
        """Nodes from src to dst in the order graph (breadth first), or None."""
        prev: dict[str, str | None] = {src: None}
        todo = deque([src])
        while todo:
            n = todo.popleft()
            if n == dst:
                out = []
                while n is not None:
                    out.append(n)
                    n = prev[n]
                return out[::-1]
            for m in self.succ.get(n, ()):
                if m not in prev:
                    prev[m] = n
                    todo.append(m)
        return None

    def _describe(self, cycle: list[str]) -> str:
        lines = [" -> ".join(cycle)]
        for a, b in zip(cycle, cycle[1:], strict=False):
            actor, a_at, b_at = self.edges.get((a, b), ("?", None, None))
            lines.append(
                f"{actor} took {b} at {location_text(b_at)} while holding {a} (taken at "
                f"{location_text(a_at)})"
            )
        return "\n".join(lines)
