"""The PostgreSQL engine of the state: a libpq URL, pooled connections, checks, failures, migrations.

`PostgresEngine` is the `Engine` of connection.py over one PostgreSQL database (psycopg 3),
chosen by `StateStore` when the state is a `postgresql://` URL ([state] url). Everything that is
PostgreSQL's own and not a query of one concern lives here:

- Connections: one `psycopg_pool.ConnectionPool` per database and process, shared by every
  store the process opens (the daemon opens one per worker thread, and one per status read):
  a store borrows one connection for its life and gives it back at `close`, so a new store
  costs no new connection nor authentication. The first connection is made outside the pool,
  so that a refused password or an unknown host is said at once, not after the pool's timeout.
  The password is never in the URL the configuration holds: it comes from a credential file
  (config.py) or libpq's own means (PGPASSFILE, peer authentication); `where` is the URL without
  any password, for messages and logs.
- The SQL: the concerns' queries are written once for both engines (`?` placeholders, the column
  `"user"` quoted, `ON CONFLICT`); `translate` turns the placeholders into psycopg's `%s` (and a
  literal `%` into `%%`) once per statement text.
- Transactions: `transaction()` opens one and first takes a transaction-scoped advisory lock
  (`pg_advisory_xact_lock(WRITE_LOCK)`), so the write transactions of a process's stores follow
  one another as SQLite's `BEGIN IMMEDIATE` makes them do: a concern that reads then writes
  inside one (`claim_owner_key`, `record_retry`) sees no other writer in between. Nested calls
  join the outer one.
- Failures: every psycopg or pool error becomes one `StateError` naming the database (exit 74).
- Migrations: the same named steps as SQLite (migrations.py), recorded in `_calsync_migrations`
  (migration_set, name, applied_at, as sqlite-utils' table), all pending ones in one
  transaction under an advisory lock (PostgreSQL's DDL is transactional: a failed migration
  leaves nothing half done). A database naming a migration this code does not know is refused.
- The read-only `reader`: one `REPEATABLE READ READ ONLY` transaction for the store's life, so
  every query sees the same moment, like SQLite's reader.
"""

from __future__ import annotations

import atexit
import datetime as dt
import functools
import json
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import psycopg_pool
from psycopg import conninfo as libpq

from calsync import __version__
from calsync.core.errors import StateError
from calsync.state import upgrade
from calsync.state.connection import iso
from calsync.state.migrations import POSTGRESQL, STEPS, migrations, statements
from calsync.state.salesforce_cache import SAVE_META
from calsync.state.tables import TABLES

SCHEMES = ("postgresql://", "postgres://")
MIGRATIONS_TABLE = "_calsync_migrations"
# Advisory lock keys (one 64-bit space per database): the write transactions, the migrations.
WRITE_LOCK = 0x63616C73796E6301  # "calsyn" 01
MIGRATE_LOCK = 0x63616C73796E6302
POOL_MAX = 16  # connections per database and process: the daemon's workers, status, metrics


def is_url(location: object) -> bool:
    """Whether a state location names a PostgreSQL database (else a SQLite file)."""
    return isinstance(location, str) and location.startswith(SCHEMES)


def where(url: str) -> str:
    """The URL without a password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}" if user else f":***@{host}"))


@functools.lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """A query of the concerns (qmark `?` placeholders) as psycopg takes it (`%s`): `?` outside
    quoted text and identifiers becomes `%s`, every `%` becomes `%%`."""
    out: list[str] = []
    quote: str | None = None
    for char in sql:
        if quote:
            if char == quote:
                quote = None
        elif char in ("'", '"'):
            quote = char
        elif char == "?":
            out.append("%s")
            continue
        out.append("%%" if char == "%" else char)
    return "".join(out)


def bind(params: Iterable[Any]) -> tuple[Any, ...]:
    """The parameters as PostgreSQL takes them: its text cannot hold a NUL character (SQLite's
    can), and a calendar's text may (a meeting's summary, location, description: any Unicode
    Google accepts). A NUL becomes U+FFFD, the replacement character, so the row is written
    instead of failing the whole cycle, and of every cycle after it (a state that refused the
    meeting's decision would never let its calendar sync again). What is stored with it is
    shown (explain's subject) or hashed before storing, never compared with Google's text."""
    return tuple(p.replace("\x00", "\ufffd") if isinstance(p, str) and "\x00" in p else p
                 for p in params)


def fault(name: str, exc: BaseException, doing: str = "use") -> StateError:
    """One line naming the state database and what is wrong with it (exit 74)."""
    if isinstance(exc, psycopg_pool.PoolTimeout):
        cause = "no connection to it could be had in time"
    elif isinstance(exc, psycopg.OperationalError):
        cause = "the server cannot be reached or refused the connection"
    elif isinstance(exc, psycopg.errors.InsufficientPrivilege):
        cause = "permission denied"
    elif isinstance(exc, psycopg.errors.DiskFull):
        cause = "the server's disk is full"
    elif isinstance(exc, psycopg.errors.ReadOnlySqlTransaction):
        cause = "it is read-only here"
    else:
        cause = "PostgreSQL failed"
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return StateError(f"{name}: cannot {doing} the state database: {cause} ({detail})")


@contextmanager
def _faults(name: str, doing: str = "use") -> Iterator[None]:
    try:
        yield
    except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
        raise fault(name, exc, doing) from exc


_pools: dict[str, psycopg_pool.ConnectionPool] = {}
_pools_lock = threading.Lock()


def _pool(conninfo: str, name: str, timeout: float) -> psycopg_pool.ConnectionPool:
    with _pools_lock:
        pool = _pools.get(conninfo)
        if pool is None:
            with _faults(name, "open"):
                # Said at once when refused (a wrong password, an unknown host, no database).
                psycopg.connect(conninfo, connect_timeout=max(int(timeout), 2)).close()
            pool = psycopg_pool.ConnectionPool(
                conninfo, min_size=1, max_size=POOL_MAX, timeout=timeout, open=True,
                kwargs={"autocommit": True}, name="calsync-state",
            )
            _pools[conninfo] = pool
        return pool


@atexit.register
def close_pools() -> None:
    """Close every pool of this process (at exit; tests call it between clusters)."""
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()


def conninfo_of(url: str, password: str | None = None) -> str:
    """The libpq connection string: the URL, its password given apart, calsync's name."""
    extra: dict[str, Any] = {"application_name": "calsync"}
    if password is not None:
        extra["password"] = password
    return libpq.make_conninfo(url, **extra)


class PostgresEngine:
    """One pooled connection to the state database. Not shared between threads."""

    dialect = POSTGRESQL

    def __init__(self, url: str, *, password: str | None = None, timeout: float = 30.0,
                 read_only: bool = False) -> None:
        """The database at `url`; use `open` or `reader`."""
        self.path = where(url)
        self.url = url
        self._password = password
        self._pool = _pool(conninfo_of(url, password), self.path, timeout)
        with _faults(self.path, "open"):
            self.conn: psycopg.Connection[Any] = self._pool.getconn()
        self._depth = 0
        self.read_only = read_only
        if read_only:
            with _faults(self.path, "read"):
                self.conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    @classmethod
    def open(cls, url: str, *, password: str | None = None, timeout: float = 30.0) -> "PostgresEngine":
        """The database at `url`, migrated (its tables created in a new database)."""
        engine = cls(url, password=password, timeout=timeout)
        try:
            engine.migrate()
        except BaseException:
            engine.close()
            raise
        return engine

    @classmethod
    def reader(cls, url: str, *, password: str | None = None) -> "PostgresEngine":
        """The database at `url`, read-only inside one transaction (`StateStore.reader`).
        StateError when it is not a calsync state yet, misses migrations of this version
        (run calsync once to migrate it), or was migrated by a newer calsync."""
        engine = cls(url, password=password, read_only=True)
        try:
            applied = engine.applied()
            known = [m.name for m in migrations._migrations]
            engine._refuse_unknown(applied)
            missing = [name for name in known if name not in applied]
            if missing:
                raise StateError(
                    f"{engine.path}: the state database misses the migrations {', '.join(missing)}"
                    " of this calsync: `calsync sync` (or the daemon) applies them at its start"
                )
        except BaseException:
            engine.close()
            raise
        return engine

    # -- migrations ---------------------------------------------------------------------------

    def applied(self) -> list[str]:
        """The migrations this database records, in the order they ran ([] for none)."""
        found = self.rows("SELECT to_regclass(?) IS NOT NULL AS present", [MIGRATIONS_TABLE])
        if not found[0]["present"]:
            return []
        rows = self.rows(f"SELECT name FROM {MIGRATIONS_TABLE} WHERE migration_set = ? ORDER BY id",
                         [migrations.name])
        return [r["name"] for r in rows]

    def created(self) -> bool:
        """Whether calsync's tables exist here yet (a migrated database)."""
        return bool(self.applied())

    def migrate(self) -> None:
        """Apply the pending migrations (all in one transaction); refuse a database a newer
        calsync migrated. Two processes starting at once: the second waits, then finds none."""
        with self.transaction():
            self.exec("SELECT pg_advisory_xact_lock(?)", [MIGRATE_LOCK])
            _Migrating(self).script(
                f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (id {{ROW_ID}}, migration_set TEXT"
                " NOT NULL, name TEXT NOT NULL, applied_at TEXT NOT NULL,"
                " UNIQUE (migration_set, name))"
            )
            applied = self.applied()
            self._refuse_unknown(applied)
            pending = [(name, step) for name, step in STEPS if name not in applied]
            if not pending:
                return
            for name, step in pending:
                step(_Migrating(self))
                self.exec(
                    f"INSERT INTO {MIGRATIONS_TABLE} (migration_set, name, applied_at)"
                    " VALUES (?, ?, ?)",
                    [migrations.name, name, str(dt.datetime.now(dt.timezone.utc))],
                )
            self.exec(
                SAVE_META,
                [upgrade.VERSION_META, json.dumps(__version__),
                 iso(dt.datetime.now(dt.timezone.utc))],
            )

    def _refuse_unknown(self, applied: Iterable[str]) -> None:
        known = {m.name for m in migrations._migrations}
        unknown = sorted(set(applied) - known)
        if unknown:
            raise StateError(
                f"{self.path}: written by a newer calsync (migrations {', '.join(unknown)}) than"
                f" this one ({__version__}), which cannot know what that schema means and refuses"
                " it: run the newer calsync (README.md, \"Upgrading\")"
            )

    # -- the Connection -----------------------------------------------------------------------

    def check_intact(self) -> None:
        """Read every row of every calsync table once (PostgreSQL checks each page as it reads
        it: a damaged one is an error here, not in the middle of a cycle)."""
        for table in TABLES:
            self.rows(f"SELECT count(*) AS n FROM {table}")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction, after the other writers' (WRITE_LOCK); everything inside
        commits together or not at all. Inside another `transaction()` it joins the outer one."""
        if self._depth or self.read_only:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        with _faults(self.path, "write"):
            tx = self.conn.transaction()
            tx.__enter__()
        self._depth = 1
        try:
            with _faults(self.path, "write"):
                self.conn.execute("SELECT pg_advisory_xact_lock(%s)", [WRITE_LOCK])
            yield
        except BaseException as exc:
            self._depth = 0
            with _faults(self.path, "write"):
                tx.__exit__(type(exc), exc, exc.__traceback__)
            raise
        else:
            self._depth = 0
            with _faults(self.path, "write"):
                tx.__exit__(None, None, None)

    def rows(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        with _faults(self.path, "read"):
            cursor = self.conn.execute(translate(sql), bind(params))
            if cursor.description is None:
                return []
            names = [d.name for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

    def exec(self, sql: str, params: Iterable[Any] = ()) -> None:
        with _faults(self.path, "write"):
            self.conn.execute(translate(sql), bind(params))

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    def exec_many(self, sql: str, rows: Iterable[Iterable[Any]]) -> None:
        """One statement for many rows (`state copy`), inside the caller's transaction."""
        with _faults(self.path, "write"):
            with self.conn.cursor() as cursor:
                cursor.executemany(translate(sql), [bind(r) for r in rows])

    def close(self) -> None:
        conn, self.conn = self.conn, None  # type: ignore[assignment]
        if conn is None:
            return
        try:
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.rollback()
        except psycopg.Error:
            pass  # a broken connection: the pool throws it away
        self._pool.putconn(conn)


class _Migrating:
    """The `Migrating` target of migrations.py on PostgreSQL (inside `migrate`'s transaction)."""

    dialect = POSTGRESQL

    def __init__(self, engine: PostgresEngine) -> None:
        self.engine = engine

    def exec(self, sql: str, params: Iterable[Any] = ()) -> None:
        self.engine.exec(sql, params)

    def script(self, ddl: str) -> None:
        for statement in statements(ddl, POSTGRESQL):
            self.engine.exec(statement)
