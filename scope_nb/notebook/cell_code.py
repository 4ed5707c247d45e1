"""A cell's code compiled and run as IPython would, without a nested `run_cell`.

A nested run_cell clobbers the outer cell's result, shows an exception as handled (so
"run all" would go on), and cannot run top-level `await` under a kernel whose event
loop is already running. Running the code here lets an exception propagate as from any
cell and lets an `await` cell run on a private event loop.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
from types import CodeType


def compile_cell(shell, cell: str) -> tuple[CodeType, CodeType | None, str]:
    """A cell's code compiled as IPython would: magics and `!` lines transformed, a last
    expression split off (its value is the cell's result), top-level `await` allowed.
    Returns (body, last expression or None, filename); raises SyntaxError."""
    source = shell.transform_cell(cell)
    filename = shell.compile.cache(source, shell.execution_count, raw_code=cell)
    tree = ast.parse(source, filename=filename)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr) and not source.rstrip().endswith(";"):
        last = ast.Expression(tree.body.pop().value)
    flags = shell.compile.flags | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    body = compile(tree, filename, "exec", flags=flags, dont_inherit=True)
    expr = (
        compile(last, filename, "eval", flags=flags, dont_inherit=True)
        if last is not None
        else None
    )
    return body, expr, filename


def run_compiled(code: tuple[CodeType, CodeType | None, str], ns: dict, marks: dict | None = None):
    """Run what `compile_cell` made in `ns`; returns the last expression's value.
    Exceptions propagate unchanged. `marks["body_end"]` is set to when the cell's own
    code finished (before an `await` cell's event loop is closed)."""
    __tracebackhide__ = True  # noqa: F841 - IPython hides this frame from the traceback
    body, expr, _ = code
    if (body.co_flags | (expr.co_flags if expr else 0)) & inspect.CO_COROUTINE:
        return _run_async(body, expr, ns, {} if marks is None else marks)
    exec(body, ns)
    return eval(expr, ns) if expr is not None else None


def run_cell_body(shell, cell: str):
    """Run a cell's code in the user namespace as IPython would (see `compile_cell`);
    returns the value of a last expression. Exceptions propagate unchanged."""
    __tracebackhide__ = True  # noqa: F841
    return run_compiled(compile_cell(shell, cell), shell.user_ns)


def _run_async(body, expr, ns, marks: dict):
    """Run an `await` cell to completion on a private event loop in this thread (the
    kernel's own loop may be running here, inside one of its tasks: both are set aside
    and put back after; from 3.14 a thread has one current task whatever the loop, and
    the private loop's first task could not start while the kernel's is current)."""
    __tracebackhide__ = True  # noqa: F841
    from .. import clock

    async def main():
        __tracebackhide__ = True  # noqa: F841
        try:
            result = eval(body, ns)
            if inspect.iscoroutine(result):
                await result
            if expr is None:
                return None
            value = eval(expr, ns)
            return await value if inspect.iscoroutine(value) else value
        finally:
            marks["body_end"] = clock.now()

    outer = asyncio.events._get_running_loop()
    task = asyncio.current_task(outer) if outer is not None else None
    if task is not None:
        asyncio.tasks._leave_task(outer, task)
    asyncio.events._set_running_loop(None)
    try:
        with asyncio.Runner() as runner:
            return runner.run(main())
    finally:
        asyncio.events._set_running_loop(outer)
        if task is not None:
            asyncio.tasks._enter_task(outer, task)


__all__ = ["compile_cell", "run_compiled", "run_cell_body"]
