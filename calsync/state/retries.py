"""Records Salesforce refused (`retries`), parked with its statusCode and re-planned later.

A refused record waits a delay that doubles per attempt (at most a day); each refusal also goes
into `record_history` (record_history.py), in the same transaction. Messages are stored redacted
(`logs.redact`) and cut to 2,000 characters. Writing the record's Event at last, or the Event
going, settles it (written.py).

No SQLite-only syntax here: `ON CONFLICT(key) DO UPDATE ... excluded.` and a `GROUP BY` on an
output column's alias mean the same in PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from calsync.core import logs
from calsync.state.connection import Connection, chunks, iso, parse_time
from calsync.state.record_history import record_history
from calsync.state.records import Retry


class Retries:
    """The `retries` table."""

    def __init__(self, db: Connection) -> None:
        self.db = db

    def record_retry(
        self,
        key: str,
        owner: str,
        ical_uid: str,
        operation: str,
        status_code: str | None,
        message: str | None,
        at: dt.datetime,
        base_delay: dt.timedelta,
    ) -> Retry:
        """Park a refused record; it is re-planned after a delay that doubles per attempt."""
        with self.db.transaction():
            rows = self.db.rows("SELECT attempts FROM retries WHERE key = ?", [key])
            attempts = (rows[0]["attempts"] + 1) if rows else 1
            delay = min(base_delay * (2 ** (attempts - 1)), dt.timedelta(hours=24))
            next_at = at + delay
            self.db.exec(
                "INSERT INTO retries (key, owner, ical_uid, operation, status_code, message,"
                " attempts, first_failed_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(key) DO UPDATE SET operation = excluded.operation,"
                " status_code = excluded.status_code, message = excluded.message,"
                " attempts = excluded.attempts, next_attempt_at = excluded.next_attempt_at",
                [key, owner, ical_uid, operation, status_code, logs.redact(message or "")[:2000],
                 attempts, iso(at), iso(next_at)],
            )
            record_history(self.db, key, owner, ical_uid, "refused", at, operation=operation,
                           status_code=status_code, message=message, attempts=attempts)
        return Retry(key, owner, ical_uid, operation, status_code, message, attempts, next_at)

    def clear_retries(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        if not keys:
            return
        with self.db.transaction():
            for chunk in chunks(sorted(set(keys))):
                self.db.exec(f"DELETE FROM retries WHERE key IN ({','.join('?' * len(chunk))})", chunk)

    def retries(self, owner: str | None = None) -> list[Retry]:
        sql = "SELECT * FROM retries" + (" WHERE owner = ?" if owner else "") + " ORDER BY key"
        return [
            Retry(
                key=r["key"],
                owner=r["owner"],
                ical_uid=r["ical_uid"],
                operation=r["operation"],
                status_code=r["status_code"],
                message=r["message"],
                attempts=r["attempts"],
                next_attempt_at=parse_time(r["next_attempt_at"]) or dt.datetime.min,
            )
            for r in self.db.rows(sql, [owner] if owner else [])
        ]

    def parked_counts(self) -> dict[tuple[str, str], int]:
        """Records waiting for a retry by (owner, statusCode) ("unknown" when none): the
        metrics' gauge, read without the records themselves."""
        rows = self.db.rows("SELECT owner, COALESCE(status_code, 'unknown') AS code, COUNT(*) AS n"
                          " FROM retries GROUP BY owner, code")
        return {(r["owner"], r["code"]): int(r["n"]) for r in rows}

    def due_retries(self, owner: str, now: dt.datetime) -> list[Retry]:
        return [r for r in self.retries(owner) if r.next_attempt_at <= now]

    def make_retries_due(self, keys: Iterable[str], at: dt.datetime) -> None:
        """`calsync retry`: these parked records are re-planned by the next cycle."""
        keys = sorted(set(keys))
        with self.db.transaction():
            for chunk in chunks(keys):
                self.db.exec(
                    f"UPDATE retries SET next_attempt_at = ? WHERE key IN ({','.join('?' * len(chunk))})",
                    [iso(at), *chunk],
                )
