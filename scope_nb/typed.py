"""Recorded values as typed JSON: the form in which a traced object's state is kept on
disk so that a trace read back (also untrusted, also by another engine) gives the
values the live trace gives: `{"n": 6}`, never `{"n": "6"}`.

Why JSON with type markers rather than pickle or Arrow's own types: a pickle runs
code when loaded (a class's reduction), so an untrusted trace must not unpickle; Arrow
types need one type per column, and an attribute holds an int in one row and a dict
of tuples in the next. JSON text fits one string column, is read by every engine
(DuckDB's `json_extract`, Spark's `from_json`), and decoding it builds only built-in
values and `Unpicklable` stand-ins, so it is safe on any trace.

The encoding: None, bool, str, finite floats, ints within int64 and lists are JSON
itself; a dict whose keys are all str is a JSON object. Everything else is an object
with one key starting with "$" (a marker):

    {"$int": "123456789012345678901234"}   an int outside int64 (engines keep the text)
    {"$float": "nan" | "inf" | "-inf"}
    {"$tuple": [...]}, {"$set": [...]}, {"$frozenset": [...]}
    {"$bytes": "<base64>"}, {"$complex": [real, imag]}
    {"$dict": [[key, value], ...]}         keys other than str, or one "$..." key
    {"$standin": [type_name, text]}        a value that was not copied: `<Lock #3>`

An object the recorder copied structurally (an instance of a plain class) becomes a
stand-in of its type: rebuilding it means importing the program's class, which only
a trusted load does (from the pickle). A value that cannot be encoded (a cycle, a
marker-less foreign object) has no JSON at all; the reader marks it as a stand-in of
its recorded text. Shared references inside one value are written once per use.
"""

from __future__ import annotations

import base64
import io
import json
import math
import pickle
from typing import Any

from .values import Unpicklable

_INT64 = 1 << 63


class NotKept(ValueError):
    """The value has no typed JSON form."""


def encode_payload(payload: Any, text: str | None = None) -> str | None:
    """The typed JSON of a states-row payload (the value itself, or the recorder's own
    pickle of its structural copy), or None when it cannot be kept exactly. `text`, the
    value's recorded text, is the stand-in's text when the value is a plain instance
    (`<Point #2>`; one inside a container shows its type only: `<Point>`)."""
    t = type(payload)
    if payload is None or t is bool:
        return "null" if payload is None else ("true" if payload else "false")
    if t is int and -_INT64 <= payload < _INT64:
        return str(payload)  # the common `obj.n += 1`: no JSON encoder
    try:
        value = _own_loads(payload) if t is bytes else payload
        if type(value) is _Instance and text is not None:
            value = Unpicklable.from_text(text, value.type_name)
        return json.dumps(
            _to_json(value, set()), ensure_ascii=False, allow_nan=False, separators=(",", ":")
        )
    except Exception:
        return None


def decode(text: str) -> Any:
    """The value of one typed JSON text (see the module doc); a ValueError if it is not one."""
    return _from_json(json.loads(text))


# -- encoding ---------------------------------------------------------------------------
def _to_json(v: Any, path: set[int]) -> Any:
    t = type(v)
    if v is None or t is bool or t is str:
        return v
    if t is int:
        return v if -_INT64 <= v < _INT64 else {"$int": str(v)}
    if t is float:
        return v if math.isfinite(v) else {"$float": repr(v)}
    if t is bytes:
        return {"$bytes": base64.b64encode(v).decode("ascii")}
    if t is complex:
        return {"$complex": [_to_json(v.real, path), _to_json(v.imag, path)]}
    if t is Unpicklable:
        return {"$standin": [v.type_name, v.text]}
    if t is _Instance:
        return {"$standin": [v.type_name, f"<{v.type_name}>"]}
    if t not in (list, tuple, set, frozenset, dict):
        raise NotKept(f"no typed form for {t.__name__}")
    if id(v) in path:
        raise NotKept("a cycle")
    path.add(id(v))
    try:
        if t is dict:
            if all(type(k) is str for k in v) and not (
                len(v) == 1 and next(iter(v)).startswith("$")
            ):
                return {k: _to_json(x, path) for k, x in v.items()}
            return {"$dict": [[_to_json(k, path), _to_json(x, path)] for k, x in v.items()]}
        items = [_to_json(x, path) for x in v]
        return items if t is list else {f"${t.__name__}": items}
    finally:
        path.discard(id(v))


class _Instance:
    """What a plain instance's copy unpickles to here: its type name only (see _Own)."""

    __slots__ = ("type_name",)

    def __init__(self, type_name: str):
        self.type_name = type_name


class _Global:
    """A global a pickle names, never imported."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name


def _instance(cls: Any, _state: Any) -> _Instance:
    return _Instance(cls.name.rsplit(".", 1)[-1] if type(cls) is _Global else "object")


def _getattr(owner: Any, name: str) -> Any:
    """How a stand-in pickles: getattr(Unpicklable, "from_text"); no other getattr."""
    if (
        type(owner) is _Global
        and owner.name == "scope_nb.values.Unpicklable"
        and name == "from_text"
    ):
        return Unpicklable.from_text
    raise pickle.UnpicklingError(f"not a recorded copy: getattr({owner!r}, {name!r})")


_ALLOWED = {
    ("builtins", "complex"): complex,
    ("builtins", "getattr"): _getattr,
    ("scope_nb.values", "_rebuild"): _instance,
}


class _Own(pickle.Unpickler):
    """Reads the recorder's pickles of its structural copies (`values.copy_value`)
    without importing or running anything of the program: the few globals those
    pickles use are mapped above, every other name stays a `_Global` (a plain
    instance's class: it becomes an `_Instance`; any other use of it fails)."""

    def find_class(self, module: str, name: str) -> Any:
        return _ALLOWED.get((module, name)) or _Global(f"{module}.{name}")


def _own_loads(blob: bytes) -> Any:
    return _Own(io.BytesIO(blob)).load()


# -- decoding ---------------------------------------------------------------------------
def _from_json(j: Any) -> Any:
    if isinstance(j, list):
        return [_from_json(x) for x in j]
    if not isinstance(j, dict):
        return j
    if len(j) == 1:
        ((key, body),) = j.items()
        if key.startswith("$"):
            return _marker(key, body)
    return {k: _from_json(x) for k, x in j.items()}


def _marker(key: str, body: Any) -> Any:
    if key == "$int":
        return int(body)
    if key == "$float":
        return float(body)
    if key == "$bytes":
        return base64.b64decode(body)
    if key == "$complex":
        return complex(*body)
    if key == "$standin":
        type_name, text = body
        return Unpicklable.from_text(str(text), str(type_name))
    if key == "$tuple":
        return tuple(_from_json(x) for x in body)
    if key == "$set":
        return {_from_json(x) for x in body}
    if key == "$frozenset":
        return frozenset(_from_json(x) for x in body)
    if key == "$dict":
        return {_from_json(k): _from_json(x) for k, x in body}
    raise ValueError(f"unknown typed JSON marker {key!r}")
