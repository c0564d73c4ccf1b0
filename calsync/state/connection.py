"""The narrow interface between the state's queries and a database engine; stored values.

Each concern of the state (calendars.py, google_items.py, written.py, retries.py, ...) holds its
own SQL and needs three things of a database, the `Connection`: `rows(sql, params)` (a list of
dicts, one per row, keyed by column name), `exec(sql, params)` and `transaction()` (one write
transaction; inside another it joins the outer one). `StateStore` (store.py) is that connection
for them: it forwards `rows` and `exec` to its `Engine` and opens every transaction itself, so
that whatever wraps `StateStore.transaction` sees each concern's transactions too.

An `Engine` is a `Connection` over one database that can also check itself and close. SQLite's
is sqlite.py (opening the file, pragmas, WAL, the read-only reader and the private snapshot,
quick_check, error translation, migrations). A second engine (issue 20: PostgreSQL via
psycopg 3) is one more module providing the same methods; the concern modules do not change
except where their docstrings name SQLite-only syntax.

The SQL the concerns hold is written for SQLite and kept as portable as it reasonably is:
parameters are `?` placeholders (qmark; psycopg wants `%s`), and each concern module's docstring
lists the SQLite-only syntax it still uses (`INSERT OR REPLACE`, `INSERT OR IGNORE`,
`UPDATE OR IGNORE`, `instr`, a column named `user`, which PostgreSQL reserves). `ON CONFLICT
... DO UPDATE SET ... excluded.` is shared by both.

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

    path: str  # what names the database in messages (the file; a DSN without its password)

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

