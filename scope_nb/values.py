"""Turning the program's values into something safe to keep: a bounded repr that
never raises, redaction of sensitive names, and structural snapshots.

Atomic immutable values (numbers, short strings, bytes, None, small tuples of
them) are kept by reference and formatted only when a frame is built; everything
else is formatted at capture time, because it may change later.
"""

from __future__ import annotations

import pickle
import re
import time
from collections.abc import Iterable
from typing import Any

ATOMIC: frozenset[type] = frozenset({int, float, bool, type(None), str, bytes, complex})
MAX_ATOMIC_STR = 4096  # longer str/bytes are cut at capture so a buffer never pins a huge value
TEXT = (str, bytes)
SLOW_REPR_S = 0.05  # a __repr__ slower than this once is never called again for its type

_slow_types: set[type] = set()


def kept_as_is(v: Any) -> bool:
    """An atomic value a buffer may keep by reference: not text longer than
    MAX_ATOMIC_STR, which would pin a huge string for as long as the trace lives."""
    t = type(v)
    return t in ATOMIC and (t not in TEXT or len(v) <= MAX_ATOMIC_STR)


def kept_tuple(v: Any) -> bool:
    """A tuple a buffer may keep by reference: at most 4 items, each `kept_as_is`
    (a message, an argument; formatted only when the frames are built)."""
    return type(v) is tuple and len(v) <= 4 and all(kept_as_is(x) for x in v)


class Redactor:
    """Decides which names are sensitive (whole word or part of a snake/camel name)."""

    def __init__(self, names: Iterable[str]):
        words = sorted({n.lower() for n in names if n})
        self.pattern = re.compile(
            r"(?:^|[_\-.]|(?<=[a-z])(?=[A-Z]))(" + "|".join(map(re.escape, words)) + r")(?:$|[_\-.s]|(?=[A-Z]))",
            re.IGNORECASE,
        ) if words else None
        self._cache: dict[str, bool] = {}

    def __call__(self, name: object) -> bool:
        if self.pattern is None or not isinstance(name, str):
            return False
        hit = self._cache.get(name)
        if hit is None:
            hit = self._cache[name] = bool(self.pattern.search(name))
        return hit


REDACTED = "<redacted>"


class Formatter:
    """Bounded, never-raising repr with redaction of sensitive keys and attributes."""

    def __init__(self, max_len: int = 200, max_depth: int = 3, redact: Iterable[str] = ()):
        self.max_len = max_len
        self.max_depth = max_depth
        self.is_secret = Redactor(redact)
        self.max_items = 10
        self._how: dict[type, int] = {}  # type -> how capture shows its values

    # -- public ------------------------------------------------------------
    def repr(self, value: Any) -> str:
        return self._cut(self._repr(value, self.max_depth, set()))

    def capture(self, value: Any) -> Any:
        """What a buffer keeps for a value: the value itself when atomic, else its repr now."""
        t = type(value)
        if t in ATOMIC:
            if (t is str or t is bytes) and len(value) > MAX_ATOMIC_STR:
                return value[:MAX_ATOMIC_STR]
            return value
        how = self._how.get(t)
        if how is None:
            how = self._how[t] = _how_to_show(t)
        if how == _DEFAULT_REPR:  # object.__repr__ needs no call: it only names the object
            return Formatted(f"<{t.__module__}.{t.__qualname__} object at {id(value):#x}>")
        if how == _OWN_REPR:
            return Formatted(self._object(value))
        if kept_tuple(value):
            return value
        return Formatted(self.repr(value))

    def show(self, captured: Any) -> str:
        """Format what `capture` kept."""
        if type(captured) is Formatted:
            return captured.text
        return self.repr(captured)

    # -- internals ---------------------------------------------------------
    def _cut(self, text: str) -> str:
        if len(text) > self.max_len:
            return text[: self.max_len - 3] + "..."
        return text

    def _repr(self, v: Any, depth: int, seen: set[int]) -> str:
        t = type(v)
        if t in ATOMIC:
            if t is str or t is bytes:
                return repr(v[: self.max_len]) + ("..." if len(v) > self.max_len else "")
            return repr(v)
        if depth <= 0:
            return f"<{t.__name__} ...>"
        if id(v) in seen:
            return f"<recursive {t.__name__}>"
        if issubclass(t, list | tuple | set | frozenset | dict):  # the real type: a __class__ property may lie or raise
            try:
                return self._container(v, depth, seen | {id(v)})
            except BaseException as e:  # a subclass's hostile __len__ / __iter__ / items() must not escape
                return f"<{t.__name__} object (repr raised {type(e).__name__})>"
        return self._object(v)

    def _container(self, v, depth, seen) -> str:
        items = []
        n = 0
        budget = self.max_len
        if isinstance(v, dict):
            it = iter(list(v.items())[: self.max_items + 1])
            for k, x in it:
                n += 1
                if n > self.max_items:
                    break
                shown = REDACTED if self.is_secret(k) else self._repr(x, depth - 1, seen)
                items.append(f"{self._repr(k, depth - 1, seen)}: {shown}")
                budget -= len(items[-1])
                if budget < 0:
                    break
            more = len(v) - len(items)
            body = ", ".join(items) + (f", ...+{more}" if more > 0 else "")
            return "{" + body + "}" if type(v) is dict else f"{type(v).__name__}({{{body}}})"
        seq = list(v)[: self.max_items + 1] if not isinstance(v, list | tuple) else v[: self.max_items + 1]
        for x in seq:
            n += 1
            if n > self.max_items:
                break
            items.append(self._repr(x, depth - 1, seen))
            budget -= len(items[-1])
            if budget < 0:
                break
        more = len(v) - len(items)
        body = ", ".join(items) + (f", ...+{more}" if more > 0 else "")
        if isinstance(v, list):
            return "[" + body + "]"
        if isinstance(v, tuple):
            return "(" + body + ("," if len(v) == 1 else "") + ")"
        return "{" + body + "}" if v else f"{type(v).__name__}()"

    def _object(self, v) -> str:
        t = type(v)
        if t in _slow_types:
            return f"<{t.__name__} object (slow repr)>"
        start = time.perf_counter()
        try:
            text = repr(v)
        except BaseException as e:  # a hostile __repr__ must not escape
            return f"<{t.__name__} object (repr raised {type(e).__name__})>"
        if time.perf_counter() - start > SLOW_REPR_S:
            _slow_types.add(t)
        if not isinstance(text, str):
            return f"<{t.__name__} object>"
        return self._cut(text)


_DEFAULT_REPR, _OWN_REPR, _WALK = 0, 1, 2


def _how_to_show(t: type) -> int:
    if issubclass(t, list | tuple | set | frozenset | dict):
        return _WALK  # bounded walk: a huge or recursive container must not be repr()'d
    return _DEFAULT_REPR if t.__repr__ is object.__repr__ else _OWN_REPR


class Formatted:
    """A repr taken at capture time (distinguishes it from a captured str value)."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def snapshot_value(value: Any) -> tuple[bytes | None, Any]:
    """A structural copy of one attribute: (pickle bytes, None) when picklable, else
    (None, value) for atomic values kept as they are."""
    t = type(value)
    if t in ATOMIC:
        return None, value
    try:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), None
    except BaseException:
        return None, Unpicklable(value)


class Unpicklable:
    """Stands in for a value that could not be copied: it keeps its repr."""

    __slots__ = ("text", "type_name")

    def __init__(self, value: Any):
        self.type_name = type(value).__name__
        self.text = Formatter().repr(value)

    @classmethod
    def from_text(cls, text: str) -> Unpicklable:
        """The stand-in for a value of which only the recorded repr is left (its pickle
        does not load back), so its type is unknown."""
        self = cls.__new__(cls)
        self.type_name, self.text = "value", text
        return self

    def __repr__(self) -> str:
        return f"<unpicklable {self.type_name}: {self.text}>"

    def __eq__(self, other) -> bool:
        return isinstance(other, Unpicklable) and (self.type_name, self.text) == (other.type_name, other.text)

    def __hash__(self) -> int:
        return hash((self.type_name, self.text))

