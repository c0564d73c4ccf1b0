"""The sync state of each calendar (`calendars`): its Google sync token, the last outcome.

One row per configured user: the nextSyncToken of the last listing whose meetings were all
written (stored by `GoogleItems.commit_listing` through `record_listing`, reference C1), the
calendar's time zone, when the sweep last settled it (m011), and the last attempt's result or
error. Error texts are stored redacted (`logs.redact`), like every log line: a token endpoint
that echoes the request must not leave a secret in the file.

One SQL for both engines (connection.py): `ON CONFLICT DO NOTHING`, the column `"user"` quoted.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from calsync.core import logs
from calsync.state.connection import Connection, iso, parse_time
from calsync.state.records import CalendarState


class Calendars:
    """The `calendars` table."""

    def __init__(self, db: Connection) -> None:
        self.db = db

    def calendar(self, user: str) -> CalendarState | None:
        rows = self.db.rows("SELECT * FROM calendars WHERE \"user\" = ?", [user])
        return _calendar(rows[0]) if rows else None

    def calendars(self) -> list[CalendarState]:
        return [_calendar(r) for r in self.db.rows("SELECT * FROM calendars ORDER BY \"user\"")]

    def ensure(self, user: str) -> None:
        """The user's row, created empty when missing (inside the caller's transaction)."""
        self.db.exec("INSERT INTO calendars (\"user\") VALUES (?) ON CONFLICT DO NOTHING", [user])

    def record_failure_of_calendar(self, user: str, error: str, at: dt.datetime) -> None:
        with self.db.transaction():
            self.ensure(user)
            self.db.exec(
                "UPDATE calendars SET last_attempt_at = ?, last_error = ?,"
                " consecutive_failures = consecutive_failures + 1 WHERE \"user\" = ?",
                [iso(at), logs.redact(error), user],
            )

    def record_listing(
        self,
        user: str,
        *,
        sync_token: str | None,
        time_zone: str | None,
        result: Mapping[str, Any],
        at: dt.datetime,
        swept: bool | None,
    ) -> None:
        """A listing's writes are done: its sync token, the time zone it gave (if any), the
        cycle's result, and the sweep's outcome (`GoogleItems.commit_listing` says which)."""
        with self.db.transaction():
            self.ensure(user)
            self.db.exec(
                "UPDATE calendars SET sync_token = ?, token_saved_at = ?, last_attempt_at = ?,"
                " last_success_at = ?, last_result = ?, last_error = NULL,"
                " consecutive_failures = 0, time_zone = COALESCE(?, time_zone),"
                " swept_at = CASE ? WHEN 'keep' THEN swept_at ELSE ? END"
                " WHERE \"user\" = ?",
                [sync_token, iso(at), iso(at), iso(at), json.dumps(dict(result)), time_zone,
                 "keep" if swept is None else "set", iso(at) if swept else None, user],
            )

    def drop_sync_token(self, user: str) -> None:
        with self.db.transaction():
            self.ensure(user)
            self.db.exec(
                "UPDATE calendars SET sync_token = NULL, token_saved_at = NULL WHERE \"user\" = ?",
                [user],
            )


def _calendar(row: Mapping[str, Any]) -> CalendarState:
    return CalendarState(
        user=row["user"],
        sync_token=row["sync_token"],
        token_saved_at=parse_time(row["token_saved_at"]),
        last_attempt_at=parse_time(row["last_attempt_at"]),
        last_success_at=parse_time(row["last_success_at"]),
        last_result=json.loads(row["last_result"] or "{}"),
        last_error=row["last_error"],
        consecutive_failures=row["consecutive_failures"],
        time_zone=row.get("time_zone"),
        swept_at=parse_time(row.get("swept_at")),
    )
