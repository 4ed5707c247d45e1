"""The release of a traced lock, in two steps: `dropping` just before the lock is really
released (the release event, so it comes before the next owner's acquire), `dropped`
once it is (the bookkeeping of who holds it, which waits until then so the lock is not
held longer than needed).

Apart from state.py, which keeps the acquire side and the tables both sides share, because
the release is its own protocol: every traced lock's release calls the pair around the
real release, and a semaphore may be released by anyone.

A part of LockState (its attributes: `rec`, `local`, `store`, `used`, `owners`, `held`,
`taken_at`, `k_release`)."""

from __future__ import annotations

from ....clock import perf_ns
from ... import session
from .naming import _SKIP_FILES

_push = session.push


class Releases:
    """LockState's release of a lock."""

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
                ev = (
                    actor,
                    name,
                    None,
                    None,
                    None,
                    (f.f_code, f.f_lasti) if f is not None else None,
                    None,
                    None,
                    None,
                    tuple(held) if held else (),
                    None,
                )
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
