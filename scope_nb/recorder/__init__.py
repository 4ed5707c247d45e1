"""Everything that runs inside the traced program: the Recorder (`session`), its hooks
and the instrumentations of threads, tasks, queues, locks and objects, declared in
installation order in `patchers.table`."""

from . import session  # noqa: F401
