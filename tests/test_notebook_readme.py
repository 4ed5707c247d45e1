"""The README's notebook section runs as written: each of its python blocks is one
cell of a notebook run in a real kernel (nbclient), in order, and the recording shows
what the text says (the traced object's history, the notebook's functions among the
calls with `--modules __main__`)."""

from __future__ import annotations

import pathlib
import re

import nbformat
from nbclient import NotebookClient

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def notebook_cells() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## In a notebook") :]
    section = section[: section.index("\n## ", 1)]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_readme_notebook_section_runs_as_written(tmp_path):
    cells = notebook_cells()
    assert len(cells) >= 3 and any("%%scope --objects account" in c for c in cells)
    check = (
        "print(len(_scope.state_timeline('account')) > 0,\n"
        "      'deposit' in set(_scope.function_calls('__main__')['function']))"
    )
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in [*cells, check]]
    NotebookClient(
        nb,
        kernel_name="python3",
        timeout=60,
        allow_errors=True,
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    errors = [
        (c.source, o["ename"], o["evalue"])
        for c in nb.cells
        for o in c.outputs
        if o["output_type"] == "error"
    ]
    assert not errors, f"README cells failed: {errors}"
    assert nb.cells[-1].outputs[0]["text"].split() == ["True", "True"]
