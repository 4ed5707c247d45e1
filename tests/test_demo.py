"""The demo shows objects as type and number, never a repr that ran the program's code."""

import re

from scope_nb.demo import main


def test_demo_shows_objects_by_type_and_number(capsys):
    main()
    out = capsys.readouterr().out
    assert "<Barrier #1>" in out and "<Queue #" in out
    assert not re.search(r"object at 0x[0-9a-f]+", out)
