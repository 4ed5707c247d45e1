"""Naming a lock: which frame made it (the program's, or the standard library's for
its own use), where it is used (the first frame outside the lock machinery), and the
name it is given (its variable's, read from the bytecode, else "<Kind>-<n>"), unique
within the recording."""

from __future__ import annotations

import asyncio.locks
import itertools
import os
import sys
import threading
from typing import Any

from ...naming import var_name
from ...sites import is_recorder_module

_HERE = os.path.dirname(os.path.abspath(__file__))
# the lock machinery: this package's modules, threading and asyncio.locks
_SKIP_FILES = frozenset(
    {os.path.join(_HERE, f) for f in os.listdir(_HERE) if f.endswith(".py")}
    | {threading.__file__, asyncio.locks.__file__}
)
_getframe = sys._getframe


def where(f=None):
    """Where the lock is used: the first frame outside the lock machinery (this package,
    threading, asyncio.locks), from `f` (default: the caller) outwards, as a raw
    (code, lasti) pair that becomes "file:line" when frames are built
    (`sites.location_text`)."""
    if f is None:
        f = _getframe(1)
    while f is not None and f.f_code.co_filename in _SKIP_FILES:
        f = f.f_back
    return (f.f_code, f.f_lasti) if f is not None else None


def creator(frame, obj):
    """The frame that asked for `obj`: up through the `__init__` chain of obj itself
    (a subclass calling super().__init__), but not further, so that a lock the stdlib
    makes for its own use (Thread's Event, Barrier's Condition) is not the user's."""
    while (
        frame is not None
        and frame.f_code.co_name == "__init__"
        and frame.f_locals.get("self") is obj
    ):
        frame = frame.f_back
    return frame


def user_caller(f):
    """The first frame from `f` outwards outside the lock machinery and the recorder."""
    while f is not None and (
        f.f_code.co_filename in _SKIP_FILES or is_recorder_module(f.f_globals.get("__name__", ""))
    ):
        f = f.f_back
    return f


class LockNames:
    """The names given out in one recording: each lock's is unique (two locks under one
    name would share owners and merge in the lock graph)."""

    def __init__(self, fault):
        self.fault = fault
        self.given: set[str] = set()  # every name given out
        self.auto: set[str] = set()  # the names not given by the program (a variable's, "Lock-3")
        self._bases: dict[str, int] = {}
        self._counters: dict[str, itertools.count] = {}
        self._cache: dict[tuple[Any, int], str | None] = {}

    def name_for(self, frame, kind: str, given: str | None = None) -> str:
        """`given`, else the variable the new lock is stored into if the bytecode says
        so cheaply, else "<Kind>-<n>"; a suffix "-2", "-3" when already taken."""
        base = given
        if base is None and frame is not None:
            try:
                base = var_name(frame, self._cache)
            except Exception as e:
                self.fault("locks:name", e)
        if base is None:
            counter = self._counters.setdefault(kind, itertools.count(1))
            name = f"{kind}-{next(counter)}"
            while name in self.given:
                name = f"{kind}-{next(counter)}"
        else:
            name = self.unique(base)
        self.given.add(name)
        if given is None:
            self.auto.add(name)
        return name

    def name_of_part(self, frame, owner: str, part: str) -> str:
        """The name of a lock an object makes for itself (a logging Handler's): after
        the variable the new object is stored into (`handler.lock`), else its class
        (`StreamHandler.lock`); a traced object it belongs to may rename it."""
        base = None
        try:
            base = var_name(frame, self._cache)
        except Exception as e:
            self.fault("locks:name", e)
        return self.name_after(f"{base or owner}.{part}")

    def name_after(self, base: str) -> str:
        """`base` made unique, as a name the recorder chose (a traced object may rename it)."""
        name = self.unique(base)
        self.given.add(name)
        self.auto.add(name)
        return name

    def unique(self, base: str) -> str:
        """`base`, or `base-<n>` with the first n that is free."""
        n = self._bases.get(base, 0) + 1
        name = base if n == 1 else f"{base}-{n}"
        while name in self.given:  # a given "x-2" may be what a second "x" was named
            n += 1
            name = f"{base}-{n}"
        self._bases[base] = n
        return name
