"""What calsync caches of Salesforce so that an idle cycle costs no call: users and small facts.

- `sf_users`: configured user (address) → Salesforce User Id, with when it was checked (None:
  no active User has that address).
- `meta`: small cached facts (the Event describe, the directory refresh watermark, the calsync
  version that last migrated the database) as JSON, with the time they were saved.

One SQL for both engines (connection.py): `ON CONFLICT (...) DO UPDATE`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from typing import Any

from calsync.state.connection import Connection, chunks, iso, parse_time

# One row of `meta`, replaced whole (also the write check of store.py, the version of sqlite.py).
SAVE_META = (
    "INSERT INTO meta (name, value, saved_at) VALUES (?, ?, ?)"
    " ON CONFLICT (name) DO UPDATE SET value = excluded.value, saved_at = excluded.saved_at"
)


class SalesforceCache:
    """The `sf_users` and `meta` tables."""

    def __init__(self, db: Connection) -> None:
        self.db = db

    def sf_users(
        self, addresses: Iterable[str] | None = None
    ) -> dict[str, tuple[str | None, dt.datetime]]:
        """Cached user mapping: all of it, or these addresses' (a daemon's one-calendar cycle
        reads one row, not 10,000)."""
        if addresses is None:
            rows = self.db.rows("SELECT * FROM sf_users")
        else:
            rows = []
            for part in chunks(sorted(set(addresses))):
                marks = ",".join("?" * len(part))
                rows += self.db.rows(f"SELECT * FROM sf_users WHERE address IN ({marks})", part)
        return {
            r["address"]: (r["user_id"], parse_time(r["checked_at"]) or dt.datetime.min)
            for r in rows
        }

    def save_sf_users(self, found: Mapping[str, str | None], at: dt.datetime) -> None:
        with self.db.transaction():
            for address, user_id in found.items():
                self.db.exec(
                    "INSERT INTO sf_users (address, user_id, checked_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (address) DO UPDATE SET user_id = excluded.user_id,"
                    " checked_at = excluded.checked_at",
                    [address, user_id, iso(at)],
                )

    def meta(self, name: str) -> tuple[Any, dt.datetime] | None:
        rows = self.db.rows("SELECT value, saved_at FROM meta WHERE name = ?", [name])
        if not rows:
            return None
        return json.loads(rows[0]["value"]), parse_time(rows[0]["saved_at"]) or dt.datetime.min

    def save_meta(self, name: str, value: Any, at: dt.datetime) -> None:
        with self.db.transaction():
            self.db.exec(
                SAVE_META,
                [name, json.dumps(value), iso(at)],
            )
