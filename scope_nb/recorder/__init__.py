"""Everything that runs inside the traced program. Importing this package registers
the patchers (threads, tasks, queues, locks, objects) with the session, in the
order they are installed (so the import order matters)."""
# ruff: noqa: I001

from . import session  # noqa: F401
from .patchers import children  # noqa: F401,E402 - child processes follow the recording
from .patchers import mp_messages  # noqa: F401,E402 - multiprocessing queues and pipes
from .patchers import actors, messages  # noqa: F401,E402 - thread/task/process lifecycle; queue and future messages
from .patchers import locks  # noqa: F401,E402 - traced locks, held locks, lock order
from .patchers import objects  # noqa: F401,E402 - traced objects (state history)
from .patchers import stalls  # noqa: F401,E402 - asyncio slow steps, lost tasks, unretrieved exceptions
from .patchers import memory  # noqa: F401,E402 - memory sampler (memory_interval)
from .patchers import watchdog  # noqa: F401,E402 - hang/deadlock watchdog (watchdog=seconds)
