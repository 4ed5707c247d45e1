"""Which code a recording traces: a site for each code object it watches, the modules
named to be traced (their code, and their files counted as the program's), every call
of the program's own code (trace-everything mode), or only one process's calls.

A part of the Recorder (its attributes: `sites`, `site_of`, `site_by_code`, `fmt`,
`backend`, `calls_on`, `is_user_code`, `parts`, `store`, `process_filter`,
`own_idents`); the call hooks ask it about code they see for the first time."""

from __future__ import annotations

import types

from .sites import Site, is_recorder_module, module_codes


class TracedCode:
    """The Recorder's choice of code to trace."""

    def add_codes(self, codes: list[types.CodeType], module: str) -> list[types.CodeType]:
        new = []
        for code in codes:
            if id(code) not in self.site_of:
                self._add_site(code, module)
                new.append(code)
        if new and self.backend is not None and self.calls_on:
            self.backend.watch(new)
        return new

    def trace_module(self, module: types.ModuleType) -> int:
        if is_recorder_module(module.__name__):
            raise ValueError(
                f"scope_nb: the recorder does not trace itself (module {module.__name__!r})"
            )
        codes = module_codes(module)
        self.add_codes(codes, module.__name__)
        # named to be traced, it is the program's own even from site-packages or the
        # stdlib: its locks, queues' names and tasks are traced as the program's
        self.is_user_code.include(c.co_filename for c in codes)
        if self.parts.locks is not None:  # those it made before recording, where it can
            from .patchers.locks import adopt_globals

            adopt_globals(self.parts.locks, module)
        return len(codes)

    def site_for_new_code(self, code: types.CodeType, frame_globals: dict | None) -> int | None:
        """In trace-everything mode: register a code object seen for the first time if it
        is user code; None means 'never again for this code'."""
        if not self.is_user_code(code):
            return None
        module = (frame_globals or {}).get("__name__", "?") if frame_globals is not None else "?"
        if is_recorder_module(module):
            return None
        return self._add_site(code, module)

    def _add_site(self, code: types.CodeType, module: str) -> int:
        site_id = len(self.sites)
        site = Site(code, module, self.fmt.is_secret, site_id)
        self.sites.append(site)
        self.site_of[id(code)] = site_id
        self.site_by_code[id(code)] = site
        return site_id

    def trace_all(self) -> None:
        self.trace_everything = True
        if self.backend is not None and self.calls_on:
            self.backend.watch_all()

    def trace_process(self, actor: str) -> None:
        """Record calls of user code, but only in this actor (and any others so chosen)."""
        if self.process_filter is None:
            self.process_filter = set()
            for b in self.store.buffers:
                b.on = False
        self.process_filter.add(actor)
        for b in self.store.buffers:
            if b.actor == actor and b.ident not in self.own_idents:
                b.on = True
        self.trace_all()
