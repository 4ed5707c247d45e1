"""Sampled recording of the call-heavy workload (benchmarks/callheavy.py, traced as one
module with arguments and return values): untraced, then at `sample_rate` with the C
call hooks and with SCOPE_NB_PURE=1 (the Python callbacks), and every call recorded
(sample_rate=1.0, C hooks) for scale; in interleaved rounds, best of N. Prints seconds
and the ratio of each to the untraced run.

    python benchmarks/bench_sampling.py [--rate 0.1] [--scale 2] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import callheavy  # noqa: E402

import scope_nb  # noqa: E402


def once(scale: int, rate: float | None, pure: bool) -> tuple[float, bool]:
    """Seconds for one run (and whether the C hooks recorded it)."""
    if rate is None:
        t = time.perf_counter()
        callheavy.run(scale)
        return time.perf_counter() - t, False
    if pure:
        os.environ["SCOPE_NB_PURE"] = "1"
    try:
        scope_nb.start(modules=["callheavy"], sample_rate=rate, seed=7, max_events=50_000_000)
    finally:
        os.environ.pop("SCOPE_NB_PURE", None)
    from scope_nb.recorder import session

    fast = session.ACTIVE.backend.fast is not None
    t = time.perf_counter()
    callheavy.run(scale)
    dt = time.perf_counter() - t
    scope_nb.stop()
    return dt, fast


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rate", type=float, default=0.1, help="sample_rate (default 0.1)")
    ap.add_argument(
        "--scale", type=int, default=2, help="callheavy.run(scale): ~125,000 calls per unit"
    )
    ap.add_argument(
        "--rounds", type=int, default=5, help="interleaved rounds, best of N (default 5)"
    )
    a = ap.parse_args(argv)
    variants = {
        "untraced": (None, False),
        "C hooks": (a.rate, False),
        "pure Python": (a.rate, True),
        "every call": (1.0, False),
    }
    best: dict[str, float] = {}
    native: dict[str, bool] = {}
    for _ in range(a.rounds):
        for name, (rate, pure) in variants.items():
            dt, native[name] = once(a.scale, rate, pure)
            best[name] = min(best.get(name, float("inf")), dt)
    base = best["untraced"]
    print(
        f"call-heavy, scale {a.scale}, sample_rate={a.rate}, best of {a.rounds}, Python "
        f"{sys.version.split()[0]}"
    )
    for name, dt in best.items():
        how = (
            ""
            if name == "untraced"
            else (" (C hooks in use)" if native[name] else " (Python callbacks)")
        )
        print(f"  {name:12s} {dt:7.3f} s  {dt / base:5.2f}x{how}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
