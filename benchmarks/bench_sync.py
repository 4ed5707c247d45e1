"""Per-operation cost of the traced synchronisation primitives, one thread, no
contention: `with lock:`, `with rlock:`, `queue.Queue` put + get, untraced and under
`tracing_level="messages_only"` with the C extension and with SCOPE_NB_PURE=1 (each
in a fresh interpreter, since the choice is made per recording). Prints a table.

    python benchmarks/bench_sync.py [--n 200000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROBE = r"""
import json, queue, sys, threading, time
import scope_nb

n, repeat, traced = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"

def ops():
    lock, rlock, q = threading.Lock(), threading.RLock(), queue.Queue()
    def with_lock():
        for _ in range(n):
            with lock:
                pass
    def with_rlock():
        for _ in range(n):
            with rlock:
                pass
    def put_get():
        for i in range(n):
            q.put(i)
            q.get()
    return {"with lock:": with_lock, "with rlock:": with_rlock, "put + get": put_get}

if traced:
    scope_nb.start(tracing_level="messages_only", max_events=50_000_000)
best = {}
for _ in range(repeat):
    for name, fn in ops().items():
        t = time.perf_counter()
        fn()
        best[name] = min(best.get(name, 1e9), (time.perf_counter() - t) / n * 1e9)
if traced:
    scope_nb.stop()
print(json.dumps(best))
"""


def run(n: int, repeat: int, traced: bool, pure: bool) -> dict[str, float]:
    env = dict(os.environ)
    env.pop("SCOPE_NB_PURE", None)
    # a checkout works too
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    if pure:
        env["SCOPE_NB_PURE"] = "1"
    with tempfile.TemporaryDirectory() as d:
        script = os.path.join(d, "probe.py")  # a file: locks made by `-c` code are not user code
        with open(script, "w") as f:
            f.write(PROBE)
        out = subprocess.run(
            [sys.executable, script, str(n), str(repeat), "1" if traced else "0"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    return json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    base = run(args.n, args.repeat, False, False)
    fast = run(args.n, args.repeat, True, False)
    pure = run(args.n, args.repeat, True, True)
    print(f"Python {sys.version.split()[0]}: ns per operation, best of {args.repeat} x {args.n:,}")
    print(f"{'operation':<12} {'untraced':>9} {'C':>9} {'pure':>9}")
    for name in base:
        print(f"{name:<12} {base[name]:>9.0f} {fast[name]:>9.0f} {pure[name]:>9.0f}")


if __name__ == "__main__":
    main()
