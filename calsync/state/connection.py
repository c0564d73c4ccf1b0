"""The narrow interface between the state's queries and a database engine; stored values.

Each concern of the state (calendars.py, google_items.py, written.py, retries.py, ...) holds its
own SQL and needs three things of a database, the `Connection`: `rows(sql, params)` (a list of
dicts, one per row, keyed by column name), `exec(sql, params)` and `transaction()` (one write
transaction; inside another it joins the outer one). `StateStore` (store.py) is that connection
for them: it forwards `rows` and `exec` to its `Engine` and opens every transaction itself, so
that whatever wraps `StateStore.transaction` sees each concern's transactions too.

An `Engine` is a `Connection` over one database that can also check itself and close. SQLite's
is sqlite.py (opening the file, pragmas, WAL, the read-only reader and the private snapshot,
quick_check, error translation, migrations); PostgreSQL's is postgres.py (psycopg 3, a pool of
connections, advisory locks, the same migrations). Which one `StateStore` opens depends on the
state's location: a file path, or a `postgresql://` URL.

The SQL the concerns hold is written once for both engines (SQLite 3.24 or later, PostgreSQL
12 or later): parameters are `?` placeholders (qmark; the PostgreSQL engine turns them into
psycopg's `%s`), upserts are `INSERT ... ON CONFLICT (...) DO UPDATE SET ... excluded.` or `DO
NOTHING` (never SQLite's `INSERT OR REPLACE` / `OR IGNORE` / `UPDATE OR IGNORE`), and the
column `user`, which PostgreSQL reserves, is always quoted (`"user"`, which SQLite accepts).
What still differs between the engines lives in their modules and in migrations.py's
placeholders, never in a concern.

Values are stored as text where SQLite has no type for them: times as UTC ISO 8601 (`iso`, or
`iso_exact` with microseconds where order within a second matters), structures as JSON.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Any, Protocol

# Values per `IN (...)` list: SQLite's default limit of host parameters was 999 before 3.32.
CHUNK = 500


class Connection(Protocol):
    """What a concern's queries need: rows, a statement, a transaction."""

    def rows(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        """The rows `sql` selects, each a dict keyed by column name."""
        ...

    def exec(self, sql: str, params: Iterable[Any] = ()) -> None:
        """Run one statement (inside the caller's transaction when there is one)."""
        ...

    def transaction(self) -> AbstractContextManager[None]:
        """One write transaction; everything inside commits together or not at all. Inside
        another `transaction()` it joins the outer one."""
        ...


class Engine(Connection, Protocol):
    """A database behind `StateStore`: a `Connection` that can also check itself and close.

    Opening is the engine's own business (sqlite.py: `SQLiteEngine.open`, `.reader`,
    `.snapshot`); every failure of the database becomes one `StateError` naming it (exit 74).
    """

    path: str  # what names the database in messages (the file; a URL without its password)
    dialect: str  # migrations.SQLITE or migrations.POSTGRESQL

    @property
    def in_transaction(self) -> bool:
        """Whether a `transaction()` is open (the tests count the outermost ones)."""
        ...

    def exec_many(self, sql: str, rows: Iterable[Iterable[Any]]) -> None:
        """One statement for many rows (`state copy`), inside the caller's transaction."""
        ...

    def applied(self) -> list[str]:
        """The names of the migrations this database records, in the order they ran."""
        ...

    def check_intact(self) -> None:
        """Read the whole database once; StateError when it is damaged."""
        ...

    def close(self) -> None: ...


def iso(value: dt.datetime) -> str:
    """A time as stored: UTC ISO 8601 to the second."""
    return value.astimezone(dt.timezone.utc).isoformat(timespec="seconds")


def iso_exact(value: dt.datetime) -> str:
    """UTC ISO with microseconds: Salesforce stamps carry milliseconds, and order as text."""
    return value.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")


def parse_time(value: str | None) -> dt.datetime | None:
    """A stored time back (None for NULL)."""
    return dt.datetime.fromisoformat(value) if value else None


def chunks(items: list[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    """`items` in lists of at most `size`, for `IN (...)` lists of bounded length."""
    for start in range(0, len(items), size):
        yield items[start : start + size]

