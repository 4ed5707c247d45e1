"""The columns of the three frames: the one contract shared by the recorder, the
Parquet files, the CLI and every analysis.

Dtypes are named as strings here (not polars objects) so that this leaf module can
be imported by the recorder without loading polars; `polars_schema()` turns them
into polars dtypes where frames are built.
"""

from __future__ import annotations

SCHEMA_VERSION = 1

# Event kinds. The integer codes are what the hot path stores; the names are what
# the frames show.
EVENT_KINDS: tuple[str, ...] = (
    "call",  # a traced function started (one row per call, with its duration)
    "return",  # it returned normally (detail = return value)
    "exception",  # it ended by an exception (detail = the exception)
    "spawn",  # an actor (thread/task/process) was started; target = the new actor
    "exit",  # an actor ended (detail = result, exit code, or the exception the program retrieved)
    "crash",  # an actor ended by an exception nobody handled / a non-zero exit nobody asked for
    "cancel",  # an asyncio task was cancelled
    "send",  # a message was put on a queue / a future was set; target = queue
    "receive",  # a message was taken; msg_id pairs it with its send
    "state",  # a traced object's state changed (see the states frame)
    "read",  # an attribute of a traced object was read (target `d['k']` / `s{x}`: an item)
    "write",  # an attribute of a traced object was written (or an item of a container)
    "lock_wait",  # an actor started waiting for a lock
    "lock_acquire",  # it got it (duration_ns = time waited)
    "lock_release",
    "lock_timeout",  # a timed acquire gave up
    "event_set",  # threading.Event / asyncio.Event set: a happens-before source
    "event_wait",  # a wait on it returned
    "join",  # an actor joined another (target = the joined actor)
    "deadlock",  # a real deadlock (wait-for cycle) seen by the hang watchdog
    "lock_order",  # a lock-order inversion (potential deadlock) seen while recording
    "hang",  # the watchdog saw actors waiting longer than its threshold
    "stall",  # an asyncio loop step ran longer than the slow threshold
    "task_lost",  # a pending task was garbage-collected
    "exc_unretrieved",  # a task's or future's exception was never retrieved
    "memory",  # a memory sample (detail = rss / heap bytes)
    "mark",  # a user mark
    "fork",  # the process forked (os.fork): the locks other threads held then
)
KIND_CODE: dict[str, int] = {name: i for i, name in enumerate(EVENT_KINDS)}

# Events never pruned by max_events nor sampled away.
CRITICAL_KINDS: frozenset[str] = frozenset(
    {
        "spawn",
        "exit",
        "crash",
        "cancel",
        "deadlock",
        "lock_order",
        "hang",
        "task_lost",
        "exc_unretrieved",
        "fork",
    }
)
MESSAGE_KINDS: frozenset[str] = frozenset({"send", "receive"})
LOCK_KINDS: frozenset[str] = frozenset(
    {"lock_wait", "lock_acquire", "lock_release", "lock_timeout", "event_set", "event_wait", "join"}
)
STATE_KINDS: frozenset[str] = frozenset({"state", "read", "write"})
CALL_KINDS: frozenset[str] = frozenset({"call", "return", "exception"})

# What each tracing level records (the critical lane is always recorded).
LEVEL_KINDS: dict[str, frozenset[str]] = {
    "full": frozenset(EVENT_KINDS),
    "messages_only": CRITICAL_KINDS | MESSAGE_KINDS | LOCK_KINDS | {"stall", "memory", "mark"},
    "states_only": CRITICAL_KINDS | STATE_KINDS | {"mark"},
    "minimal": CRITICAL_KINDS | {"state", "mark"},
    "off": frozenset(),
}

EVENTS: dict[str, str] = {
    "seq": "Int64",  # global order (ts order, ties broken by the order within a thread)
    "ts": "Int64",  # epoch nanoseconds
    "kind": "String",  # one of EVENT_KINDS
    "actor": "String",  # actor id (see ACTORS)
    "pid": "Int64",
    "target": "String",  # other actor, queue, lock or object the event is about
    "module": "String",
    "function": "String",
    "detail": "String",  # bounded, redacted repr of args / message / value
    "duration_ns": "Int64",  # call duration, lock wait, message latency
    "msg_id": "Int64",  # pairs a send with its receive
    "obj": "String",  # traced object name, for state/read/write/method calls
    "location": "String",  # file:line
    "depth": "Int64",  # call depth within the actor (calls only)
    "parent_seq": "Int64",  # seq of the enclosing call (call rows)
    "call_seq": "Int64",  # call/return/exception rows: seq of the call row they belong to
    "locks_held": "List(String)",  # locks the actor held at that moment
    "qsize": "Int64",  # send/receive: queue depth right after the event
}

# How each kind fills the columns (every recorder and every analysis keeps to this):
# - call/return/exception (function tracing): module, function, location; call rows
#   carry detail = args, duration_ns, depth, parent_seq; return rows detail = value;
#   exception rows detail = "ExcType|repr". call_seq links all three.
#   A method call of a traced object is a call/return/exception row with obj set and
#   actor = the caller.
# - spawn: actor = the parent, target = the new actor, detail = its name.
#   exit / crash / cancel: actor = the actor that ended, detail = result / exception
#   ("ExcType|repr") / exit code; crash rows also carry the traceback in `location`
#   of the frame that raised and the formatted traceback lines in detail after a "\n".
# - join: actor = the joiner, target = the joined actor (a happens-before edge).
# - send / receive: target = queue (or future) name, msg_id pairs them, detail = the
#   message; receive rows carry duration_ns = time the message waited in the queue.
# - lock_wait / lock_acquire / lock_release / lock_timeout: target = lock name;
#   lock_acquire.duration_ns = time waited; locks_held = locks held *before* the event
#   (a semaphore's release by an actor not holding it does not name it); a semaphore's
#   lock_acquire.detail = its initial value; a lock_timeout's detail = the timeout the
#   program passed (seconds; None for an asyncio wait cancelled); a non-blocking
#   acquire's function = TRY_ACQUIRE (it cannot wait, so it orders no locks: lockdep's
#   trylock rule).
# - event_set / event_wait: target = the Event's name (happens-before set -> wait).
# - read / write: obj = traced object name, target = attribute name, detail = value,
#   location = file:line of the access, locks_held = locks held.
# - state: obj = traced object name, detail = cause (see the states frame).
# - lock_order: target = "A -> B" (the new edge closing a cycle), detail = the cycle.
# - deadlock / hang: detail = the wait-for cycle / waiting actors and their stacks.
# - fork: actor = the forking actor, module / function = the code that called os.fork(),
#   location = the program's line that led there, locks_held = the locks the actor held;
#   detail = JSON {"held": [{"lock", "actor", "location"}]}: the owned locks (not semaphores,
#   nor logging handlers', which the child re-initialises) other threads held at that
#   instant, who held each, where they took it.
# - stall: actor = the task (or loop thread), duration_ns = how long the step ran,
#   location = where it blocked.

TRY_ACQUIRE = "acquire(blocking=False)"  # lock_acquire.function of a try-lock

STATES: dict[str, str] = {
    "obj": "String",
    "seq": "Int64",
    "ts": "Int64",
    "actor": "String",
    "cause": "String",  # method name, or "attr = value" for a direct write
    "changed": "List(String)",  # attribute names that changed
    "state": "String",  # bounded repr of the whole state after the change
    "location": "String",
    "blobs": "List(Binary)",  # per name in `attrs`: the payload of its op (a pickle)
    "values": "List(String)",  # per name in `attrs`: bounded repr of its new value
    "attrs": "List(String)",  # the attributes this row stores (all of them on a keyframe)
    "ops": "List(String)",  # per name in `attrs`: "set" (blob = the value), "splice" (blob =
    # (start, end, items): value[start:end] = items), "dict" (blob = (updated items, removed keys))
    "removed": "List(String)",  # attributes deleted by this change
    "keyframe": "Boolean",  # this row holds the whole state (rebuild from here plus later diffs)
    "json": "List(String)",  # per name in `attrs`: its op's payload as typed JSON (scope_nb.typed),
    # null where it could not be kept exactly; what an untrusted load and other engines read
}

ACTORS: dict[str, str] = {
    # "T<n>:<pid>" thread, "A<n>:<pid>" asyncio task, "P<pid>" process,
    # "X<n>:<pid>" executor/TaskGroup
    "actor": "String",
    "kind": "String",  # process | thread | task | executor | taskgroup
    "name": "String",
    "parent": "String",  # the actor that started it
    "supervisor": "String",  # the executor / TaskGroup that owns it, if any
    "pid": "Int64",
    "started": "Int64",  # epoch ns
    "ended": "Int64",
    # ok | crashed | failed (by an exception the program retrieved) | cancelled
    # | terminated (by its parent's terminate() / kill()) | running
    "outcome": "String",
    "exception": "String",
}


def polars_schema(columns: dict[str, str]):
    """polars dtypes for one of the column maps above."""
    import polars as pl

    def dtype(name: str):
        if name.startswith("List(") and name.endswith(")"):
            return pl.List(dtype(name[5:-1]))
        return getattr(pl, name)

    return {col: dtype(t) for col, t in columns.items()}


def empty_frame(columns: dict[str, str]):
    import polars as pl

    return pl.DataFrame(schema=polars_schema(columns))
