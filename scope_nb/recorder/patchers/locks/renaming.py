"""A traced lock taking a better name: the attribute of a traced object it is
(`alice.lock`, not `Account.lock-2`), as long as nothing was recorded under its old
name."""

from __future__ import annotations

import asyncio
import threading

from .state import LockState
from .traced import _Traced


def adopt(st: LockState, value, name: str) -> None:
    """`value`, an attribute of an object being traced, is named after it when it is a
    lock (or a Condition) the program made, named automatically, and nothing was
    recorded under that name yet: afterwards its old name would split its history."""
    names = st.names
    try:
        if isinstance(value, threading.Condition | asyncio.Condition):
            value = value._lock
        old = value.name if isinstance(value, _Traced) else st.lookup(value)
        if old is None or old not in names.auto or old in st.used or name in names.given:
            return
        if isinstance(value, _Traced):
            if hasattr(type(value), "_rename"):
                if not value._rename(name):  # the C core recorded events under the old name
                    return
            else:
                value.name = name
            for table in (st.owners, st.cores):
                if old in table:
                    table[name] = table.pop(old)
        else:
            st.registry[id(value)] = (st.registry[id(value)][0], name)
            if old in st.initial:
                st.initial[name] = st.initial.pop(old)
        names.auto.discard(old)
        names.given.add(name)
    except Exception as e:
        st.rec.fault("locks:adopt", e)
