"""The rules for a container's items (`self.d[k]`, `k in self.s`, `self.items.append(x)`):
each key of a dict or index of a list (`d['k']`, `items[3]`) and each member of a set
or list (`seen{'x'}`) is a variable of its own, so accesses of different keys never
race, and the lost-update rule applies per key: a get-or-create or check-then-act
(`if k not in d: d[k] = make()`) whose check went stale before its write, or a
`d[k] += 1` whose read did, is reported with both accesses.

What is not a race on an item:

* two writes with no read between them in either thread (`s.add(x)`, `l.append(x)`,
  `d[k] = v` by two threads): inserting members commutes (appends of distinct items
  touch different members; of one item, the same membership either way), and a blind
  write is based on nothing the other thread changed. The data-race rule keeps the
  pairs where one side read the item;
* `d.setdefault(k, v)`: one atomic check-and-insert, recorded as a read;
* accesses of one item under a common lock, or ordered by happens-before (as for an
  attribute).

The atomicity rule (two attributes read as one view) does not take items: the keys a
loop checks one by one are no view.
"""

from __future__ import annotations

import polars as pl

from .race_access import is_item


def blind_item_writes() -> pl.Expr:
    """A candidate pair (`op` / `p_op`) of two writes of one item: no race."""
    return is_item() & (pl.col("op") == "write") & (pl.col("p_op") == "write")


def attributes_only(acc: pl.DataFrame) -> pl.DataFrame:
    """The accesses of attributes, without those of items."""
    return acc.filter(~is_item())
