"""The wait-for graph between waiting actors, and the hang or deadlock event it makes.

Apart from the watchdog's loop and its reading of stacks (watchdog.py) because it is the
other half of a look: given the waits found, who each one waits for (a traced lock's
holders, a joined thread, the actors that put on a queue before), whether they wait in a
cycle, and the one critical event with the JSON detail that says so. Only run when
something already waits past the threshold.

A part of the Watchdog (its attributes: `rec`, `is_user`)."""

from __future__ import annotations

import json
import threading

from ..own_events import emit_own
from ..sites import program_stack

STACK_LINES = 15


class WaitForGraph:
    """The Watchdog's view of who waits for whom, and its report."""

    def _actor(self, ident: int) -> str:
        for b in reversed(list(self.rec.store.buffers)):
            if b.ident == ident:
                return b.actor
        t = threading._active.get(ident)
        actor = self.rec.actors._threads.get(id(t)) if t is not None else None
        return actor or f"thread:{t.name if t is not None else ident}"

    def _holders(self, kind: str, name: str, obj) -> list[str]:
        st = self.rec.parts.locks
        if kind in ("lock", "condition") and st is not None:
            return list(st.owners.get(name, ()))
        if kind == "join" and obj is not None:
            actor = self.rec.actors._threads.get(id(obj))
            return [actor] if actor else []
        if kind == "queue get":
            return self._senders(name)
        return []

    def _senders(self, qname: str) -> list[str]:
        """Actors that put on this queue before (read from the recording: only done when
        something already hangs)."""
        from ...schema import KIND_CODE
        from ..buffer import KIND_BITS, KIND_MASK, RICH

        send = KIND_CODE["send"]
        out: list[str] = []
        chunks, _ = self.rec.snapshot()
        for ch in chunks:
            for k, v in zip(ch.ks, ch.vals, strict=True):
                if (
                    k & KIND_MASK == RICH
                    and k >> KIND_BITS == send
                    and v[1] == qname
                    and v[0] not in out
                ):
                    out.append(v[0])
        return out

    def _report(self, waits: dict) -> None:
        st = self.rec.parts.locks
        rows = []
        graph: dict[str, list[str]] = {}
        stacks = {}
        for ident, ((kind, name, obj), blocked, frame) in waits.items():
            actor = self._actor(ident)
            holders = [h for h in self._holders(kind, name, obj) if h != actor or kind == "lock"]
            graph[actor] = holders
            stacks[actor] = program_stack(frame, STACK_LINES)
            rows.append(
                {
                    "actor": actor,
                    "on": f"{kind} {name}",
                    "holders": holders,
                    "holds": list(st.held.get(actor, ())) if st is not None else [],
                    "blocked_ns": blocked,  # None: since when is not known
                    "location": self._where(frame),
                }
            )
        known = [r["blocked_ns"] for r in rows if r["blocked_ns"] is not None]
        cycle = _find_cycle(graph)
        if cycle:
            involved = [r for r in rows if r["actor"] in cycle]
            detail = {
                "type": "deadlock",
                "cycle": cycle,
                "waits": involved,
                "stacks": {a: stacks[a] for a in cycle},
            }
            emit_own(
                self.rec,
                "deadlock",
                cycle[0],
                " -> ".join(cycle),
                json.dumps(detail),
                location=involved[0]["location"],
                duration_ns=max(
                    (r["blocked_ns"] for r in involved if r["blocked_ns"] is not None),
                    default=None,
                ),
            )
        else:
            detail = {"type": "hang", "cycle": [], "waits": rows, "stacks": stacks}
            emit_own(
                self.rec,
                "hang",
                rows[0]["actor"],
                rows[0]["on"],
                json.dumps(detail),
                location=rows[0]["location"],
                duration_ns=max(known, default=None),
            )

    def _where(self, frame) -> str | None:
        f = frame
        while f is not None:
            if self.is_user(f.f_code):
                return f"{f.f_code.co_filename}:{f.f_lineno}"
            f = f.f_back
        return None


def _find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """A cycle in a small wait-for graph (actors -> actors they wait for), or None."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        path.append(n)
        for m in graph.get(n, ()):
            if state.get(m) == 1:
                return path[path.index(m) :]
            if m in graph and m not in state:
                found = visit(m)
                if found:
                    return found
        path.pop()
        state[n] = 2
        return None

    for n in graph:
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None
