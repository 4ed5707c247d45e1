"""Key-level accesses of the built-in containers a traced object holds.

A race on `self.cache` is rarely on the attribute: it is on one of its keys
(`if k not in self.cache: self.cache[k] = make()`, `self.counts[k] += 1`). CPython
cannot watch a dict's keys from outside without running code on every access, and a
built-in's class cannot be swapped, so the recorder swaps the *value*: when an object
is traced, every attribute holding an exact `dict`, `set` or `list` that nothing else
refers to gets a substitute of a subclass defined here, holding the same items, whose
key-level methods record a read or write row of target `attr[key]` (dict keys, list
indices) or `attr{item}` (set and list membership) and then do what the built-in does.
At `stop()` each substitute still held by its attribute alone is put back as a plain
container with the same items.

What it gives up while recording: `type(obj.d) is dict` is false (`isinstance` holds,
`obj.d.__class__` answers `dict`), so code that dispatches on the exact type sees
another one (`type(x) is dict` tests, PyYAML's safe representers, `type(x)(...)` in
`dataclasses.asdict` making an inert substitute); a KeyError raised by `d[k]` has one
more traceback frame; a key access costs a Python call. Pickle, copy, deepcopy and json see a plain
container (pickling loads one; copies are plain). A container another name also
refers to (an alias, a second attribute, a closure) is left as it is and not watched:
swapping it would split one object in two for the program. A container assigned to
an attribute while recording is adopted at its first read through the object's read
hook, under the same condition.
Not recorded: whole-container reads and writes (`len`, iteration, `keys()`, `==`,
`clear()`, `sort()`, slices, `del l[i]`), which name no key or shift every index.

The swap happens while other threads may run: see "swapping in and out" below for how
no thread can take the old container in the middle of it.

No program code runs in the hooks: a key is named from its type (str, bytes and
numbers by value, a short tuple of those by value, any other object by its identity
`<Type #n>`), so two distinct keys never share a name unless equal as values; a long
string key is cut and given its hash.
"""

from __future__ import annotations

import copy as _copy
import operator
import sys
from functools import partial
from typing import Any

from ....values import ATOMIC, REDACTED, register_builtin
from .events import _K_READ, _K_WRITE, _busy, _get_ident

_getrefcount = sys.getrefcount
_type_name = type.__dict__["__name__"].__get__
_KEY_LEN = 40  # a str / bytes key longer than this is cut and given its hash


# -- naming keys without running program code -------------------------------------------


def key_text(fmt, key: Any) -> str:
    t = type(key)
    if t is str or t is bytes:
        if len(key) <= _KEY_LEN:
            return repr(key)
        return f"{key[:_KEY_LEN]!r}...#{hash(key) & 0xFFFFFFFF:08x}"
    if t is int and -(1 << 63) <= key < 1 << 63 or t in ATOMIC and t is not int:
        return repr(key)
    if t is tuple and len(key) <= 4 and all(type(x) in ATOMIC for x in key):
        return "(" + ", ".join(key_text(fmt, x) for x in key) + ("," if len(key) == 1 else "") + ")"
    return fmt.ids.label(key)


def _detail(fmt, value: Any) -> str:
    t = type(value)
    if t in ATOMIC:
        return fmt.repr(value)
    return f"<{_type_name(t)}>"


# -- recording one access ---------------------------------------------------------------


def _record(c: Any, code: int, key: Any, value: Any, member: bool = False) -> None:
    """One access of container `c` to `key` (its membership when `member`), if `c` is
    a substitute a watched object holds while recording. Its owner (a `Traced`, or a
    `races=True` instance's holder) has `live`, `rec`, `is_secret(attr)` and
    `item(code, target, detail)`, called 3 frames below the program's access."""
    try:
        owner = c._scope_owner
    except AttributeError:  # an instance the program made with type(c)(...)
        return
    if owner is None or _get_ident() in _busy:
        return
    t, attr = owner
    if not t.live:
        return
    try:
        fmt = t.rec.fmt
        k = key_text(fmt, key)
        target = f"{attr}{{{k}}}" if member else f"{attr}[{k}]"
        if t.is_secret(attr) or type(key) is str and fmt.is_secret(key):
            detail = REDACTED  # a secret attribute, or a secret key (`d["password"]`)
        elif type(value) is _Mark:
            detail = str(value)
        else:
            detail = _detail(fmt, value)
        t.item(code, target, detail)
    except Exception as e:
        t.rec.fault("objects:item", e)


class _Mark(str):
    """What an access found or did, shown as is (no value of the program's is one)."""


_MISSING = _Mark("<missing>")
_DELETED = _Mark("<deleted>")
_ADDED = _Mark("<added>")
_REMOVED = _Mark("<removed>")
_NOVALUE = object()


# -- the substitutes ----------------------------------------------------------------------

_d_contains, _d_getitem, _d_setitem = dict.__contains__, dict.__getitem__, dict.__setitem__
_d_delitem, _d_get, _d_setdefault, _d_pop = (
    dict.__delitem__,
    dict.get,
    dict.setdefault,
    dict.pop,
)


class RecordedDict(dict):
    __slots__ = ("_scope_owner",)

    def __contains__(self, key):
        found = _d_contains(self, key)
        _record(self, _K_READ, key, found)
        return found

    def __getitem__(self, key):
        try:
            value = _d_getitem(self, key)
        except KeyError:
            _record(self, _K_READ, key, _MISSING)
            raise
        _record(self, _K_READ, key, value)
        return value

    def get(self, key, default=None):
        value = _d_get(self, key, _NOVALUE)
        _record(self, _K_READ, key, _MISSING if value is _NOVALUE else value)
        return default if value is _NOVALUE else value

    def setdefault(self, key, default=None):
        # one atomic check-and-insert: a read (two threads' setdefault never race)
        value = _d_setdefault(self, key, default)
        _record(self, _K_READ, key, value)
        return value

    def __setitem__(self, key, value):
        # recorded before the write: a read recorded after it can never look stale
        _record(self, _K_WRITE, key, value)
        _d_setitem(self, key, value)

    def __delitem__(self, key):
        _record(self, _K_WRITE, key, _DELETED)
        _d_delitem(self, key)

    def pop(self, key, *default):
        _record(self, _K_WRITE, key, _DELETED)
        return _d_pop(self, key, *default)

    def update(self, *args, **kwargs):
        # the items of a dict argument and of the keywords, read from them (a lookup in
        # self would hash the keys again); pairs from an iterator are not recorded
        # (reading them again would consume it)
        dict.update(self, *args, **kwargs)
        for src in (*args[:1], kwargs):
            if isinstance(src, dict):
                for k, v in list(dict.items(src)):
                    _record(self, _K_WRITE, k, v)

    @classmethod
    def fromkeys(cls, iterable, value=None):
        return dict.fromkeys(iterable, value)  # a plain dict, as from the dict it stands for

    def __reduce_ex__(self, protocol):
        return dict, (), None, None, iter(dict.items(self))

    def __copy__(self):
        return dict(dict.items(self))

    def __deepcopy__(self, memo):
        out: dict = {}
        memo[id(self)] = out
        for k, v in dict.items(self):
            out[_copy.deepcopy(k, memo)] = _copy.deepcopy(v, memo)
        return out

    @property
    def __class__(self):
        return dict


_s_contains, _s_add, _s_discard, _s_remove = set.__contains__, set.add, set.discard, set.remove


class RecordedSet(set):
    __slots__ = ("_scope_owner",)

    def __contains__(self, item):
        found = _s_contains(self, item)
        _record(self, _K_READ, item, found, member=True)
        return found

    def add(self, item):
        _record(self, _K_WRITE, item, _ADDED, member=True)
        _s_add(self, item)

    def discard(self, item):
        _record(self, _K_WRITE, item, _REMOVED, member=True)
        _s_discard(self, item)

    def remove(self, item):
        _record(self, _K_WRITE, item, _REMOVED, member=True)
        _s_remove(self, item)

    def __repr__(self):
        return set.__repr__(set(self)) if self else "set()"

    def __reduce_ex__(self, protocol):
        return set, (list(set.__iter__(self)),)

    def __copy__(self):
        return set(self)

    def __deepcopy__(self, memo):
        out: set = set()
        memo[id(self)] = out
        out.update(_copy.deepcopy(x, memo) for x in set.__iter__(self))
        return out

    @property
    def __class__(self):
        return set


_l_contains, _l_getitem, _l_setitem = list.__contains__, list.__getitem__, list.__setitem__
_l_append, _l_remove, _l_insert, _l_pop = list.append, list.remove, list.insert, list.pop


class RecordedList(list):
    __slots__ = ("_scope_owner",)

    def __contains__(self, item):
        found = _l_contains(self, item)
        _record(self, _K_READ, item, found, member=True)
        return found

    def __getitem__(self, i):
        value = _l_getitem(self, i)
        if type(i) is int:
            _record(self, _K_READ, i, value)
        return value

    def __setitem__(self, i, value):
        if type(i) is int:
            _record(self, _K_WRITE, i, value)
        _l_setitem(self, i, value)

    def append(self, item):
        _record(self, _K_WRITE, item, _ADDED, member=True)
        _l_append(self, item)

    def insert(self, i, item):
        _record(self, _K_WRITE, item, _ADDED, member=True)
        _l_insert(self, i, item)

    def remove(self, item):
        _record(self, _K_WRITE, item, _REMOVED, member=True)
        _l_remove(self, item)

    def pop(self, *i):
        item = _l_pop(self, *i)
        _record(self, _K_WRITE, item, _REMOVED, member=True)
        return item

    def __reduce_ex__(self, protocol):
        return list, (), None, iter(list.__iter__(self))

    def __copy__(self):
        return list(list.__iter__(self))

    def __deepcopy__(self, memo):
        out: list = []
        memo[id(self)] = out
        out.extend(_copy.deepcopy(x, memo) for x in list.__iter__(self))
        return out

    @property
    def __class__(self):
        return list


SUBSTITUTE = {dict: RecordedDict, set: RecordedSet, list: RecordedList}
_BASES = {sub: base for base, sub in SUBSTITUTE.items()}
for _sub, _base in _BASES.items():
    register_builtin(_sub, _base)
    _sub.__name__ = _base.__name__  # what `<dict>` labels and error messages say


# -- swapping in and out ------------------------------------------------------------------
#
# Another thread may take the container from the attribute at any bytecode boundary of
# this code; a write it then makes to the old container would be lost to the program.
# So the count of the old container's holders, the copy into the substitute and the
# store into the attribute run as one chain of C calls (`map` over partials), where no
# other thread runs, and the count taken there decides: a holder that appeared since the
# first count puts the old container back.


def _held(value: Any) -> int:
    return _getrefcount(value)


def _chain(*steps: Any) -> list:
    return list(map(_call, steps))


_last: list[int] = [0, 0, 0]  # the counts of the last _publish (read by _calibrate)


def _publish(ns: dict, name: str, old: Any, make: type, alone: int) -> Any:
    """A new `make` filled from `old` and stored as ns[name], when nothing but `ns` and
    the callers' frames (`alone` references, measured by _calibrate) holds `old`; else
    None, ns unchanged."""
    _last[0] = base = _held(old)
    if base > alone:
        return None
    sub = make()
    fill = partial(_FILL[make], sub, old)
    _last[1] = got = _chain(partial(_getrefcount, old), fill, partial(_set, ns, name, sub))[0]
    if got <= base + _CHAIN_REFS:
        return sub
    _last[2] = back = _chain(partial(_getrefcount, sub), partial(_set, ns, name, old))[0]
    if back > _SUB_REFS:  # also taken in the instant between the two chains
        raise RuntimeError(f"attribute {name}: the container was taken while it was swapped")
    return None


def substitute(t: Any) -> None:
    """Put a recording substitute in every attribute of traced object `t` that holds an
    exact dict, set or list nothing else refers to; remembered in `t.items`."""
    if not _ENABLED or not t.has_dict or not (t.objs.reads or t.objs.writes):
        return
    ns = t.vars()
    for name in list(ns):
        if type(name) is not str or type(ns[name]) not in SUBSTITUTE:
            continue
        old = ns[name]
        sub = _publish(ns, name, old, SUBSTITUTE[type(old)], _ALONE)
        if sub is not None:
            sub._scope_owner = (t, name)
            t.items[name] = sub
        del old, sub


def adopt(owner: Any, ns: dict, name: str, value: Any) -> Any:
    """What a read hook returns for `value`, just read from attribute `name` of
    namespace `ns`: a substitute for it (kept in `owner.items`) when only `ns` holds it
    -- a container assigned while recording, seen at its first read -- else `value`."""
    if not _ENABLED or ns.get(name) is not value:
        return value
    sub = _publish(ns, name, value, SUBSTITUTE[type(value)], _READ_ALONE)
    if sub is None:
        return value
    sub._scope_owner = (owner, name)
    owner.items[name] = sub
    return sub


class _Probe:
    """What substitute() and adopt() read of a traced object, for _calibrate."""

    def __init__(self, ns: dict):
        self.has_dict, self.items, self.vars = True, {}, lambda: ns
        self.objs = self

    reads = writes = True


def _read_hook(owner: Any, ns: dict) -> Any:
    value = ns["x"]  # as the read hooks hold the value they are about to return
    return adopt(owner, ns, "x", value)


def _calibrate() -> bool:
    """Measure, on this interpreter, the references the callers' frames and the chains
    hold, then check that a lone container is swapped and an aliased one is not."""
    global _ALONE, _READ_ALONE, _CHAIN_REFS, _SUB_REFS
    _ALONE = _READ_ALONE = -1  # refuse all, counting
    substitute(_Probe({"x": []}))
    _ALONE = _last[0]
    _read_hook(_Probe({}), {"x": []})
    _READ_ALONE = _last[0]
    _CHAIN_REFS, _SUB_REFS = 1 << 30, -1
    substitute(_Probe({"x": []}))
    chain = _last[1] - _last[0]
    _CHAIN_REFS, _SUB_REFS = -1, 1 << 30  # a holder seen in the chain: put back, counting
    substitute(_Probe({"x": []}))
    _CHAIN_REFS, _SUB_REFS = chain, _last[2]
    alone, alias, aliased = _Probe({"x": []}), _Probe({"y": {}}), []
    aliased.append(alias.vars()["y"])
    substitute(alone)
    substitute(alias)
    owner, ns, kept = _Probe({}), {"x": set()}, []
    seen = _read_hook(owner, ns)
    kept.append(ns.setdefault("y", set()))
    unseen = _read_hook(owner, {"x": kept[0]})
    ok = list(alone.items) == ["x"] and not alias.items and type(seen) is RecordedSet
    ns = alone.vars()
    restore(ns, alone.items)
    return ok and type(unseen) is set and type(ns["x"]) is list


_call = operator.call
_set = dict.__setitem__
_FILL = {
    RecordedDict: dict.update,
    RecordedSet: set.update,
    RecordedList: list.extend,
    dict: dict.update,
    set: set.update,
    list: list.extend,
}
_ALONE = _READ_ALONE = _CHAIN_REFS = _SUB_REFS = 0


def restore(ns: dict, items: dict) -> None:
    """Every substitute of `items` (attr -> substitute) still held by its attribute of
    `ns` alone back as a plain container (through the same chain as the swap in); one
    the program also refers to elsewhere now stays, silent. Empties `items`."""
    for name in list(items):
        sub = items.pop(name)
        sub._scope_owner = None
        if ns.get(name) is sub:
            _publish(ns, name, sub, _BASES[type(sub)], _ALONE)
        del sub


_ENABLED = True
try:
    _ENABLED = _calibrate()
except Exception:
    _ENABLED = False  # an interpreter whose counts do not behave: no substitutes, no risk
