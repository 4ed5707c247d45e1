"""Everything that runs inside the traced program. Importing this package registers
the patchers (threads, tasks, queues, locks, objects) with the session, in the
order they are installed."""

from . import session  # noqa: F401
