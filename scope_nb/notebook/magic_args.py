"""The arguments of `%%scope` and `%scope`: one argparse definition serves parsing,
refusing and `%scope?`.

The options are defined once (`_add_record_options`) for the cell magic and for
`%scope start`, so the two cannot drift apart, and the help text is generated from the
same parsers, so `%scope?` lists exactly what is accepted. argparse is bent two ways
for a notebook: an error is a one-line `UsageError` (argparse would print usage and
exit the kernel), and an option given twice is refused (argparse keeps the last).
"""

from __future__ import annotations

import argparse
import keyword
import shlex
from typing import Any

from IPython.core.error import UsageError

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
        raise HelpShown()


class HelpShown(Exception):
    """`-h` / `--help` was asked for: the caller prints `usage()` instead of running."""


def split_words(line: str, prog: str) -> list[str]:
    """The magic's arguments as shell words; an unclosed quote is a usage error."""
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"{prog}: {exc} in {line.strip()!r}") from None


def _names(text: str) -> list[str]:
    """A comma-separated option value as its names (`a, b,` -> [a, b])."""
    return [n.strip() for n in text.split(",") if n.strip()]


def _add_record_options(p: argparse.ArgumentParser, cell: bool) -> None:
    p.add_argument(
        "--level",
        choices=LEVELS,
        default=None,
        help="what to record (default full): full | messages_only | states_only | minimal | off",
    )
    p.add_argument(
        "--sample",
        type=float,
        default=None,
        metavar="R",
        help="keep this fraction (0..1) of non-critical events, chosen deterministically",
    )
    p.add_argument(
        "--max-events",
        type=int,
        default=None,
        metavar="N",
        help="hard bound on kept events; the oldest non-critical ones go first (default 100000)",
    )
    p.add_argument(
        "--modules",
        type=_names,
        default=[],
        metavar="a,b",
        help="modules whose function calls are recorded (args, result, exception, duration)",
    )
    p.add_argument(
        "--objects",
        type=_names,
        default=[],
        metavar="x,y",
        help="notebook variables traced as objects: method calls and every state change",
    )
    p.add_argument(
        "--races",
        action="store_true",
        help="watch attribute accesses of instances of the notebook's and program's own "
        "classes for races, with no trace_object (a Python call per such access)",
    )
    p.add_argument(
        "--repr-objects",
        action="store_true",
        help="show objects with their own repr(), run later off the traced thread under a "
        "time budget (it runs the program's __repr__; default: <Type #n>)",
    )
    if cell:
        p.add_argument(
            "-o",
            "--output",
            default=None,
            metavar="NAME",
            help="also keep the Trace in this variable (it is always kept as _scope)",
        )
        p.add_argument("--quiet", action="store_true", help="do not show the summary")
        _add_kernel_flag(p)


def _add_kernel_flag(p: argparse.ArgumentParser) -> None:
    """`--kernel-actors`: one flag, one meaning, wherever a summary or explorer is shown
    (`--environment` is its older name)."""
    p.add_argument(
        "--kernel-actors",
        "--environment",
        dest="kernel_actors",
        action="store_true",
        help="show the kernel's own threads and tasks (ipykernel's, the thread the cell runs "
        "on), hidden by default, in the summary and the explorer (its tabs too)",
    )


def record_parser() -> _Parser:
    p = _Parser(
        prog="%scope",
        description="%%scope [options]: record the cell -- the threads, tasks and "
        "processes it starts, their messages, locks and traced objects -- keep the Trace as _scope "
        "and show a summary. If the cell raises, the exception shows as usual and the trace is "
        "kept.",
    )
    _add_record_options(p, cell=True)
    return p


def line_parser() -> _Parser:
    p = _Parser(prog="scope", description="%scope COMMAND: drive a recording and the traces.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    start = sub.add_parser(
        "start", help="start recording until %%scope stop (options as for %%%%scope)"
    )
    _add_record_options(start, cell=False)
    _add_kernel_flag(
        sub.add_parser(
            "stop", help="stop recording; the Trace becomes _scope and its summary is shown"
        )
    )
    sub.add_parser("status", help="is a recording running, and how much it holds")
    tr = sub.add_parser("trace", help="trace a module, an object or a lock while recording")
    tr.add_argument("what", choices=("module", "object", "lock"), help="module | object | lock")
    tr.add_argument("name", help="module name, or the notebook variable holding the object / lock")
    ld = sub.add_parser("load", help="load persisted trace directories (merged) as _scope")
    ld.add_argument("paths", nargs="+", metavar="PATH", help="trace directory")
    ld.add_argument(
        "--trusted",
        action="store_true",
        help="unpickle recorded object state (only your own traces)",
    )
    _add_kernel_flag(ld)
    _add_kernel_flag(sub.add_parser("explore", help="open the explorer on _scope"))
    sub.add_parser(
        "postmortem",
        help="crash analysis of the last failure: a failed cell or a crashed thread/task",
    )
    ex = sub.add_parser(
        "export", help="write _scope: PATH.json = Chrome/Perfetto trace, else a Parquet directory"
    )
    ex.add_argument("path", metavar="PATH", help="where to write")
    _add_kernel_flag(sub.add_parser("summary", help="show the summary of _scope again"))
    return p


def usage() -> str:
    """Every option of %%scope and every %scope command, for `%scope?` and `%scope help`."""
    parts = [record_parser().format_help(), "\n", line_parser().format_help()]
    sub = next(a for a in line_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for parser in sub.choices.values():
        if any(a.dest != "help" for a in parser._actions):
            parts.append(f"\n%{parser.format_usage().split(':', 1)[1].strip()}\n")
            parts.extend(
                f"    {'/'.join(a.option_strings) or a.dest}: {a.help}\n"
                for a in parser._actions
                if a.dest != "help"
            )
    return "".join(parts)


def record_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of `scope_nb.start` the parsed options ask for (only those
    given: the recorder's own defaults apply to the rest)."""
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
    if args.races:
        opts["races"] = True
    return opts


def check_output_name(name: str | None) -> None:
    """`-o NAME` must be a name a variable can have: it is assigned in the notebook."""
    if name is not None and (not name.isidentifier() or keyword.iskeyword(name)):
        raise UsageError(f"%%scope -o: {name!r} is not a valid variable name")


__all__ = [
    "LEVELS",
    "HelpShown",
    "split_words",
    "record_parser",
    "line_parser",
    "usage",
    "record_options",
    "check_output_name",
]
