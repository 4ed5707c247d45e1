"""The STATES rows of a recording, built off the hot path from the raw rows the
snapshots keep."""

from __future__ import annotations

import pickle
from typing import Any

from ....typed import encode_payload


def states_rows(rec, start: int = 0) -> list[dict]:
    """The STATES rows recorded so far, from the `start`-th on (payloads pickled and
    encoded as typed JSON here, off the hot path; `state` is the bounded repr of the
    whole state after each change, so the rows before `start` are still read)."""
    rows = list(rec.parts.states or ())
    current: dict[str, dict[str, str]] = {}
    out = []
    to_epoch = rec.offset
    limit = rec.options.max_repr * 4
    encoded: dict[int, str | None] = {}  # id of a pickle -> its typed JSON (keyframes repeat them)
    for i, (
        name,
        ts,
        actor,
        cause,
        changed,
        removed,
        attrs,
        ops,
        payloads,
        reprs,
        keyframe,
        loc,
    ) in enumerate(rows):
        shown = current.setdefault(name, {})
        if keyframe:
            shown.clear()
        for n in removed:
            shown.pop(n, None)
        shown.update(zip(attrs, reprs, strict=True))
        if i < start:
            continue
        text = "{" + ", ".join(f"{k}: {v}" for k, v in shown.items()) + "}"
        if len(text) > limit:
            text = text[: limit - 3] + "..."
        out.append(
            {
                "obj": name,
                "seq": None,
                "ts": ts + to_epoch,
                "actor": actor,
                "cause": cause,
                "changed": list(changed),
                "state": text,
                "location": loc,
                "blobs": [_blob(p) for p in payloads],
                "values": list(reprs),
                "attrs": list(attrs),
                "ops": list(ops),
                "removed": list(removed),
                "keyframe": keyframe,
                "json": [_typed(p, t, encoded) for p, t in zip(payloads, reprs, strict=True)],
            }
        )
    return out


def _typed(payload: Any, text: str, encoded: dict[int, str | None]) -> str | None:
    if type(payload) is not bytes:
        return encode_payload(payload, text)
    key = id(payload)  # the rows hold every payload while they are read: ids stay theirs
    if key not in encoded:
        encoded[key] = encode_payload(payload, text)
    return encoded[key]


def _blob(payload: Any) -> bytes | None:
    if type(payload) is bytes:
        return payload
    try:
        return pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        return None


# -- install / uninstall -----------------------------------------------------------------
