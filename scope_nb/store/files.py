"""Owner-only, atomic file writes: every file of a trace directory is written to a
temporary name and renamed into place, so a reader (or a process killed mid-write)
only ever sees complete files; files are 0600 and directories 0700 because traces
hold program data."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

FILE_MODE = 0o600
DIR_MODE = 0o700
METADATA = "metadata.json"
TRACE_FORMAT = "scope_nb"


HOST_ENV = "SCOPE_NB_HOST"


def host_name() -> str:
    """The host as trace directories (`<host>-<pid>`) and metadata name it: $SCOPE_NB_HOST
    when set (a fleet names its machines itself, e.g. containers whose hostnames are
    random), else the system's host name; "/" and "-" become "_" so the name is one
    path component and the directory name splits at its last "-"."""
    name = os.environ.get(HOST_ENV) or socket.gethostname()
    return name.replace("/", "_").replace("-", "_") or "host"


def private_dir(path: str | os.PathLike) -> Path:
    """Create `path` (and missing parents) owner-only; an existing directory is kept
    as it is, except that a directory we create is never wider than 0700."""
    p = Path(path)
    missing = []
    q = p
    while not q.exists():
        missing.append(q)
        q = q.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(d, DIR_MODE)
    if not p.is_dir():
        raise NotADirectoryError(f"scope_nb: {p} exists and is not a directory")
    return p


def _temp(path: Path) -> Path:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.close(fd)
    os.chmod(tmp, FILE_MODE)
    return tmp


def write_atomic(path: Path, write) -> int:
    """Call `write(temp_path)`, then rename the temp file onto `path`. Returns its size."""
    path = Path(path)
    tmp = _temp(path)
    try:
        write(tmp)
        size = os.path.getsize(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return size


def write_parquet(df, path: Path) -> int:
    return write_atomic(
        path, lambda tmp: df.write_parquet(tmp, compression="zstd", statistics=True)
    )


def write_json(obj: Any, path: Path) -> int:
    def w(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=1, default=str, sort_keys=True)

    return write_atomic(path, w)


def read_json(path: Path) -> dict:
    """A metadata file, or a ValueError naming it."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"scope_nb: cannot read trace metadata {path}: {e}") from None
    if not isinstance(data, dict) or data.get("format") != TRACE_FORMAT:
        raise ValueError(f"scope_nb: {path} is not scope_nb trace metadata")
    return data


def write_arrow(table, path: Path) -> int:
    import pyarrow.parquet as pq

    return write_atomic(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))
