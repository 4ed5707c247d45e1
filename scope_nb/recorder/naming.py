"""Naming a value after the variable the program keeps it in, so that a report says
`account._lock` or `jobs` rather than `Lock-3`.

Two ways, for two moments: `var_name` reads the bytecode of the call that is making
the value (`x = Lock()`: the next instruction stores it), which works while the value
is being made; `bound_name` looks for the value among a frame's locals, its `self`'s
attributes and its globals, which works later, when the value is already stored
(a queue named at its first message). Neither runs program code: bytecode and
dictionaries are read, no attribute lookup goes through the program's classes.
"""

from __future__ import annotations

import dis

_STORE_OPS = frozenset({"STORE_NAME", "STORE_FAST", "STORE_GLOBAL", "STORE_DEREF"})
# one variable's value pushed (3.14: LOAD_FAST_BORROW, a reference the frame keeps alive)
_LOAD_OPS = frozenset(
    {"LOAD_NAME", "LOAD_FAST", "LOAD_GLOBAL", "LOAD_DEREF", "LOAD_FAST_CHECK", "LOAD_FAST_BORROW"}
)
# push, pop nothing (3.14: LOAD_SMALL_INT for 0-255; 3.15: LOAD_COMMON_CONSTANT for None)
_PUSH_OPS = _LOAD_OPS | {
    "LOAD_CONST",
    "PUSH_NULL",
    "LOAD_FAST_LOAD_FAST",
    "LOAD_FAST_BORROW_LOAD_FAST_BORROW",
    "LOAD_SMALL_INT",
    "LOAD_COMMON_CONSTANT",
}
_JUMPS = frozenset(dis.hasjrel) | frozenset(dis.hasjabs)
_ENDS = ("RETURN", "RAISE", "YIELD", "RERAISE")


def var_name(frame, cache: dict) -> str | None:
    """The name the value being built by the call running in `frame` is stored into
    (`x = ...`, `self.x = ...` -> "Class.x", and each target of `a, b = A(), B()`),
    read from the bytecode; None if not a plain store. `cache` maps (code, offset) to
    the answer."""
    key = (frame.f_code, frame.f_lasti)
    if key in cache:
        name = cache[key]
    else:
        ins = list(dis.get_instructions(frame.f_code))
        at = next((i for i, x in enumerate(ins) if x.offset == frame.f_lasti), None)
        name = None if at is None else _stored_into(ins, at + 1)
        cache[key] = name
    if name and name.startswith("self."):
        owner = frame.f_locals.get("self")
        if owner is not None:
            name = f"{type(owner).__name__}.{name[5:]}"
    return name


def _stored_into(ins: list, i: int) -> str | None:
    """Where the value on top of the stack before `ins[i]` is stored: by the next store,
    or, when it is one item of a tuple / list display being unpacked, by its target.
    `pos` follows its place from the top of the stack while the later items are built
    on top of it and the targets are stored (the compiler may swap or reverse them);
    None as soon as something else could use it."""
    pos = 0
    while i < len(ins):
        x = ins[i]
        op, arg = x.opname, x.arg
        if op in _STORE_OPS:
            if pos == 0:
                return x.argval
            pos -= 1
        elif op == "STORE_FAST_STORE_FAST":  # 3.13+: two stores in one
            if pos < 2:
                return x.argval[pos]
            pos -= 2
        elif op == "STORE_ATTR":
            if pos < 2:
                prev = ins[i - 1]
                return (
                    f"{prev.argval}.{x.argval}" if pos == 1 and prev.opname in _LOAD_OPS else None
                )
            pos -= 2
        elif op == "SWAP":
            pos = arg - 1 if pos == 0 else 0 if pos == arg - 1 else pos
        elif (
            op in ("BUILD_TUPLE", "BUILD_LIST")
            and pos < arg
            and i + 1 < len(ins)
            and ins[i + 1].opname == "UNPACK_SEQUENCE"
            and ins[i + 1].arg == arg
        ):
            pos = arg - 1 - pos
            i += 1
        elif x.opcode in _JUMPS or op.startswith(_ENDS) or (pos == 0 and op not in _PUSH_OPS):
            return None
        else:  # a later item being built: it must leave the value where it was
            pos += dis.stack_effect(x.opcode, arg if x.opcode >= dis.HAVE_ARGUMENT else None)
            if pos < 1:
                return None
        i += 1
    return None


def bound_name(obj, frame) -> str | None:
    """The name `obj` is bound to as seen from `frame`: one of its locals (not `self`),
    an attribute of its `self` ("Class.attr"), or one of its globals; None if none.
    Compared by identity only."""
    local = frame.f_locals
    for k, v in local.items():
        if v is obj and k != "self":
            return k
    owner = local.get("self")
    for k, v in getattr(owner, "__dict__", {}).items():
        if v is obj:
            return f"{type(owner).__name__}.{k}"
    for k, v in frame.f_globals.items():
        if v is obj:
            return k
    return None
