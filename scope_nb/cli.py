"""The `scope-nb` command (also `python -m scope_nb`): record a program outside a
notebook, then read what it recorded.

    scope-nb run [options] script.py [args...]   record a script (like python -m cProfile)
    scope-nb run [options] -m module [args...]   record a module run as __main__
    scope-nb report DIR [--json]                 crashes, races, deadlocks, stalls,
                                                 hotspots, contention
    scope-nb export DIR --perfetto out.json      Chrome trace-event JSON (opens in Perfetto)
    scope-nb demo                                the README's walkthrough
    scope-nb version (or --version)              Python, and the back-end in use (native or pure)

Exit codes: 0 success; for `run`, the program's own exit code when it calls
sys.exit(n), 1 when it ends by an uncaught exception; 2 bad command-line usage;
3 a trace that cannot be read or written, or was read only in part (the message names
the file); 124 `run` stopped by --timeout (the trace is kept); 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from typing import Any

EXIT_OK, EXIT_CRASH, EXIT_USAGE, EXIT_TRACE, EXIT_TIMEOUT, EXIT_INTERRUPT = 0, 1, 2, 3, 124, 130


class CliError(Exception):
    """An error reported in one line, with its exit code."""

    def __init__(self, message: str, code: int = EXIT_TRACE):
        super().__init__(message)
        self.code = code


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="scope-nb",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--version", action=_VersionAction, help="print what `scope-nb version` prints and exit"
    )
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="record a script or module")
    run.add_argument("-o", "--output", help="trace directory (default: ./scope-trace-<time>)")
    run.add_argument(
        "-m", dest="as_module", action="store_true", help="run a module (like python -m)"
    )
    run.add_argument(
        "--timeout", type=float, help="stop the program after this many seconds (exit code 124)"
    )
    run.add_argument(
        "--level",
        default="full",
        help="tracing level: full | messages_only | states_only | minimal",
    )
    run.add_argument("--modules", default="", help="comma-separated modules whose calls are traced")
    run.add_argument(
        "--no-calls",
        action="store_true",
        help="do not trace calls of all user code (default: traced)",
    )
    run.add_argument(
        "--max-events", type=int, default=1_000_000, help="events kept in memory between flushes"
    )
    run.add_argument("--sample-rate", type=float, default=1.0)
    run.add_argument(
        "--flush-interval", type=float, default=1.0, help="seconds between writes to disk"
    )
    run.add_argument(
        "--no-children", action="store_true", help="do not record child Python processes"
    )
    run.add_argument(
        "--repr-objects",
        action="store_true",
        help="show objects with their own repr(), formatted later off the traced thread "
        "(runs the program's __repr__; default: <Type #n>)",
    )
    run.add_argument(
        "--races",
        action="store_true",
        help="watch attribute accesses of instances of the program's own classes for races "
        "(costs a Python call per such access)",
    )
    run.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    run.add_argument(
        "program", nargs=argparse.REMAINDER, help="script.py [args] (or module [args] with -m)"
    )
    rep = sub.add_parser("report", help="what went wrong in a recorded trace")
    rep.add_argument("paths", nargs="+", help="trace directories (merged)")
    rep.add_argument("--json", action="store_true", help="machine-readable output")
    rep.add_argument("--top", type=int, default=10, help="hotspots and locks shown")
    exp = sub.add_parser("export", help="export a trace to another format")
    exp.add_argument("paths", nargs="+", help="trace directories (merged)")
    exp.add_argument(
        "--perfetto", required=True, metavar="OUT.json", help="Chrome trace-event JSON file"
    )
    sub.add_parser("demo", help="record and explain the demo program")
    sub.add_parser(
        "version", help="the Python version and the back-end in use (native or pure), and why"
    )
    return p


# -- version -----------------------------------------------------------------------------
def _version_text() -> str:
    """Which back-end records here and why: a pure one is 3-4x slower, and it is chosen
    silently (a missing build, a free-threaded Python, a failed self-test)."""
    from importlib import metadata

    from .recorder.buffer import NEWEST_TESTED, backend_status

    st = backend_status()
    try:
        ours = metadata.version("scope_nb")
    except metadata.PackageNotFoundError:
        ours = "(not installed)"
    python = f"Python {st.python}"
    if not st.tested:
        python += f" (untested: newer than {NEWEST_TESTED[0]}.{NEWEST_TESTED[1]})"
    why = st.frames if st.backend == "native" else st.reason
    return f"scope-nb {ours}\n{python}\nback-end: {st.backend} ({why})"


class _VersionAction(argparse.Action):
    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(_version_text())
        parser.exit()


def _version(args) -> int:
    print(_version_text())
    return EXIT_OK


# -- run ---------------------------------------------------------------------------------
class _Run:
    """One recorded run: the program in the main thread, a progress line and a timeout
    watcher on recorder threads, and one place that stops the recording."""

    def __init__(self, args):
        self.args = args
        self.done = threading.Event()
        self.finished = threading.Lock()
        self.stopped = False
        self.timed_out = False
        self.returned = False  # the program's main thread came back: the rest is run_out's
        self.started = time.monotonic()
        self.rec = None

    def options(self) -> dict[str, Any]:
        a = self.args
        out = a.output or f"scope-trace-{time.strftime('%Y%m%d-%H%M%S')}"
        return {
            "storage": "disk",
            "persist_path": out,
            "tracing_level": a.level,
            "max_events": a.max_events,
            "sample_rate": a.sample_rate,
            "flush_interval": a.flush_interval,
            "follow_children": not a.no_children,
            "trace_all": not a.no_calls,
            "repr_objects": a.repr_objects,
            "races": a.races,
            "modules": [m for m in a.modules.split(",") if m],
        }

    def counts(self) -> tuple[int, int]:
        from .store.flusher import flusher_of

        rec = self.rec
        fl = flusher_of(rec)
        pending = rec.store.sealed_count + sum(len(b.ts) for b in list(rec.store.buffers))
        return (fl.events_written if fl else 0) + pending, rec.dropped

    def line(self) -> str:
        events, dropped = self.counts()
        return (
            f"scope-nb: {events:,} events, {dropped:,} dropped, "
            f"{time.monotonic() - self.started:.1f} s"
        )

    def progress(self) -> None:
        while not self.done.wait(0.5):
            sys.stderr.write("\r" + self.line() + "  ")
            sys.stderr.flush()

    def watch(self, timeout: float, main_ident: int) -> None:
        if self.done.wait(timeout) or self.returned:
            return
        self.timed_out = True
        self.keep_waits()
        print(
            f"\nscope-nb: timeout after {timeout:g} s; stopping the program",
            file=sys.stderr,
            flush=True,
        )
        signal.pthread_kill(main_ident, signal.SIGINT)
        if not self.done.wait(2.0):  # the program did not come back: keep the trace anyway
            self.finish()
            os._exit(EXIT_TIMEOUT)

    def run_out(self, timeout: float) -> bool:
        """After the main thread came back, wait as the interpreter would for the program's
        non-daemon threads, but only until the deadline: False when one is still running
        then (the recording still runs meanwhile, so what it is stuck on is kept)."""
        self.returned = True
        deadline = self.started + timeout
        me = threading.current_thread()
        try:
            while any(t is not me and not t.daemon and t.is_alive() for t in threading.enumerate()):
                if time.monotonic() >= deadline:
                    break
                self.done.wait(min(0.05, max(deadline - time.monotonic(), 0)))
            else:
                return True
        except KeyboardInterrupt:  # the watcher's signal, sent just before `returned` was set
            pass
        self.timed_out = True
        self.keep_waits()
        print(
            f"\nscope-nb: timeout after {timeout:g} s; threads still running: "
            + ", ".join(t.name for t in threading.enumerate() if t is not me and not t.daemon),
            file=sys.stderr,
            flush=True,
        )
        return False

    def keep_waits(self) -> None:
        """Before a timeout ends the program: who is stuck on what, into the trace (a
        hang or deadlock, with every waiting thread's stack)."""
        from ._control import live_recorder
        from .recorder.patchers.watchdog import look_now

        rec = live_recorder()
        if rec is not None:
            look_now(rec)

    def finish(self) -> str | None:
        """Stop recording once (final flush); returns the trace directory."""
        import scope_nb

        with self.finished:
            if self.stopped:
                return None
            self.stopped = True
            self.done.set()
            if scope_nb.is_recording():
                scope_nb.stop()
            # the last flush runs on after stop(); a timeout ends the process with
            # os._exit, which runs no atexit hook, so the files are finished here
            from ._control import settle_all

            settle_all()
        path = self.rec.options.persist_path
        if not self.args.quiet:
            print(f"\r{self.line()} -> {path}", file=sys.stderr, flush=True)
        return path


def _run(args) -> int:
    import runpy

    import scope_nb

    if not args.program:
        raise CliError(
            "run: give a script (scope-nb run script.py) or a module (scope-nb run -m module)",
            EXIT_USAGE,
        )
    target, *rest = args.program
    if not args.as_module and not os.path.isfile(target):
        raise CliError(f"run: no such script: {target}", EXIT_USAGE)
    # also refuses nan
    if args.timeout is not None and not 0 < args.timeout <= threading.TIMEOUT_MAX:
        raise CliError(
            f"run: --timeout {args.timeout:g} is invalid; accepted: a positive number of seconds, "
            f"at most {threading.TIMEOUT_MAX:g}",
            EXIT_USAGE,
        )
    if args.as_module and not _module_exists(target):
        raise CliError(f"run: no module named {target!r}", EXIT_USAGE)
    run = _Run(args)
    try:
        scope_nb.start(**run.options())
    except (ValueError, TypeError) as e:
        raise CliError(f"run: {e}", EXIT_USAGE) from None
    except OSError as e:
        raise CliError(f"run: cannot write the trace: {e}") from None
    from . import _control

    run.rec = _control.recorder()
    if not args.quiet and sys.stderr.isatty():
        run.rec.own_thread(run.progress, "progress").start()
    if args.timeout is not None:
        run.rec.own_thread(
            lambda: run.watch(args.timeout, threading.get_ident()), "timeout"
        ).start()
    sys.argv = [target, *rest]
    code = EXIT_OK
    try:
        if args.as_module:
            runpy.run_module(target, run_name="__main__", alter_sys=True)
        else:
            sys.path.insert(0, os.path.dirname(os.path.abspath(target)))
            runpy.run_path(target, run_name="__main__")
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if e.code is not None and not isinstance(e.code, int):
            print(e.code, file=sys.stderr)
    except KeyboardInterrupt:
        code = EXIT_TIMEOUT if run.timed_out else EXIT_INTERRUPT
        if not run.timed_out:
            run.keep_waits()  # Ctrl-C on a hung program: what its other threads wait on
    except BaseException as e:
        _program_crashed(run.rec, e)
        code = EXIT_CRASH
    if args.timeout is not None and not run.timed_out:
        run.run_out(args.timeout)
    if run.timed_out:
        code = EXIT_TIMEOUT
    run.finish()
    if code == EXIT_TIMEOUT:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # threads still hung must not keep the process alive
    return code


def _module_exists(name: str) -> bool:
    """Whether the top-level package of `-m name` exists. Only the top level is looked up:
    finding a submodule would import its parents before the recording starts."""
    import importlib.util

    try:
        return importlib.util.find_spec(name.partition(".")[0]) is not None
    except (ImportError, ValueError):  # a name like "" or ".x"
        return False


def _program_crashed(rec, exc: BaseException) -> None:
    """Print the traceback as python would (without this module's frames) and record
    the main thread's crash, which no thread hook sees when the program runs here."""
    tb = exc.__traceback__
    while tb is not None and (
        tb.tb_frame.f_code.co_filename in (__file__, "<frozen runpy>")
        or tb.tb_frame.f_code.co_filename.endswith("runpy.py")
    ):
        tb = tb.tb_next
    lines = traceback.format_exception(type(exc), exc, tb)
    sys.stderr.write("".join(lines))
    try:
        actor = rec.current_actor()
        last = traceback.extract_tb(tb)[-1] if tb is not None else None
        where = f"{last.filename}:{last.lineno}" if last else None
        detail = f"{type(exc).__name__}|{rec.fmt.repr(exc)}\n" + "".join(lines[:-1])
        rec.emit("crash", detail=detail, actor=actor, location=where, raw=True)
        rec.actors.end(actor, "crashed", f"{type(exc).__name__}: {exc}")
    except Exception as e:
        rec.fault("cli:crash", e)


# -- report -------------------------------------------------------------------------------
def _load(paths):
    """The merged trace and the files that could not be read (each reported in one line)."""
    import warnings

    import scope_nb

    from .store.load import TraceLoadWarning

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", TraceLoadWarning)
            trace = scope_nb.load(*paths)
    except (FileNotFoundError, ValueError, OSError) as e:
        raise CliError(str(e).splitlines()[0] if str(e) else type(e).__name__) from None
    skipped = []
    for w in caught:
        if issubclass(w.category, TraceLoadWarning):
            skipped.append(str(w.message))
            print(f"scope-nb: warning: {w.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return trace, skipped


def _jsonable(obj: Any) -> Any:
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    if hasattr(obj, "to_dicts"):
        return obj.to_dicts()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [_jsonable(v) for v in obj]
    return repr(obj)


def _sections(trace, top: int) -> dict[str, Any]:
    """Each section computed on its own: one failing analysis does not hide the others."""
    jobs = {
        "crashes": lambda: trace.get_crash_events(),
        "races": lambda: trace.detect_race_conditions(),
        "deadlocks": lambda: trace.detect_deadlocks(),
        "stalls": lambda: trace.detect_stalls(),
        "hotspots": lambda: trace.performance_hotspots().head(top),
        "contention": lambda: trace.lock_contention().head(top),
    }
    out = {}
    for name, job in jobs.items():
        try:
            out[name] = job()
        except Exception as e:
            out[name] = CliError(f"{type(e).__name__}: {e}")
    return out


def _overview(trace) -> dict[str, Any]:
    actors = trace.actors()
    lo, hi = trace.time_range()
    return {
        "paths": trace.meta.get("paths", []),
        "processes": actors.filter(actors["kind"] == "process").height,
        "actors": actors.height,
        "events": len(trace),
        "dropped": trace.dropped_by_reason,
        "errors": trace.errors,
        "duration_s": (hi - lo) / 1e9,
    }


def _report(args) -> int:
    if args.top < 0:
        raise CliError(f"report: --top {args.top} is invalid; accepted: 0 or more rows", EXIT_USAGE)
    trace, skipped = _load(args.paths)
    sections = _sections(trace, args.top)
    failed = [k for k, v in sections.items() if isinstance(v, CliError)]
    if args.json:
        doc = {"trace": {**_overview(trace), "skipped": skipped}}
        for k, v in sections.items():
            doc[k] = {"error": str(v)} if isinstance(v, CliError) else _jsonable(v)
        print(json.dumps(doc, indent=1, default=str))
    else:
        import polars as pl

        ov = _overview(trace)
        print(
            f"trace {', '.join(ov['paths'])}: {ov['processes']} process(es), {ov['actors']} "
            "actors, "
            f"{ov['events']:,} events over {ov['duration_s']:.3f} s; dropped "
            f"{sum(ov['dropped'].values()):,}"
        )
        for name, value in sections.items():
            count = (
                value.height
                if isinstance(value, pl.DataFrame)
                else (len(value) if isinstance(value, list) else 0)
            )
            print(f"\n== {name} ({'error' if isinstance(value, CliError) else count}) ==")
            if isinstance(value, CliError):
                print(f"could not compute: {value}")
            elif isinstance(value, pl.DataFrame):
                with pl.Config(
                    tbl_rows=args.top,
                    tbl_cols=-1,
                    tbl_width_chars=max(120, shutil.get_terminal_size((160, 24)).columns),
                    fmt_str_lengths=60,
                    tbl_hide_dataframe_shape=True,
                    tbl_hide_column_data_types=True,
                ):
                    print(_in_ms(value) if value.height else "none")
            elif not value:
                print("none")
            else:
                for item in value:
                    print(repr(item))
    return EXIT_TRACE if failed or skipped else EXIT_OK


def _in_ms(frame):
    """A table as people read it: durations in milliseconds (`total_ms`), not integer
    nanoseconds; the JSON report keeps the exact `_ns` columns."""
    import polars as pl

    ns = [c for c in frame.columns if c.endswith("_ns")]
    return frame.with_columns(
        [(pl.col(c) / 1e6).round(3).alias(c.removesuffix("_ns") + "_ms") for c in ns]
    ).select([c.removesuffix("_ns") + "_ms" if c in ns else c for c in frame.columns])


def _export(args) -> int:
    trace, skipped = _load(args.paths)
    try:
        path = trace.export_perfetto(args.perfetto)
    except OSError as e:
        raise CliError(f"export: {e}") from None
    print(f"scope-nb: wrote {path} ({len(trace):,} events); open it at https://ui.perfetto.dev")
    return EXIT_TRACE if skipped else EXIT_OK


def _demo(args) -> int:
    from .demo import main as demo_main

    code = demo_main()
    return code if isinstance(code, int) else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return {
            "run": _run,
            "report": _report,
            "export": _export,
            "demo": _demo,
            "version": _version,
        }[args.command](args)
    except CliError as e:
        print(f"scope-nb: error: {e}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        print("scope-nb: interrupted", file=sys.stderr)
        return EXIT_INTERRUPT
