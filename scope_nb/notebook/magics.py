"""`%%scope` records a cell; `%scope` drives a recording and the traces from the notebook.

The cell body is compiled and run here rather than through a nested `run_cell`: a
nested run_cell clobbers the outer cell's result, shows an exception as handled (so
"run all" would go on), and cannot run top-level `await` under a kernel whose event
loop is already running. Running the code ourselves lets an exception propagate as
from any cell and lets an `await` cell run on a private event loop.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import inspect
import keyword
import os
import shlex
import sys
import threading
import time
from types import CodeType
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class

LEVELS = ("full", "messages_only", "states_only", "minimal", "off")


class _Once(argparse._StoreAction):
    """An option given twice is refused: argparse would silently keep the last value."""

    def __call__(self, parser, namespace, values, option_string=None):
        given = namespace.__dict__.setdefault("_given", set())
        if self.dest in given:
            parser.error(f"argument {'/'.join(self.option_strings)}: given twice")
        given.add(self.dest)
        super().__call__(parser, namespace, values, option_string)


class _Parser(argparse.ArgumentParser):
    """argparse that reports a wrong option as one line (UsageError), never exits."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register("action", None, _Once)
        self.register("action", "store", _Once)

    def error(self, message: str):
        raise UsageError(f"%{self.prog}: {message} (see %scope?)")

    def exit(self, status: int = 0, message: str | None = None):
        raise _HelpShown()


class _HelpShown(Exception):
    pass


def _split(line: str, prog: str) -> list[str]:
    """The magic's arguments as shell words; an unclosed quote is a usage error."""
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"{prog}: {exc} in {line.strip()!r}") from None


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def _add_record_options(p: argparse.ArgumentParser, cell: bool) -> None:
    p.add_argument("--level", choices=LEVELS, default=None, help="what to record (default full): "
                   "full | messages_only | states_only | minimal | off")
    p.add_argument("--sample", type=float, default=None, metavar="R",
                   help="keep this fraction (0..1) of non-critical events, chosen deterministically")
    p.add_argument("--max-events", type=int, default=None, metavar="N",
                   help="hard bound on kept events; the oldest non-critical ones go first (default 100000)")
    p.add_argument("--modules", type=_names, default=[], metavar="a,b",
                   help="modules whose function calls are recorded (args, result, exception, duration)")
    p.add_argument("--objects", type=_names, default=[], metavar="x,y",
                   help="notebook variables traced as objects: method calls and every state change")
    p.add_argument("--repr-objects", action="store_true",
                   help="show objects with their own repr(), run later off the traced thread under a "
                   "time budget (it runs the program's __repr__; default: <Type #n>)")
    if cell:
        p.add_argument("-o", "--output", default=None, metavar="NAME",
                       help="also keep the Trace in this variable (it is always kept as _scope)")
        p.add_argument("--quiet", action="store_true", help="do not show the summary")
        p.add_argument("--environment", action="store_true",
                       help="count the kernel's own threads and tasks in the summary too")


def _record_parser() -> _Parser:
    p = _Parser(prog="%scope", description="%%scope [options]: record the cell -- the threads, tasks and "
                "processes it starts, their messages, locks and traced objects -- keep the Trace as _scope "
                "and show a summary. If the cell raises, the exception shows as usual and the trace is kept.")
    _add_record_options(p, cell=True)
    return p


def _line_parser() -> _Parser:
    p = _Parser(prog="scope", description="%scope COMMAND: drive a recording and the traces.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    start = sub.add_parser("start", help="start recording until %%scope stop (options as for %%%%scope)")
    _add_record_options(start, cell=False)
    sub.add_parser("stop", help="stop recording; the Trace becomes _scope and its summary is shown")
    sub.add_parser("status", help="is a recording running, and how much it holds")
    tr = sub.add_parser("trace", help="trace a module, an object or a lock while recording")
    tr.add_argument("what", choices=("module", "object", "lock"), help="module | object | lock")
    tr.add_argument("name", help="module name, or the notebook variable holding the object / lock")
    ld = sub.add_parser("load", help="load persisted trace directories (merged) as _scope")
    ld.add_argument("paths", nargs="+", metavar="PATH", help="trace directory")
    ld.add_argument("--trusted", action="store_true", help="unpickle recorded object state (only your own traces)")
    sub.add_parser("explore", help="open the explorer on _scope")
    sub.add_parser("postmortem", help="crash analysis of the last failure: a failed cell or a crashed thread/task")
    ex = sub.add_parser("export", help="write _scope: PATH.json = Chrome/Perfetto trace, else a Parquet directory")
    ex.add_argument("path", metavar="PATH", help="where to write")
    sub.add_parser("summary", help="show the summary of _scope again")
    return p


def _usage() -> str:
    """Every option of %%scope and every %scope command, for `%scope?` and `%scope help`."""
    parts = [_record_parser().format_help(), "\n", _line_parser().format_help()]
    sub = next(a for a in _line_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for parser in sub.choices.values():
        if any(a.dest != "help" for a in parser._actions):
            parts.append(f"\n%{parser.format_usage().split(':', 1)[1].strip()}\n")
            parts.extend(f"    {'/'.join(a.option_strings) or a.dest}: {a.help}\n"
                         for a in parser._actions if a.dest != "help")
    return "".join(parts)


class CellFailure:
    """The post-mortem of a `%%scope` cell that raised: the exception, where, and what
    the recording holds from just before (the cell's last events, object states)."""

    def __init__(self, trace, exc: BaseException, ts: int, actor: str | None, cell_file: str | None = None):
        import traceback

        self.trace = trace
        self.exception = exc
        end = trace._span()[1]  # a cell that stopped the recording itself failed after its end
        self.ts = ts if end is None else min(ts, end)
        self.actor = actor
        tb = exc.__traceback__  # from the cell's own frame on: the magic's frames are not the user's
        while cell_file is not None and tb is not None and tb.tb_frame.f_code.co_filename != cell_file:
            tb = tb.tb_next
        self.traceback = "".join(traceback.format_exception(type(exc), exc, tb or exc.__traceback__))

    def last_events(self, n: int = 15):
        import polars as pl

        ev = self.trace.events().filter(pl.col("ts") <= self.ts)
        if self.actor is not None:
            ev = ev.filter(pl.col("actor") == self.actor)
        return ev.tail(n).select("seq", "ts", "kind", "target", "obj", "function", "detail")

    def states(self) -> dict[str, dict]:
        out = {}
        for obj in self.trace.states()["obj"].unique().sort().to_list():
            try:
                out[obj] = self.trace.get_state_at(obj, self.ts)
            except ValueError:
                continue
        return out

    def __repr__(self) -> str:
        lines = [f"Cell failed: {type(self.exception).__name__}: {self.exception}", self.traceback.rstrip(),
                 "Last events of the cell's thread:", str(self.last_events())]
        lines += [f"state of {k}: {v!r}" for k, v in self.states().items()]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html

        states = "".join(f"<li><code>{html.escape(k)}</code>: <code>{html.escape(repr(v)[:300])}</code></li>"
                         for k, v in self.states().items())
        return (f'<div class="scope-postmortem"><b style="color:#b00020">Cell failed: '
                f"{html.escape(type(self.exception).__name__)}: {html.escape(str(self.exception))}</b>"
                f"<pre>{html.escape(self.traceback)}</pre><b>Last events of the cell's thread</b>"
                f"{self.last_events()._repr_html_()}"
                + (f"<b>Traced objects at the failure</b><ul>{states}</ul>" if states else "") + "</div>")


@magics_class
class ScopeMagics(Magics):
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
        except _HelpShown:
            print(_usage())
            return None

    # -- %%scope ----------------------------------------------------------------------------
    def _options(self, args: argparse.Namespace) -> dict[str, Any]:
        opts: dict[str, Any] = {}
        if args.level is not None:
            opts["tracing_level"] = args.level
        if args.sample is not None:
            opts["sample_rate"] = args.sample
        if args.max_events is not None:
            opts["max_events"] = args.max_events
        if args.modules:
            opts["modules"] = tuple(args.modules)
        if args.repr_objects:
            opts["repr_objects"] = True
        return opts

    def _objects(self, names: list[str]) -> list[tuple[str, Any]]:
        missing = [n for n in names if n not in self.shell.user_ns]
        if missing:
            raise UsageError(f"%%scope --objects: no variable named {', '.join(missing)} in the notebook")
        return [(n, self.shell.user_ns[n]) for n in names]

    def _start(self, args: argparse.Namespace):
        import scope_nb

        if scope_nb.is_recording():
            raise UsageError("%scope: a recording is already running; %scope stop first")
        objects = self._objects(args.objects)
        try:
            trace = scope_nb.start(**self._options(args))
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

        args = _record_parser().parse_args(_split(line, "%%scope"))
        if args.output is not None and (not args.output.isidentifier() or keyword.iskeyword(args.output)):
            raise UsageError(f"%%scope -o: {args.output!r} is not a valid variable name")
        code = compile_cell(self.shell, cell)  # a SyntaxError shows before anything is recorded or replaced
        from .. import clock

        since = clock.now()
        trace = self._start(args)
        cell = {"since": since, "thread": threading.current_thread().name, "body_end": None, "actor": None}
        failure: BaseException | None = None
        actor, failed_at = None, 0
        try:
            return run_compiled(code, self.shell.user_ns, cell)
        except BaseException as exc:
            failure, failed_at = exc, clock.now()
            actor = _actor_here(trace)
            raise
        finally:
            self._finish(trace, args, failure, failed_at, actor, code[2], cell)

    def _finish(self, trace, args: argparse.Namespace, failure: BaseException | None, failed_at: int,
                actor: str | None, cell_file: str, cell: dict[str, Any]) -> None:
        """Stop the cell's recording (unless the cell stopped it itself), keep the trace and
        show the summary. A fault here is reported, never raised: the cell's own result or
        exception is what the notebook must see."""
        import scope_nb

        try:
            cell["actor"] = _actor_here(trace)  # the actor the cell ran as, known once it did something
            if scope_nb.is_recording() and scope_nb.current() is trace:
                scope_nb.stop()
            self._keep(trace, args.output)
            if failure is not None:
                self._failure = CellFailure(trace, failure, failed_at, actor, cell_file)
                self._failure_trace = trace
                print(f"scope_nb: the cell raised {type(failure).__name__}; trace kept as _scope "
                      f"({len(trace):,} events) -- %scope postmortem for the analysis", file=sys.stderr)
            elif not args.quiet:
                self._show_summary(trace, None if args.environment else cell)
        except Exception as exc:
            print(f"scope_nb: internal error after the cell ({type(exc).__name__}: {exc}); "
                  "the cell itself ran as usual", file=sys.stderr)

    def _keep(self, trace, name: str | None) -> None:
        self.shell.user_ns["_scope"] = trace
        if name:
            self.shell.user_ns[name] = trace

    def _show_summary(self, trace, cell: dict[str, Any] | None = None) -> None:
        """Show the summary; with `cell` (when the recording began, the cell's thread, when
        its code ended) the kernel's own actors are left out of the counts."""
        from IPython.display import display

        environment: list[str] = []
        if cell is not None:
            from .summary_view import environment_actors

            environment = environment_actors(trace.actors(), cell["since"], cell["thread"], cell["body_end"],
                                             os.getpid(), cell["actor"])
        display(SummaryPanel(trace, environment))

    # -- %scope COMMAND ---------------------------------------------------------------------
    def _line(self, line: str):
        import scope_nb

        words = _split(line, "%scope")
        if not words:
            raise UsageError("%scope: missing COMMAND (start, stop, status, trace, load, explore, postmortem, "
                             "export, summary); %%scope records a cell; see %scope?")
        if words[0] in ("-h", "--help", "help"):
            raise _HelpShown()
        args = _line_parser().parse_args(words)
        cmd = args.command
        if cmd == "start":
            self._start(args)
            self._started_here = True
            print("scope_nb: recording; %scope stop to finish")
            return None
        if cmd == "stop":
            if not scope_nb.is_recording():
                raise UsageError("%scope stop: nothing is recording (%scope start, or %%scope on a cell)")
            live = scope_nb.current()
            cell = {"since": live._span()[0], "thread": threading.current_thread().name, "body_end": None,
                    "actor": _actor_here(live)}
            trace = scope_nb.stop()
            self._started_here = False
            self._keep(trace, None)
            self._show_summary(trace, cell)
            return None
        if cmd == "status":
            return self._status()
        if cmd == "trace":
            return self._trace(args.what, args.name)
        if cmd == "load":
            try:
                trace = scope_nb.load(*args.paths, trusted=args.trusted)
            except (OSError, ValueError, TypeError) as exc:
                raise UsageError(f"%scope load: {str(exc).splitlines()[0]}") from None
            self._keep(trace, None)
            self._show_summary(trace)
            return None
        if cmd == "summary":
            self._show_summary(self._trace_or_fail("summary"))
            return None
        if cmd == "explore":
            return self._trace_or_fail("explore").explore()
        if cmd == "postmortem":
            return self._postmortem()
        if cmd == "export":
            trace = self._trace_or_fail("export")
            try:
                path = trace.export_perfetto(args.path) if args.path.lower().endswith(".json") else trace.save(args.path)
            except (OSError, ValueError, TypeError) as exc:
                raise UsageError(f"%scope export: {str(exc).splitlines()[0]}") from None
            print(f"scope_nb: wrote {path}")
            return None
        raise UsageError(f"%scope: unknown command {cmd!r}")  # argparse's choices make this unreachable

    def _trace_or_fail(self, cmd: str):
        import scope_nb

        trace = self.shell.user_ns.get("_scope")
        if not isinstance(trace, scope_nb.Trace):
            trace = scope_nb.current()
        if trace is None:
            raise UsageError(f"%scope {cmd}: no trace yet; record a cell with %%scope or %scope load PATH")
        return trace

    def _status(self) -> str:
        import scope_nb

        if scope_nb.is_recording():
            trace = scope_nb.current()
            opts = trace.options
            msg = (f"scope_nb: recording ({len(trace):,} events so far, {trace.dropped:,} dropped; "
                   f"level {opts.tracing_level}, max_events {opts.max_events:,}, sample {opts.sample_rate})")
        elif isinstance(self.shell.user_ns.get("_scope"), scope_nb.Trace):
            msg = f"scope_nb: not recording; _scope holds {len(self.shell.user_ns['_scope']):,} events"
        else:
            msg = "scope_nb: not recording; no trace yet"
        print(msg)
        return None

    def _trace(self, what: str, name: str):
        import scope_nb

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

    def _postmortem(self):
        """The most recent failure: a crashed actor in the last trace, or the failed cell."""
        import polars as pl

        trace = self._trace_or_fail("postmortem")
        crashes = trace.events(["crash"])
        crash_ts = int(crashes["ts"].max()) if crashes.height else None
        cell = self._failure if self._failure_trace is trace else None
        if cell is not None and (crash_ts is None or cell.ts >= crash_ts):
            return cell
        if crash_ts is None:
            raise UsageError("%scope postmortem: no failure in the last trace (no crashed thread/task, the cell did not raise)")
        actor = crashes.filter(pl.col("ts") == crash_ts)["actor"][0]
        return trace.analyze_crash(actor)


class SummaryPanel:
    """What `%%scope` shows: the summary (text/HTML for saved notebooks) and, live,
    buttons opening the explorer on the trace, at the first finding of a section."""

    def __init__(self, trace, environment: list[str] | tuple[str, ...] = ()):
        from .summary_view import sections_for

        self.trace = trace
        self.environment = list(environment)  # actors of the kernel, left out of the counts
        started = time.perf_counter()
        self.sections = sections_for(trace, self.environment)
        self.seconds = time.perf_counter() - started

    def __repr__(self) -> str:
        from ..analysis.summary import summary_text

        return summary_text(self.trace, self.sections)

    def _repr_html_(self) -> str:
        from .summary_view import summary_html

        return summary_html(f"scope_nb {'recording' if self.trace.live else 'trace'}", self.sections)

    def widget(self):
        import ipywidgets as W

        out = W.Output()
        buttons = [W.Button(description="explore", icon="search", tooltip="open the explorer on this trace")]
        targets: list[tuple[Any, str | None]] = [(None, None)]
        for sec in self.sections:
            if sec.count and sec.first_ts is not None and sec.name in ("crashes", "races", "deadlocks", "stalls"):
                buttons.append(W.Button(description=f"{sec.name} ({sec.count})", button_style="danger",
                                        tooltip=f"open the explorer at the first of the {sec.name}"))
                targets.append((sec.first_ts, None))
            elif sec.name == "hotspots" and sec.items:
                buttons.append(W.Button(description="hotspots", tooltip="open the explorer on the hotspots"))
                targets.append((None, "hotspots"))

        def opener(at, tab):
            def open_(_):
                from IPython.display import display

                out.clear_output()
                with out:
                    display(self.trace.explore() if at is None and tab is None else
                            _explorer(self.trace, at, tab))
            return open_

        for button, (at, tab) in zip(buttons, targets, strict=True):
            button.on_click(opener(at, tab))
        return W.VBox([W.HTML(self._repr_html_()), W.HBox(buttons), out])

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = {"text/plain": repr(self), "text/html": self._repr_html_()}
        try:
            view = self.widget()._repr_mimebundle_()
        except Exception:  # no widget support (plain terminal): the static summary is complete
            return bundle
        bundle.update({k: v for k, v in view.items() if k != "text/plain"})
        return bundle


def _explorer(trace, at, tab):
    from .explorer import Explorer

    return Explorer(trace, at=at, tab=tab)


def _actor_here(trace) -> str | None:
    """This thread's actor in `trace` while it records (the cell may have stopped it)."""
    import scope_nb

    try:
        return scope_nb._recorder().current_actor() if scope_nb.current() is trace else None
    except Exception:  # not recording any more, or a recorder fault: the failure is kept without it
        return None


def compile_cell(shell, cell: str) -> tuple[CodeType, CodeType | None, str]:
    """A cell's code compiled as IPython would: magics and `!` lines transformed, a last
    expression split off (its value is the cell's result), top-level `await` allowed.
    Returns (body, last expression or None, filename); raises SyntaxError."""
    source = shell.transform_cell(cell)
    filename = shell.compile.cache(source, shell.execution_count, raw_code=cell)
    tree = ast.parse(source, filename=filename)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr) and not source.rstrip().endswith(";"):
        last = ast.Expression(tree.body.pop().value)
    flags = shell.compile.flags | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    body = compile(tree, filename, "exec", flags=flags, dont_inherit=True)
    expr = compile(last, filename, "eval", flags=flags, dont_inherit=True) if last is not None else None
    return body, expr, filename


def run_compiled(code: tuple[CodeType, CodeType | None, str], ns: dict, marks: dict | None = None):
    """Run what `compile_cell` made in `ns`; returns the last expression's value.
    Exceptions propagate unchanged. `marks["body_end"]` is set to when the cell's own
    code finished (before an `await` cell's event loop is closed)."""
    __tracebackhide__ = True  # noqa: F841 - IPython hides this frame from the traceback
    body, expr, _ = code
    if (body.co_flags | (expr.co_flags if expr else 0)) & inspect.CO_COROUTINE:
        return _run_async(body, expr, ns, {} if marks is None else marks)
    exec(body, ns)
    return eval(expr, ns) if expr is not None else None


def run_cell_body(shell, cell: str):
    """Run a cell's code in the user namespace as IPython would (see `compile_cell`);
    returns the value of a last expression. Exceptions propagate unchanged."""
    __tracebackhide__ = True  # noqa: F841
    return run_compiled(compile_cell(shell, cell), shell.user_ns)


def _run_async(body, expr, ns, marks: dict):
    """Run an `await` cell to completion on a private event loop in this thread (the
    kernel's own loop may be running here: it is set aside and put back after)."""
    __tracebackhide__ = True  # noqa: F841
    from .. import clock

    async def main():
        __tracebackhide__ = True  # noqa: F841
        try:
            result = eval(body, ns)
            if inspect.iscoroutine(result):
                await result
            if expr is None:
                return None
            value = eval(expr, ns)
            return await value if inspect.iscoroutine(value) else value
        finally:
            marks["body_end"] = clock.now()

    outer = asyncio.events._get_running_loop()
    asyncio.events._set_running_loop(None)
    try:
        with asyncio.Runner() as runner:
            return runner.run(main())
    finally:
        asyncio.events._set_running_loop(outer)


ScopeMagics.scope.__doc__ = _usage()

__all__ = ["ScopeMagics", "SummaryPanel", "CellFailure", "run_cell_body", "compile_cell", "run_compiled"]
