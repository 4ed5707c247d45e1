"""One module per instrumentation of the threading, queue, lock and asyncio world."""
