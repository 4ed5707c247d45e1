"""Where the explorer's cursor can go: the rows of the events frame it moves among.

The cursor is a row of the events frame (global order), so every move is a search in
a sorted column: the first event at a time, the next or previous row of those matching
the filters, of one kind. The rows of a kind are found once, when first asked for.
No widget here: this is the part of the explorer that a test can drive on its own.
"""

from __future__ import annotations

from typing import Any


def check_direction(direction: int) -> None:
    """Steps go one event back or forward; any other number was a mistake, not a jump."""
    if isinstance(direction, bool) or direction not in (-1, 1):
        raise ValueError(
            f"direction: {direction!r} is not a direction; accepted: -1 (back) | 1 (forward)"
        )


class Scrub:
    """The rows of one trace's events frame `ev` (sorted by seq) the cursor moves among."""

    def __init__(self, ev):
        self.ev = ev
        self.n = ev.height
        self.ts = ev["ts"]
        self.last = max(self.n - 1, 0)
        self._kind_rows: dict[str, Any] = {}

    def row_at(self, t: int) -> int:
        """The first row at or after time `t` (the last row for a time after the end)."""
        return min(self.ts.search_sorted(t, "left"), self.last)

    def kind_rows(self, kind: str):
        """The rows of the events of `kind`, in order."""
        import polars as pl

        from ..schema import EVENT_KINDS

        if kind not in EVENT_KINDS:
            raise ValueError(
                f"kind: {kind!r} is not an event kind; accepted: {', '.join(EVENT_KINDS)}"
            )
        if kind not in self._kind_rows:
            self._kind_rows[kind] = (
                self.ev.select(pl.col("kind") == kind).to_series().arg_true()
                if self.n
                else pl.Series([], dtype=pl.UInt32)
            )
        return self._kind_rows[kind]

    def matching(self, actor: str | None, kind: str | None, obj: str | None):
        """The rows of the events by `actor`, of `kind`, on `obj` (as object or target);
        None when no filter is set (every row)."""
        import polars as pl

        conds = []
        if actor is not None:
            conds.append(pl.col("actor") == actor)
        if kind is not None:
            conds.append(pl.col("kind") == kind)
        if obj is not None:
            conds.append((pl.col("obj") == obj) | (pl.col("target") == obj))
        if not conds:
            return None
        return self.ev.select(pl.all_horizontal(conds).fill_null(False)).to_series().arg_true()

    def next_in(self, rows, i: int, direction: int) -> int | None:
        """The row of `rows` (None: every row) after (+1) / before (-1) row `i`; None when
        there is none."""
        if rows is None:
            return i + direction if 0 <= i + direction <= self.last else None
        k = rows.search_sorted(i, "right") if direction > 0 else rows.search_sorted(i, "left") - 1
        return int(rows[k]) if 0 <= k < rows.len() else None


__all__ = ["Scrub", "check_direction"]
