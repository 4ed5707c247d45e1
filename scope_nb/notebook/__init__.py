"""The notebook layer: `%%scope` / `%scope` magics, the explorer widget, charts and
graphs. Loading registers the magics only; polars, altair and ipywidgets are
imported on first use so that `%load_ext scope` stays fast."""

from __future__ import annotations

_loaded: dict[int, object] = {}  # id(shell) -> the registered magics instance


def load_ipython_extension(ipython) -> None:
    """Register `%scope` / `%%scope` (idempotent: loading twice changes nothing)."""
    if id(ipython) in _loaded:
        return
    from .magics import ScopeMagics

    magics = ScopeMagics(ipython)
    ipython.register_magics(magics)
    _loaded[id(ipython)] = magics


def unload_ipython_extension(ipython) -> None:
    """Remove the magics, stop a recording the magics started, drop `_scope`."""
    magics = _loaded.pop(id(ipython), None)
    if magics is None:
        return
    magics.close()
    for kind in ("line", "cell"):
        ipython.magics_manager.magics[kind].pop("scope", None)
    ipython.magics_manager.registry.pop(type(magics).__name__, None)


__all__ = ["load_ipython_extension", "unload_ipython_extension"]
