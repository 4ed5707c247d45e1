"""Turning the program's values into something safe to keep, without running the
program's code: a bounded text, redaction of sensitive names, and structural copies.

Nothing here calls a `__repr__`, `__str__`, `__len__`, `__iter__`, `__eq__`,
`__hash__`, a reduction hook, a property or any other descriptor the program
defines (calling them while recording broke a real HTTP client, whose `__repr__`
read a caching property too early). What is kept:

* built-in atomic values (int, float, str, bytes, bool, None, complex) by
  reference; str and bytes longer than MAX_ATOMIC_STR are cut;
* built-in containers of the exact types list, tuple, dict, set and frozenset,
  walked with the C-level methods of those types and bounded in depth and items;
* instances of classes that keep the interpreter's default reduction (`Plain`):
  their `__dict__`, read with `object.__getattribute__`, copied structurally;
* every other object as its type and a number that stays the same for the same
  object during the run, shown as `<ClientResponse #3>`.

`Formatter(repr_objects=True)` asks for the program's own `repr()` of those other
objects; it is never called at capture time but later, off the traced thread and
under a time budget (see `Formatted`).
"""

from __future__ import annotations

import itertools
import re
import threading
import types
import weakref
from collections.abc import Iterable
from typing import Any

ATOMIC: frozenset[type] = frozenset({int, float, bool, type(None), str, bytes, complex})
MAX_ATOMIC_STR = 4096  # longer str/bytes are cut at capture so a buffer never pins a huge value
TEXT = (str, bytes)
CONTAINERS: frozenset[type] = frozenset({list, tuple, dict, set, frozenset})
REPR_BUDGET_S = 0.5  # the longest a program's own __repr__ may take (repr_objects=True)
MAX_COPY_DEPTH = 32  # structural copies of state: deeper values are kept as stand-ins
MAX_COPY_ITEMS = 1_000_000  # ... and at most this many values in one copy

_type_name = type.__dict__["__name__"].__get__
# the recorder's substitutes for built-in containers (a traced object's dict, set or
# list whose key accesses are recorded) -> the built-in they stand for: copied, shown
# and pickled as that built-in
_AS_BUILTIN: dict[type, type] = {}


def register_builtin(substitute: type, builtin: type) -> None:
    """Copy and show instances of `substitute` as the built-in container `builtin`."""
    _AS_BUILTIN[substitute] = builtin


_args_of = BaseException.__dict__["args"].__get__
_obj_dict = object.__getattribute__
_HEAPTYPE = 1 << 9
# what a class may define, anywhere in its MRO but object, and still be copied the way
# the interpreter's default reduction copies it, without any of its code running
_CUSTOM = frozenset(
    {
        "__reduce_ex__",
        "__reduce__",
        "__getstate__",
        "__setstate__",
        "__copy__",
        "__deepcopy__",
        "__getnewargs__",
        "__getnewargs_ex__",
        "__slots__",
        "__getattribute__",
        "__class__",
        "__del__",
    }
)


def kept_as_is(v: Any) -> bool:
    """An atomic value a buffer may keep by reference: not text longer than
    MAX_ATOMIC_STR, which would pin a huge string for as long as the trace lives."""
    t = type(v)
    return t in ATOMIC and (t not in TEXT or len(v) <= MAX_ATOMIC_STR)


def kept_tuple(v: Any) -> bool:
    """A tuple a buffer may keep by reference: at most 4 items, each `kept_as_is`
    (a message, an argument; formatted only when the frames are built)."""
    return type(v) is tuple and len(v) <= 4 and all(kept_as_is(x) for x in v)


class Identities:
    """A number per object of a type, the same for the same object while it lives:
    `<Barrier #1>`, `<Barrier #2>`. Weak references forget an object when it dies (so
    a reused id is a new object); objects that cannot be weakly referenced are known
    by id alone, at most MAX_BY_ID of them (then they are forgotten and numbered anew)."""

    MAX_BY_ID = 1 << 16

    def __init__(self):
        self._known: dict[int, tuple[Any, int]] = {}
        self._counters: dict[type, Any] = {}
        self._by_id = 0

    def number(self, v: Any) -> int:
        k = id(v)
        hit = self._known.get(k)
        if hit is not None and (hit[0] is None or hit[0]() is v):
            return hit[1]
        t = type(v)
        counter = self._counters.get(t)
        if counter is None:
            counter = self._counters.setdefault(t, itertools.count(1))
        n = next(counter)
        try:
            ref = weakref.ref(v, lambda _r, k=k, known=self._known: known.pop(k, None))
        except TypeError:
            ref = None
            self._by_id += 1
            if self._by_id > self.MAX_BY_ID:
                self._forget_by_id()
        self._known[k] = (ref, n)
        return n

    def _forget_by_id(self) -> None:
        for k, (ref, _) in list(self._known.items()):
            if ref is None:
                self._known.pop(k, None)
        self._by_id = 0

    def label(self, v: Any) -> str:
        return f"<{_type_name(type(v))} #{self.number(v)}>"


_plain_cache: dict[type, bool] = {}


def is_plain(t: type) -> bool:
    """Instances of t are copied by the interpreter's default reduction and nothing
    of t's own runs in doing so: Python classes (metaclass `type`) all the way up to
    object, a plain __dict__, none of the hooks in _CUSTOM."""
    hit = _plain_cache.get(t)
    if hit is None:
        hit = _plain_cache[t] = _plain(t)
    return hit


def _plain(t: type) -> bool:
    if type(t) is not type or not t.__flags__ & _HEAPTYPE:
        return False
    mro = type.__dict__["__mro__"].__get__(t)
    has_dict = False
    for klass in mro[:-1]:
        if type(klass) is not type or not klass.__flags__ & _HEAPTYPE:
            return False
        d = type.__dict__["__dict__"].__get__(klass)
        if not _CUSTOM.isdisjoint(d):
            return False
        slot = d.get("__dict__")
        if slot is not None:
            if type(slot) is not types.GetSetDescriptorType:
                return False
            has_dict = True
    return has_dict and mro[-1] is object


class Plain:
    """The structural copy of an instance of a `is_plain` class: its class and a copy
    of its __dict__. Unpickled (by `get_state_at`) it is an instance of that class
    again, made as the default reduction makes it, without calling __init__."""

    __slots__ = ("cls", "state", "n")

    def __init__(self, cls: type, state: dict, n: int):
        self.cls, self.state, self.n = cls, state, n

    def __reduce__(self):
        return _rebuild, (self.cls, self.state)

    def __eq__(self, other) -> bool:
        return type(other) is Plain and other.cls is self.cls and other.state == self.state

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<{_type_name(self.cls)} #{self.n}>"


def _rebuild(cls: type, state: dict) -> Any:
    obj = object.__new__(cls)
    _obj_dict(obj, "__dict__").update(state)
    return obj


class Unpicklable:
    """Stands in for a value that was not copied (an object of its own kind, a value
    whose copy does not pickle or does not load back): its type name and text."""

    __slots__ = ("text", "type_name")

    def __init__(self, value: Any, fmt: Formatter | None = None):
        self.type_name = _type_name(type(value))
        self.text = (fmt or SAFE).repr(value)

    @classmethod
    def from_text(cls, text: str, type_name: str = "value") -> Unpicklable:
        """The stand-in for a value of which only the recorded text is left."""
        self = cls.__new__(cls)
        self.type_name, self.text = type_name, text
        return self

    def __reduce__(self):
        return Unpicklable.from_text, (self.text, self.type_name)

    def __repr__(self) -> str:
        return self.text

    def __eq__(self, other) -> bool:
        return isinstance(other, Unpicklable) and (self.type_name, self.text) == (
            other.type_name,
            other.text,
        )

    def __hash__(self) -> int:
        return hash((self.type_name, self.text))


def copy_value(value: Any, fmt: Formatter | None = None) -> Any:
    """A structural copy of `value` made of atomic values, built-in containers, `Plain`
    copies and `Unpicklable` stand-ins (for everything else, for cycles through a
    tuple, and past MAX_COPY_DEPTH / MAX_COPY_ITEMS). Shared references and cycles
    through lists, dicts and Plain copies are kept. `fmt` numbers the objects."""
    return _Copier(fmt or SAFE).copy(value, MAX_COPY_DEPTH)


class _Copier:
    def __init__(self, fmt: Formatter):
        self.fmt = fmt
        self.memo: dict[int, Any] = {}
        self.left = MAX_COPY_ITEMS

    def copy(self, v: Any, depth: int) -> Any:
        t = type(v)
        if t in ATOMIC:
            return v
        t = _AS_BUILTIN.get(t, t)
        self.left -= 1
        hit = self.memo.get(id(v))
        if hit is not None:
            return hit
        if depth <= 0 or self.left <= 0:
            return Unpicklable(v, self.fmt)
        if t is list:
            out: Any = []
            self.memo[id(v)] = out
            out.extend([self.copy(x, depth - 1) for x in list.copy(v)])
            return out
        if t is dict:
            out = {}
            self.memo[id(v)] = out
            for k, x in list(dict.items(v)):
                out[self.key(k, depth - 1)] = self.copy(x, depth - 1)
            return out
        if t is tuple:
            self.memo[id(v)] = Unpicklable(v, self.fmt)  # a cycle back into a tuple being copied
            out = tuple([self.copy(x, depth - 1) for x in v])
            self.memo[id(v)] = out
            return out
        if t is set or t is frozenset:
            return t([self.key(x, depth - 1) for x in list(v)])
        if is_plain(t):
            out = Plain(t, {}, self.fmt.ids.number(v))
            self.memo[id(v)] = out
            d = _obj_dict(v, "__dict__")
            for k, x in list(dict.items(d)):
                out.state[k] = self.copy(x, depth - 1)
            return out
        return Unpicklable(v, self.fmt)

    def key(self, k: Any, depth: int) -> Any:
        """A dict key or set element: hashable copies only (a Plain copy is not)."""
        t = type(k)
        if t in ATOMIC:
            return k
        if t is tuple or t is frozenset:
            c = self.copy(k, depth)
            if _hashable(c):
                return c
        return Unpicklable(k, self.fmt)


def _hashable(c: Any) -> bool:
    t = type(c)
    if t in ATOMIC or t is Unpicklable:
        return True
    if t is tuple or t is frozenset:
        return all(_hashable(x) for x in c)
    return False


def clone(c: Any, memo: dict[int, Any] | None = None) -> Any:
    """A new copy of the lists and dicts of a `copy_value` result (its tuples, sets,
    Plain copies and stand-ins are shared: nothing changes them)."""
    t = type(c)
    if t is not list and t is not dict:
        return c
    memo = {} if memo is None else memo
    hit = memo.get(id(c))
    if hit is not None:
        return hit
    if t is list:
        out: Any = []
        memo[id(c)] = out
        out.extend([clone(x, memo) for x in c])
        return out
    out = {}
    memo[id(c)] = out
    for k, x in c.items():
        out[k] = clone(x, memo)
    return out


_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def name_tokens(name: str) -> tuple[str, ...]:
    """The words of a name, lower-cased: split on `_`, `-`, `.` and camelCase
    (`authToken` -> auth, token; `APIKey` -> api, key; `X.Secret` -> x, secret)."""
    return tuple(w.lower() for w in _WORD.findall(name))


class Redactor:
    """Decides which names are sensitive: a name is when its words (`name_tokens`)
    contain one of the given names' words in a row. Whole words only, so
    `db_password`, `authToken`, `api-key` are sensitive and `sessions`, `keyboard`,
    `monkey` are not."""

    def __init__(self, names: Iterable[str]):
        self.words = tuple(sorted({name_tokens(n) for n in names if n} - {()}))
        self._cache: dict[str, bool] = {}

    def __call__(self, name: object) -> bool:
        if not self.words or type(name) is not str:
            return False
        hit = self._cache.get(name)
        if hit is None:
            hit = self._cache[name] = self._match(name_tokens(name))
        return hit

    def _match(self, tokens: tuple[str, ...]) -> bool:
        for w in self.words:
            n = len(w)
            for i in range(len(tokens) - n + 1):
                if tokens[i : i + n] == w:
                    return True
        return False


REDACTED = "<redacted>"


class Formatter:
    """Bounded, never-raising text of a value with redaction of sensitive keys; runs
    no code of the program (see the module docstring).

    `repr_objects=True` keeps objects that are neither atomic nor built-in containers
    by reference at capture and formats them later with their own `repr()`: off the
    traced thread, at most `REPR_BUDGET_S` each; a repr that raises, is too slow or
    returns no str counts in `errors` and shows as `<Type #n>`. The text reflects the
    object's state when it is formatted, not when it was recorded, and the object is
    kept alive until then."""

    def __init__(
        self,
        max_len: int = 200,
        max_depth: int = 3,
        redact: Iterable[str] = (),
        repr_objects: bool = False,
        fault=None,
        own_thread=None,
    ):
        self.max_len = max_len
        self.max_depth = max_depth
        self.is_secret = Redactor(redact)
        self.max_items = 10
        self.repr_objects = repr_objects
        self.fault = fault  # fault(where, exc): how a failed own repr is counted
        self.own_thread = own_thread  # own_thread(target, name): a thread that is not recorded
        self.ids = Identities()  # the numbers in `<Type #n>`, one series per recording
        self._slow: set[type] = set()  # types whose own repr took longer than REPR_BUDGET_S

    # -- public ------------------------------------------------------------
    def repr(self, value: Any) -> str:
        return self._cut(self._repr(value, self.max_depth, set()))

    def capture(self, value: Any) -> Any:
        """What a buffer keeps for a value: the value itself when atomic, else its text now
        (or, with repr_objects, the object itself to be formatted later)."""
        t = type(value)
        if t in ATOMIC:
            if (t is str or t is bytes) and len(value) > MAX_ATOMIC_STR:
                return value[:MAX_ATOMIC_STR]
            return value
        if kept_tuple(value):
            return value
        if (
            self.repr_objects
            and _AS_BUILTIN.get(t, t) not in CONTAINERS
            and not issubclass(t, BaseException)
        ):
            return Formatted.later(self, value)
        return Formatted(self.repr(value))

    def show(self, captured: Any) -> str:
        """Format what `capture` kept, now: on the thread of the event, so an object kept
        for its own repr (repr_objects) is shown as `<Type #n>` here; only values the
        buffers keep until decoding (call arguments and results) get their own repr."""
        if type(captured) is Formatted:
            return captured.now()
        return self.repr(captured)

    def own_repr(self, value: Any) -> str:
        """value's own repr(), run on a thread of its own and waited for at most
        REPR_BUDGET_S; `<Type #n>` when it raises, is slow or returns no str. A type
        whose repr was too slow once is not asked again (a query over many of its values
        would wait the budget for each)."""
        label = self.ids.label(value)
        if type(value) in self._slow:
            self._failed(
                TimeoutError(f"repr of {label} skipped: its type's repr was too slow before")
            )
            return label
        out: list = []

        def run():
            try:
                out.append(repr(value))
            except BaseException as e:  # a hostile __repr__ must not escape
                out.append(e)

        if self.own_thread is not None:
            th = self.own_thread(run, "repr")
        else:
            th = threading.Thread(target=run, name="scope_nb-repr", daemon=True)
        th.start()
        th.join(REPR_BUDGET_S)
        if not out:
            self._slow.add(type(value))
            self._failed(TimeoutError(f"repr of {label} took longer than {REPR_BUDGET_S}s"))
            return label
        text = out[0]
        if type(text) is not str:
            self._failed(
                text if isinstance(text, BaseException) else TypeError(f"repr of {label} is no str")
            )
            return label
        return self._cut(text)

    def _failed(self, e: BaseException) -> None:
        if self.fault is not None:
            self.fault("repr_objects", e)

    # -- internals ---------------------------------------------------------
    def _cut(self, text: str) -> str:
        if len(text) > self.max_len:
            return text[: self.max_len - 3] + "..."
        return text

    def _repr(self, v: Any, depth: int, seen: set[int]) -> str:
        t = type(v)
        if t in ATOMIC:
            try:
                if t is str or t is bytes:
                    return repr(v[: self.max_len]) + ("..." if len(v) > self.max_len else "")
                return repr(v)
            except ValueError:  # an int too long for str()
                return f"<int of {v.bit_length()} bits>"
        if t is Unpicklable or t is Plain:
            return repr(v)
        t = _AS_BUILTIN.get(t, t)
        if t in CONTAINERS:
            if depth <= 0:
                return f"<{t.__name__} ...>"
            if id(v) in seen:
                return f"<recursive {t.__name__}>"
            return self._container(v, t, depth, seen | {id(v)})
        if issubclass(t, BaseException) and depth > 0:
            return self._exception(v, depth, seen)
        return self.ids.label(v)

    def _exception(self, e: BaseException, depth: int, seen: set[int]) -> str:
        """What BaseException.__repr__ writes, `Name(arg, ...)`, from the args tuple."""
        args = _args_of(e)
        body = self._repr(args, depth, seen)[1:-1] if type(args) is tuple else ""
        return f"{_type_name(type(e))}({body.rstrip(',')})"

    def _container(self, v, t, depth, seen) -> str:
        items = []
        budget = self.max_len
        if t is dict:
            for k, x in itertools.islice(dict.items(v), self.max_items):
                shown = REDACTED if self.is_secret(k) else self._repr(x, depth - 1, seen)
                items.append(f"{self._repr(k, depth - 1, seen)}: {shown}")
                budget -= len(items[-1])
                if budget < 0:
                    break
            more = len(v) - len(items)
            return "{" + ", ".join(items) + (f", ...+{more}" if more > 0 else "") + "}"
        for x in itertools.islice(iter(v), self.max_items):  # exact built-in types: C iterators
            items.append(self._repr(x, depth - 1, seen))
            budget -= len(items[-1])
            if budget < 0:
                break
        more = len(v) - len(items)
        body = ", ".join(items) + (f", ...+{more}" if more > 0 else "")
        if t is list:
            return "[" + body + "]"
        if t is tuple:
            return "(" + body + ("," if len(v) == 1 else "") + ")"
        if not v:
            return f"{t.__name__}()"
        return "{" + body + "}" if t is set else "frozenset({" + body + "})"


SAFE = Formatter()


class Formatted:
    """Text made at capture time (distinguishes it from a captured str value), or, with
    repr_objects, an object whose own repr is taken the first time `text` is read."""

    __slots__ = ("text", "_later")

    def __init__(self, text: str):
        self.text = text

    @classmethod
    def later(cls, fmt: Formatter, value: Any) -> Formatted:
        self = cls.__new__(cls)
        self._later = (fmt, value)
        return self

    def __getattr__(self, name: str) -> str:  # only reached while `text` is unset
        if name != "text":
            raise AttributeError(name)
        fmt, value = object.__getattribute__(self, "_later")
        self.text = fmt.own_repr(value)
        del self._later  # the object is no longer kept alive
        return self.text

    def now(self) -> str:
        """The text if it is made, else the type and number of the kept object (never
        its own repr)."""
        try:
            return object.__getattribute__(self, "text")
        except AttributeError:
            fmt, value = object.__getattribute__(self, "_later")
            return fmt.repr(value)

    def __repr__(self) -> str:
        return self.text

    def __reduce__(self):
        return Formatted, (self.text,)
