"""The optional C extension of the recorder (sources in native/): the Python-visible names.

Always reached through buffer.fast_module(), which runs its self-test first; the Python
code it replaces (backends/, patchers/locks/, patchers/messages.py, decode.py) is
the reference behaviour.
"""

from array import array
from collections.abc import Callable
from types import CodeType
from typing import Any, overload

# The private CPython header(s) the frame mirror of this build copies, None when this
# Python has none (the call hooks then read arguments through the public API).
FRAME_MIRROR: str | None

def seal_list(vals: list, /) -> None:
    """Stop the garbage collector from walking a sealed chunk's event list."""

def frame_probe() -> str | None:
    """None when the frame mirror reads the calling Python function's frame (code object,
    fast locals) as the public API does, else what differs."""

def use_frame_mirror(on: bool, /) -> bool:
    """Read call arguments through the frame mirror or the public API; whether the mirror
    is now in use (never without one)."""

class Col:
    """A growable int64 ('q') or uint32 ('I') column (ThreadBuffer.ts / .ks)."""

    def __init__(self, typecode: str, /) -> None: ...
    @property
    def typecode(self) -> str: ...
    def append(self, x: int, /) -> None: ...
    def __len__(self) -> int: ...
    @overload
    def __getitem__(self, i: int, /) -> int: ...
    @overload
    def __getitem__(self, s: slice, /) -> array: ...
    def __buffer__(self, flags: int, /) -> memoryview: ...

class Hooks:
    """The call callbacks of one recording (backends/): sys.monitoring callbacks on
    3.12+, a C profile function on 3.11."""

    def __init__(
        self,
        rec: Any,
        local: Any,
        new_buffer: Callable[[], Any],
        sync_task: Any,
        fault: Callable[[str, BaseException], object],
        cap: Callable[[Any, Any], Any],
        args_of: Callable[[Any, Any, Any], Any],
        sites: dict[int, Any],
        chunk: int,
        capture_args: bool,
        buffer_type: type,
        redacted: Any,
        py_start: Any = None,
        py_return: Any = None,
        disable: Any = None,
        py_hook: Any = None,
        exc_tracer: Any = None,
        return_ops: Any = None,
        exc_pending: Any = None,
        py_yield: Any = None,
        py_resume: Any = None,
        gen_ops: tuple[int, int] = ...,
        current_task: Any = None,
        mask: bytes | None = None,
        dropped: dict[str, int] | None = None,
    ) -> None: ...
    # 3.12+: sys.monitoring callbacks
    def on_start(self, code: CodeType, offset: int, /) -> object: ...
    def on_return(self, code: CodeType, offset: int, retval: object, /) -> object: ...
    def on_yield(self, code: CodeType, offset: int, value: object, /) -> object: ...
    def on_resume(self, code: CodeType, offset: int, /) -> object: ...
    # 3.11: the profile / trace function
    def install_profile(self) -> None: ...
    def install_trace(self) -> None: ...
    def install_others(self, trace: bool, /) -> int: ...
    def uninstall_others(self) -> None: ...
    def __call__(self, frame: Any, event: str, arg: object, /) -> Any: ...

class Decoder:
    """The per-event loop of decode.decode() for one chunk."""

    def __init__(
        self,
        names: list,
        gens: list,
        shown: dict,
        locations: dict,
        fmt: Any,
        formatted: type,
        show: Callable[..., Any],
        args_text: Callable[..., Any],
        rich_values: Callable[..., Any],
        rich_detail: Callable[..., Any],
        detail: list,
        fid: dict,
        actor: dict,
        rich_rows: list,
        rich_actor: list,
        rich_cols: list,
        codes: tuple[int, ...],
        texts: bool = True,
    ) -> None: ...
    def chunk(self, ks: Any, vals: list, row: int, /) -> int: ...

def pair_calls(
    streams: list[tuple[int, list[tuple[Any, Any, int, int, int]]]],
    critical: tuple[Any, Any, Any, Any, Any],
    thread_actor: dict[int, str],
    actors_of: dict[int, str],
    rich_actors: list[str],
    fids: dict[int, Any] | Any,
    durations: list[int | None],
    nsites: int,
    codes: tuple[int, ...],
    calls_only: bool,
    /,
) -> tuple[Any, ...]:
    """The events frame's rows in order, calls paired with their ends (native/pairing.c,
    for model/fast_events.py): `streams` each buffer's chunks as (ks, ts, first position,
    first row, first emitted index); `critical` the critical lane (ks, ts, buffers, rows,
    emitted indexes) in order; `thread_actor` per buffer, `actors_of` row -> task of a
    task switch, `rich_actors` the actor of each emitted event (by its index), `fids`
    row -> generator frame id
    (a dict, or one int64 per row with 0 for none: a raw trace's column), `durations` of the
    emitted events; `codes` fast_events._CODES. Out: (data, validity) bytearrays of the 9
    int64 columns of fast_events._COLUMNS, the rows written, the frame's rows (more when
    `calls_only` writes only the call and exception rows), and the actors the actor
    column indexes."""

def call_stats(
    columns: tuple[tuple[bytearray, bytearray], ...],
    m: int,
    keep: bytes | None,
    site_group: Any,
    groups: dict[tuple[Any, Any], int],
    rich_module: list,
    rich_function: list,
    rich_obj: list,
    codes: tuple[int, int],
    /,
) -> tuple[list, ...]:
    """Per (module, function) group, what performance_hotspots aggregates, from
    pair_calls' columns (native/callstats.c, for model/call_stats.py): the `m` rows,
    those `keep` marks when given; `site_group` an int64 group per site label, `groups`
    (module, function) -> group, added to for emitted calls; the emitted events' module,
    function and obj fields; `codes` the call and exception kind codes. Out, one list per
    group each: calls, count, total, self, mean, max, actors, first label, exceptions,
    p50, p95 (None for null)."""

class LockHub:
    """What the traced locks of one recording share (patchers/locks.py)."""

    running: bool

    def __init__(
        self,
        *,
        local: Any,
        new_buffer: Callable[[], Any],
        buffer_type: type,
        current_actor: Callable[[Any], Any],
        fault: Callable[[str, BaseException], object],
        skip_files: Any,
        held: dict,
        taken_at: dict,
        order: dict,
        k_acquire: int,
        k_release: int,
        chunk: int,
        timeout_max: float,
        tried: str,
    ) -> None: ...

class LockCore:
    """A traced Lock / RLock's hot methods (the base of TracedLock and TracedRLock)."""

    name: str
    _depth: int

    def __init__(
        self,
        lock: Any,
        name: str,
        st: Any,
        hub: LockHub | None = None,
        reentrant: bool = False,
        owners: dict | None = None,
    ) -> None: ...
    def _rename(self, name: str, /) -> bool: ...
    def _retitle(self, name: str, /) -> None: ...
    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool: ...
    def release(self) -> None: ...
    def __enter__(self) -> bool: ...
    def __exit__(self, *exc: object) -> None: ...
    @property
    def _lock(self) -> Any: ...
    @property
    def _st(self) -> Any: ...
    @property
    def _hub(self) -> LockHub | None: ...
    @property
    def _reentrant(self) -> bool: ...
    @property
    def _owners(self) -> Any: ...
    @property
    def _taken(self) -> Any: ...

class MessageEvent:
    """A recorded send or receive (a sequence, as messages.MessageEvent's fields)."""

    @property
    def msg_id(self) -> int | None: ...
    @property
    def sent(self) -> int | None: ...
    def __len__(self) -> int: ...
    def __getitem__(self, i: int, /) -> Any: ...

class QueueHook:
    """A FIFO queue's _put / _get while recording (a method descriptor)."""

    def __init__(
        self,
        *,
        orig: Callable[..., Any],
        py: Callable[..., Any],
        get: bool,
        threaded: bool,
        k: int,
        boxes: dict,
        box_of: Any,
        box_type: type,
        ids: Any,
        own: Any,
        detail: Any,
        fault: Callable[[str, BaseException], object],
        local: Any,
        new_buffer: Callable[[], Any],
        buffer_type: type,
        current_actor: Callable[[Any], Any],
        chunk: int,
        plain_qsize: Any,
        plain: bool,
    ) -> None: ...
    @property
    def __wrapped__(self) -> Callable[..., Any]: ...
    def __get__(self, obj: object, owner: type | None = None) -> Callable[..., Any]: ...
    def __call__(self, *args: Any) -> Any: ...
