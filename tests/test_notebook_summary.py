"""The `%%scope` summary in an in-process IPython shell: it counts the actors the cell
started, leaves the kernel's own out (and says how many), and its HTML keeps its
styling through an untrusted notebook's sanitizer (inline styles, no <style> block)."""

from __future__ import annotations

from cells import run


def _summary(cap) -> tuple[str, str]:
    data = next(o.data for o in cap.outputs if "text/html" in o.data)
    return data["text/plain"], data["text/html"]


CELL = (
    "import threading\n"
    "gate = threading.Barrier(2)\n"
    "pair = [threading.Thread(target=gate.wait, name=f'pair-{i}') for i in range(2)]\n"
    "for t in pair: t.start()\n"
    "for t in pair: t.join()\n"
)


def test_summary_counts_the_cells_actors_only(ip):
    result, cap = run(ip, "%%scope\n" + CELL)
    assert result.success
    text, _ = _summary(cap)
    actors = next(line for line in text.splitlines() if line.strip().startswith("actors"))
    assert "2 threads" in actors and "process" not in actors.split(";")[0]
    assert "2 of the kernel's own left out (MainProcess, MainThread" in actors
    trace = ip.user_ns["_scope"]
    assert {"MainThread", "pair-0", "pair-1"} <= set(trace.actors()["name"]), (
        "nothing is dropped from the trace"
    )


def test_environment_flag_counts_everything(ip):
    result, cap = run(ip, "%%scope --environment\n" + CELL)
    assert result.success
    text, _ = _summary(cap)
    actors = next(line for line in text.splitlines() if line.strip().startswith("actors"))
    assert "1 process" in actors and "3 threads" in actors and "left out" not in actors


def test_await_cell_leaves_out_the_private_loops_housekeeping(ip):
    result, cap = run(
        ip,
        "%%scope\nimport asyncio\n"
        "async def job():\n    await asyncio.sleep(0)\n"
        "await asyncio.gather(job(), job())\n",
    )
    assert result.success
    actors = next(
        line for line in _summary(cap)[0].splitlines() if line.strip().startswith("actors")
    )
    counted = actors.split(";")[0]
    # the cell's own task and its two jobs, not the loop's shutdown tasks
    assert "3 tasks" in counted, actors


def test_summary_html_survives_sanitizing(ip):
    _, cap = run(ip, "%%scope\nraise_later = None\n" + CELL)
    _, html = _summary(cap)
    assert "<style" not in html and 'class="bad"' not in html
    assert 'style="padding:1px 8px' in html and 'data-section="crashes"' in html
