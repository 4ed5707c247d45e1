"""`python -m scope_nb ...` is the `scope-nb` command."""

import sys

from .cli import main

sys.exit(main())
