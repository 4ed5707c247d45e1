"""The call capture on Python >= 3.12: a `sys.monitoring` tool id of our own, with local
events on the traced code objects only; in trace-everything mode, global events that
DISABLE themselves at the first sight of code that is not the user's."""

from __future__ import annotations

import sys

from ... import clock
from ...values import kept_as_is
from .frame_events import FrameEvents

_getframe = sys._getframe

# tool id -> whether a recording on it may have DISABLEd events (only with global events:
# with local ones, the callbacks only fire on the code they trace)
_disabled_by_us: dict[int, bool] = {}


class MonitoringBackend(FrameEvents):
    def __init__(self, rec):
        super().__init__(rec)
        self.mon = sys.monitoring
        self.tool = None
        self.watched: list = []

    def install(self) -> None:
        mon = self.mon
        for tool in (4, 3, 5, 2):
            if mon.get_tool(tool) is None:
                break
        else:
            raise RuntimeError(
                "scope_nb: every sys.monitoring tool id is taken; cannot record calls"
            )
        mon.use_tool_id(tool, "scope_nb")
        self.tool = tool
        if _disabled_by_us.get(tool):
            # our DISABLEs from an earlier recording must not stick; restart_events() is
            # global (it re-arms every tool's), so only when we did disable something
            mon.restart_events()
        _disabled_by_us[tool] = False
        E = mon.events
        self.E = E
        on_start, on_return = self._hot_callbacks()
        on_yield, on_resume = self.on_yield, self.on_resume
        self.fast = self._fast_hooks(
            py_start=on_start,
            py_return=on_return,
            py_yield=on_yield,
            py_resume=on_resume,
            disable=mon.DISABLE,
        )
        if self.fast is not None:
            on_start, on_return = self.fast.on_start, self.fast.on_return
            on_yield, on_resume = self.fast.on_yield, self.fast.on_resume
        for ev, cb in (
            (E.PY_START, on_start),
            (E.PY_RETURN, on_return),
            (E.PY_YIELD, on_yield),
            (E.PY_RESUME, on_resume),
            (E.PY_THROW, self.on_throw),
            (E.PY_UNWIND, self.on_unwind),
        ):
            mon.register_callback(tool, ev, cb)
        mon.set_events(tool, E.PY_UNWIND | E.PY_THROW)

    def watch(self, codes) -> None:
        E = self.E
        for code in codes:
            events = E.PY_START | E.PY_RETURN
            if self.rec.site_by_code[id(code)].is_gen:
                events |= E.PY_YIELD | E.PY_RESUME
            self.mon.set_local_events(self.tool, code, events)
            self.watched.append(code)
        # a code trace-everything passed over earlier was DISABLEd at its locations:
        # without this its module, traced now, would stay silent
        if _disabled_by_us.get(self.tool):
            self.mon.restart_events()

    def watch_all(self) -> None:
        E = self.E
        # global events: the callbacks DISABLE the code that is not the program's
        _disabled_by_us[self.tool] = True
        self.mon.set_events(
            self.tool,
            E.PY_UNWIND | E.PY_THROW | E.PY_START | E.PY_RETURN | E.PY_YIELD | E.PY_RESUME,
        )

    def uninstall(self) -> None:
        mon = self.mon
        if self.tool is None:
            return
        mon.set_events(self.tool, 0)
        for code in self.watched:
            mon.set_local_events(self.tool, code, 0)
        for ev in (
            self.E.PY_START,
            self.E.PY_RETURN,
            self.E.PY_YIELD,
            self.E.PY_RESUME,
            self.E.PY_THROW,
            self.E.PY_UNWIND,
        ):
            mon.register_callback(self.tool, ev, None)
        mon.free_tool_id(self.tool)
        self.tool = None

    # -- callbacks (the hot path) ----------------------------------------------
    def _site(self, code):
        rec = self.rec
        site = rec.site_of.get(id(code))
        if site is None and rec.trace_everything:
            site = rec.site_for_new_code(code, _getframe(2).f_globals)
        return site

    def _buf(self):
        try:
            return self.rec.local.b
        except AttributeError:
            return self.rec._new_buffer()

    def _hot_callbacks(self):
        """PY_START and PY_RETURN, the two callbacks that run for every traced call, as
        closures over local names (no attribute chains on the hot path)."""
        rec = self.rec
        site_get = rec.site_by_code.get
        chunk = rec.store.chunk_size
        local = rec.local
        new_buffer = rec._new_buffer
        sync_task = rec.sync_task
        is_user_code = rec.is_user_code
        slow_site = self._site
        cap = self._cap
        args_of = self.args_of
        keep, kept, keep_gen = self.keep, self.kept, self.keep_gen
        gens_kept = rec.store.gens_kept
        sampling = self.sampling
        capture_args = self.capture_args
        fault = rec.fault
        perf = clock.perf_ns
        getframe = _getframe
        DISABLE = self.mon.DISABLE

        def on_start(code, offset):
            s = site_get(id(code))
            if s is None:
                if slow_site(code) is None:
                    return DISABLE
                s = site_get(id(code))
            try:
                try:
                    b = local.b
                except AttributeError:
                    b = new_buffer()
                if not b.on:
                    return
                if b.loopy:
                    sync_task(b)
                if sampling and not (keep_gen(b, id(getframe(1)), True) if s.is_gen else keep(b)):
                    return
                if not capture_args or s.getter is None:
                    v = None
                elif s.plain_single:
                    v = s.getter(getframe(1).f_locals)
                    if not kept_as_is(v):
                        v = cap(b, v)
                else:
                    v = args_of(b, s, getframe(1))
                if s.is_gen:
                    v = (id(getframe(1)), v)
                b.vals.append(v)
                b.ks.append(s.kcall)
                ts = b.ts
                ts.append(perf())
                if len(ts) >= chunk:
                    b.seal()
            except Exception as e:
                fault("call", e)

        def on_return(code, offset, retval):
            t = perf()
            s = site_get(id(code))
            if s is None:
                return None if rec.trace_everything and is_user_code(code) else DISABLE
            try:
                try:
                    b = local.b
                except AttributeError:
                    b = new_buffer()
                if not b.on:
                    return
                if sampling:
                    if s.is_gen:
                        gens_kept.discard(id(getframe(1)))
                    if not kept(b):
                        return
                b.vals.append(retval if kept_as_is(retval) else cap(b, retval))
                b.ks.append(s.kret)
                ts = b.ts
                ts.append(t)
                if len(ts) >= chunk:
                    b.seal()
            except Exception as e:
                fault("return", e)

        return on_start, on_return
