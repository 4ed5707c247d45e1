"""Build of the optional C extension (scope_nb.recorder._fasthooks: call callbacks, lock
core, queue hooks, decoder). Everything else is declared in pyproject.toml. A failed
compile is not an error: the pure-Python code records the same events, only slower."""

import platform

from setuptools import Extension, setup

ext_modules = []
if platform.python_implementation() == "CPython":
    ext_modules.append(
        Extension(
            "scope_nb.recorder._fasthooks",
            [f"scope_nb/recorder/{name}.c" for name in ("_fasthooks", "_fastevents", "_fastlocks", "_fastqueues")],
            depends=["scope_nb/recorder/_fasthooks.h"],
            optional=True,
        )
    )

setup(ext_modules=ext_modules)
