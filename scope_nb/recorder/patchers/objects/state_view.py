"""A traced object's state read the way `object` reads it: its `__dict__` and slots,
with no `__getattr__`, property or descriptor of the program run, and no event recorded
(the recorder reads the state it snapshots through here)."""

from __future__ import annotations

import types
from typing import Any

from .events import _MISSING


class StateView:
    """Reading a traced object's state unrecorded (part of `Traced`, whose `obj`, `sub`,
    `vars`, `slots` and `has_dict` it reads)."""

    def read_state(self) -> dict[str, Any]:
        obj = self.obj
        out = dict(self.vars()) if self.has_dict else {}
        for n, desc in self.slots.items():
            try:
                out[n] = desc.__get__(obj, self.sub)
            except AttributeError:
                pass
        return out

    def stored(self, attr: str) -> Any:
        """The value the object holds in attribute `attr` (its __dict__ or a slot), or
        _MISSING when `attr` is not part of its state (a property, say)."""
        if self.has_dict:
            v = self.vars().get(attr, _MISSING)
            if v is not _MISSING:
                return v
        desc = self.slots.get(attr)
        if desc is not None:
            try:
                return desc.__get__(self.obj, self.sub)
            except AttributeError:
                return _MISSING
        return _MISSING

    def is_state_attr(self, attr: str) -> bool:
        if attr in self.slots:
            return True
        return self.has_dict and attr in self.vars()


def own_dict(obj: Any) -> Any:
    """obj's __dict__ read the way object does (no __getattr__ of the program runs), or None."""
    try:
        return object.__getattribute__(obj, "__dict__")
    except AttributeError:
        return None


def slots_of(cls: type) -> dict[str, Any]:
    """Slot name -> member descriptor, over the whole MRO (private names mangled)."""
    out: dict[str, Any] = {}
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        if isinstance(slots, str):
            slots = (slots,)
        for s in slots:
            if s in ("__dict__", "__weakref__"):
                continue
            name = (
                f"_{klass.__name__.lstrip('_')}{s}"
                if s.startswith("__") and not s.endswith("__")
                else s
            )
            desc = klass.__dict__.get(name)
            if isinstance(desc, types.MemberDescriptorType):
                out.setdefault(name, desc)
    return out
