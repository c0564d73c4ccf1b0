"""Upgrades of the state database: which version brought which migration, the copy kept first.

`MIGRATIONS_BY_VERSION` says which calsync version introduced which migration of
migrations.py (`calsync.__version__` is the one source of the version: `calsync --version`, the
package metadata). A version's line never changes once it is released: a new migration goes
under the version being prepared, so the version changes with every schema change
(tests/state/test_upgrades.py holds the rules).

Before `StateStore` migrates an existing database it keeps a copy of it, as it was, beside it:
`keep_copy` writes `<state>.before-<version>` with SQLite's backup API (a consistent copy even
while another process reads the file) into a new owner-only file, moved into place only when
complete, and logs where and which migrations will run. A copy that cannot be written (a full
disk) stops the start before anything is migrated. An existing file at that name (an earlier
copy, or a symlink someone planted) is never overwritten nor followed: the copy takes the next
free name (`.2`, `.3`, ...).

A database a newer calsync migrated holds migrations this code does not know; it is refused
(`StateStore`) with `newer_schema_message`, naming the versions and the copies beside it. The
version that last migrated a database is kept in its `meta` table (`VERSION_META`), so that an
older calsync can say which one it was.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from calsync import __version__

from calsync.core import logs

log = logging.getLogger("calsync.upgrade")  # names predate the layers (ARCHITECTURE.md)

# Which calsync version introduced which migration, oldest first. Released lines never change;
# add a new migration under __version__ (a new line when __version__ has none yet).
MIGRATIONS_BY_VERSION: dict[str, tuple[str, ...]] = {
    "0.1.0": (
        "m001_initial",
        "m002_history",
        "m003_directory",
        "m004_ownership",
        "m005_decisions",
        "m006_push",
    ),
    "0.2.0": ("m007_canceled_prefix", "m008_owner_keys", "m009_intent_clock", "m010_record_history", "m011_sweep", "m012_written_state"),
}

VERSION_META = "calsync version"  # meta row: the calsync version that last migrated the database
COPY_INFIX = ".before-"  # <state>.before-<version>: the copy kept before that version migrated it


def version_key(version: str) -> tuple[int, ...]:
    """"0.10.1" -> (0, 10, 1), so versions compare as numbers."""
    return tuple(int(part) for part in version.split("."))


def introduced_in(migration: str) -> str | None:
    """The calsync version whose schema change `migration` is (None: not one of ours)."""
    for version, names in MIGRATIONS_BY_VERSION.items():
        if migration in names:
            return version
    return None


def keep_copy(conn: sqlite3.Connection, path: Path, pending: Sequence[str]) -> Path:
    """Copy the database open on `conn` (the file at `path`) to a new file beside it, before the
    `pending` migrations run; log where. Returns the copy's path.

    sqlite3.Error or OSError when the copy cannot be written: then no copy is left behind (the
    caller stops before migrating).
    """
    partial = path.with_name(f"{path.name}{COPY_INFIX}{__version__}.partial-{os.getpid()}")
    partial.unlink(missing_ok=True)  # one of this process's earlier attempts; a symlink goes too
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
    try:
        copy = sqlite3.connect(partial)
        try:
            # No journal: the file is thrown away unless the copy completes.
            copy.execute("PRAGMA journal_mode=OFF")
            conn.backup(copy)
            # One self-contained file (the backup took the WAL mark from the state's header):
            # opening or restoring it needs no -wal file beside it.
            copy.execute("PRAGMA journal_mode=DELETE")
        finally:
            copy.close()
        _fsync(partial)
        target = _place(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    _fsync(path.parent)
    logs.event(
        log, "state database copied before migrating", path=str(path), copy=str(target),
        migrations=",".join(pending), version=__version__,
    )
    return target


def copies_beside(path: Path) -> list[Path]:
    """The copies kept before earlier upgrades of the database at `path`, newest first."""
    found = [
        p for p in path.parent.glob(f"{path.name}{COPY_INFIX}*")
        if ".partial-" not in p.name and p.is_file() and not p.is_symlink()
    ]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def newer_schema_message(path: Path, unknown: Sequence[str], written_by: str | None) -> str:
    """Why a database a newer calsync migrated is refused, and what the operator can do.
    `written_by`: the version its `meta` names (ignored unless newer than this one)."""
    if written_by is not None and not _newer(written_by):
        written_by = None  # migrated by a calsync that did not record its version
    which = f"calsync {written_by}; " if written_by else ""
    run = f"calsync {written_by} or later" if written_by else "the newer calsync"
    copies = copies_beside(path)
    wanted = [c for c in copies if written_by and c.name.endswith(f"{COPY_INFIX}{written_by}")]
    if copies:
        restore = f"stop calsync and restore the copy kept before that upgrade ({(wanted or copies)[0]})"
    else:
        restore = "restore a copy made before that upgrade (none is beside it)"
    return (
        f"{path}: written by a newer calsync ({which}migrations {', '.join(sorted(unknown))}) "
        f"than this one ({__version__}), which cannot know what that schema means and refuses "
        f"it: run {run}, or {restore} (README.md, \"Upgrading\")"
    )


def _newer(version: str) -> bool:
    try:
        return version_key(version) > version_key(__version__)
    except ValueError:  # not a plain X.Y.Z: say it, it may help
        return version != __version__


def _place(partial: Path, path: Path) -> Path:
    """Give the complete copy its name: <state>.before-<version>, else the first free .N."""
    base = path.with_name(f"{path.name}{COPY_INFIX}{__version__}")
    for n in range(1, 1000):
        target = base if n == 1 else base.with_name(f"{base.name}.{n}")
        try:
            os.link(partial, target, follow_symlinks=False)  # fails on any existing name
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise
            # A file system without hard links: a rename, after making sure the name is free.
            if os.path.lexists(target):
                continue
            partial.rename(target)
            return target
        partial.unlink()
        return target
    raise FileExistsError(errno.EEXIST, "no free name for the copy", str(base))


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
