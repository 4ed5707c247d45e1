"""Build of the optional C extension scope_nb.recorder._fasthooks (call callbacks, lock
core, queue hooks, decoder), from scope_nb/recorder/native/. Everything else is declared
in pyproject.toml. A failed compile is not an error: the pure-Python code records the
same events, only slower, and `scope-nb version` says why.

Not built on a free-threaded Python (Py_GIL_DISABLED): the hot paths rely on the GIL to
guard their caches, so there the Python callbacks run."""

import platform
import sysconfig
from pathlib import Path

from setuptools import Extension, setup

NATIVE = Path("scope_nb/recorder/native")
SOURCES = ["module", "buffers", "hooks", "locks", "queues", "decoder", "pairing", "callstats"]

ext_modules = []
if platform.python_implementation() == "CPython" and not sysconfig.get_config_var(
    "Py_GIL_DISABLED"
):
    ext_modules.append(
        Extension(
            "scope_nb.recorder._fasthooks",
            [(NATIVE / f"{name}.c").as_posix() for name in SOURCES],
            depends=sorted(p.as_posix() for p in NATIVE.glob("*.h")),
            optional=True,
        )
    )

setup(ext_modules=ext_modules)
