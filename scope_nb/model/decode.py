"""Buffered events to plain columns, with the standard library only.

Both the frames (polars, in the notebook) and the disk flusher (pyarrow, possibly in a
forked child where polars must not run) start from this: one row per buffered event,
the kept values formatted with the bounded repr, the emitted events' fields apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..recorder.buffer import (
    CALL,
    EXCEPTION,
    KIND_BITS,
    KIND_MASK,
    RESUME,
    RETURN,
    RICH,
    SUSPEND,
    SWITCH,
    fast_module,
)
from ..recorder.sites import location_text
from ..values import TEXT, Formatted, Formatter

# the fields of an emitted event tuple (see Recorder.emit) after actor and detail
RICH_FIELDS = (
    "target",
    "msg_id",
    "obj",
    "location",
    "duration_ns",
    "module",
    "function",
    "locks_held",
    "qsize",
)
# values whose text is cached per site (not floats: 0.0 == -0.0 would share a key)
_HASHABLE_ATOMIC = frozenset({int, bool, type(None), str, bytes})
_PLAIN = frozenset({int, float, bool})


_BIG = 10**15  # ints inside (-_BIG, _BIG) have short reprs: no bounding needed


def show(fmt: Formatter, v) -> str | None:
    """A kept value as text (None stays None)."""
    if v is None:
        return None
    t = type(v)
    if t in _PLAIN and (t is not int or -_BIG < v < _BIG):
        return repr(v)  # short by nature: the bounded formatter would print the same
    if t is Formatted:
        return v.text
    return fmt.repr(v)


def args_text(fmt: Formatter, names: tuple[str, ...], v) -> str | None:
    if not names:
        return ""
    if len(names) == 1:
        return f"{names[0]}={show(fmt, v)}"
    if v is None:
        return None
    parts = []
    for n, x in zip(names, v, strict=False):
        t = type(x)
        if t is Formatted:
            parts.append(f"{n}={x.text}")
        elif t is int and -_BIG < x < _BIG or t is float or t is bool:
            parts.append(f"{n}={x!r}")
        else:
            parts.append(f"{n}={show(fmt, x)}")
    return ", ".join(parts)


def rich_values(v: Sequence, locations: dict | None = None) -> tuple:
    """The RICH_FIELDS of an emitted event tuple. A location kept raw by a hot path, a
    (code, lasti) pair, becomes "file:line" here; `locations` caches those texts by
    (id(code), lasti) for as long as the events that hold the codes are alive. A queue
    message's event is shorter, (actor, queue, message, msg id, waited, depth): a
    tuple, or the C hooks' MessageEvent, a sequence of the same six fields."""
    if len(v) == 6:
        return (v[1], v[3], None, None, v[4], None, None, None, v[5])
    loc = v[5]
    if type(loc) is tuple:
        key = (id(loc[0]), loc[1])
        text = locations.get(key) if locations is not None else None
        if text is None:
            text = location_text(loc)
            if locations is not None:
                locations[key] = text
        loc = text
    return (v[1], v[3], v[4], loc, v[6], v[7], v[8], v[9], v[10])


def rich_detail(fmt: Formatter, d) -> str | None:
    """An emitted event's detail as text. Hot paths keep an atomic message (a number,
    a tuple of at most 4 atomics: what `Formatter.capture` keeps by reference) as it
    is, and it is formatted here to the text `Recorder.emit` would have made at once
    (`fmt.repr`); text stays as it is."""
    t = type(d)
    if d is None or t is str:
        return d
    if t is Formatted:
        return d.text
    if t is tuple or t in _PLAIN:
        # the plain repr is what fmt.repr makes when nothing is cut
        if t is not tuple or (
            len(d) <= fmt.max_items and all(type(x) not in TEXT or len(x) <= fmt.max_len for x in d)
        ):
            r = repr(d)
            if len(r) <= fmt.max_len:
                return r
    return fmt.repr(d)


@dataclass
class Decoded:
    """Columns of the buffered events: ts and ks stay as the buffers' arrays (one part
    per chunk, the critical events last, as RICH rows); buf, pos and thread_actor are
    one segment per chunk (its buffer index, thread actor, first pos and row count:
    the column values repeat or count up), then one item per critical row (pos -1);
    detail has one item per row; actor (a task switch's task) and fid are sparse (row
    -> value), since most rows are calls; the emitted events' actors and fields are one
    list each (per RICH_FIELDS), beside their rows (no tuple or dict entry per row: a
    lock or message-heavy trace has millions). The C
    decoder untracks these containers from the garbage collector (they hold text,
    numbers and tuples of text), which would otherwise traverse them at every
    collection a long decode triggers."""

    ts_parts: list = field(default_factory=list)
    ks_parts: list = field(default_factory=list)
    segments: list[tuple[int, str, int, int]] = field(default_factory=list)
    critical_buf: list[int] = field(default_factory=list)
    critical_actor: list[str] = field(default_factory=list)
    detail: list[str | None] = field(default_factory=list)
    actor: dict[int, str] = field(default_factory=dict)
    fid: dict[int, int] = field(default_factory=dict)
    rich_rows: list[int] = field(default_factory=list)
    rich_actor: list[str] = field(default_factory=list)
    rich_cols: list[list] = field(default_factory=lambda: [[] for _ in RICH_FIELDS])

    def sparse(self, name: str) -> tuple[list[int], list]:
        """A sparse column (a task switch's actor, fid, or one of RICH_FIELDS): its rows
        and values."""
        if name in ("actor", "fid"):
            d = getattr(self, name)
            return list(d), list(d.values())
        return self.rich_rows, self.rich_cols[RICH_FIELDS.index(name)]

    def add_rich(self, row: int, v, locations: dict) -> None:
        """Row `row` is the emitted event tuple v (or a MessageEvent)."""
        self.rich_actor.append(v[0])
        self.rich_rows.append(row)
        for col, x in zip(self.rich_cols, rich_values(v, locations), strict=True):
            col.append(x)


def decode(
    chunks,
    critical,
    sites,
    fmt: Formatter,
    bases: dict[int, int] | None = None,
    texts: bool = True,
) -> Decoded:
    """One row per buffered event (markers included). `bases` (buffer index -> rows of
    that buffer already decoded earlier) makes `pos` continue across calls; it is
    advanced here. Without `texts`, the C decoder makes no detail text (`detail` stays
    empty; the other columns are the same): for what reads only the pairing's columns
    (model.call_stats). The Python loop makes them anyway."""
    out = Decoded()
    bases = {} if bases is None else bases
    names = [s.argnames for s in sites]
    gens = [s.is_gen for s in sites]
    shown: dict[tuple, str] = {}  # (site, type, atomic argument) -> text
    locations: dict[tuple, str] = {}  # (id(code), lasti) -> "file:line" (see rich_values)
    actor, fid = out.actor, out.fid
    row = 0
    # the loop below in C (record/_fasthooks.c), same output, when the extension is built
    Decoder = getattr(fast_module(), "Decoder", None)
    dec = (
        None
        if Decoder is None
        else Decoder(
            names=names,
            gens=gens,
            shown=shown,
            locations=locations,
            fmt=fmt,
            formatted=Formatted,
            show=show,
            args_text=args_text,
            rich_values=rich_values,
            rich_detail=rich_detail,
            detail=out.detail,
            fid=fid,
            actor=actor,
            rich_rows=out.rich_rows,
            rich_actor=out.rich_actor,
            rich_cols=out.rich_cols,
            codes=(CALL, RETURN, EXCEPTION, SUSPEND, RESUME, SWITCH, KIND_BITS),
            texts=texts,
        )
    )
    for ch in chunks:
        n = len(ch.ts)
        start = bases.get(ch.index, 0)
        bases[ch.index] = start + n
        out.ts_parts.append(ch.ts)
        out.ks_parts.append(ch.ks)
        out.segments.append((ch.index, ch.actor, start, n))
        if dec is not None:
            row = dec.chunk(ch.ks, ch.vals, row)
            continue
        add = out.detail.append
        for k, v in zip(ch.ks, ch.vals, strict=True):
            c = k & KIND_MASK
            if c == CALL:
                s = k >> KIND_BITS
                if gens[s]:
                    fid[row], v = v
                nm = names[s]
                if len(nm) == 1 and type(v) in _HASHABLE_ATOMIC:
                    key = (s, type(v), v)
                    d = shown.get(key)
                    if d is None:
                        d = shown[key] = f"{nm[0]}={show(fmt, v)}"
                    add(d)
                else:
                    add(args_text(fmt, nm, v))
            elif c == RETURN:
                t = type(v)
                if t is int and -_BIG < v < _BIG or t is float or t is bool:
                    add(repr(v))  # the common case, without a call of show()
                else:
                    add("None" if v is None else show(fmt, v))
            elif c == EXCEPTION:
                add(v.text if type(v) is Formatted else show(fmt, v))
            elif c == SUSPEND or c == RESUME:
                fid[row] = v
                add(None)
            elif c == SWITCH:
                actor[row] = v
                add(None)
            else:  # RICH
                out.add_rich(row, v, locations)
                add(rich_detail(fmt, v[2]))
            row += 1
    out.ts_parts.append([t for t, _, _, _ in critical])
    out.ks_parts.append([RICH | (code << KIND_BITS) for _, code, _, _ in critical])
    for _, _, b, v in critical:
        out.critical_buf.append(b)
        out.critical_actor.append(v[0])
        out.add_rich(row, v, locations)
        if texts or dec is None:
            out.detail.append(rich_detail(fmt, v[2]))
        row += 1
    return out
