"""Writing a file whole or not at all: a temporary file in the same directory, fsync, rename(2).

A reader (node_exporter, the daemon reading a token) sees the old file or the new one, never a
half-written one; a crash leaves the old one and, at worst, a stray temporary file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write(path: str | Path, data: bytes, mode: int) -> None:
    """`data` at `path` with `mode`, atomically; then the directory is synced so the rename
    itself survives a crash."""
    target = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
