"""Traced objects: the GenServer of this world.

`trace_object` swaps the object's class for a subclass made on the fly (same name,
same layout, `__class__` still answering the original) whose `__getattribute__`,
`__setattr__` and `__delattr__` record reads and writes, and whose public methods
record call / return / exception rows with the caller as actor. After every write
and at the end of every outermost method call (where in-place mutation of a list or
dict shows), the attributes are compared with the last snapshot and each change
becomes a states row plus a `state` event. `stop()` puts the original class back.

Key-level accesses of the dicts, sets and lists it holds (`self.d[k] += 1`,
`if k not in self.d`) are recorded through substitute containers (`items`, whose
docstring says what that gives up).

Modules: `hooks` (the traced subclass), `items` (the container substitutes), `traced`
(one object's reads and writes), `method_calls` (its methods' call / return rows),
`snapshots` and `diffs` (its state history), `events` (shared constants and
locations), `api` (`trace_object`, `@traced`, naming), `report` (the STATES rows),
`own_classes` (`races=True`: the classes hooked) and `watched` (their instances watched).

States rows are kept raw in `rec.parts.states` and turned into the STATES
columns by `states_rows(rec)`. Each row stores, per attribute in `attrs`, one op:

* "set": the payload is the new value: the pickle bytes of its structural copy
  (`values.copy_value`, made without running the program's code: built-in
  containers, plain instances through their __dict__, every other object as an
  `Unpicklable` stand-in of type and number); an atomic value other than bytes is
  kept by reference and pickled when the frame is built; "<redacted>" for secrets.
  Diffs compare and patch the recorder's copies, never the program's objects;
* "splice": a list changed in one contiguous run: payload = pickle((start, end, items)),
  apply as `value[start:end] = items`;
* "dict": payload = pickle((updated_items, removed_keys)).

Every KEYFRAME_EVERY changes a row is a keyframe: it carries every attribute with
"set", so a state is rebuilt from the nearest keyframe plus at most that many diffs.

The hot path: a write of an atomic value (the common `obj.n = 1`, `obj.n += 1`)
touches only that attribute, formats the value once, takes file:line from one
`sys._getframe` and appends the write and state events to the thread's buffer
directly; a read appends its event the same way. A big list is fingerprinted by the
pickles of its CHUNK-element slices, which find and locate a change at the cost of
one pickling (see _splice).
"""

from __future__ import annotations

from .api import check_arguments, renamed_objects, trace_object, traced
from .hooks import _CLASS_SET
from .items import restore as restore_items
from .report import states_rows
from .traced import Objects, Traced

__all__ = [
    "Objects",
    "Traced",
    "check_arguments",
    "install",
    "renamed_objects",
    "states_rows",
    "trace_object",
    "traced",
    "uninstall",
]


def install(rec) -> None:
    rec.parts.objects = Objects(rec)


def uninstall(rec) -> None:
    objs = rec.parts.objects
    if objs is None:
        return
    for t in list(objs.table.values()):
        t.live = False
        try:
            restore_items(t.vars() if t.has_dict else {}, t.items)
        except Exception as e:
            rec.fault("objects:items", e)
        try:
            if type(t.obj) is t.sub:
                _CLASS_SET(t.obj, t.cls)
        except Exception as e:
            rec.fault("objects:restore", e)
    objs.table.clear()
