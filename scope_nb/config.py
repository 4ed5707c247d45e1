"""Recording options: one validated, frozen object, so every layer reads the same
values and a wrong option fails at `start()` with a message naming it."""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

TRACING_LEVELS = ("full", "messages_only", "states_only", "minimal", "off")
STORAGES = ("memory", "disk")

DEFAULT_REDACT = (
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "key",
    "authorization",
    "auth",
    "cookie",
    "session",
    "credential",
    "private",
)


@dataclass(frozen=True)
class Options:
    """Every recording option, validated by `make_options`.

    `repr_objects` (default False): by default an object that is neither a built-in
    atomic value nor a built-in container is shown as its type and a number
    (`<ClientResponse #3>`), because running its `__repr__` can change the program (a
    repr that reads a caching property, or calls a method a test counts). With
    `repr_objects=True` such values are shown with their own `repr()`. The risk: the
    program's code runs — never on the traced thread at event time, but later, when
    the events are decoded (a query, `save()`, the flusher), on a thread of its own with
    at most `values.REPR_BUDGET_S` per value; a repr that raises, is slower than that or
    returns no str is counted in `trace.errors` and shown as `<Type #n>`. The text
    therefore reflects the object's state when it is formatted, not when it was
    recorded, and each such object is kept alive until it is formatted. It applies to
    the values the buffers keep until decoding (arguments and results of traced
    functions); values made into text at event time (messages, traced objects' calls
    and states) stay `<Type #n>`.
    """

    storage: str = "memory"
    max_events: int = 100_000
    sample_rate: float = 1.0
    tracing_level: str = "full"
    persist_to_disk: bool = False
    persist_path: str | None = None
    auto_cleanup: bool = True
    seed: int = 0
    # what to trace from the start (names or modules); more can be added while recording
    modules: tuple[str, ...] = ()
    trace_all: bool = False
    capture_args: bool = True
    # values
    max_repr: int = 200
    max_depth: int = 3
    redact: tuple[str, ...] = DEFAULT_REDACT
    # show objects other than built-in values with their own repr(): see Options' docstring
    repr_objects: bool = False
    # persistence
    flush_interval: float = 1.0
    segment_bytes: int = 8 << 20
    retention_segments: int | None = None
    # detectors that run while recording
    watchdog: float | None = None  # seconds of mutual waiting before a hang is recorded
    slow_callback: float = 0.1  # asyncio step longer than this is a stall
    memory_interval: float | None = None  # seconds between memory samples
    tracemalloc: bool = False
    patch: bool = True  # patch threads, queues, locks, tasks (lifecycle, messages, locks)
    follow_children: bool = True  # trace child Python processes when persisting
    # watch attribute accesses of instances of the program's own classes, for the race
    # detector (recorder/patchers/objects/own_classes.py); off: it costs a Python call
    # per attribute access of those instances
    races: bool = False

    @property
    def persisting(self) -> bool:
        return self.persist_to_disk or self.storage == "disk"


_FIELDS = {f.name: f for f in dataclasses.fields(Options)}


def some(items: list[str], n: int = 8) -> str:
    """The first `n` items and how many more: an error message stays readable when
    it lists hundreds of actors, objects or files."""
    more = len(items) - n
    return ", ".join(items[:n]) + (f", ... +{more} more" if more > 0 else "") if items else "none"


def _fail(name: str, value: Any, accepted: str) -> ValueError:
    return ValueError(f"scope_nb: option {name}={value!r} is invalid; accepted: {accepted}")


def _number(name, value, kind, lo=None, hi=None, allow_none=False):
    if value is None and allow_none:
        return None
    ok_types = (int,) if kind is int else (int, float)
    if isinstance(value, bool) or not isinstance(value, ok_types):
        raise TypeError(
            f"scope_nb: option {name} must be {'an int' if kind is int else 'a number'}"
            f"{' or None' if allow_none else ''}, got {type(value).__name__} {value!r}"
        )
    # NaN fails both
    if (lo is not None and not value >= lo) or (hi is not None and not value <= hi):
        raise _fail(
            name, value, f"{lo if lo is not None else '-inf'} .. {hi if hi is not None else 'inf'}"
        )
    return kind(value)


def _names(name: str, value: Any) -> tuple[str, ...]:
    accepted = "names or modules" if name == "modules" else "names (str)"
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    # bytes iterate as ints
    if isinstance(value, Iterable) and not isinstance(value, bytes | bytearray):
        out = []
        for v in value:
            if isinstance(v, str):
                out.append(v)
            elif name == "modules" and hasattr(v, "__name__"):
                out.append(v.__name__)
            else:
                raise TypeError(f"scope_nb: option {name} takes {accepted}, got {v!r}")
        return tuple(out)
    raise TypeError(f"scope_nb: option {name} takes a list of names, got {type(value).__name__}")


def make_options(**options: Any) -> Options:
    """Validate keyword options into an `Options`; unknown names are refused."""
    unknown = sorted(set(options) - set(_FIELDS))
    if unknown:
        raise ValueError(
            f"scope_nb: unknown option(s) {', '.join(unknown)}; accepted: {', '.join(_FIELDS)}"
        )
    o = dict(options)
    if "storage" in o and o["storage"] not in STORAGES:
        raise _fail("storage", o["storage"], " | ".join(STORAGES))
    if "tracing_level" in o and o["tracing_level"] not in TRACING_LEVELS:
        raise _fail("tracing_level", o["tracing_level"], " | ".join(TRACING_LEVELS))
    if "max_events" in o:
        o["max_events"] = _number("max_events", o["max_events"], int, 1)
    if "sample_rate" in o:
        o["sample_rate"] = _number("sample_rate", o["sample_rate"], float, 0.0, 1.0)
    for name in ("seed", "max_repr", "max_depth", "segment_bytes"):
        if name in o:
            o[name] = _number(name, o[name], int, 0 if name == "seed" else 1)
    if "retention_segments" in o:
        o["retention_segments"] = _number(
            "retention_segments", o["retention_segments"], int, 1, allow_none=True
        )
    # durations end up as thread wait timeouts and int nanoseconds: finite, at most TIMEOUT_MAX
    for name in ("flush_interval", "slow_callback"):
        if name in o:
            o[name] = _number(name, o[name], float, 0.0, threading.TIMEOUT_MAX)
            if o[name] <= 0:
                raise _fail(
                    name, o[name], f"a positive number of seconds, at most {threading.TIMEOUT_MAX}"
                )
    for name in ("watchdog", "memory_interval"):
        if name in o and o[name] is not None:
            o[name] = _number(name, o[name], float, 0.0, threading.TIMEOUT_MAX, allow_none=True)
            if o[name] <= 0:
                raise _fail(
                    name,
                    o[name],
                    f"a positive number of seconds, at most {threading.TIMEOUT_MAX}, or None",
                )
    for name in (
        "persist_to_disk",
        "auto_cleanup",
        "trace_all",
        "capture_args",
        "repr_objects",
        "tracemalloc",
        "patch",
        "follow_children",
        "races",
    ):
        if name in o and not isinstance(o[name], bool):
            raise TypeError(f"scope_nb: option {name} must be True or False, got {o[name]!r}")
    for name in ("modules", "redact"):
        if name in o:
            o[name] = _names(name, o[name])
    if "persist_path" in o and o["persist_path"] is not None:
        if not isinstance(o["persist_path"], str | os.PathLike):
            raise TypeError(
                f"scope_nb: option persist_path must be a path, got {o['persist_path']!r}"
            )
        o["persist_path"] = os.fspath(o["persist_path"])
    opts = Options(**o)
    if opts.persisting and not opts.persist_path:
        raise ValueError(
            "scope_nb: persisting to disk (persist_to_disk=True or storage='disk') needs "
            "persist_path=DIR"
        )
    return opts


__all__ = ["Options", "make_options", "TRACING_LEVELS", "STORAGES"]
