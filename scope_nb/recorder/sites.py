"""Call sites: the code objects being traced, each with an integer id that the hot
path stores instead of the code object, and what is needed later to name it."""

from __future__ import annotations

import inspect
import operator
import os
import sys
import sysconfig
import traceback
import types

from .buffer import CALL, KIND_BITS, RESUME, RETURN, SUSPEND

GEN_FLAGS = (
    inspect.CO_GENERATOR
    | inspect.CO_COROUTINE
    | inspect.CO_ASYNC_GENERATOR
    | inspect.CO_ITERABLE_COROUTINE
)


class Site:
    __slots__ = (
        "code",
        "module",
        "function",
        "filename",
        "line",
        "argnames",
        "getter",
        "secret",
        "is_gen",
        "plain_single",
        "kcall",
        "kret",
        "ksuspend",
        "kresume",
    )

    def __init__(self, code: types.CodeType, module: str, is_secret, site_id: int):
        self.code = code
        self.module = module
        self.function = getattr(code, "co_qualname", code.co_name)
        self.filename = code.co_filename
        self.line = code.co_firstlineno
        n = code.co_argcount + code.co_kwonlyargcount
        n += bool(code.co_flags & inspect.CO_VARARGS) + bool(code.co_flags & inspect.CO_VARKEYWORDS)
        names = code.co_varnames[:n]
        if names and names[0] in ("self", "cls"):
            names = names[1:]  # the receiver is named by the function's qualname
        self.argnames = names
        self.getter = operator.itemgetter(*names) if names else None
        self.secret = tuple(i for i, a in enumerate(names) if is_secret(a))
        self.is_gen = bool(code.co_flags & GEN_FLAGS)
        # the fast path: one argument, kept as is
        self.plain_single = len(names) == 1 and not self.secret
        # the buffer codes of this site's call, return, yield and resume events, ready to append
        self.kcall = CALL | (site_id << KIND_BITS)
        self.kret = RETURN | (site_id << KIND_BITS)
        self.ksuspend = SUSPEND | (site_id << KIND_BITS)
        self.kresume = RESUME | (site_id << KIND_BITS)

    @property
    def location(self) -> str:
        return f"{self.filename}:{self.line}"


def line_of(code: types.CodeType, lasti: int) -> int | None:
    """The line of the instruction at byte offset `lasti` of `code`: what a frame's
    f_lineno says while that instruction runs (None where the compiler set no line)."""
    for start, end, line in code.co_lines():
        if start <= lasti < end:
            return line
    return None


def location_text(loc) -> str | None:
    """An event's location as "file:line". The hot paths store a raw (code, lasti) pair
    (cheap to take) and the line is looked up here, when frames are built."""
    if type(loc) is tuple:
        code, lasti = loc
        return f"{code.co_filename}:{line_of(code, lasti)}"
    return loc


def _excluded_roots() -> tuple[str, ...]:
    roots = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        p = sysconfig.get_paths().get(key)
        if p:
            roots.add(os.path.realpath(p))
    for p in sys.path:
        if p.endswith(("site-packages", "dist-packages")):
            roots.add(os.path.realpath(p))
    roots.add(_PACKAGE)  # scope_nb itself
    return tuple(sorted(roots))


_PACKAGE = os.path.realpath(os.path.dirname(os.path.dirname(__file__)))
# the example programs shipped with scope_nb are programs under study, not the recorder
_EXAMPLES = os.path.join(_PACKAGE, "examples")


def is_recorder_file(filename: str) -> bool:
    """Source files of scope_nb itself (its shipped example programs are not)."""
    return filename.startswith(_PACKAGE + os.sep) and not filename.startswith(_EXAMPLES + os.sep)


def program_stack(frame, limit: int) -> str:
    """The stack that led to `frame`, as traceback text of its last `limit` entries,
    without the recorder's own frames (its wrappers of a loop's run_forever, of a
    callback's run): what the program did, not how it was watched."""
    entries = [fs for fs in traceback.extract_stack(frame) if not is_recorder_file(fs.filename)]
    return "".join(traceback.format_list(entries[-limit:]))


def is_recorder_module(name: str) -> bool:
    """Modules of scope_nb itself (its shipped example programs are not)."""
    return (name == "scope_nb" or name.startswith("scope_nb.")) and not name.startswith(
        "scope_nb.examples"
    )


class UserCodeFilter:
    """Is a code object the program's own (not the stdlib, site-packages or us)?"""

    def __init__(self):
        self.roots = _excluded_roots()
        self._cache: dict[str, bool] = {}

    def __call__(self, code: types.CodeType) -> bool:
        fn = code.co_filename
        hit = self._cache.get(fn)
        if hit is None:
            if fn.startswith("<frozen") or fn.startswith("<string>"):
                hit = False
            elif fn.startswith("<"):
                hit = True  # notebook cells (<ipython-input-...>) and exec'd code
            else:
                real = os.path.realpath(fn)
                hit = real.startswith(_EXAMPLES + os.sep) or not any(
                    real.startswith(r + os.sep) or real == r for r in self.roots
                )
            self._cache[fn] = hit
        return hit

    def include(self, filenames) -> None:
        """Count these source files as the program's own, wherever they live."""
        for fn in filenames:
            self._cache[fn] = True


def module_codes(module: types.ModuleType) -> list[types.CodeType]:
    """Every code object defined by a module: functions, methods, nested classes and
    functions, closures, lambdas (found through co_consts)."""
    found: dict[int, types.CodeType] = {}
    seen_classes: set[int] = set()
    name = module.__name__

    def add_code(code):
        if id(code) in found:
            return
        found[id(code)] = code
        for c in code.co_consts:
            if isinstance(c, types.CodeType):
                add_code(c)

    def add_obj(obj):
        if isinstance(obj, staticmethod | classmethod):
            obj = obj.__func__
        if isinstance(obj, property):
            for f in (obj.fget, obj.fset, obj.fdel):
                if f is not None:
                    add_obj(f)
            return
        if isinstance(obj, types.FunctionType):
            if obj.__module__ == name:
                add_code(obj.__code__)
            return
        if isinstance(obj, type) and obj.__module__ == name and id(obj) not in seen_classes:
            seen_classes.add(id(obj))
            for v in list(vars(obj).values()):
                add_obj(v)
        wrapped = getattr(obj, "__wrapped__", None)
        if isinstance(wrapped, types.FunctionType):
            add_obj(wrapped)

    for v in list(vars(module).values()):
        add_obj(v)
    return list(found.values())
