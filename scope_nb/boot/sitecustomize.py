"""Runs at the start of every Python process whose environment scope_nb prepared
(a child of a program recording with follow_children): the child starts its own
recording with the parent's options; then the sitecustomize this one shadows (if
any) runs as it would have."""

import os
import sys


def _boot() -> None:
    if not os.environ.get("SCOPE_NB_CHILD"):
        return
    try:
        from scope_nb._control import boot_child
    except ImportError:
        return  # another interpreter without scope_nb: nothing to record with
    try:
        boot_child()
    except Exception as e:  # a child must start even when its recording cannot
        print(
            f"scope_nb: recording of child process {os.getpid()} not started: {e}", file=sys.stderr
        )


def _chain() -> None:
    import importlib.machinery
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    path = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", path)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        print(
            f"Error in sitecustomize; set PYTHONVERBOSE for traceback:\n{type(e).__name__}: {e}",
            file=sys.stderr,
        )
    else:
        sys.modules["sitecustomize"] = module


_boot()
_chain()
