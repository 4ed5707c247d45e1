"""Events written by the recorder's own threads (watchdog, memory sampler).

`Recorder.emit` ignores the recorder's own threads on purpose (they must never be
recorded as actors); these events are about the program, not about the thread that
noticed them, so they go straight to the never-pruned lane with an explicit actor."""

from __future__ import annotations

from ..clock import perf_ns
from ..schema import KIND_CODE

OWN_BUFFER = 1 << 30  # sorts after every program thread's events at an equal ts


def emit_own(
    rec,
    kind: str,
    actor: str | None,
    target: str | None,
    detail: str | None,
    *,
    location: str | None = None,
    duration_ns: int | None = None,
    ts: int | None = None,
) -> None:
    """Record one event on behalf of `actor` from a recorder thread. Never raises."""
    if kind not in rec.kinds:
        return
    try:
        ev = (
            actor or rec.actors.process,
            target,
            detail,
            None,
            None,
            location,
            duration_ns,
            None,
            None,
            None,
            None,
        )
        rec.store.critical.append(
            (perf_ns() if ts is None else ts, KIND_CODE[kind], OWN_BUFFER, ev)
        )
    except Exception as e:
        rec.fault(f"own:{kind}", e)
