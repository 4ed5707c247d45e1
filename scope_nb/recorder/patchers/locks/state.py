"""Per-recording bookkeeping of the traced locks: who holds what and where they took
it, the events of waiting, taking and releasing, and the lock-order graph those feed.

Lock events go straight into the thread's buffer (session.push) with their fields
final: the actor is the buffer's own unless an event loop runs in the thread, the
location a raw (code, lasti) pair (see `naming.where`). The release side is in
releases.py."""

from __future__ import annotations

import threading
import weakref

from ....clock import perf_ns
from ....schema import KIND_CODE, TRY_ACQUIRE
from ... import session
from ...buffer import KIND_BITS, RICH, ThreadBuffer, fast_module
from .instances import Instances
from .naming import _SKIP_FILES, LockNames, where
from .order import LockOrder
from .releases import Releases

_TIMEOUT_MAX = threading.TIMEOUT_MAX
_push = session.push
# an extension built from older sources has no LockCore: the Python methods then serve
C_CORE = getattr(fast_module(), "LockCore", None)


def _code(kind: str, kinds) -> int:
    """The buffer code of a lock event kind, 0 when the tracing level leaves it out."""
    return RICH | (KIND_CODE[kind] << KIND_BITS) if kind in kinds else 0


_KIND_OF = {
    RICH | (KIND_CODE[k] << KIND_BITS): k
    for k in ("lock_wait", "lock_acquire", "lock_release", "lock_timeout")
}


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


class LockState(Releases):
    """Per-recording bookkeeping: who holds what, the events, the lock-order graph."""

    def __init__(self, rec):
        self.rec = rec
        self.held: dict[str, list[str]] = {}  # actor -> lock names, in acquisition order
        self.owners: dict[str, list[str]] = {}  # lock name -> actors holding it
        # (actor, lock) -> where it was taken (a C core keeps that itself: `_taken`)
        self.taken_at: dict[tuple[str, str], tuple | None] = {}
        self.cores: dict[str, weakref.ref] = {}  # lock name -> its C core, when it has one
        # semaphore name -> its initial value (its acquires' detail)
        self.initial: dict[str, str] = {}
        self.instances = Instances(rec)  # instances of the patched lock classes
        self.names = LockNames(rec.fault)
        self.graph = LockOrder(rec, self._taken)
        # names recorded by the Python paths (a C core's caches say its own)
        self.used: set[str] = set()
        self.wrapped: dict[int, weakref.ref] = {}  # id(lock) -> its wrapper, made by trace_lock
        self.renamed: dict[str, str] = {}  # old name -> current name (trace_lock under a new name)
        self.local = rec.local
        self.store = rec.store
        kinds = rec.kinds
        self.k_wait = _code("lock_wait", kinds)
        self.k_acquire = _code("lock_acquire", kinds)
        self.k_release = _code("lock_release", kinds)
        self.k_timeout = _code("lock_timeout", kinds)
        self.hub = _hub(self, rec)

    def name_for(self, frame, kind: str, given: str | None = None) -> str:
        return self.names.name_for(frame, kind, given)

    def user_frame(self, frame) -> bool:
        return frame is not None and self.rec.running and self.rec.is_user_code(frame.f_code)

    # -- events -------------------------------------------------------------------
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
            _push(
                self.store,
                b,
                code,
                (actor, name, detail, None, None, loc, waited, None, None, held, None),
                perf_ns(),
            )
        except Exception as e:
            self.rec.fault(f"emit:{_KIND_OF[code]}", e)

    def waiting(self, b, name: str, actor: str, loc, before: tuple[str, ...]) -> None:
        self.used.add(name)
        if self.k_wait:
            self._event(b, self.k_wait, name, actor, None, loc, before)

    def timed_out(
        self, b, name: str, actor: str, waited: int, loc, before: tuple[str, ...], timeout=None
    ) -> None:
        """A wait given up: its detail is the timeout the program passed (seconds; None
        for an asyncio wait cancelled), so a report can say "gave up after 0.5 s"."""
        self.used.add(name)
        if self.k_timeout:
            self._event(b, self.k_timeout, name, actor, waited, loc, before, timeout)

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
                ev = (
                    actor,
                    name,
                    detail,
                    None,
                    None,
                    loc,
                    0,
                    None,
                    TRY_ACQUIRE if tried else None,
                    before,
                    None,
                )
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

    def took(
        self, b, name: str, actor: str, waited: int, loc, before: tuple[str, ...], detail=None
    ) -> None:
        if self.renamed:  # renamed while it waited: its bookkeeping goes by the new name
            name = self.renamed.get(name, name)
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

    def _taken(self, actor: str, name: str):
        """Where `actor` took lock `name`, which it holds."""
        at = self.taken_at.get((actor, name))
        if at is None and name in self.cores:
            core = self.cores[name]()
            if core is not None and actor in core._owners:
                at = core._taken
        return at

    def _order(self, before: tuple[str, ...], name: str, actor: str, loc) -> None:
        self.graph.add(before, name, actor, loc)


def _hub(st: LockState, rec):
    """The C side of `st`'s bookkeeping (record/_fastlocks.c), or None: not built,
    SCOPE_NB_PURE, or sampling (which the Python push does)."""
    hub = getattr(rec.store.fast, "LockHub", None)
    if hub is None or C_CORE is None or rec.store.sample_rate < 1.0:
        return None
    hub = hub(
        local=st.local,
        new_buffer=rec.buffer,
        buffer_type=ThreadBuffer,
        current_actor=rec.current_actor,
        fault=rec.fault,
        skip_files=_SKIP_FILES,
        held=st.held,
        taken_at=st.taken_at,
        order=st._order,
        k_acquire=st.k_acquire,
        k_release=st.k_release,
        chunk=rec.store.chunk_size,
        timeout_max=_TIMEOUT_MAX,
        tried=TRY_ACQUIRE,
    )
    rec.switches.append(hub)  # its `running` follows the recorder's
    return hub
