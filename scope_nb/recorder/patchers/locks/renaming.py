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
        old = value.name if isinstance(value, _Traced) else st.instances.lookup(value)
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
            st.instances.registry[id(value)] = (st.instances.registry[id(value)][0], name)
            if old in st.initial:
                st.initial[name] = st.initial.pop(old)
        names.auto.discard(old)
        names.given.add(name)
    except Exception as e:
        st.rec.fault("locks:adopt", e)


def rename(st: LockState, value, new: str) -> str:
    """The program names a traced lock (`trace_lock(lock, name)`): it stays one lock,
    under `new` (made unique), and the rows recorded under its old name show the new
    one too (`renamed`, applied where the events frame is built). Returns its name."""
    old = value.name if isinstance(value, _Traced) else st.instances.lookup(value)
    names = st.names
    if old is None or new == old:
        names.auto.discard(old)  # the program's choice from now on: no traced object renames it
        return old
    if st.renamed.get(new) == old:  # back to a name it had: that name is its own
        del st.renamed[new]
    else:
        new = names.name_for(None, "Lock", new)  # the old name stays given: the map points it here
    if isinstance(value, _Traced):
        if hasattr(type(value), "_retitle"):
            value._retitle(new)
        else:
            value.name = new
    else:
        st.instances.registry[id(value)] = (st.instances.registry[id(value)][0], new)
    for table in (st.owners, st.cores, st.initial):
        if old in table:
            table[new] = table.pop(old)
    for held in st.held.values():
        held[:] = [new if n == old else n for n in held]
    for key in [k for k in st.taken_at if k[1] == old]:
        st.taken_at[(key[0], new)] = st.taken_at.pop(key)
    if old in st.used:
        st.used.add(new)
    st.graph.rename(old, new)
    for k, v in st.renamed.items():
        if v == old:
            st.renamed[k] = new
    st.renamed[old] = new
    names.auto.discard(old)
    names.auto.discard(new)
    return new


def renamed_locks(rec) -> dict[str, str]:
    """Old name -> current name of the locks the program renamed while recording."""
    st = rec.parts.locks
    return dict(st.renamed) if st is not None else {}
