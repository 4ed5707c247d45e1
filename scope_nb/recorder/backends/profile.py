"""The call capture on Python 3.11: `sys.setprofile` / `threading.setprofile` with a
code-object filter, chained to any profile function already installed. Exception
values come from a frame-local trace function (`f_trace`) set on traced frames only;
the global trace function is the C builtin `getattr`, which returns None and so costs
no Python frame."""

from __future__ import annotations

import dis
import sys
import threading

from ... import clock
from ...values import Formatted, kept_as_is
from ..buffer import CALL, EXCEPTION, KIND_BITS, RESUME, RETURN, SUSPEND
from .capture import Capture

_RETURN_OPS = {dis.opmap[n] for n in ("RETURN_VALUE", "RETURN_CONST") if n in dis.opmap}
_YIELD_OP = dis.opmap["YIELD_VALUE"]
_RESUME_OP = dis.opmap.get("RESUME")


class ProfileBackend(Capture):
    def __init__(self, rec):
        super().__init__(rec)
        self.prev_profile = None
        self.prev_trace = None
        self.exc_pending: dict[int, object] = {}  # id(frame) -> exception being raised through it
        self.trace_exceptions = False
        self.stopped = False
        self.blocked = False  # another profiler holds the hook: nothing installed

    def install(self) -> None:
        self.prev_profile = sys.getprofile()
        self.prev_thread_profile = getattr(threading, "_profile_hook", None)
        self.prev_trace = sys.gettrace()
        self.prev_thread_trace = getattr(threading, "_trace_hook", None)
        prev = self.prev_profile
        if prev is not None and not callable(prev):
            # a C profiler (cProfile's Profile) holds the hook and cannot be chained:
            # taking the hook from it would change what the program measures
            self.blocked = True
            self.rec.fault(
                "calls not recorded: a C profiler holds the profile hook",
                RuntimeError(f"sys.getprofile() is a {type(prev).__name__}"),
            )
            return
        hook = self.hook
        if prev is not None:

            def hook(frame, event, arg, _ours=self.hook, _prev=prev):
                _prev(frame, event, arg)
                return _ours(frame, event, arg)

        self.installed_hook = hook
        if self.prev_trace is None and self.prev_thread_trace is None:
            self.trace_exceptions = True
        else:
            self.rec.fault(
                "exception values unavailable: another trace function is installed",
                RuntimeError("sys.gettrace() is set"),
            )
        # the C profile function when nothing is chained (it calls self.hook for
        # generators, exceptions and code seen for the first time in trace-everything mode)
        self.fast = (
            None
            if prev is not None
            else self._fast_hooks(
                py_hook=self.hook,
                exc_tracer=self._exc_tracer if self.trace_exceptions else None,
                return_ops=tuple(sorted(_RETURN_OPS)),
                exc_pending=self.exc_pending,
                gen_ops=(_YIELD_OP, _RESUME_OP),
            )
        )
        if self.trace_exceptions:
            if self.fast is not None:
                # a C trace function does what _exc_tracer does, for the frames it marks
                self.fast.install_trace()
                threading.settrace(self.fast)
            else:
                # f_trace of our frames is only called while some global trace function is
                # set; the C builtin getattr(frame, 'call', None) returns None at no cost.
                sys.settrace(getattr)
                threading.settrace(getattr)
        if self.fast is not None:
            self.installed_hook = self.fast
            self.fast.install_profile()
            # a new thread switches to the C functions at its first event; the threads
            # running already get them now (the Python hook cannot reach them)
            threading.setprofile(self.fast)
            self.fast.install_others(self.trace_exceptions)
        else:
            sys.setprofile(hook)
            threading.setprofile(hook)

    def watch(self, codes) -> None:
        """Nothing to do: the profile hook sees every call and filters by code."""

    def watch_all(self) -> None:
        """Nothing to do: site_of misses go through the user-code filter."""

    def uninstall(self) -> None:
        if self.blocked:
            return
        if sys.getprofile() is not self.installed_hook:
            # the program set its own profile function (cProfile.enable() for one) while
            # recording: this thread's calls after that were not recorded
            self.rec.fault(
                "calls missed: the program replaced the profile hook",
                RuntimeError(f"sys.getprofile() is {type(sys.getprofile()).__name__}"),
            )
        sys.setprofile(self.prev_profile)
        threading.setprofile(self.prev_thread_profile)
        if self.trace_exceptions:
            sys.settrace(self.prev_trace)
            threading.settrace(self.prev_thread_trace)
        if self.fast is not None:
            self.fast.uninstall_others()
        self.stopped = True  # other threads still calling self.hook take it out themselves

    def _exc_tracer(self, frame, event, arg):
        if event == "exception":
            self.exc_pending[id(frame)] = arg[1]
        return self._exc_tracer

    def hook(self, frame, event, arg):
        if self.stopped:
            # a thread started while recording, running on after stop(): what it would
            # have had without the recording
            sys.setprofile(self.prev_thread_profile)
            if self.trace_exceptions:
                sys.settrace(self.prev_thread_trace)
            return
        if event == "call":
            code = frame.f_code
            rec = self.rec
            site = rec.site_of.get(id(code))
            if site is None:
                if not rec.trace_everything or rec.is_user_code(code) is False:
                    return
                site = rec.site_for_new_code(code, frame.f_globals)
                if site is None:
                    return
            try:
                try:
                    b = rec.local.b
                except AttributeError:
                    b = rec._new_buffer()
                if not b.on:
                    return
                if b.loopy:
                    rec.sync_task(b)
                s = rec.sites[site]
                fresh = True  # a generator or coroutine: its first start is its call
                if s.is_gen:
                    lasti = frame.f_lasti
                    co = code.co_code
                    fresh = lasti < 0 or (co[lasti] == _RESUME_OP and co[lasti + 1] == 0)
                if self.sampling and not (
                    self.keep_gen(b, id(frame), fresh) if s.is_gen else self.keep(b)
                ):
                    return
                if self.trace_exceptions:
                    frame.f_trace_lines = False
                    frame.f_trace = self._exc_tracer
                if s.is_gen:
                    if not fresh:
                        b.ts.append(clock.perf_ns())
                        b.ks.append(RESUME | (site << KIND_BITS))
                        b.vals.append(id(frame))
                        return
                    v = (id(frame), self.args_of(b, s, frame))
                else:
                    v = self.args_of(b, s, frame)
                b.vals.append(v)
                b.ks.append(CALL | (site << KIND_BITS))
                b.ts.append(clock.perf_ns())
                if len(b.ts) >= b.store.chunk_size:
                    b.seal()
            except Exception as e:
                rec.fault("call", e)
        elif event == "return":
            t = clock.perf_ns()
            rec = self.rec
            site = rec.site_of.get(id(frame.f_code))
            if site is None:
                return
            try:
                try:
                    b = rec.local.b
                except AttributeError:
                    b = rec._new_buffer()
                if not b.on:
                    return
                lasti = frame.f_lasti
                op = frame.f_code.co_code[lasti] if lasti >= 0 else None
                if self.sampling:
                    if op != _YIELD_OP:  # the frame ends: a generator's decision goes with it
                        rec.store.gens_kept.discard(id(frame))
                    if not self.kept(b):
                        return
                if op in _RETURN_OPS:
                    b.vals.append(arg if kept_as_is(arg) else self._cap(b, arg))
                    kind = RETURN
                elif op == _YIELD_OP:
                    b.vals.append(id(frame))
                    kind = SUSPEND
                else:
                    exc = self.exc_pending.pop(id(frame), None)
                    b.vals.append(
                        self.exc_value(b, exc)
                        if exc is not None
                        else Formatted("BaseException|<unknown>")
                    )
                    kind = EXCEPTION
                self.exc_pending.pop(id(frame), None)
                b.ts.append(t)
                b.ks.append(kind | (site << KIND_BITS))
                if len(b.ts) >= b.store.chunk_size:
                    b.seal()
            except Exception as e:
                rec.fault("return", e)
