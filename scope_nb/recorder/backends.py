"""Call capture: two back-ends that write the same events.

* `MonitoringBackend` (Python >= 3.12): a `sys.monitoring` tool id of our own, with
  local events on the traced code objects only; in trace-everything mode, global
  events that DISABLE themselves at the first sight of code that is not the user's.
* `ProfileBackend` (3.11): `sys.setprofile` / `threading.setprofile` with a
  code-object filter, chained to any profile function already installed. Exception
  values come from a frame-local trace function (`f_trace`) set on traced frames
  only; the global trace function is the C builtin `getattr`, which returns None and
  so costs no Python frame.

Both append to the calling thread's buffer: CALL (args), RETURN (value), EXCEPTION
(exception), and SUSPEND / RESUME for generator and coroutine frames (frame id).
"""

from __future__ import annotations

import asyncio
import dis
import sys
import threading

from .. import clock
from ..values import REDACTED, Formatted, kept_as_is
from .buffer import CALL, EXCEPTION, KIND_BITS, RESUME, RETURN, SUSPEND, ThreadBuffer

_getframe = sys._getframe


def make_backend(rec):
    if sys.version_info >= (3, 12):
        return MonitoringBackend(rec)
    return ProfileBackend(rec)


class _Capture:
    """The parts shared by both back-ends: how a call's arguments, a return value and
    an exception are kept."""

    def __init__(self, rec):
        self.rec = rec
        self.capture_args = rec.options.capture_args
        self.sampling = rec.store.sample_rate < 1.0
        self.fast = None  # the C callbacks in use, if any (see _fast_hooks)

    def _cap(self, b, value):
        """Capture a non-atomic value (`Formatter.capture`: no code of the program runs)
        with recording switched off for this thread, so nothing the capture touches is
        recorded."""
        b.on = False
        try:
            return self.rec.fmt.capture(value)
        except Exception as e:
            self.rec.fault("capture", e)
            return Formatted(f"<{type(value).__name__}>")
        finally:
            b.on = True

    def args_of(self, b, site, frame):
        if not self.capture_args or site.getter is None:
            return None
        try:
            a = site.getter(frame.f_locals)
        except (KeyError, TypeError):
            return None
        if len(site.argnames) == 1:
            if site.secret:
                return REDACTED
            return a if kept_as_is(a) else self._cap(b, a)
        out = [x if kept_as_is(x) else self._cap(b, x) for x in a]
        for i in site.secret:
            out[i] = REDACTED
        return tuple(out)

    def exc_value(self, b, exc):
        try:
            text = self.rec.fmt.repr(exc) if b.on else type(exc).__name__
        except Exception:
            text = type(exc).__name__
        return Formatted(f"{type(exc).__qualname__}|{text}")

    def _fast_hooks(self, **callbacks):
        """The C versions of the hot callbacks (record/native/hooks.c), falling back on the
        given Python ones for anything unusual; None when the module is not built or
        SCOPE_NB_PURE is set. When sampling, the C hooks make the decisions of `keep` and
        `kept` from the same mask, in the buffer's own `pos` and `stack`, so that the
        Python callbacks still running beside them continue the same sequence."""
        rec = self.rec
        store = rec.store
        if store.fast is None:
            return None
        return store.fast.Hooks(
            rec=rec,
            local=rec.local,
            new_buffer=rec._new_buffer,
            sync_task=rec.sync_task,
            current_task=asyncio.current_task,
            fault=rec.fault,
            cap=self._cap,
            args_of=self.args_of,
            sites=rec.site_by_code,
            chunk=store.chunk_size,
            capture_args=self.capture_args,
            buffer_type=ThreadBuffer,
            redacted=REDACTED,
            mask=store.mask if self.sampling else None,
            dropped=store.dropped,
            gens=store.gens_kept,
            **callbacks,
        )

    def keep(self, b) -> bool:
        """Sampling decision for a call that starts now (sampled mode only)."""
        b.pos += 1
        keep = bool(self.rec.store.mask[b.pos & 4095])
        b.stack.append(keep)
        if not keep:
            self.rec.store.dropped["sampled"] += 1
        return keep

    def kept(self, b) -> bool:
        """Was the call that ends now recorded? (sampled mode only)"""
        if b.stack:
            if b.stack.pop():
                return True
        self.rec.store.dropped["sampled"] += 1
        return False

    def keep_gen(self, b, fid: int, first: bool) -> bool:
        """Sampling decision for a generator's or coroutine's frame `fid`: its first
        start takes the next decision (`keep`) and the frame remembers it; a resume
        follows it, so a generator is recorded whole or not at all."""
        gens = self.rec.store.gens_kept
        if first:
            keep = self.keep(b)
            if keep:
                gens.add(fid)
            else:
                gens.discard(fid)
            return keep
        keep = fid in gens
        b.stack.append(keep)
        if not keep:
            self.rec.store.dropped["sampled"] += 1
        return keep


class MonitoringBackend(_Capture):
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

    def on_yield(self, code, offset, value):
        t = clock.perf_ns()
        site = self.rec.site_of.get(id(code))
        if site is None:
            return (
                None
                if self.rec.trace_everything and self.rec.is_user_code(code)
                else self.mon.DISABLE
            )
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

    def on_resume(self, code, offset):
        site = self.rec.site_of.get(id(code))
        if site is None:
            return (
                None
                if self.rec.trace_everything and self.rec.is_user_code(code)
                else self.mon.DISABLE
            )
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


# tool id -> whether a recording on it may have DISABLEd events (only with global events:
# with local ones, the callbacks only fire on the code they trace)
_disabled_by_us: dict[int, bool] = {}

_RETURN_OPS = {dis.opmap[n] for n in ("RETURN_VALUE", "RETURN_CONST") if n in dis.opmap}
_YIELD_OP = dis.opmap["YIELD_VALUE"]
_RESUME_OP = dis.opmap.get("RESUME")


class ProfileBackend(_Capture):
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
