"""A traced object's public methods as events: a call row when one starts (the caller
as actor, the arguments captured without running program code), a return or exception
row with its duration when it ends, and the object's state committed when the
outermost of its calls in that actor ends (where in-place mutation of a list or dict
shows)."""

from __future__ import annotations

from typing import Any

from .... import clock
from .events import _args, _busy, _get_ident, _where
from .snapshots import Snapshots


class MethodCalls(Snapshots):
    """The call / return / exception rows of a traced object's methods (part of
    `Traced`, whose `rec`, `name`, `depth`, `objs` and `live` it reads)."""

    def enter(self, method: str, fn, args, kwargs) -> tuple:
        rec = self.rec
        actor = rec.current_actor()
        self.depth[actor] = self.depth.get(actor, 0) + 1
        ident = _get_ident()
        _busy.add(ident)
        try:
            rec.emit(
                "call",
                None,
                _args(rec, fn, args, kwargs),
                obj=self.name,
                actor=actor,
                function=fn.__qualname__,
                module=fn.__module__,
                location=_where(),
            )
        except Exception as e:
            rec.fault("objects:call", e)
        finally:
            _busy.discard(ident)
        return actor, method, fn, clock.perf_ns()

    def leave(self, ctx: tuple, result: Any = None, exc: BaseException | None = None) -> None:
        actor, method, fn, t0 = ctx
        rec = self.rec
        ident = _get_ident()
        _busy.add(ident)
        try:
            d = self.depth.get(actor, 1) - 1
            self.depth[actor] = d
            took = clock.perf_ns() - t0
            if exc is None:
                rec.emit(
                    "return",
                    None,
                    result,
                    obj=self.name,
                    actor=actor,
                    function=fn.__qualname__,
                    module=fn.__module__,
                    duration_ns=took,
                )
            else:
                rec.emit(
                    "exception",
                    None,
                    f"{type(exc).__qualname__}|{rec.fmt.repr(exc)}",
                    obj=self.name,
                    actor=actor,
                    function=fn.__qualname__,
                    module=fn.__module__,
                    duration_ns=took,
                    raw=True,
                )
            if d <= 0 and self.objs.states and self.live:
                self.commit(method, actor, _where())
        except Exception as e:
            rec.fault("objects:return", e)
        finally:
            _busy.discard(ident)
