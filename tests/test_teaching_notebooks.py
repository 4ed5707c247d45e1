"""Every teaching notebook in notebooks/ runs top to bottom in a fresh kernel (nbclient),
with no error output and no traceback on stderr, and still shows what it teaches.

Each notebook runs in its own temporary copy of notebooks/ (files a notebook writes,
such as 07's trace directory, never land in the repository). The notebooks run two
at a time: they are mostly waiting (kernel start-up, subprocesses, sleeps).
"""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NAMES = [
    "01-quickstart",
    "02-worker-crash-postmortem",
    "03-lost-update",
    "04-deadlock",
    "05-asyncio-stalls",
    "06-performance",
    "07-production-postmortem",
]
CELL_TIMEOUT = 60  # seconds per cell

# What each notebook must still show after a fresh run (the forced interleavings make
# these the same on every run).
EXPECTED = {
    "01-quickstart": [
        "cook-1",
        "cook-2",
        "omelette",
        "{'eggs': 4, 'served': []}",
        "supervision tree",
    ],
    "02-worker-crash-postmortem": [
        "KeyError: carol",
        "{'from': 'bob', 'to': 'carol', 'amount': 20}",
        "{'balances': {'alice': 70, 'bob': 80}, 'applied': 1}",
        "{'balances': {'alice': 70, 'bob': 60}, 'applied': 1}",
        "lost its consumer",
    ],
    "03-lost-update": [
        "balance: 125 (expected 175)",
        "lost update on account.balance",
        "update lost: True",
        "balance: 175",
        "races: []",
    ],
    "04-deadlock": [
        "alice.lock -> bob.lock -> alice.lock",
        "fork-0 -> fork-1 -> fork-2 -> fork-3 -> fork-4 -> fork-0",
        "lock graph — 1 cycle(s)",
        "deadlocks: []",
    ],
    "05-asyncio-stalls": [
        "event loop blocked",
        "request-1 (A",
        "loop stalls: []",
        "lost update on rates.rate",
        "fetches: ['request-a'] answers: 1.0821 1.0821",
        "races: []",
    ],
    "06-performance": [
        "500 records stored",
        "queue records backed up to",
        "deep for",
        "store  x500",
        "80 records stored",
        "db_lock",
    ],
    "07-production-postmortem": [
        "warehouse-1 exited with code 1",
        "3 process(es)",
        "exit code 1",
        "KeyError('plum')",
        "('plum', 2)",
    ],
}


def run_notebook(name: str, root: Path) -> nbformat.NotebookNode:
    workdir = root / name
    shutil.copytree(
        NOTEBOOKS, workdir, ignore=shutil.ignore_patterns("__pycache__", "*.py", "traces")
    )
    nb = nbformat.read(workdir / f"{name}.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    NotebookClient(
        nb,
        kernel_name="python3",
        timeout=CELL_TIMEOUT,
        allow_errors=True,
        resources={"metadata": {"path": str(workdir)}},
    ).execute()
    return nb


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> dict[str, nbformat.NotebookNode]:
    root = tmp_path_factory.mktemp("teaching")
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(NAMES, pool.map(lambda n: run_notebook(n, root), NAMES), strict=True))
    return results


def outputs_text(nb: nbformat.NotebookNode) -> str:
    """Every cell's outputs as a reader sees them: a stream's pieces in a row run on (a
    busy kernel may flush one print's words as two messages)."""
    parts = []
    for cell in nb.cells:
        stream = None
        for out in cell.get("outputs", []):
            if out["output_type"] == "stream" and stream == out["name"]:
                parts[-1] += out["text"]
                continue
            stream = out["name"] if out["output_type"] == "stream" else None
            if "text" in out:
                parts.append(out["text"])
            for mime in ("text/plain", "text/html"):
                if mime in out.get("data", {}):
                    parts.append(out["data"][mime])
    return "\n".join(parts)


def test_every_notebook_is_listed():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == NAMES
    index = (NOTEBOOKS / "README.md").read_text()
    assert all(f"{name}.ipynb" in index for name in NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_runs_without_errors(executed, name):
    problems = []
    for i, cell in enumerate(executed[name].cells):
        for out in cell.get("outputs", []):
            if out["output_type"] == "error":
                problems.append(f"cell {i}: {out['ename']}: {out['evalue']}")
            elif (
                out["output_type"] == "stream"
                and out["name"] == "stderr"
                and "Traceback" in out["text"]
            ):
                problems.append(f"cell {i}: traceback on stderr:\n{out['text']}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", NAMES)
def test_still_shows_what_it_teaches(executed, name):
    text = outputs_text(executed[name])
    missing = [s for s in EXPECTED[name] if s not in text]
    assert not missing, f"{name} no longer shows: {missing}"


@pytest.mark.parametrize("name", NAMES)
def test_stored_outputs_read_offline(name):
    """The committed notebook has its outputs, every figure as a PNG that an untrusted
    notebook shows (no HTML or SVG beside it, which would be stripped or refused), no
    output that loads a script from a CDN, and no widget view without a static fallback."""
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), "stored without running every cell"
    assert nb.cells[-1].cell_type == "markdown" and "What you can now do" in nb.cells[-1].source
    for cell in code:
        for out in cell.outputs:
            assert out["output_type"] != "error"
            data = out.get("data", {})
            if "application/vnd.jupyter.widget-view+json" in data:
                assert "text/html" in data
            assert "cdn.jsdelivr" not in str(data) and "image/svg+xml" not in data
            if "image/png" in data or any(m.startswith("application/vnd.vegalite") for m in data):
                assert "image/png" in data and "text/html" not in data
            assert not data.get("text/plain", "").startswith(("alt.", "<networkx"))
    assert any("image/png" in out.get("data", {}) for c in code for out in c.outputs)


def _whole_floats(value) -> list[float]:
    if isinstance(value, float):
        return [value] if value.is_integer() else []
    if isinstance(value, dict):
        return [f for v in value.values() for f in _whole_floats(v)]
    if isinstance(value, list):
        return [f for v in value for f in _whole_floats(v)]
    return []


@pytest.mark.parametrize("name", NAMES)
def test_stored_as_jupyterlab_saves_it(name):
    """Opened and saved unchanged in JupyterLab, the committed file is written back byte
    for byte: the layout its server writes, and no whole float (JupyterLab holds numbers
    as JavaScript does and saves 0.0 as 0). The browser test checks it in JupyterLab."""
    raw = (NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8")
    nb = nbformat.reads(raw, as_version=nbformat.NO_CONVERT)
    written = nbformat.writes(nb, version=nbformat.NO_CONVERT)
    assert raw == (written if written.endswith("\n") else written + "\n")
    assert not _whole_floats(json.loads(raw)), "a whole float JupyterLab would save as an int"
