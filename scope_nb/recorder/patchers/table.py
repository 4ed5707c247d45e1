"""The declared table of instrumentations, in the order they are installed (and removed
in reverse): call capture first, then child processes, multiprocessing messages,
thread/task/process lifecycle, queue and future messages, locks, traced objects,
the program's classes watched for races, asyncio stalls, the memory sampler and the watchdog.

Each entry is a class with `install(recording)`, `uninstall()` and fork hooks; the
Recorder makes one instance of each wanted entry per recording. The entries that only
wrap a module's `install(rec)` / `uninstall(rec)` say so with `module`.
"""

from __future__ import annotations

import types
from typing import ClassVar

from . import actors, children, locks, memory, messages, mp_messages, objects, stalls, watchdog
from .objects import own_classes


class Patcher:
    """One instrumentation of one recording."""

    name: ClassVar[str]

    def __init__(self) -> None:
        self.rec = None

    @staticmethod
    def wanted(rec) -> bool:
        """Whether this recording's options ask for it (patches: `patch`, a level)."""
        return rec.options.patch and rec.options.tracing_level != "off"

    def install(self, rec) -> None:
        self.rec = rec

    def uninstall(self) -> None:
        """Put back exactly what `install` replaced."""

    def before_fork(self) -> None:
        """In the forking thread, before `os.fork()`."""

    def after_fork_in_parent(self) -> None:
        """In the parent, after `os.fork()`."""

    def after_fork_in_child(self) -> None:
        """In the child, after `os.fork()`, while the inherited recording is still on."""


class ModulePatcher(Patcher):
    """A patcher whose work is its module's `install(rec)` and `uninstall(rec)`."""

    module: ClassVar[types.ModuleType]

    def install(self, rec) -> None:
        self.rec = rec
        self.module.install(rec)

    def uninstall(self) -> None:
        self.module.uninstall(self.rec)


class Calls(Patcher):
    """Call capture (sys.monitoring or setprofile), when the level records calls."""

    name = "calls"

    @staticmethod
    def wanted(rec) -> bool:
        return rec.calls_on

    def install(self, rec) -> None:
        from ..backends import make_backend

        self.rec = rec
        rec.backend = make_backend(rec)
        rec.backend.install()

    def uninstall(self) -> None:
        self.rec.backend.uninstall()


class Children(ModulePatcher):
    name, module = "children", children


class MpMessages(ModulePatcher):
    name, module = "mp_messages", mp_messages


class Actors(ModulePatcher):
    name, module = "actors", actors

    def after_fork_in_child(self) -> None:
        st = self.rec.parts.actors
        if st is not None:
            st.waiter.forget()  # the parent's children are not the child's to wait on


class Messages(ModulePatcher):
    name, module = "messages", messages


class Locks(ModulePatcher):
    name, module = "locks", locks

    def before_fork(self) -> None:
        st = self.rec.parts.locks
        if st is not None:
            locks.at_fork(st)  # which locks other threads hold as the process forks


class Objects(ModulePatcher):
    name, module = "objects", objects


class Races(ModulePatcher):
    """The program's own classes hooked for attribute accesses (`races=True`)."""

    name, module = "races", own_classes

    @staticmethod
    def wanted(rec) -> bool:
        return (
            Patcher.wanted(rec)
            and rec.options.races
            and ("read" in rec.kinds or "write" in rec.kinds)
        )


class Stalls(ModulePatcher):
    name, module = "stalls", stalls


class Memory(ModulePatcher):
    name, module = "memory", memory


class Watchdog(ModulePatcher):
    name, module = "watchdog", watchdog


PATCHERS: tuple[type[Patcher], ...] = (
    Calls,
    Children,
    MpMessages,
    Actors,
    Messages,
    Locks,
    Objects,
    Races,
    Stalls,
    Memory,
    Watchdog,
)
