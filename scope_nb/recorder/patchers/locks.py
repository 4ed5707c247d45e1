"""Traced locks: wait / acquire / release events, the locks each actor holds, and
live lock-order (lockdep) detection.

Only locks created by user code after `start()` are traced: the factories
(`threading.Lock`, `threading.RLock`) and the constructors of the Python lock
classes (`Condition`, `Semaphore`, `BoundedSemaphore`, `Event` and their asyncio
namesakes, `asyncio.Lock`) look at the creating frame, so the stdlib's own locks (a queue's
mutex, a Condition's inner lock) stay untouched originals and cost nothing.

`threading.Lock`/`RLock` objects are C types whose methods cannot be patched, so a
traced one is a wrapper that delegates to a real lock. Its hot methods (acquire,
release, `with`) are C (`_fasthooks.LockCore`, record/_fastlocks.c) when the
extension is built: whatever runs while a lock is held delays every thread waiting
for it. The Python methods below (`_PyLockMethods`) are the reference, used without
the extension, when sampling, and with SCOPE_NB_PURE. The Python classes are
patched at class level (method by method) and trace only registered instances,
which keeps `isinstance`, `type()` and subclassing exactly as they were.
"""

from __future__ import annotations

import asyncio
import asyncio.locks
import dis
import itertools
import sys
import threading
import weakref
from collections import deque
from typing import Any

from ...clock import perf_ns
from ...schema import KIND_CODE, TRY_ACQUIRE
from .. import session
from ..buffer import KIND_BITS, RICH, ThreadBuffer, fast_module
from ..patching import original, patch, unpatch
from ..sites import is_recorder_module, location_text

_SKIP_FILES = frozenset({__file__, threading.__file__, asyncio.locks.__file__})
_STORE_OPS = frozenset({"STORE_NAME", "STORE_FAST", "STORE_GLOBAL", "STORE_DEREF"})
_LOAD_OPS = frozenset({"LOAD_NAME", "LOAD_FAST", "LOAD_GLOBAL", "LOAD_DEREF", "LOAD_FAST_CHECK"})
_PUSH_OPS = _LOAD_OPS | {"LOAD_CONST", "PUSH_NULL", "LOAD_FAST_LOAD_FAST"}  # push, pop nothing
_JUMPS = frozenset(dis.hasjrel) | frozenset(dis.hasjabs)
_ENDS = ("RETURN", "RAISE", "YIELD", "RERAISE")
_TIMEOUT_MAX = threading.TIMEOUT_MAX
_getframe = sys._getframe
_push = session.push


def held_locks(rec, actor: str | None = None) -> tuple[str, ...]:
    """The names of the locks `actor` (default: the running actor) holds now, in the
    order it took them. Other recorder modules use this to fill `locks_held`."""
    st = rec.parts.locks
    if st is None:
        return ()
    if actor is None:
        actor = rec.current_actor()
    held = st.held.get(actor)
    return tuple(held) if held else ()


def where(f=None):
    """Where the lock is used: the first frame outside the lock machinery (this module,
    threading, asyncio.locks), from `f` (default: the caller) outwards, as a raw
    (code, lasti) pair that becomes "file:line" when frames are built
    (`sites.location_text`)."""
    if f is None:
        f = _getframe(1)
    while f is not None and f.f_code.co_filename in _SKIP_FILES:
        f = f.f_back
    return (f.f_code, f.f_lasti) if f is not None else None


def _code(kind: str, kinds) -> int:
    """The buffer code of a lock event kind, 0 when the tracing level leaves it out."""
    return RICH | (KIND_CODE[kind] << KIND_BITS) if kind in kinds else 0


_KIND_OF = {RICH | (KIND_CODE[k] << KIND_BITS): k for k in ("lock_wait", "lock_acquire", "lock_release", "lock_timeout")}


def var_name(frame, cache: dict) -> str | None:
    """The name the value being built by the call running in `frame` is stored into
    (`x = ...`, `self.x = ...` -> "Class.x", and each target of `a, b = A(), B()`),
    read from the bytecode; None if not a plain store. `cache` maps (code, offset) to
    the answer."""
    key = (frame.f_code, frame.f_lasti)
    if key in cache:
        name = cache[key]
    else:
        ins = list(dis.get_instructions(frame.f_code))
        at = next((i for i, x in enumerate(ins) if x.offset == frame.f_lasti), None)
        name = None if at is None else _stored_into(ins, at + 1)
        cache[key] = name
    if name and name.startswith("self."):
        owner = frame.f_locals.get("self")
        if owner is not None:
            name = f"{type(owner).__name__}.{name[5:]}"
    return name


def _stored_into(ins: list, i: int) -> str | None:
    """Where the value on top of the stack before `ins[i]` is stored: by the next store,
    or, when it is one item of a tuple / list display being unpacked, by its target.
    `pos` follows its place from the top of the stack while the later items are built
    on top of it and the targets are stored (the compiler may swap or reverse them);
    None as soon as something else could use it."""
    pos = 0
    while i < len(ins):
        x = ins[i]
        op, arg = x.opname, x.arg
        if op in _STORE_OPS:
            if pos == 0:
                return x.argval
            pos -= 1
        elif op == "STORE_FAST_STORE_FAST":  # 3.13: two stores in one
            if pos < 2:
                return x.argval[pos]
            pos -= 2
        elif op == "STORE_ATTR":
            if pos < 2:
                prev = ins[i - 1]
                return f"{prev.argval}.{x.argval}" if pos == 1 and prev.opname in _LOAD_OPS else None
            pos -= 2
        elif op == "SWAP":
            pos = arg - 1 if pos == 0 else 0 if pos == arg - 1 else pos
        elif (op in ("BUILD_TUPLE", "BUILD_LIST") and pos < arg and i + 1 < len(ins)
              and ins[i + 1].opname == "UNPACK_SEQUENCE" and ins[i + 1].arg == arg):
            pos = arg - 1 - pos
            i += 1
        elif x.opcode in _JUMPS or op.startswith(_ENDS) or (pos == 0 and op not in _PUSH_OPS):
            return None
        else:  # a later item being built: it must leave the value where it was
            pos += dis.stack_effect(x.opcode, arg if x.opcode >= dis.HAVE_ARGUMENT else None)
            if pos < 1:
                return None
        i += 1
    return None


def _creator(frame, obj):
    """The frame that asked for `obj`: up through the `__init__` chain of obj itself
    (a subclass calling super().__init__), but not further, so that a lock the stdlib
    makes for its own use (Thread's Event, Barrier's Condition) is not the user's."""
    while frame is not None and frame.f_code.co_name == "__init__" and frame.f_locals.get("self") is obj:
        frame = frame.f_back
    return frame


class LockState:
    """Per-recording bookkeeping: who holds what, names, the lock-order graph."""

    def __init__(self, rec):
        self.rec = rec
        self.held: dict[str, list[str]] = {}  # actor -> lock names, in acquisition order
        self.owners: dict[str, list[str]] = {}  # lock name -> actors holding it
        # locations are raw (code, lasti) pairs (see where())
        # (actor, lock) -> where it was taken (a C core keeps that itself: `_taken`)
        self.taken_at: dict[tuple[str, str], tuple | None] = {}
        self.cores: dict[str, weakref.ref] = {}  # lock name -> its C core, when it has one
        self.initial: dict[str, str] = {}  # semaphore name -> its initial value (its acquires' detail)
        self.edges: dict[tuple[str, str], tuple[str, tuple | None, tuple | None]] = {}  # a->b: actor, a at, b at
        self.succ: dict[str, set[str]] = {}
        self.reported: set[frozenset[str]] = set()
        self.registry: dict[int, tuple[weakref.ref, str]] = {}  # patched-class instances
        self._names: dict[str, int] = {}
        self._given: set[str] = set()  # every name given out
        self.auto: set[str] = set()  # the names not given by the program (a variable's, "Lock-3")
        self.used: set[str] = set()  # names recorded by the Python paths (a C core's caches say its own)
        self.wrapped: dict[int, weakref.ref] = {}  # id(lock) -> its wrapper, made by trace_lock
        self._counters: dict[str, itertools.count] = {}
        self._name_cache: dict[tuple[Any, int], str | None] = {}
        self.local = rec.local
        self.store = rec.store
        kinds = rec.kinds
        self.k_wait = _code("lock_wait", kinds)
        self.k_acquire = _code("lock_acquire", kinds)
        self.k_release = _code("lock_release", kinds)
        self.k_timeout = _code("lock_timeout", kinds)
        self.hub = self._hub(rec)

    def _hub(self, rec):
        """The C side of this bookkeeping (record/_fastlocks.c), or None: not built,
        SCOPE_NB_PURE, or sampling (which the Python push does)."""
        hub = getattr(rec.store.fast, "LockHub", None)
        if hub is None or _Core is _PyCore or rec.store.sample_rate < 1.0:
            return None
        hub = hub(
            local=self.local, new_buffer=rec.buffer, buffer_type=ThreadBuffer,
            current_actor=rec.current_actor, fault=rec.fault, skip_files=_SKIP_FILES, held=self.held,
            taken_at=self.taken_at, order=self._order, k_acquire=self.k_acquire,
            k_release=self.k_release, chunk=rec.store.chunk_size, timeout_max=_TIMEOUT_MAX, tried=TRY_ACQUIRE,
        )
        rec.switches.append(hub)  # its `running` follows the recorder's
        return hub

    def wrap(self, lock, name: str, reentrant: bool):
        """A traced Lock (or RLock, `reentrant`) delegating to the real `lock`."""
        if self.hub is None:
            return (PyTracedRLock if reentrant else PyTracedLock)(lock, name, self, None, reentrant)
        # the core and the Python paths share the lock's list of owners
        core = (TracedRLock if reentrant else TracedLock)(lock, name, self, self.hub, reentrant,
                                                         self.owners.setdefault(name, []))
        self.cores[name] = weakref.ref(core)
        return core

    # -- naming -------------------------------------------------------------------
    def name_for(self, frame, kind: str, given: str | None = None) -> str:
        """The variable the new lock is stored into, if the bytecode says so cheaply;
        else "<Kind>-<n>". Names are made unique within the recording."""
        base = given
        if base is None and frame is not None:
            try:
                base = self._var_name(frame)
            except Exception as e:
                self.rec.fault("locks:name", e)
        if base is None:
            counter = self._counters.setdefault(kind, itertools.count(1))
            name = f"{kind}-{next(counter)}"
            while name in self._given:
                name = f"{kind}-{next(counter)}"
        else:
            n = self._names.get(base, 0) + 1
            name = base if n == 1 else f"{base}-{n}"
            while name in self._given:  # a given "x-2" may be what a second "x" was named
                n += 1
                name = f"{base}-{n}"
            self._names[base] = n
        # two locks under one name would share owners and merge in the lock graph
        self._given.add(name)
        if given is None:
            self.auto.add(name)
        return name

    def adopt(self, value, name: str) -> None:
        """`value`, an attribute of an object being traced, is named after it
        (`alice.lock`, not `Account.lock-2`) when it is a lock (or a Condition) the
        program made, named automatically, and nothing was recorded under that name
        yet: afterwards its old name would split its history."""
        try:
            if isinstance(value, threading.Condition | asyncio.Condition):
                value = value._lock
            if isinstance(value, _Traced):
                old = value.name
            else:
                old = self.lookup(value)
            if old is None or old not in self.auto or old in self.used or name in self._given:
                return
            if isinstance(value, _Traced):
                if hasattr(type(value), "_rename"):
                    if not value._rename(name):  # the C core recorded events under the old name
                        return
                else:
                    value.name = name
                for table in (self.owners, self.cores):
                    if old in table:
                        table[name] = table.pop(old)
            else:
                self.registry[id(value)] = (self.registry[id(value)][0], name)
                if old in self.initial:
                    self.initial[name] = self.initial.pop(old)
            self.auto.discard(old)
            self._given.add(name)
        except Exception as e:
            self.rec.fault("locks:adopt", e)

    def _var_name(self, frame) -> str | None:
        return var_name(frame, self._name_cache)

    # -- registry of patched-class instances ----------------------------------------
    def register(self, obj, name: str) -> None:
        key = id(obj)
        reg = self.registry

        def gone(ref, key=key):
            if reg.get(key, (None,))[0] is ref:
                reg.pop(key, None)

        reg[key] = (weakref.ref(obj, gone), name)

    def lookup(self, obj) -> str | None:
        e = self.registry.get(id(obj))
        if e is not None and e[0]() is obj and self.rec.running:
            return e[1]
        return None

    def user_frame(self, frame) -> bool:
        return frame is not None and self.rec.running and self.rec.is_user_code(frame.f_code)

    # -- events -------------------------------------------------------------------
    # Lock events go straight into the thread's buffer (session.push) with their
    # fields final: the actor is the buffer's own unless an event loop runs in the
    # thread, the location a raw (code, lasti) pair.
    def actor(self):
        """(this thread's buffer, the running actor)."""
        try:
            b = self.local.b
        except AttributeError:
            b = self.rec.buffer()
        return b, (self.rec.current_actor(b) if b.loopy else b.actor)

    def held_now(self, actor: str) -> tuple[str, ...]:
        h = self.held.get(actor)
        return tuple(h) if h else ()

    def context(self, f):
        """(buffer, actor, location, locks held) for an acquire called from frame `f`."""
        b, actor = self.actor()
        h = self.held.get(actor)
        return b, actor, where(f), tuple(h) if h else ()

    def _event(self, b, code: int, name: str, actor: str, waited, loc, held, detail=None) -> None:
        try:
            _push(self.store, b, code, (actor, name, detail, None, None, loc, waited, None, None, held, None), perf_ns())
        except Exception as e:
            self.rec.fault(f"emit:{_KIND_OF[code]}", e)

    def waiting(self, b, name: str, actor: str, loc, before: tuple[str, ...]) -> None:
        self.used.add(name)
        if self.k_wait:
            self._event(b, self.k_wait, name, actor, None, loc, before)

    def timed_out(self, b, name: str, actor: str, waited: int, loc, before: tuple[str, ...]) -> None:
        self.used.add(name)
        if self.k_timeout:
            self._event(b, self.k_timeout, name, actor, waited, loc, before)

    def took_at(self, name: str, f, detail=None, tried: bool = False) -> None:
        """A lock taken at once by the code running in frame `f` (or its callers);
        `tried`: by a non-blocking acquire, which orders no locks. The hottest path of
        all: `took` and `session.push` written out."""
        self.used.add(name)
        try:
            try:
                b = self.local.b
            except AttributeError:
                b = self.rec.buffer()
            actor = self.rec.current_actor(b) if b.loopy else b.actor
            while f is not None and f.f_code.co_filename in _SKIP_FILES:
                f = f.f_back
            loc = (f.f_code, f.f_lasti) if f is not None else None
            held = self.held.get(actor)
            if held is None:
                held = self.held[actor] = []
            before = tuple(held)
            if self.k_acquire:
                ev = (actor, name, detail, None, None, loc, 0, None, TRY_ACQUIRE if tried else None, before, None)
                _push(self.store, b, self.k_acquire, ev, perf_ns())
            owners = self.owners.get(name)
            if owners is None:
                self.owners[name] = [actor]
            else:
                owners.append(actor)
            held.append(name)
            self.taken_at[(actor, name)] = loc
            if before and not tried:
                self._order(before, name, actor, loc)
        except Exception as e:
            self.rec.fault("locks:took", e)

    def took(self, b, name: str, actor: str, waited: int, loc, before: tuple[str, ...], detail=None) -> None:
        self.used.add(name)
        if self.k_acquire:
            self._event(b, self.k_acquire, name, actor, waited, loc, before, detail)
        try:
            owners = self.owners.get(name)
            if owners is None:
                self.owners[name] = [actor]
            else:
                owners.append(actor)
            held = self.held.get(actor)
            if held is None:
                self.held[actor] = [name]
            else:
                held.append(name)
            self.taken_at[(actor, name)] = loc
            if before:
                self._order(before, name, actor, loc)
        except Exception as e:
            self.rec.fault("locks:took", e)

    def dropping(self, name: str, f, signal: bool = False):
        """Called just before a lock is really released, from frame `f` (the location is
        the first frame outside the lock machinery from there), so the release event
        comes before the next owner's acquire. Returns what `dropped` must do once the
        lock is released (or None): the bookkeeping waits until then, so that the
        traced lock is not held longer than needed. A semaphore (`signal`) may be
        released by anyone, holder or not: that release lets a waiter through, so it is
        recorded even when nobody holds it (its locks held then do not name it)."""
        self.used.add(name)
        try:
            owners = self.owners.get(name)
            if not owners and not signal:
                return  # taken before it was traced
            try:
                b = self.local.b
            except AttributeError:
                b = self.rec.buffer()
            actor = self.rec.current_actor(b) if b.loopy else b.actor
            held = self.held.get(actor)
            if self.k_release:
                while f is not None and f.f_code.co_filename in _SKIP_FILES:
                    f = f.f_back
                ev = (actor, name, None, None, None, (f.f_code, f.f_lasti) if f is not None else None, None, None,
                      None, tuple(held) if held else (), None)
                _push(self.store, b, self.k_release, ev, perf_ns())
            if not owners:
                return None
            if actor in owners:
                return name, owners, actor, held
            return name, owners, owners[0], self.held.get(owners[0])
        except Exception as e:
            self.rec.fault("locks:release", e)
        return None

    def dropped(self, left) -> None:
        """The bookkeeping of a release (`left`: what `dropping` returned)."""
        if left is None:
            return
        try:
            name, owners, owner, held = left
            owners.remove(owner)
            if held:
                if held[-1] == name:
                    held.pop()
                elif name in held:
                    # the most recent acquisition is the one released
                    del held[len(held) - 1 - held[::-1].index(name)]
            self.taken_at.pop((owner, name), None)
        except Exception as e:
            self.rec.fault("locks:release", e)

    def _taken(self, actor: str, name: str):
        """Where `actor` took lock `name`, which it holds."""
        at = self.taken_at.get((actor, name))
        if at is None and name in self.cores:
            core = self.cores[name]()
            if core is not None and actor in core._owners:
                at = core._taken
        return at

    # -- lockdep ------------------------------------------------------------------
    def _order(self, before: tuple[str, ...], name: str, actor: str, loc) -> None:
        for a in before:
            if a == name or (a, name) in self.edges:
                continue
            self.edges[(a, name)] = (actor, self._taken(actor, a), loc)
            self.succ.setdefault(a, set()).add(name)
            path = self._path(name, a)
            if path is not None:
                cycle = [a, *path]  # a -> name -> ... -> a
                key = frozenset(cycle)
                if key in self.reported:
                    continue
                self.reported.add(key)
                self.rec.emit("lock_order", f"{a} -> {name}", self._describe(cycle), actor=actor,
                              location=loc, locks_held=before, raw=True)

    def _path(self, src: str, dst: str) -> list[str] | None:
        """Nodes from src to dst in the order graph (breadth first), or None."""
        prev: dict[str, str | None] = {src: None}
        todo = deque([src])
        while todo:
            n = todo.popleft()
            if n == dst:
                out = []
                while n is not None:
                    out.append(n)
                    n = prev[n]
                return out[::-1]
            for m in self.succ.get(n, ()):
                if m not in prev:
                    prev[m] = n
                    todo.append(m)
        return None

    def _describe(self, cycle: list[str]) -> str:
        lines = [" -> ".join(cycle)]
        for a, b in zip(cycle, cycle[1:], strict=False):
            actor, a_at, b_at = self.edges.get((a, b), ("?", None, None))
            lines.append(f"{actor} took {b} at {location_text(b_at)} while holding {a} (taken at {location_text(a_at)})")
        return "\n".join(lines)


def _valid(blocking, timeout) -> bool:
    """Arguments the fast path may handle (timeout == -1 is checked first by the
    callers); anything else goes to the real lock untouched, so it raises exactly what
    the original raises."""
    return bool(blocking) and type(timeout) in (int, float) and 0 <= timeout <= _TIMEOUT_MAX


class _PyCore:
    """The layout of a traced lock when the C core (`_fasthooks.LockCore`) is not built;
    its methods are then the Python ones of `_PyLockMethods` / `_PyRLockMethods`."""

    __slots__ = ("_lock", "name", "_st", "_hub", "_depth", "_reentrant", "__weakref__")

    def __init__(self, lock, name: str, st: LockState, hub=None, reentrant: bool = False):
        self._lock = lock
        self.name = name
        self._st = st
        self._hub = hub
        self._depth = 0  # reentrant: acquisitions by the owner; only the owner changes it
        self._reentrant = reentrant


# an extension built from older sources has no LockCore: the Python methods then serve
_Core: Any = getattr(fast_module(), "LockCore", None) or _PyCore


class _Traced(_Core):
    """What traced Lock and RLock share: they delegate to a real lock. The hot methods
    (acquire, release, `with`) come from the C core when the recording has a LockHub,
    else from the Python mixins below: same events, same behaviour."""

    __slots__ = ()

    def _wait(self, timeout, f) -> bool:
        """The lock is taken by someone else: wait for it, recorded."""
        lock = self._lock
        st = self._st
        try:
            b, actor, loc, before = st.context(f)
        except Exception as e:
            st.rec.fault("locks:wait", e)
            ok = lock.acquire(True, timeout)
            if ok:
                self._got(None, None, 0, None, ())
            return ok
        st.waiting(b, self.name, actor, loc, before)
        t0 = perf_ns()
        ok = lock.acquire(True, timeout)
        waited = perf_ns() - t0
        if ok:
            self._got(b, actor, waited, loc, before)
        else:
            st.timed_out(b, self.name, actor, waited, loc, before)
        return ok

    def _at_fork_reinit(self):
        self._lock._at_fork_reinit()
        self._st.owners.get(self.name, []).clear()
        self._depth = 0

    def __getattr__(self, attr):
        if attr == "_lock":
            raise AttributeError(attr)
        return getattr(self._lock, attr)

    def __repr__(self):
        return repr(self._lock)

    def __reduce_ex__(self, protocol):
        return self._lock.__reduce_ex__(protocol)


class TracedLock(_Traced):
    """A `threading.Lock` that records what happens to it; behaves as the lock it wraps."""

    __slots__ = ()

    def _got(self, b, actor, waited, loc, before) -> None:
        if b is not None:
            self._st.took(b, self.name, actor, waited, loc, before)

    def locked(self):
        return self._lock.locked()

    def acquire_lock(self, blocking=True, timeout=-1):
        return self.acquire(blocking, timeout)

    def release_lock(self):
        return self.release()

    locked_lock = locked


class TracedRLock(_Traced):
    """A reentrant lock: only the outermost acquire / release are events."""

    __slots__ = ()

    def _got(self, b, actor, waited, loc, before) -> None:
        self._depth += 1
        if self._depth == 1 and b is not None:
            self._st.took(b, self.name, actor, waited, loc, before)

    def _is_owned(self):
        return self._lock._is_owned()

    def _release_save(self):
        lock = self._lock
        if self._st.rec.running and self._depth > 0 and lock._is_owned():
            self._depth = 0
            self._st.dropped(self._st.dropping(self.name, _getframe(1)))
        return lock._release_save()

    def _acquire_restore(self, state):
        st = self._st
        if not st.rec.running:
            return self._lock._acquire_restore(state)
        try:
            b, actor, loc, before = st.context(_getframe(1))
        except Exception as e:
            st.rec.fault("locks:wait", e)
            self._lock._acquire_restore(state)
            self._depth = state[0]
            return
        t0 = perf_ns()
        self._lock._acquire_restore(state)
        self._depth = state[0]
        st.took(b, self.name, actor, perf_ns() - t0, loc, before)


class _PyLockMethods:
    """TracedLock's hot methods in Python (no C core, sampling, SCOPE_NB_PURE)."""

    __slots__ = ()

    def acquire(self, blocking=True, timeout=-1):
        lock = self._lock
        st = self._st
        if not st.rec.running or (timeout != -1 and not _valid(blocking, timeout)):
            return lock.acquire(blocking, timeout)
        if lock.acquire(False):
            st.took_at(self.name, _getframe(1), tried=not blocking)
            return True
        if not blocking:
            return False
        return self._wait(timeout, _getframe(1))

    def release(self):
        if self._st.rec.running and self._lock.locked():
            left = self._st.dropping(self.name, _getframe(1))
            try:
                self._lock.release()
            finally:
                self._st.dropped(left)
        else:
            self._lock.release()

    def __exit__(self, *exc):
        self.release()  # its location skips this file: the `with` statement's line

    __enter__ = acquire  # `with lock:` returns what acquire() returns (True)


class _PyRLockMethods:
    """TracedRLock's hot methods in Python (no C core, sampling, SCOPE_NB_PURE)."""

    __slots__ = ()

    def acquire(self, blocking=True, timeout=-1):
        lock = self._lock
        st = self._st
        if not st.rec.running or (timeout != -1 and not _valid(blocking, timeout)):
            return lock.acquire(blocking, timeout)
        if lock.acquire(False):
            self._depth += 1
            if self._depth == 1:
                st.took_at(self.name, _getframe(1), tried=not blocking)
            return True
        if not blocking:
            return False
        return self._wait(timeout, _getframe(1))

    def release(self):
        lock = self._lock
        if self._st.rec.running and self._depth > 0 and lock._is_owned():
            self._depth -= 1
            if self._depth == 0:
                left = self._st.dropping(self.name, _getframe(1))
                try:
                    lock.release()
                finally:
                    self._st.dropped(left)
                return
        lock.release()

    def __exit__(self, *exc):
        self.release()  # its location skips this file: the `with` statement's line

    __enter__ = acquire


class PyTracedLock(_PyLockMethods, TracedLock):
    __slots__ = ()


class PyTracedRLock(_PyRLockMethods, TracedRLock):
    __slots__ = ()


def _refusal(real_type) -> str | None:
    """The TypeError text the interpreter gives for `real_type()`, or None when the
    interpreter's type can be called (`_thread.RLock`; `_thread.lock` from 3.13 on)."""
    try:
        real_type()
    except TypeError as e:
        return str(e)
    return None


def _disguise(traced: type, real_type: type) -> None:
    """Make a traced lock type answer where programs look at a lock's type as the
    interpreter's does: its module, name and qualified name (trio asserts that its
    lock's class lives in `_thread`), and `type(lock)()`: refused with the
    interpreter's TypeError where the interpreter refuses it, else a new real lock,
    as calling the interpreter's type gives. Instances made by the recorder (with their
    delegate and state) are built as usual."""
    refusal = _refusal(real_type)
    base_new = _Core.__new__

    def __new__(cls, *args, **kwargs):
        if len(args) >= 5 and type(args[2]) is LockState:
            return base_new(cls)
        if refusal is not None:
            raise TypeError(refusal)
        return real_type(*args, **kwargs)

    traced.__new__ = __new__
    traced.__module__ = real_type.__module__
    traced.__name__ = real_type.__name__
    traced.__qualname__ = real_type.__qualname__


def _disguise_all() -> None:
    lock_type, rlock_type = type(original(threading, "Lock")()), type(original(threading, "RLock")())
    for traced in (TracedLock, PyTracedLock):
        _disguise(traced, lock_type)
    for traced in (TracedRLock, PyTracedRLock):
        _disguise(traced, rlock_type)


_disguise_all()


class _Factory:
    """Stands in for `threading.Lock` / `threading.RLock` while recording: calls make a
    traced lock when user code calls; everything else is the original's."""

    def __init__(self, original, make, traced_type):
        self._original = original
        self._make = make
        self._traced = traced_type
        for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
            if hasattr(original, attr):
                setattr(self, attr, getattr(original, attr))

    def __call__(self, *args, **kwargs):
        return self._make(sys._getframe(1), args, kwargs)

    def __instancecheck__(self, obj):
        return isinstance(obj, self._original) or (isinstance(self._original, type) and isinstance(obj, self._traced))

    def __subclasscheck__(self, cls):
        return issubclass(cls, self._original)

    def __getattr__(self, attr):
        return getattr(self._original, attr)

    def __mro_entries__(self, bases):
        return (self._original,)  # subclassing fails (or not) as it does for the original

    def __or__(self, other):
        return self._original | other

    def __ror__(self, other):
        return other | self._original

    def __repr__(self):
        return repr(self._original)


def _lock_types():
    orig_lock = original(threading, "Lock")
    orig_rlock = original(threading, "RLock")
    return type(orig_lock()), type(orig_rlock()), orig_lock, orig_rlock


# -- install / uninstall -------------------------------------------------------------

_PATCHED: list[tuple[Any, str]] = []


def install(rec) -> None:
    st = LockState(rec)
    rec.parts.locks = st
    lock_type, rlock_type, orig_lock, orig_rlock = _lock_types()

    def make_lock(frame, args, kwargs):
        lock = orig_lock(*args, **kwargs)
        if st.user_frame(frame):
            return st.wrap(lock, st.name_for(frame, "Lock"), False)
        return lock

    def make_rlock(frame, args, kwargs):
        lock = orig_rlock(*args, **kwargs)
        if st.user_frame(frame):
            return st.wrap(lock, st.name_for(frame, "RLock"), True)
        return lock

    todo: list[tuple[Any, str, Any]] = [
        (threading, "Lock", _Factory(orig_lock, make_lock, TracedLock)),
        (threading, "RLock", _Factory(orig_rlock, make_rlock, TracedRLock)),
    ]
    todo += _condition_patches(st, orig_rlock)
    todo += _semaphore_patches(st)
    todo += _event_patches(st)
    todo += _asyncio_patches(st)
    for owner, attr, new in todo:
        patch(owner, attr, new)
        _PATCHED.append((owner, attr))


def uninstall(rec) -> None:
    while _PATCHED:
        owner, attr = _PATCHED.pop()
        unpatch(owner, attr)


def _registering_init(st: LockState, cls, kind: str):
    """A constructor that registers instances created by user code."""
    orig_init = cls.__init__

    def __init__(self, *args, **kwargs):
        orig_init(self, *args, **kwargs)
        if st.rec.running:
            frame = _creator(sys._getframe(1), self)
            if st.user_frame(frame):
                st.register(self, st.name_for(frame, kind))

    __init__.__wrapped__ = orig_init
    return __init__


def _condition_patches(st: LockState, orig_rlock):
    cls = threading.Condition
    orig_init = cls.__init__

    def __init__(self, lock=None):
        if lock is None and st.rec.running:
            frame = _creator(sys._getframe(1), self)
            if st.user_frame(frame):
                lock = st.wrap(orig_rlock(), st.name_for(frame, "Condition"), True)
        orig_init(self, lock)

    __init__.__wrapped__ = orig_init
    return [(cls, "__init__", __init__)]


def _semaphore_init(st: LockState, cls, kind: str):
    """A semaphore class's constructor that registers instances made by user code and
    keeps their initial value (their acquires' detail)."""
    init = _registering_init(st, cls, kind)

    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        name = st.lookup(self)
        if name is not None:
            st.initial[name] = str(self._value)

    __init__.__wrapped__ = init.__wrapped__
    return __init__


def _semaphore_patches(st: LockState):
    cls = threading.Semaphore
    orig_acquire = cls.acquire
    orig_release = cls.release
    orig_brelease = threading.BoundedSemaphore.release
    __init__ = _semaphore_init(st, cls, "Semaphore")

    def acquire(self, blocking=True, timeout=None):
        name = st.lookup(self)
        if name is None or (not blocking and timeout is not None):
            return orig_acquire(self, blocking, timeout)
        value = st.initial.get(name)
        if orig_acquire(self, False):
            st.took_at(name, _getframe(1), value, tried=not blocking)
            return True
        if not blocking:
            return False
        b, actor, loc, before = st.context(_getframe(1))
        st.waiting(b, name, actor, loc, before)
        t0 = perf_ns()
        ok = orig_acquire(self, True, timeout)
        if ok:
            st.took(b, name, actor, perf_ns() - t0, loc, before, value)
        else:
            st.timed_out(b, name, actor, perf_ns() - t0, loc, before)
        return ok

    def _drops(self, n):
        name = st.lookup(self)
        if name is not None and type(n) is int and n >= 1:
            f = _getframe(1)
            for _ in range(n):
                st.dropped(st.dropping(name, f, True))

    def release(self, n=1):
        _drops(self, n)
        return orig_release(self, n)

    def brelease(self, n=1):
        if type(n) is int and self._value + n <= self._initial_value:
            _drops(self, n)
        return orig_brelease(self, n)

    acquire.__wrapped__ = orig_acquire
    release.__wrapped__ = orig_release
    brelease.__wrapped__ = orig_brelease
    return [
        (cls, "__init__", __init__),
        (cls, "acquire", acquire),
        (cls, "__enter__", acquire),
        (cls, "release", release),
        (threading.BoundedSemaphore, "release", brelease),
    ]


def _event_patches(st: LockState):
    cls = threading.Event
    orig_set = cls.set
    orig_wait = cls.wait

    def set(self):  # noqa: A001 - the method's name
        name = st.lookup(self)
        if name is not None:
            st.rec.emit("event_set", name, location=where())
        return orig_set(self)

    def wait(self, timeout=None):
        name = st.lookup(self)
        if name is None:
            return orig_wait(self, timeout)
        t0 = perf_ns()
        r = orig_wait(self, timeout)
        st.rec.emit("event_wait", name, r, duration_ns=perf_ns() - t0, location=where())
        return r

    set.__wrapped__ = orig_set
    wait.__wrapped__ = orig_wait
    return [(cls, "__init__", _registering_init(st, cls, "Event")), (cls, "set", set), (cls, "wait", wait)]


def _async_acquire(st: LockState, orig_acquire, semaphore: bool):
    """asyncio.Lock / Semaphore.acquire, traced: a wait when it will wait (given up
    when the waiting task is cancelled), then the acquisition."""

    async def acquire(self):
        name = st.lookup(self)
        if name is None:
            return await orig_acquire(self)
        b, actor, loc, before = st.context(_getframe())
        waits = self.locked() if semaphore else self._locked or bool(self._waiters)
        if waits:
            st.waiting(b, name, actor, loc, before)
        t0 = perf_ns()
        try:
            r = await orig_acquire(self)
        except BaseException:
            if waits:
                st.timed_out(b, name, actor, perf_ns() - t0, loc, before)
            raise
        st.took(b, name, actor, perf_ns() - t0 if waits else 0, loc, before, st.initial.get(name) if semaphore else None)
        return r

    return acquire


def _asyncio_patches(st: LockState):
    lock_cls = asyncio.locks.Lock
    orig_acquire = lock_cls.acquire
    orig_release = lock_cls.release
    sem_cls = asyncio.locks.Semaphore
    orig_sem_acquire = sem_cls.acquire
    orig_sem_release = sem_cls.release
    ev_cls = asyncio.locks.Event
    orig_set = ev_cls.set
    orig_wait = ev_cls.wait
    cond_cls = asyncio.locks.Condition
    orig_cond_init = cond_cls.__init__
    acquire = _async_acquire(st, orig_acquire, False)
    sem_acquire = _async_acquire(st, orig_sem_acquire, True)
    sem_init = _semaphore_init(st, sem_cls, "AsyncSemaphore")

    def release(self):
        name = st.lookup(self)
        if name is not None and self._locked:
            st.dropped(st.dropping(name, _getframe(1)))
        return orig_release(self)

    def sem_release(self):
        # BoundedSemaphore.release raises before calling this when it would overflow
        name = st.lookup(self)
        if name is not None:
            st.dropped(st.dropping(name, _getframe(1), True))
        return orig_sem_release(self)

    def cond_init(self, lock=None):
        # its own lock is made inside asyncio: named after the Condition instead
        if lock is None and st.rec.running:
            frame = _creator(sys._getframe(1), self)
            if st.user_frame(frame):
                lock = asyncio.Lock()
                st.register(lock, st.name_for(frame, "AsyncCondition"))
        orig_cond_init(self, lock)

    def set(self):  # noqa: A001 - the method's name
        name = st.lookup(self)
        if name is not None:
            st.rec.emit("event_set", name, location=where())
        return orig_set(self)

    async def wait(self):
        name = st.lookup(self)
        if name is None:
            return await orig_wait(self)
        t0 = perf_ns()
        r = await orig_wait(self)
        st.rec.emit("event_wait", name, r, duration_ns=perf_ns() - t0, location=where())
        return r

    for f, o in ((acquire, orig_acquire), (release, orig_release), (set, orig_set), (wait, orig_wait),
                 (sem_acquire, orig_sem_acquire), (sem_release, orig_sem_release), (cond_init, orig_cond_init)):
        f.__wrapped__ = o
        f.__qualname__ = o.__qualname__
    return [
        (lock_cls, "__init__", _registering_init(st, lock_cls, "AsyncLock")),
        (lock_cls, "acquire", acquire),
        (lock_cls, "release", release),
        (sem_cls, "__init__", sem_init),
        (sem_cls, "acquire", sem_acquire),
        (sem_cls, "release", sem_release),
        (cond_cls, "__init__", cond_init),
        (ev_cls, "__init__", _registering_init(st, ev_cls, "AsyncEvent")),
        (ev_cls, "set", set),
        (ev_cls, "wait", wait),
    ]


# -- trace_lock ------------------------------------------------------------------------

_ACCEPTED = ("threading.Lock, threading.RLock, threading.Condition, threading.Semaphore, "
             "threading.BoundedSemaphore, threading.Event, asyncio.Lock, asyncio.Event, asyncio.Semaphore, "
             "asyncio.BoundedSemaphore, asyncio.Condition")


def trace_lock(rec, lock: Any, name: str | None = None) -> Any:
    """Trace a lock created before start(). Returns what to use from now on: a wrapper
    for Lock / RLock (C objects), the same object for the Python lock classes."""
    if name is not None and not isinstance(name, str):
        raise TypeError(f"trace_lock: name must be a str or None, got {type(name).__name__}")
    st = rec.parts.locks
    if st is None:
        raise RuntimeError("trace_lock: lock tracing is off in this recording (patch=False or tracing_level='off')")
    if name == "":
        raise ValueError("trace_lock: name must not be empty; pass a name, or None for the variable's name")
    if isinstance(lock, _Traced):
        return _again(st, lock, lock.name, name)
    lock_type, rlock_type, _, _ = _lock_types()
    frame = _user_caller()
    kind = type(lock).__name__
    if type(lock) is lock_type or type(lock) is rlock_type or isinstance(lock, threading._PyRLock):
        known = st.wrapped.get(id(lock))
        known = known() if known is not None else None
        if known is not None and known._lock is lock:
            return _again(st, known, known.name, name)
        reentrant = type(lock) is not lock_type
        traced = st.wrap(lock, st.name_for(frame, "RLock" if reentrant else "Lock", name), reentrant)
        st.wrapped[id(lock)] = weakref.ref(traced)
        return traced
    if isinstance(lock, threading.Condition):
        inner = lock._lock
        if isinstance(inner, _Traced):
            return _again(st, lock, inner.name, name)
        reentrant = type(inner) is rlock_type or isinstance(inner, threading._PyRLock)
        _rebind_condition(lock, st.wrap(inner, st.name_for(frame, "Condition", name), reentrant))
        return lock
    if isinstance(lock, asyncio.Condition):
        if not isinstance(lock._lock, asyncio.Lock):
            raise TypeError(f"trace_lock: this asyncio.Condition's lock is a {type(lock._lock).__name__}, which "
                            "is not traced; accepted: a Condition made with its own lock or an asyncio.Lock")
        known = st.lookup(lock._lock)
        if known is not None:
            return _again(st, lock, known, name)
        st.register(lock._lock, st.name_for(frame, "AsyncCondition", name))
        # it exported its lock's methods when made: bound before they were patched
        lock.acquire, lock.release = lock._lock.acquire, lock._lock.release
        return lock
    for cls, label in ((threading.Semaphore, "Semaphore"), (threading.Event, "Event"),
                      (asyncio.Lock, "AsyncLock"), (asyncio.Event, "AsyncEvent"), (asyncio.Semaphore, "AsyncSemaphore")):
        if isinstance(lock, cls):
            known = st.lookup(lock)
            if known is not None:
                return _again(st, lock, known, name)
            st.register(lock, st.name_for(frame, label, name))
            return lock
    raise TypeError(f"trace_lock: lock must be one of {_ACCEPTED}; got {kind}")


def _again(st: LockState, traced, known: str, name: str | None):
    """A lock traced again is the same traced lock; under another name it would be two
    locks in the lock graph, so that is refused. Its name, given again, is the
    program's choice from now on (no traced object renames it)."""
    if name is not None and name != known:
        raise ValueError(f"trace_lock: this lock is already traced as {known!r}; "
                         f"accepted: name=None or name={known!r}")
    if name is not None:
        st.auto.discard(known)
    return traced


def _rebind_condition(cond, lock: _Traced) -> None:
    """Point a Condition at a traced lock (what Condition.__init__ would have done)."""
    cond._lock = lock
    cond.acquire = lock.acquire
    cond.release = lock.release
    for attr in ("_release_save", "_acquire_restore", "_is_owned"):
        try:
            setattr(cond, attr, getattr(lock, attr))
        except AttributeError:
            pass


def _user_caller():
    f = sys._getframe(1)
    while f is not None and (f.f_code.co_filename in _SKIP_FILES
                             or is_recorder_module(f.f_globals.get("__name__", ""))):
        f = f.f_back
    return f

