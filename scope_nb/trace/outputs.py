"""What a Trace writes or opens: a saved copy, Perfetto's format, the explorer; and
the wait for a persisted recording's last flush."""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from .base import TraceBase

if TYPE_CHECKING:
    pass


class Outputs(TraceBase):
    """Saving, exporting, exploring."""

    def save(self, path) -> str:
        from ..analysis.environment import remembered_environment
        from ..store.save import save_trace

        self.wait_written()
        # a trace recorded in a kernel is saved knowing which actors are the kernel's: the
        # answer is persisted, so a merge of saved traces still knows each one's
        remembered_environment(self.meta, self.actors)
        return save_trace(self, path)

    def wait_written(self) -> Self:
        """Wait until a persisted recording's files are complete: stop() returns while
        its last flush still runs (save(), load() in this process and the interpreter's
        exit wait for it too; a reader of the files, DuckDB for one, calls this first)."""
        if self._settle is not None:
            self._settle()
        return self

    def export_perfetto(self, path) -> str:
        from ..store.perfetto import export_perfetto

        return export_perfetto(self, path)

    def explore(self):
        from ..notebook.explorer import Explorer

        return Explorer(self)
