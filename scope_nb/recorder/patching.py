"""Replacing attributes of the standard library and putting them back exactly.

The originals are kept here so that the recorder's own code (and the wrappers) can
use the real classes even while the module attribute points at a wrapper."""

from __future__ import annotations

from typing import Any

_originals: dict[tuple[int, str], Any] = {}
_MISSING = object()  # the attribute did not exist before the patch
_UNKNOWN = object()


def patch(owner: Any, name: str, new: Any) -> None:
    key = (id(owner), name)
    if key not in _originals:
        _originals[key] = (
            owner.__dict__.get(name, _MISSING)
            if isinstance(owner, type)
            else getattr(owner, name, _MISSING)
        )
    setattr(owner, name, new)


def original(owner: Any, name: str) -> Any:
    """The attribute as it was before any patch (or as it is, when not patched)."""
    value = _originals.get((id(owner), name), _UNKNOWN)
    return getattr(owner, name) if value is _UNKNOWN or value is _MISSING else value


def unpatch(owner: Any, name: str) -> None:
    key = (id(owner), name)
    value = _originals.pop(key, _UNKNOWN)
    if value is _UNKNOWN:
        return
    if value is _MISSING:
        delattr(owner, name)
    else:
        setattr(owner, name, value)
