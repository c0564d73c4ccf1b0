"""The mirror of Google items (`google_items`) and how a listing reaches it and is committed.

Every item calsync knows of each calendar (raw JSON), the calendar's whole history, not only the
last window. Incremental answers carry only what changed (a cancelled occurrence may hold
nothing but ids, reference A3), so working out a series' first occurrence needs the rest of the
series from here; and a windowed listing says nothing of what lies before its window, so nothing
is dropped from here but on evidence (`changes.py`). `suspect_since` (m002) marks items a full
listing should have shown but did not, until events.get settles them.

A listing goes in two steps, each one transaction: `apply_listing` puts it into the mirror and
queues its meetings (`Replans`) before anything is written to Salesforce; `commit_listing`
stores the calendar's sync token (`Calendars.record_listing`) and takes the meetings off the
queue once their writes are done.

One SQL for both engines (connection.py): an item listed again replaces the row (`ON CONFLICT
... DO UPDATE`, its `suspect_since` cleared as `INSERT OR REPLACE` did), the column `"user"`
quoted.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from typing import Any

from calsync.state.calendars import Calendars
from calsync.state.connection import Connection, chunks, iso
from calsync.state.meeting_index import Replans
from calsync.state.records import MirrorRow


class GoogleItems:
    """`google_items`, with the calendar rows and the re-plan queue a listing also writes."""

    def __init__(self, db: Connection, calendars: Calendars, replans: Replans) -> None:
        self.db = db
        self.calendars = calendars
        self.replans = replans

    def mirror_by_ids(self, user: str, event_ids: Iterable[str]) -> dict[str, MirrorRow]:
        ids = sorted(set(event_ids))
        found: dict[str, MirrorRow] = {}
        for chunk in chunks(ids):
            marks = ",".join("?" * len(chunk))
            for row in self.db.rows(
                f"SELECT * FROM google_items WHERE \"user\" = ? AND event_id IN ({marks})",
                [user, *chunk],
            ):
                found[row["event_id"]] = _mirror_row(row)
        return found

    def mirror_by_uids(self, user: str, ical_uids: Iterable[str]) -> dict[str, list[MirrorRow]]:
        uids = sorted(set(ical_uids))
        found: dict[str, list[MirrorRow]] = {}
        for chunk in chunks(uids):
            marks = ",".join("?" * len(chunk))
            for row in self.db.rows(
                f"SELECT * FROM google_items WHERE \"user\" = ? AND ical_uid IN ({marks})"
                " ORDER BY event_id",
                [user, *chunk],
            ):
                found.setdefault(row["ical_uid"], []).append(_mirror_row(row))
        return found

    def mirror_uids(self, user: str) -> set[str]:
        rows = self.db.rows("SELECT DISTINCT ical_uid FROM google_items WHERE \"user\" = ?", [user])
        return {r["ical_uid"] for r in rows}

    def mirror_rows(self, user: str) -> list[MirrorRow]:
        """Every item known of `user`'s calendar."""
        rows = self.db.rows("SELECT * FROM google_items WHERE \"user\" = ? ORDER BY event_id", [user])
        return [_mirror_row(r) for r in rows]

    def suspects(self, user: str) -> list[MirrorRow]:
        """Items a full listing left out although its window covered them, oldest first."""
        rows = self.db.rows(
            "SELECT * FROM google_items WHERE \"user\" = ? AND suspect_since IS NOT NULL"
            " ORDER BY suspect_since, event_id",
            [user],
        )
        return [_mirror_row(r) for r in rows]

    def apply_listing(
        self,
        user: str,
        *,
        upserts: Iterable[MirrorRow],
        deletes: Iterable[str],
        suspects: Iterable[str] = (),
        queued: Iterable[str] = (),
        at: dt.datetime,
    ) -> None:
        """Apply a listing to the mirror and queue its meetings (iCalUIDs) for planning, in one
        transaction, before anything of it is written to Salesforce.

        The mirror then knows every item the listing carried (a bare cancelled stub names only
        an id, reference A3: the next listing can tie it to a meeting only through the mirror),
        and the queue (`replans`) keeps each meeting until `commit_listing` says its writes are
        done: a crash or a failed write in between leaves the work queued, never lost, and
        listing the same changes again is idempotent. `deletes` are event ids; deleting a series
        master also drops its exceptions. Nothing else leaves the mirror: a full listing is
        authoritative only for what it covers, and what it should have shown but did not is
        marked `suspects` (kept, checked later).
        """
        upserts, deletes, suspects = list(upserts), list(deletes), list(suspects)
        queued = sorted(set(queued))
        if not (upserts or deletes or suspects or queued):
            return  # an idle poll: no transaction
        with self.db.transaction():
            self.calendars.ensure(user)
            for event_id in suspects:
                self.db.exec(
                    "UPDATE google_items SET suspect_since = COALESCE(suspect_since, ?)"
                    " WHERE \"user\" = ? AND event_id = ?",
                    [iso(at), user, event_id],
                )
            for event_id in deletes:
                self.db.exec(
                    "DELETE FROM google_items WHERE \"user\" = ? AND"
                    " (event_id = ? OR recurring_event_id = ?)",
                    [user, event_id, event_id],
                )
            self._upsert(user, upserts)
            self.replans.queue_replans((user, ical_uid) for ical_uid in queued)

    def commit_listing(
        self,
        user: str,
        *,
        upserts: Iterable[MirrorRow] = (),
        deletes: Iterable[str] = (),
        suspects: Iterable[str] = (),
        sync_token: str | None,
        time_zone: str | None = None,
        result: Mapping[str, Any],
        at: dt.datetime,
        done: Iterable[str] = (),
        swept: bool | None = None,
    ) -> None:
        """Store a listing's nextSyncToken once its meetings are planned and written, and take
        those meetings (`done`, iCalUIDs) off the queue, in one transaction (reference C1).

        A cycle applies the listing to the mirror first (`apply_listing`); `upserts`, `deletes`
        and `suspects` given here are applied too, in the same transaction. `swept`: True when
        the sweep settled every orphaned Event (the time is stored), False when it left some
        for later (due again at once), None when it did not run.
        """
        with self.db.transaction():
            self.apply_listing(user, upserts=upserts, deletes=deletes, suspects=suspects, at=at)
            self.calendars.record_listing(user, sync_token=sync_token, time_zone=time_zone,
                                          result=result, at=at, swept=swept)
            self.replans.clear_replans(user, done)

    def keep_listed(self, user: str, rows: Iterable[MirrorRow]) -> None:
        """Put the listed items of meetings about to get an Event into the mirror now, ahead of
        their listing's commit.

        A create whose answer is lost, or a crash after it, leaves the calendar's listing
        uncommitted while the Event may exist. If the meeting is deleted before the next run,
        Google shows it as a bare id (reference A3), which only the mirror can tie to its
        iCalUID and so to the Event. An item in the mirror early is harmless: the next listing
        shows it again (or its deletion), or a full listing checks it by id."""
        with self.db.transaction():
            self.calendars.ensure(user)
            self._upsert(user, rows)

    def _upsert(self, user: str, rows: Iterable[MirrorRow]) -> None:
        for row in rows:
            self.db.exec(
                "INSERT INTO google_items"
                " (\"user\", event_id, ical_uid, recurring_event_id, payload)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (\"user\", event_id) DO UPDATE SET"
                " ical_uid = excluded.ical_uid, recurring_event_id = excluded.recurring_event_id,"
                " payload = excluded.payload, suspect_since = NULL",
                [user, row.event_id, row.ical_uid, row.recurring_event_id,
                 json.dumps(row.payload, separators=(",", ":"))],
            )


def _mirror_row(row: Mapping[str, Any]) -> MirrorRow:
    return MirrorRow(
        event_id=row["event_id"],
        ical_uid=row["ical_uid"],
        recurring_event_id=row["recurring_event_id"],
        payload=json.loads(row["payload"]),
    )
