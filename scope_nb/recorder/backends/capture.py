"""What both back-ends share: how a call's arguments, a return value and an exception
are kept, the C callbacks made, and the sampling decisions taken."""

from __future__ import annotations

import asyncio

from ...values import REDACTED, Formatted, kept_as_is
from ..buffer import ThreadBuffer


class Capture:
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
