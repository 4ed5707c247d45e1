"""`%load_ext scope`: a short name for the scope_nb notebook extension.

The import name `scope` is only this shim; the library is `scope_nb`.
"""

from __future__ import annotations


def load_ipython_extension(ipython) -> None:
    from scope_nb.notebook import load_ipython_extension as _load

    _load(ipython)


def unload_ipython_extension(ipython) -> None:
    from scope_nb.notebook import unload_ipython_extension as _unload

    _unload(ipython)
