"""A whole state copied from one database to another, whichever their engines (`state copy`).

`copy_state(source, target)` copies every table of tables.py, row by row with every column as
stored (the Events written and their ownership hashes, the mirror, the retry queue, the record
history with its ids, `meta` with the version that migrated the source), in one transaction of
the target. Both are open stores of this calsync, so both hold the schema of this version (the
target was migrated when opened; a source that misses migrations is read through a migrated
copy, `StateStore.reader`): the target ends with the same schema version and the same rows.
What the target held before is replaced (the caller refuses a target with rows unless told to).

It also serves `StateStore.snapshot` on PostgreSQL: the private in-memory copy `resync
--dry-run` and `explain --live` plan on is a SQLite database filled from PostgreSQL here.

Where the engines differ it is said here: PostgreSQL's identity columns continue after the ids
copied (`setval`).
"""

from __future__ import annotations

from collections.abc import Callable

from calsync.state.connection import Engine
from calsync.state.migrations import POSTGRESQL
from calsync.state.tables import NUMBERED, TABLES

BATCH = 2_000  # rows per read and per insert: a large state is never held whole in memory


def _quoted(name: str) -> str:
    return f'"{name}"'


def counts(engine: Engine) -> dict[str, int]:
    """Rows per table."""
    return {t: int(engine.rows(f"SELECT COUNT(*) AS n FROM {t}")[0]["n"]) for t in TABLES}


def copy_state(
    source: Engine, target: Engine, progress: Callable[[str, int], None] = lambda t, n: None
) -> dict[str, int]:
    """Copy every table of `source` into `target` (its rows replaced), in one transaction of
    the target; `progress(table, rows)` after each table. Returns rows copied per table."""
    copied: dict[str, int] = {}
    with target.transaction():
        for table in reversed(list(TABLES)):
            target.exec(f"DELETE FROM {table}")
        for table, order in TABLES.items():
            copied[table] = _copy_table(source, target, table, order)
            progress(table, copied[table])
        if target.dialect == POSTGRESQL:
            for table in NUMBERED:
                target.exec(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                    f" COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
                )
    return copied


def _copy_table(source: Engine, target: Engine, table: str, order: tuple[str, ...]) -> int:
    keys = ", ".join(_quoted(c) for c in order)
    done = 0
    after: list[object] | None = None
    while True:
        # Keyset pages (by the table's key), so each read is an indexed range, not an OFFSET.
        where = ""
        if after is not None:
            where = f" WHERE ({keys}) > ({', '.join('?' * len(order))})"
        rows = source.rows(
            f"SELECT * FROM {table}{where} ORDER BY {keys} LIMIT {BATCH}", after or []
        )
        if not rows:
            return done
        columns = list(rows[0])
        target.exec_many(
            f"INSERT INTO {table} ({', '.join(_quoted(c) for c in columns)})"
            f" VALUES ({', '.join('?' * len(columns))})",
            [[r[c] for c in columns] for r in rows],
        )
        done += len(rows)
        after = [rows[-1][c] for c in order]
