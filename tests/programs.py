"""Small real programs that several test files record."""

import threading

import scope_nb


def threads(*fns):
    """Run each function in a thread of its own (named after it), all at once; wait for them."""
    ts = [threading.Thread(target=f, name=f.__name__) for f in fns]
    for t in ts:
        t.start()
    for t in ts:
        t.join(10)


def in_turn(*fns):
    """Run each function in a thread of its own (named after it), one after the other."""
    for f in fns:
        t = threading.Thread(target=f, name=f.__name__)
        t.start()
        t.join()


class Box:
    def __init__(self):
        self.n = 0


def two_writers():
    """A worker thread and the main thread meeting at a barrier, each adding 1 to a
    traced object named "box"; returns (the stopped trace, the box)."""
    box = Box()
    with scope_nb.record() as trace:
        scope_nb.trace_object(box, "box")
        gate = threading.Barrier(2)

        def worker():
            gate.wait()
            box.n += 1

        t = threading.Thread(target=worker, name="worker")
        t.start()
        gate.wait()
        t.join()
        box.n += 1
    return trace, box


def gated_inversion(kind: str, *args):
    """Lock a then b in one thread, then b then a in another, each under `gate =
    threading.<kind>(*args)` (looked up while recording: threading.Lock is replaced
    then); returns the stopped trace."""
    with scope_nb.record() as trace:
        gate = getattr(threading, kind)(*args)
        a = threading.Lock()
        b = threading.Lock()

        def one():
            with gate, a, b:
                pass

        def two():
            with gate, b, a:
                pass

        in_turn(one, two)
    return trace
