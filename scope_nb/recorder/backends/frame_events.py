"""The Python callbacks of `sys.monitoring` for a frame's other moments: a generator's
or coroutine's suspend and resume, a throw into it, and an exception leaving any traced
frame. (With the C extension, yields and resumes go through its hooks instead; throws
and unwinds always come here.)"""

from __future__ import annotations

import sys
from typing import Any

from ... import clock
from ..buffer import EXCEPTION, KIND_BITS, RESUME, SUSPEND
from .capture import Capture

_getframe = sys._getframe


class FrameEvents(Capture):
    """Suspends, resumes, throws and unwinds: what `MonitoringBackend` registers
    beside its hot start and return callbacks (it sets `mon`, `sys.monitoring`)."""

    mon: Any

    def on_yield(self, code, offset, value):
        t = clock.perf_ns()
        site = self.rec.site_of.get(id(code))
        if site is None:
            return self._untraced(code)
        try:
            b = self._buf()
            if not b.on:
                return
            if self.sampling and not self.kept(b):
                return
            b.ts.append(t)
            b.ks.append(SUSPEND | (site << KIND_BITS))
            b.vals.append(id(_getframe(1)))
        except Exception as e:
            self.rec.fault("yield", e)

    def _untraced(self, code):
        """What an event of code with no site returns: DISABLE, so it costs nothing more,
        unless everything of the program is traced and this is its code (its site is made
        when it is first called; until then its events are kept armed)."""
        rec = self.rec
        return None if rec.trace_everything and rec.is_user_code(code) else self.mon.DISABLE

    def on_resume(self, code, offset):
        site = self.rec.site_of.get(id(code))
        if site is None:
            return self._untraced(code)
        self._resumed(site)

    def on_throw(self, code, offset, exc):
        site = self.rec.site_of.get(id(code))
        if site is not None:
            self._resumed(site)

    def _resumed(self, site):
        try:
            b = self._buf()
            if not b.on:
                return
            if b.loopy:
                self.rec.sync_task(b)
            fid = id(_getframe(2))
            if self.sampling and not self.keep_gen(b, fid, False):
                return
            b.ts.append(clock.perf_ns())
            b.ks.append(RESUME | (site << KIND_BITS))
            b.vals.append(fid)
        except Exception as e:
            self.rec.fault("resume", e)

    def on_unwind(self, code, offset, exc):
        site = self.rec.site_of.get(id(code))
        if site is None:
            return
        t = clock.perf_ns()
        try:
            b = self._buf()
            if not b.on:
                return
            if self.sampling:
                # the frame ends: a generator's decision goes with it
                self.rec.store.gens_kept.discard(id(_getframe(1)))
                if not self.kept(b):
                    return
            b.ts.append(t)
            b.ks.append(EXCEPTION | (site << KIND_BITS))
            b.vals.append(self.exc_value(b, exc))
        except Exception as e:
            self.rec.fault("unwind", e)
