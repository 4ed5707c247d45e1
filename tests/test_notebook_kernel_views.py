"""The kernel's own actors in every view of a trace a cell recorded, beyond the
explorer's actors: the summary's findings, locks and queues, and the explorer's
supervision, lock, message and queue tabs leave out what only the kernel's actors did,
keep whole what a cell's actor is part of (the kernel thread in it named), show
everything with `--kernel-actors` (or the checkbox), and do the same for the trace
saved and loaded again, alone or merged.

Two threads started before the cell stand for the kernel's own (ipykernel's IOPub and
control threads): during the cell they take two locks in opposite orders (a lock-order
inversion of the kernel's own), use a queue of their own, drain a queue the cell's
thread fills, and take two locks the cell's thread takes in the other order (a
possible deadlock of the cell's thread with the kernel's). The cell's own code takes two
locks and uses a queue on the cell's thread, which is the kernel's main thread: hidden
as an actor, what it does is the cell's. Events order every step: nothing can really
deadlock.
"""

from __future__ import annotations

import html
import json

import pytest
from cells import run

import scope_nb

pytest.importorskip("ipywidgets")

KERNEL = (
    "import threading, queue\n"
    "box = {}\n"
    "go, first, second, done = (threading.Event() for _ in range(4))\n"
    "def iopub():\n"
    "    go.wait()\n"
    "    with box['k1']:\n"
    "        with box['k2']:\n"
    "            pass\n"
    "    first.set()\n"
    "    second.wait()\n"
    "    with box['y']:\n"
    "        with box['x']:\n"
    "            pass\n"
    "    box['kq'].put('k')\n"
    "    box['kq'].get()\n"
    "    box['shared_q'].get()\n"
    "    done.set()\n"
    "def control():\n"
    "    first.wait()\n"
    "    with box['k2']:\n"
    "        with box['k1']:\n"
    "            pass\n"
    "    second.set()\n"
    "kernel_threads = [threading.Thread(target=f, name=f'fake-{f.__name__}', daemon=True)\n"
    "                  for f in (iopub, control)]\n"
    "for t in kernel_threads: t.start()\n"
)
CELL = (
    "box.update((n, threading.Lock()) for n in ('k1', 'k2', 'x', 'y', 'c', 'd', 'm1', 'm2'))\n"
    "box.update(kq=queue.Queue(), shared_q=queue.Queue(), mq=queue.Queue())\n"
    # the cell's own code on its thread (the kernel's main thread): the cell's acts
    "with box['m1']:\n"
    "    with box['m2']:\n"
    "        box['mq'].put('m')\n"
    "box['mq'].get()\n"
    "def work():\n"
    "    with box['c']:\n"
    "        with box['d']:\n"
    "            pass\n"
    "    box['shared_q'].put('u')\n"
    "    done.wait()\n"
    "    with box['x']:\n"
    "        with box['y']:\n"
    "            pass\n"
    "go.set()\n"
    "w = threading.Thread(target=work, name='user-w')\n"
    "w.start()\n"
    "w.join()\n"
)
KERNEL_NAMES = ("MainProcess", "MainThread", "fake-iopub", "fake-control")


def _record(ip, flags: str = ""):
    """Run the cell with the two kernel threads alive; (summary text or "", trace)."""
    assert run(ip, KERNEL)[0].success
    result, cap = run(ip, f"%%scope {flags}\n{CELL}")
    assert result.success
    for t in ip.user_ns["kernel_threads"]:
        t.join()
    text = next((o.data["text/plain"] for o in cap.outputs if "text/plain" in o.data), "")
    return text, ip.user_ns["_scope"]


def _line(text: str, section: str) -> str:
    """A section of the summary text: its line and the findings listed under it."""
    lines = text.splitlines()
    i = next(i for i, s in enumerate(lines) if s.strip().startswith(section))
    end = next(
        (j for j in range(i + 1, len(lines)) if not lines[j].strip().startswith(("- ", "…"))),
        len(lines),
    )
    return "\n".join(lines[i:end])


def _ids(trace, *names: str) -> set[str]:
    return {a for a, n in trace.actors().select("actor", "name").iter_rows() if n in names}


def _used_by(trace, kinds: list[str]) -> dict[str, set[str]]:
    """The locks or queues the events of `kinds` name, by who used them: "kernel" (only
    the kernel's threads), "cell" (only the cell's code: its thread, the thread it
    started) or "both"."""
    names = dict(trace.actors().select("actor", "name").iter_rows())
    users: dict[str, set[str]] = {}
    for actor, target in trace.events(kinds).select("actor", "target").iter_rows():
        users.setdefault(target, set()).add(names[actor] in ("user-w", "MainThread"))
    out: dict[str, set[str]] = {"kernel": set(), "cell": set(), "both": set()}
    for target, by in users.items():
        out["both" if by == {True, False} else "cell" if True in by else "kernel"].add(target)
    return out


def _tab(ex, name: str) -> str:
    """The text of the explorer's tab `name`, opened as a click on it does."""
    i = ex.TABS.index(name)
    ex._tabs.widget.selected_index = i
    return html.unescape(ex.lower.children[i].value)


@pytest.fixture
def recorded(ip):
    return _record(ip)


def test_the_summary_leaves_out_what_only_the_kernel_did(recorded):
    text, trace = recorded
    assert set(trace.meta["environment"]) == _ids(trace, *KERNEL_NAMES)
    deadlocks = _line(text, "deadlocks")
    assert "1 deadlock; 1 deadlock of the kernel's own left out" in deadlocks, deadlocks
    # the cell's thread's deadlock is with a kernel thread: both named
    assert "user-w (T" in deadlocks and "fake-iopub (T" in deadlocks, deadlocks
    assert "fake-control" not in deadlocks
    locks, queues = _used_by(trace, ["lock_acquire"]), _used_by(trace, ["send", "receive"])
    stalls = _line(text, "stalls")
    assert "2 queues (" in stalls and not [q for q in queues["kernel"] if q in stalls], stalls
    assert len(locks["kernel"]) == 2 and "(6 taken)" in _line(text, "contention")
    assert "1 thread;" in _line(text, "actors")
    everything = trace.lock_contention()["lock"].to_list()
    assert locks["kernel"] <= set(everything), "the trace itself keeps them"


def test_kernel_actors_flag_shows_them_in_the_summary(ip):
    text, trace = _record(ip, "--kernel-actors")
    assert "2 deadlocks" in _line(text, "deadlocks") and "left out" not in text
    assert "fake-control" in _line(text, "deadlocks")
    assert "(8 taken)" in _line(text, "contention")
    assert "3 queues (" in _line(text, "stalls")
    older, _ = _record(ip, "--environment")
    assert "2 deadlocks" in _line(older, "deadlocks"), "the flag's older name still works"


def test_the_explorers_tabs_hide_them_and_the_checkbox_shows_them(recorded):
    from scope_nb.notebook.explorer import Explorer

    _, trace = recorded
    locks, queues = _used_by(trace, ["lock_acquire"]), _used_by(trace, ["send", "receive"])
    (shared_q,), (kernel_q,), (cell_q,) = queues["both"], queues["kernel"], queues["cell"]
    assert len(locks["both"]) == len(locks["kernel"]) == 2 and len(locks["cell"]) == 4
    ex = Explorer(trace)
    tree = _tab(ex, "supervision")
    assert "user-w" in tree and "4 of the kernel's own hidden" in tree
    assert ">the cell</text>" in tree, "what the cell's thread started hangs under the cell"
    assert not [n for n in KERNEL_NAMES if n in tree], tree
    graph = _tab(ex, "locks")
    assert all(lock in graph for lock in locks["both"] | locks["cell"])
    assert not [lock for lock in locks["kernel"] if lock in graph], graph
    assert "1 cycle(s)" in graph, "the cell's thread's lock order against the kernel's is kept"
    flow = _tab(ex, "messages")
    assert shared_q in flow and kernel_q not in flow
    assert "fake-iopub" in flow, "the kernel thread draining the cell's queue is named"
    assert cell_q in flow and "MainThread" in flow, "the cell's code on the cell's thread"
    depth = _tab(ex, "queues")
    assert shared_q in depth and cell_q in depth and kernel_q not in depth

    ex.show_kernel.value = True
    graph = html.unescape(ex.lower.children[ex.TABS.index("queues")].value)
    assert kernel_q in graph, "the open tab is drawn again at once"
    tree = _tab(ex, "supervision")
    assert all(n in tree for n in KERNEL_NAMES) and "hidden" not in tree
    graph = _tab(ex, "locks")
    assert all(lock in graph for lock in locks["kernel"])
    assert "2 cycle(s)" in graph and kernel_q in _tab(ex, "messages")

    ex.show_kernel.value = False
    assert not [lock for lock in locks["kernel"] if lock in _tab(ex, "locks")]


def test_the_line_commands_take_the_flag(ip, recorded):
    result, cap = run(ip, "%scope summary --kernel-actors")
    assert result.success
    text = next(o.data["text/plain"] for o in cap.outputs if "text/plain" in o.data)
    assert "2 deadlocks" in _line(text, "deadlocks")
    result, _ = run(ip, "%scope explore --kernel-actors")
    assert result.success and result.result.hidden_actors == frozenset()
    result, _ = run(ip, "%scope explore")
    assert result.result.hidden_actors == result.result.kernel_actors != frozenset()
    from scope_nb.notebook.magic_args import usage

    lines = usage().splitlines()
    assert "--kernel-actors, --environment" in usage(), "%%scope's own, with its older name"
    for command in ("stop", "load", "explore", "summary"):
        assert any(
            s.startswith(f"%scope {command} ") and "[--kernel-actors]" in s for s in lines
        ), command


def test_a_saved_trace_loads_knowing_the_kernels_actors(ip, recorded, tmp_path):
    from scope_nb.notebook.explorer import Explorer
    from scope_nb.notebook.kernel_actors import kernel_actors
    from scope_nb.notebook.summary_panel import SummaryPanel

    text, trace = recorded
    kernel = kernel_actors(trace)
    path = trace.save(tmp_path / "saved")
    written = json.loads((tmp_path / "saved" / "metadata.json").read_text())
    assert written["environment"] == kernel and written["cell"] == trace.meta["cell"]
    assert written["cell_runners"] == list(_ids(trace, "MainThread"))

    loaded = scope_nb.load(path)
    assert kernel_actors(loaded) == kernel
    assert Explorer(loaded).hidden_actors == frozenset(kernel)
    again = repr(SummaryPanel(loaded, kernel_actors(loaded)))
    for section in ("actors", "deadlocks", "stalls", "contention"):
        assert _line(again, section) == _line(text, section), section
    loaded.meta.pop("environment")  # what the cell's context alone tells, as when recorded
    assert kernel_actors(loaded) == kernel

    result, cap = run(ip, f"%scope load {path}")
    assert result.success
    shown = next(o.data["text/plain"] for o in cap.outputs if "text/plain" in o.data)
    assert "4 of the kernel's own left out" in _line(shown, "actors")


@pytest.mark.parametrize("storage", ["disk", "memory"])
def test_a_trace_persisted_while_it_ran_loads_knowing_the_kernels_actors(ip, tmp_path, storage):
    """Recorded to disk as it ran (no save()): its own files remember the cell, so the
    trace loaded from them hides the kernel's actors as the stopped one does."""
    from scope_nb.notebook.kernel_actors import kernel_actors

    out = tmp_path / storage
    persist = "storage='disk'" if storage == "disk" else "persist_to_disk=True"
    assert run(ip, KERNEL)[0].success
    assert run(ip, f"import scope_nb\nscope_nb.start({persist}, persist_path={str(out)!r})")[
        0
    ].success
    assert run(ip, CELL)[0].success
    result, _ = run(ip, "%scope stop")
    assert result.success
    for t in ip.user_ns["kernel_threads"]:
        t.join()
    trace = ip.user_ns["_scope"]
    kernel = kernel_actors(trace)
    assert {"fake-iopub", "fake-control"} <= {
        n for a, n in trace.actors().select("actor", "name").iter_rows() if a in kernel
    }
    [unit] = [d for d in out.iterdir() if d.is_dir()]
    written = json.loads((unit / "metadata.json").read_text())
    assert written["cell"] == trace.meta["cell"]
    assert kernel_actors(scope_nb.load(out)) == kernel


def test_a_merge_of_saved_traces_keeps_each_ones_kernel_actors(ip, tmp_path, monkeypatch):
    """Two hosts' traces whose processes share a pid: every actor id gets its host, the
    kernel's actors too."""
    from scope_nb.notebook.explorer import Explorer
    from scope_nb.notebook.kernel_actors import kernel_actors

    paths, kernels = [], []
    for host in ("alpha", "beta"):
        _, trace = _record(ip, "--quiet")
        monkeypatch.setenv("SCOPE_NB_HOST", host)
        paths.append(trace.save(tmp_path / host))
        kernels.append({f"{a}@{host}" for a in kernel_actors(trace)})
    merged = scope_nb.load(*paths)
    assert set(kernel_actors(merged)) == kernels[0] | kernels[1]
    assert "cell" not in merged.meta, "a cell's context describes one recording"
    ex = Explorer(merged)
    users = {a for _, a in ex.f_actor.options} - {"(all)"}
    assert {merged.actors().filter(merged.actors()["actor"] == a)["name"][0] for a in users} == {
        "user-w"
    }
    assert len(users) == 2


def test_a_damaged_kernel_key_names_itself(recorded, tmp_path):
    _, trace = recorded
    path = tmp_path / "saved"
    trace.save(path)
    meta = json.loads((path / "metadata.json").read_text())
    meta["environment"] = "T1"
    (path / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="environment must be a list of actor ids"):
        scope_nb.load(path)
