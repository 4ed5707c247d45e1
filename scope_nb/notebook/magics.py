"""`%%scope` records a cell; `%scope` drives a recording and the traces from the notebook.

This module holds the IPython-facing class and the cell magic; the rest is split by
concern: the arguments and `%scope?` (magic_args), compiling and running the cell's
code (cell_code), the `%scope COMMAND` line magic (line_commands), what is displayed
after a cell (summary_panel) and after a failure (postmortem). Loading and unloading
the extension is the package's (`scope_nb.notebook`).

A fault of the magic after the cell ran is reported, never raised: the cell's own
result or exception is what the notebook must see.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class

from .cell_code import compile_cell, run_cell_body, run_compiled
from .kernel_actors import cell_context, kernel_actors, remember_cell
from .line_commands import LineCommands
from .magic_args import (
    HelpShown,
    check_output_name,
    record_options,
    record_parser,
    split_words,
    usage,
)
from .postmortem import CellFailure
from .summary_panel import SummaryPanel


@magics_class
class ScopeMagics(LineCommands, Magics):
    """The `%scope` / `%%scope` magics (one instance per shell)."""

    def __init__(self, shell):
        super().__init__(shell)
        self._started_here = False  # a recording started by `%scope start`
        self._failure: CellFailure | None = None
        self._failure_trace = None

    def close(self) -> None:
        """Stop a recording these magics started and forget the traces they kept."""
        import scope_nb

        if self._started_here and scope_nb.is_recording():
            scope_nb.stop()
        self._started_here = False
        self.shell.user_ns.pop("_scope", None)
        self._failure = None

    @line_cell_magic
    def scope(self, line: str = "", cell: str | None = None):
        __tracebackhide__ = True  # noqa: F841 - the user's traceback starts in their cell
        try:
            if cell is None:
                return self._line(line)
            return self._cell(line, cell)
        except HelpShown:
            print(usage())
            return None

    # -- %%scope ----------------------------------------------------------------------------
    def _objects(self, names: list[str]) -> list[tuple[str, Any]]:
        missing = [n for n in names if n not in self.shell.user_ns]
        if missing:
            raise UsageError(
                f"%%scope --objects: no variable named {', '.join(missing)} in the notebook"
            )
        return [(n, self.shell.user_ns[n]) for n in names]

    def _start(self, args: argparse.Namespace):
        """Start a recording as the options ask, with the `--objects` traced; nothing is left
        recording when one of them cannot be traced."""
        import scope_nb

        if scope_nb.is_recording():
            raise UsageError("%scope: a recording is already running; %scope stop first")
        objects = self._objects(args.objects)
        try:
            trace = scope_nb.start(**record_options(args))
        except (ValueError, TypeError) as exc:
            raise UsageError(str(exc).splitlines()[0]) from None
        try:
            for name, value in objects:
                scope_nb.trace_object(value, name)
        except BaseException as exc:
            scope_nb.stop()  # nothing half-started is left recording
            if isinstance(exc, ValueError | TypeError):
                raise UsageError(f"%scope --objects: {str(exc).splitlines()[0]}") from None
            raise
        return trace

    def _cell(self, line: str, cell: str):
        __tracebackhide__ = True  # noqa: F841

        args = record_parser().parse_args(split_words(line, "%%scope"))
        check_output_name(args.output)
        # a SyntaxError shows before anything is recorded or replaced
        code = compile_cell(self.shell, cell)
        from .. import clock

        cell = cell_context(clock.now())
        trace = self._start(args)
        failure: BaseException | None = None
        actor, failed_at = None, 0
        try:
            return run_compiled(code, self.shell.user_ns, cell)
        except BaseException as exc:
            failure, failed_at = exc, clock.now()
            actor = self._actor_here(trace)
            raise
        finally:
            self._finish(trace, args, failure, failed_at, actor, code[2], cell)

    def _finish(
        self,
        trace,
        args: argparse.Namespace,
        failure: BaseException | None,
        failed_at: int,
        actor: str | None,
        cell_file: str,
        cell: dict[str, Any],
    ) -> None:
        """Stop the cell's recording (unless the cell stopped it itself), keep the trace and
        show the summary. A fault here is reported, never raised: the cell's own result or
        exception is what the notebook must see."""
        import scope_nb

        try:
            # the actor the cell ran as, known once it did something
            cell["actor"] = self._actor_here(trace)
            if scope_nb.is_recording() and scope_nb.current() is trace:
                scope_nb.stop()
            remember_cell(trace, cell)
            self._keep(trace, args.output)
            if failure is not None:
                self._failure = CellFailure(trace, failure, failed_at, actor, cell_file)
                self._failure_trace = trace
                print(
                    f"scope_nb: the cell raised {type(failure).__name__}; trace kept as _scope "
                    f"({len(trace):,} events) -- %scope postmortem for the analysis",
                    file=sys.stderr,
                )
            elif not args.quiet:
                self._show_summary(trace, show_kernel=args.kernel_actors)
        except Exception as exc:
            print(
                f"scope_nb: internal error after the cell ({type(exc).__name__}: {exc}); "
                "the cell itself ran as usual",
                file=sys.stderr,
            )

    def _keep(self, trace, name: str | None) -> None:
        self.shell.user_ns["_scope"] = trace
        if name:
            self.shell.user_ns[name] = trace

    def _show_summary(self, trace, show_kernel: bool = False) -> None:
        """Show the summary; the kernel's own actors (known for a trace recorded in a
        kernel) are left out of it and of the explorer it opens unless `show_kernel`."""
        from IPython.display import display

        display(SummaryPanel(trace, [] if show_kernel else kernel_actors(trace)))

    # -- shared with the line commands ------------------------------------------------------
    @staticmethod
    def _actor_here(trace) -> str | None:
        """This thread's actor in `trace` while it records (the cell may have stopped it)."""
        import scope_nb

        try:
            return scope_nb._recorder().current_actor() if scope_nb.current() is trace else None
        except Exception:
            # not recording any more, or a recorder fault: the failure is kept without it
            return None


ScopeMagics.scope.__doc__ = usage()

__all__ = [
    "ScopeMagics",
    "SummaryPanel",
    "CellFailure",
    "run_cell_body",
    "compile_cell",
    "run_compiled",
]
