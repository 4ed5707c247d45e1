"""The `%scope COMMAND` line magic: drive a recording and the traces from the notebook.

Each command is a small method named for it; `_line` parses the words and dispatches.
They live apart from the cell magic because they are a different concern (a recording
that spans cells, loading and exporting traces, the post-mortem) sharing only a few
helpers with it. This is a mixin of `ScopeMagics`, which provides `shell`, the state
(`_started_here`, `_failure`, `_failure_trace`) and the helpers `_start`, `_keep`,
`_show_summary` and `_actor_here`.
"""

from __future__ import annotations

import argparse

from IPython.core.error import UsageError

from .kernel_actors import cell_context, remember_cell
from .magic_args import HelpShown, line_parser, split_words


class LineCommands:
    """`%scope start | stop | status | trace | load | explore | postmortem | export | summary`."""

    def _line(self, line: str):
        words = split_words(line, "%scope")
        if not words:
            raise UsageError(
                "%scope: missing COMMAND (start, stop, status, trace, load, explore, postmortem, "
                "export, summary); %%scope records a cell; see %scope?"
            )
        if words[0] in ("-h", "--help", "help"):
            raise HelpShown()
        args = line_parser().parse_args(words)
        command = getattr(self, f"_cmd_{args.command}", None)
        if command is None:  # argparse's choices make this unreachable
            raise UsageError(f"%scope: unknown command {args.command!r}")
        return command(args)

    def _cmd_start(self, args: argparse.Namespace):
        self._start(args)
        self._started_here = True
        print("scope_nb: recording; %scope stop to finish")
        return None

    def _cmd_stop(self, args: argparse.Namespace):
        import scope_nb

        if not scope_nb.is_recording():
            raise UsageError(
                "%scope stop: nothing is recording (%scope start, or %%scope on a cell)"
            )
        live = scope_nb.current()
        cell = cell_context(live._span()[0])
        cell["actor"] = self._actor_here(live)
        trace = scope_nb.stop()
        remember_cell(trace, cell)
        self._started_here = False
        self._keep(trace, None)
        self._show_summary(trace, show_kernel=args.kernel_actors)
        return None

    def _cmd_status(self, args: argparse.Namespace):
        import scope_nb

        if scope_nb.is_recording():
            trace = scope_nb.current()
            opts = trace.options
            msg = (
                f"scope_nb: recording ({len(trace):,} events so far, {trace.dropped:,} dropped; "
                f"level {opts.tracing_level}, max_events {opts.max_events:,}, sample "
                f"{opts.sample_rate})"
            )
        elif isinstance(self.shell.user_ns.get("_scope"), scope_nb.Trace):
            msg = (
                f"scope_nb: not recording; _scope holds {len(self.shell.user_ns['_scope']):,} "
                "events"
            )
        else:
            msg = "scope_nb: not recording; no trace yet"
        print(msg)
        return None

    def _cmd_trace(self, args: argparse.Namespace):
        import scope_nb

        what, name = args.what, args.name
        if not scope_nb.is_recording():
            raise UsageError(f"%scope trace {what}: nothing is recording; %scope start first")
        try:
            if what == "module":
                n = scope_nb.trace_module(name)
                print(f"scope_nb: tracing {n} functions of {name}")
                return None
            if name not in self.shell.user_ns:
                raise UsageError(f"%scope trace {what}: no variable named {name!r} in the notebook")
            value = self.shell.user_ns[name]
            if what == "object":
                scope_nb.trace_object(value, name)
            else:
                self.shell.user_ns[name] = scope_nb.trace_lock(value, name)
        except (ValueError, TypeError, ImportError, RuntimeError) as exc:
            raise UsageError(f"%scope trace {what}: {str(exc).splitlines()[0]}") from None
        print(f"scope_nb: tracing {what} {name}")
        return None

    def _cmd_load(self, args: argparse.Namespace):
        import scope_nb

        try:
            trace = scope_nb.load(*args.paths, trusted=args.trusted)
        except (OSError, ValueError, TypeError) as exc:
            raise UsageError(f"%scope load: {str(exc).splitlines()[0]}") from None
        self._keep(trace, None)
        self._show_summary(trace, show_kernel=args.kernel_actors)
        return None

    def _cmd_summary(self, args: argparse.Namespace):
        self._show_summary(self._trace_or_fail("summary"), show_kernel=args.kernel_actors)
        return None

    def _cmd_explore(self, args: argparse.Namespace):
        from .explorer import Explorer

        return Explorer(self._trace_or_fail("explore"), show_kernel=args.kernel_actors)

    def _cmd_postmortem(self, args: argparse.Namespace):
        """The most recent failure: a crashed actor in the last trace, or the failed cell."""
        import polars as pl

        trace = self._trace_or_fail("postmortem")
        crashes = trace.events(["crash"])
        crash_ts = int(crashes["ts"].max()) if crashes.height else None
        cell = self._failure if self._failure_trace is trace else None
        if cell is not None and (crash_ts is None or cell.ts >= crash_ts):
            return cell
        if crash_ts is None:
            raise UsageError(
                "%scope postmortem: no failure in the last trace (no crashed thread/task, "
                "the cell did not raise)"
            )
        actor = crashes.filter(pl.col("ts") == crash_ts)["actor"][0]
        return trace.analyze_crash(actor)

    def _cmd_export(self, args: argparse.Namespace):
        trace = self._trace_or_fail("export")
        try:
            if args.path.lower().endswith(".json"):
                path = trace.export_perfetto(args.path)
            else:
                path = trace.save(args.path)
        except (OSError, ValueError, TypeError) as exc:
            raise UsageError(f"%scope export: {str(exc).splitlines()[0]}") from None
        print(f"scope_nb: wrote {path}")
        return None

    def _trace_or_fail(self, cmd: str):
        """The trace a command works on: `_scope`, else the running recording."""
        import scope_nb

        trace = self.shell.user_ns.get("_scope")
        if not isinstance(trace, scope_nb.Trace):
            trace = scope_nb.current()
        if trace is None:
            raise UsageError(
                f"%scope {cmd}: no trace yet; record a cell with %%scope or %scope load PATH"
            )
        return trace


__all__ = ["LineCommands"]
