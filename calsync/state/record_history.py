"""What became of records Salesforce refused (`record_history`, m010), kept HISTORY_DAYS.

Each refusal (kind `refused`, with its statusCode, message and attempt), each `calsync retry
--drop` (kind `dropped`, with who asked) and each write of a parked record at last (kind
`written`, by `WrittenEvents.record_written_many`), so `status` and `explain` can still say what
happened once the retry queue forgot the record (history.py puts the story together).

Functions of a `Connection` (a `StateStore`), as the callers use them: `record_history` inside
the caller's transaction (`Retries.record_retry`, `calsync retry --drop`), `history` for the
readers. One SQL for both engines; the table's `id` is SQLite's row id (`INTEGER PRIMARY KEY`, an
identity column in PostgreSQL: migrations.py), which orders entries as they happened.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from calsync.core import logs
from calsync.state.connection import Connection, chunks, iso, parse_time
from calsync.state.records import HistoryEntry

HISTORY_DAYS = 30  # refused and dropped records stay visible this long


def record_history(
    store: Connection, key: str, owner: str, ical_uid: str, kind: str, at: dt.datetime, *,
    operation: str | None = None, status_code: str | None = None, message: str | None = None,
    attempts: int | None = None, by: str | None = None,
) -> None:
    """Add one entry (inside the caller's transaction when there is one); entries older than
    HISTORY_DAYS go at the same time (an indexed delete)."""
    with store.transaction():
        store.exec(
            "INSERT INTO record_history (key, owner, ical_uid, kind, operation, status_code,"
            " message, attempts, at, by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [key, owner, ical_uid, kind, operation, status_code,
             logs.redact(message or "")[:2000] if message else None, attempts, iso(at), by],
        )
        store.exec("DELETE FROM record_history WHERE at < ?",
                    [iso(at - dt.timedelta(days=HISTORY_DAYS))])


def history(
    store: Connection, since: dt.datetime, *, owner: str | None = None,
    keys: Iterable[str] | None = None,
) -> list[HistoryEntry]:
    """Entries from `since` on (of one owner, or of these keys), oldest first."""
    sql, params = "SELECT * FROM record_history WHERE at >= ?", [iso(since)]
    if owner is not None:
        sql += " AND owner = ?"
        params.append(owner)
    rows: list[dict[str, Any]] = []
    if keys is not None:
        for part in chunks(sorted(set(keys))):
            rows += store.rows(sql + f" AND key IN ({','.join('?' * len(part))})", [*params, *part])
    else:
        rows = store.rows(sql, params)
    rows.sort(key=lambda r: r["id"])  # in the order they happened (ids only grow)
    return [
        HistoryEntry(key=r["key"], owner=r["owner"], ical_uid=r["ical_uid"], kind=r["kind"],
                     operation=r["operation"], status_code=r["status_code"], message=r["message"],
                     attempts=r["attempts"], at=parse_time(r["at"]) or dt.datetime.min, by=r["by"])
        for r in rows
    ]
