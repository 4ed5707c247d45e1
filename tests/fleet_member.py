"""One member of a fleet, run as its own process by tests/test_store_fleet.py:

    python fleet_member.py ROOT FIRST ROUNDS READ_FD WRITE_FD

It records itself into ROOT (its host named by $SCOPE_NB_HOST) and takes ROUNDS turns
with its peer: a turn waits for the peer's byte on READ_FD (the FIRST member starts
without), calls `step`, and sends a byte on WRITE_FD (but for the last turn of all).
Each turn of the other member therefore happens between two of this one's: the
causal order the merged trace must show."""

from __future__ import annotations

import os
import sys

import scope_nb as scope


def step(host: str, turn: int) -> int:
    """A turn's mark in the trace: its arguments say whose turn it was."""
    return turn


def main(root: str, first: bool, rounds: int, read_fd: int, write_fd: int) -> None:
    host = os.environ["SCOPE_NB_HOST"]
    scope.start(persist_to_disk=True, persist_path=root, flush_interval=0.05, modules=[__name__])
    for turn in range(rounds):
        if turn or not first:
            if os.read(read_fd, 1) != b"t":
                raise SystemExit("the peer left before its turn")
        step(host, turn)
        if first or turn < rounds - 1:  # the last turn of all wakes nobody
            os.write(write_fd, b"t")
    scope.stop().wait_written()


if __name__ == "__main__":
    root, first, rounds, read_fd, write_fd = sys.argv[1:]
    main(root, first == "1", int(rounds), int(read_fd), int(write_fd))
