"""Everything that runs inside the traced program. Importing this package registers
the patchers (threads, tasks, queues, locks, objects) with the session, in the
order they are installed (so the import order matters)."""
# ruff: noqa: I001

from . import session  # noqa: F401
from . import children  # noqa: F401,E402 - child processes follow the recording
from . import mp_messages  # noqa: F401,E402 - multiprocessing queues and pipes
from . import actors, messages  # noqa: F401,E402 - thread/task/process lifecycle; queue and future messages
from . import locks  # noqa: F401,E402 - traced locks, held locks, lock order
from . import objects  # noqa: F401,E402 - traced objects (state history)
from . import stalls  # noqa: F401,E402 - asyncio slow steps, lost tasks, unretrieved exceptions
from . import memory  # noqa: F401,E402 - memory sampler (memory_interval)
from . import watchdog  # noqa: F401,E402 - hang/deadlock watchdog (watchdog=seconds)
