"""Running a cell in the in-process shell of conftest's `ip` fixture."""

from IPython.utils.capture import capture_output


def run(ip, source: str):
    """Run a cell, capturing what it displays; returns (ExecutionResult, captured)."""
    with capture_output() as cap:
        result = ip.run_cell(source)
    return result, cap
