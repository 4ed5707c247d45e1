"""Which `if` / `elif` / `while` test guards a line: what tells a read that decides
(`if conn.acquired < limit:`) from a read that only looks (a log line, an argument), for
the stale-check rule (race_stale). Read from the program's source as the trace names it
(file:line); a file that cannot be read or parsed guards nothing, so no check is ever
made up."""

from __future__ import annotations

import ast
import linecache
from functools import lru_cache


def split_location(location: str | None) -> tuple[str, int] | None:
    """(file, line) of a `file:line` location, or None."""
    if not location:
        return None
    path, _, line = location.rpartition(":")
    if not path or not line.isdigit():
        return None
    return path, int(line)


def guards(check: str | None, act: str | None, attr: str) -> bool:
    """The read at `check` is in the test of an if / elif / while that names `attr`
    (an attribute, or the container of an item `attr[key]`), and the line `act` is in
    that statement's body, in the same function."""
    c, a = split_location(check), split_location(act)
    if c is None or a is None or c[0] != a[0]:
        return False
    name = attr.split("[", 1)[0].split("{", 1)[0]
    return any(
        first <= a[1] <= last and name in names for first, last, names in _tests_at(c[0], c[1])
    )


def _tests_at(path: str, line: int) -> list[tuple[int, int, frozenset[str]]]:
    """The if / while statements whose test spans `line`: their body's first and last
    line and the attribute and variable names their test reads."""
    return _tests_of(path).get(line, [])


def _tests_of(path: str) -> dict[int, list[tuple[int, int, frozenset[str]]]]:
    return _parsed("".join(linecache.getlines(path)))


@lru_cache(maxsize=64)
def _parsed(source: str) -> dict[int, list[tuple[int, int, frozenset[str]]]]:
    """The tests of one source text by line (keyed by the text: an edited file is read anew)."""
    if not source:
        return {}
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return {}
    out: dict[int, list[tuple[int, int, frozenset[str]]]] = {}
    for scope in ast.walk(tree):
        if not isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef | ast.Module):
            continue
        for node in _own_nodes(scope):
            if not isinstance(node, ast.If | ast.While) or not node.body:
                continue
            names = frozenset(
                n.attr if isinstance(n, ast.Attribute) else n.id
                for n in ast.walk(node.test)
                if isinstance(n, ast.Attribute | ast.Name)
            )
            body = (node.body[0].lineno, node.body[-1].end_lineno or node.body[-1].lineno)
            for ln in range(node.test.lineno, (node.test.end_lineno or node.test.lineno) + 1):
                out.setdefault(ln, []).append((*body, names))
    return out


def _own_nodes(scope: ast.AST):
    """The nodes of a function (or module) body, not those of the functions and classes
    nested in it: a test and its body stay in one function."""
    stack = list(ast.iter_child_nodes(scope))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            stack.extend(ast.iter_child_nodes(node))
