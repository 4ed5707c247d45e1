"""Run the same thing with the C extension, then with SCOPE_NB_PURE=1 (the Python
code it stands in for), for the tests that compare the two."""


def c_then_pure(monkeypatch, run) -> tuple:
    """(run(False) with the C extension, run(True) with SCOPE_NB_PURE=1)."""
    out = []
    for pure in (False, True):
        if pure:
            monkeypatch.setenv("SCOPE_NB_PURE", "1")
        else:
            monkeypatch.delenv("SCOPE_NB_PURE", raising=False)
        out.append(run(pure))
    monkeypatch.delenv("SCOPE_NB_PURE", raising=False)
    return tuple(out)
