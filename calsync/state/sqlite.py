"""The SQLite engine of the state: the file, its connection, checks, failures and migrations.

Everything that is SQLite's own and not a query of one concern lives here, behind `SQLiteEngine`
(the `Engine` of connection.py), which `StateStore` (store.py) is built on:

- Opening: the database file and its directory are created owner-only (0600, 0700) when calsync
  creates them, and refused when the file or its -wal, -shm or -journal is a symbolic link
  (`refuse_symlinks`). WAL journal, a busy timeout, autocommit mode (`isolation_level=None`) so
  that `transaction()` alone decides where a transaction begins and ends.
- Transactions: `BEGIN IMMEDIATE` (the write lock taken at once, so two writers wait for each
  other at the start rather than fail at the first write), joined by nested `transaction()`
  calls (SQLite has no nested BEGIN). Plain SQL only: sqlite-utils' own insert helpers commit
  on their own and would split a transaction.
- Failures: every sqlite3.Error or OSError (a damaged file, a full disk, a read-only file or
  directory, a lock held too long by another program) becomes one `StateError` naming the file
  and the cause (`state_fault`, exit 74), from whichever statement meets it. `check_intact`
  reads every page once (PRAGMA quick_check).
- Migrations: the named migrations of migrations.py, applied through sqlite-utils, which records
  them in `_sqlite_migrations`. A database a newer calsync migrated (a migration this code does
  not know) is refused rather than guessed at; before an existing file is migrated, a copy of it
  as it was is kept beside it (upgrade.py).
- The read-only `reader` (status, explain, doctor, the metrics: no copy, one read transaction)
  and the private in-memory `snapshot` (`resync --dry-run`, `explain --live`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from calsync import __version__
from calsync.core.errors import StateError
from calsync.state import upgrade
from calsync.state.connection import iso
from calsync.state.migrations import SQLITE, migrations
from calsync.state.salesforce_cache import SAVE_META


def state_fault(path: str | Path, exc: sqlite3.Error | OSError, doing: str = "use") -> StateError:
    """One line naming the state database and what is wrong with it (exit 74)."""
    if isinstance(exc, OSError):
        return StateError(f"{path}: cannot {doing} the state database: {exc.strerror or exc}")
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        cause = "the file is damaged"
    elif name.startswith("SQLITE_FULL"):
        cause = "the disk is full"
    elif name in ("SQLITE_IOERR_SHMSIZE", "SQLITE_IOERR_WRITE", "SQLITE_IOERR_FSYNC"):
        # No room for the WAL's shared-memory file, or a write refused: nearly always space.
        cause = "a write failed: the disk is probably full"
    elif name.startswith(("SQLITE_READONLY", "SQLITE_PERM")):
        cause = "it is read-only here"
    elif name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        cause = "another program holds a lock on it"
    elif name.startswith("SQLITE_CANTOPEN"):
        cause = "it cannot be opened (a missing or read-only directory?)"
    else:
        cause = "SQLite failed"
    return StateError(f"{path}: cannot {doing} the state database: {cause} ({exc})")


@contextmanager
def _faults(path: str, doing: str = "use") -> Iterator[None]:
    try:
        yield
    except (sqlite3.Error, OSError) as exc:
        raise state_fault(path, exc, doing) from exc


class SQLiteEngine:
    """One connection to the state database file. Not shared between threads."""

    dialect = SQLITE

    def __init__(self, path: str, conn: sqlite3.Connection) -> None:
        """An engine over an open connection; use `open`, `reader` or `snapshot`."""
        self.path = path
        self.db = sqlite_utils.Database(conn)

    @classmethod
    def open(
        cls, path: str | Path, *, timeout: float = 30.0, check_same_thread: bool = True
    ) -> "SQLiteEngine":
        """The database at `path` (created when missing, ":memory:" for none), migrated."""
        text = str(path)
        with _faults(text, "open"):
            if text != ":memory:":
                _create_private(Path(text))
            conn = sqlite3.connect(
                text, timeout=timeout, isolation_level=None, check_same_thread=check_same_thread,
            )
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
                engine = cls(text, conn)
                engine.migrate()
            except BaseException:
                conn.close()
                raise
        return engine

    @classmethod
    def reader(cls, path: str | Path) -> "SQLiteEngine":
        """The database at `path` (which must exist), opened read-only (`StateStore.reader`).

        SQLite's `mode=ro` with `query_only`, inside one read transaction, so every query sees
        the same moment even while the daemon writes (WAL readers never wait for the writer).
        A read-only directory without the WAL's -shm file is read as it lies (`immutable=1`:
        nobody can be writing there). A database written by a newer calsync is refused
        (StateError); one that misses migrations of this version is read through a migrated
        private copy (`snapshot`), once.
        """
        text = str(path)
        known = {m.name for m in migrations._migrations}
        with _faults(text, "read"):
            conn, applied = _open_read_only(text)
        if applied is None:  # not a calsync database yet: read through a migrated copy
            conn.close()
            return cls.snapshot(path)
        engine = cls(text, conn)
        unknown = applied - known
        if unknown:
            engine.close()
            raise StateError(
                f"{text}: written by a newer calsync (migrations {sorted(unknown)}); "
                "upgrade calsync or point [state] path at another file"
            )
        if known - applied:
            engine.close()
            return cls.snapshot(path)
        return engine

    @classmethod
    def snapshot(cls, path: str | Path) -> "SQLiteEngine":
        """A private in-memory copy of the database at `path` (`StateStore.snapshot`).

        Opened read-only and copied with SQLite's backup API (a consistent snapshot even while
        the daemon writes), then checked like any store: a database written by a newer calsync,
        or a damaged one, is refused (StateError). A read-only directory without the WAL's -shm
        file is read as it lies.
        """
        engine = cls.open(":memory:")
        try:
            with _faults(str(path), "read"):
                try:
                    _copy(path, "mode=ro", engine.db.conn)
                except sqlite3.OperationalError:
                    # A read-only directory without the WAL's -shm file: read the file as it
                    # lies (nobody can be writing it there).
                    _copy(path, "immutable=1", engine.db.conn)
                engine.migrate(Path(path))  # the copy replaced the fresh schema: check it
            engine._check_intact(path)
        except StateError:
            engine.close()
            raise
        return engine

    def migrate(self, source: Path | None = None) -> None:
        """Apply the pending migrations, after keeping a copy of an existing database file as
        it was (upgrade.py); refuse a database a newer calsync migrated. `source`: the file a
        private copy was made of, for the refusal's message."""
        known = [m.name for m in migrations._migrations]
        applied = {m.name for m in migrations.applied(self.db)}
        unknown = applied - set(known)
        if unknown:
            raise StateError(
                upgrade.newer_schema_message(
                    source or Path(self.path), sorted(unknown), self._written_by()
                )
            )
        pending = [name for name in known if name not in applied]
        if not pending:
            return
        if applied and self.path != ":memory:":  # neither a new database nor a private copy
            try:
                upgrade.keep_copy(self.db.conn, Path(self.path), pending)
            except (sqlite3.Error, OSError) as exc:
                fault = state_fault(self.path, exc, "keep a copy of")
                raise StateError(f"{fault}; nothing was migrated") from exc
        migrations.apply(self.db)
        with self.transaction():
            self.exec(
                SAVE_META,
                [upgrade.VERSION_META, json.dumps(__version__),
                 iso(dt.datetime.now(dt.timezone.utc))],
            )

    def applied(self) -> list[str]:
        """The migrations this database records, in the order they ran."""
        return [m.name for m in migrations.applied(self.db)]

    def _written_by(self) -> str | None:
        """The calsync version that last migrated this database (None: before 0.2.0)."""
        try:
            row = self.db.conn.execute(
                "SELECT value FROM meta WHERE name = ?", [upgrade.VERSION_META]
            ).fetchone()
            return str(json.loads(row[0])) if row else None
        except (sqlite3.Error, ValueError):
            return None

    def check_intact(self) -> None:
        """PRAGMA quick_check: every page of the file read once; StateError when damaged."""
        self._check_intact(self.path)

    def _check_intact(self, name: str | Path) -> None:
        rows = self.rows("PRAGMA quick_check(1)")
        verdict = next(iter(rows[0].values())) if rows else "ok"
        if verdict != "ok":
            raise StateError(
                f"{name}: cannot use the state database: the file is damaged ({verdict})"
            )

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One exclusive write transaction; everything inside commits together or not at all.

        Inside another `transaction()` it joins the outer one (SQLite has no nested BEGIN), so
        writes that each commit on their own can also be grouped into one.
        """
        conn = self.db.conn
        if conn.in_transaction:
            yield
            return
        with _faults(self.path, "write"):
            conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                with _faults(self.path, "write"):
                    conn.execute("ROLLBACK")
            raise
        else:
            with _faults(self.path, "write"):
                conn.execute("COMMIT")

    def rows(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        with _faults(self.path, "read"):
            cursor = self.db.conn.execute(sql, tuple(params))
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

    def exec(self, sql: str, params: Iterable[Any] = ()) -> None:
        with _faults(self.path, "write"):
            self.db.conn.execute(sql, tuple(params))

    @property
    def in_transaction(self) -> bool:
        return self.db.conn.in_transaction

    def exec_many(self, sql: str, rows: Iterable[Iterable[Any]]) -> None:
        """One statement for many rows (`state copy`), inside the caller's transaction."""
        with _faults(self.path, "write"):
            self.db.conn.executemany(sql, [tuple(r) for r in rows])

    def close(self) -> None:
        self.db.conn.close()


def private_directory(directory: Path) -> None:
    """`directory` (and missing parents) when it does not exist, the last one owner-only."""
    if not directory.exists():
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)


def refuse_symlinks(path: Path) -> None:
    """StateError when the database file or its -wal, -shm or -journal is a symbolic link:
    SQLite would write through it into whatever file it names (one planted there by someone
    who could write the directory). [state] path must name the file itself."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        candidate = Path(f"{path}{suffix}")
        if candidate.is_symlink():
            raise StateError(
                f"{path}: cannot open the state database: {candidate} is a symbolic link, which"
                " calsync does not follow (point [state] path at the file itself)"
            )


def _create_private(path: Path) -> None:
    """The database's directory (0700) and an empty file (0600) when calsync creates them;
    SQLite gives its -wal and -shm files the database file's permissions. None of the files
    may be a symbolic link (`refuse_symlinks`); O_NOFOLLOW closes the race for the file."""
    refuse_symlinks(path)
    if path.exists():
        return
    private_directory(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
    except FileExistsError:  # created meanwhile by another process
        pass


def _open_read_only(path: str) -> tuple[sqlite3.Connection, set[str] | None]:
    """A read-only connection inside a read transaction, and the calsync migrations the file
    records (None: no migrations table, not a calsync database yet)."""
    uri = Path(path).absolute().as_uri()
    for mode in ("mode=ro", "immutable=1"):
        conn = sqlite3.connect(f"{uri}?{mode}", uri=True, timeout=5, isolation_level=None)
        try:
            conn.execute("PRAGMA query_only=1")
            conn.execute("BEGIN")
            tables = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table'"
                                  " AND name = '_sqlite_migrations'").fetchall()
            if not tables:
                return conn, None
            rows = conn.execute("SELECT name FROM _sqlite_migrations WHERE migration_set = ?",
                                [migrations.name]).fetchall()
            return conn, {name for (name,) in rows}
        except sqlite3.OperationalError:
            conn.close()
            if mode == "immutable=1":
                raise
            # A read-only directory without the WAL's -shm file: read the file as it lies
            # (nobody can be writing it there).
    raise AssertionError("unreachable")


def _copy(path: str | Path, mode: str, target: sqlite3.Connection) -> None:
    source = sqlite3.connect(f"{Path(path).absolute().as_uri()}?{mode}", uri=True, timeout=30)
    try:
        source.backup(target)
    finally:
        source.close()
