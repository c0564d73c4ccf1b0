"""The meeting index, the re-plan queue and the Salesforce changes already acted on (directory.py).

- `meeting_index` + `meeting_links` (m003): per (user, iCalUID) the synced occurrence's start and
  what ties the meeting to Salesforce: its candidate addresses (lowercased) and the records it
  names or relates to (15-character ids, reference B2), so a change in Salesforce finds the
  meetings it affects (`meetings_touching`).
- `directory_seen` (m003): changes already acted on inside the refresh overlap.
- `replans` (m003, `Replans`): meetings queued for re-planning: because Salesforce changed under
  them, and every meeting a listing touched, from the moment the listing reaches the mirror
  until its writes are done (`GoogleItems.apply_listing`, `commit_listing`), so no crash or
  fault between loses one.

One SQL for both engines (connection.py): `ON CONFLICT ... DO UPDATE` / `DO NOTHING`, the
column `"user"` quoted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from calsync.state.connection import Connection, chunks, iso, iso_exact, parse_time
from calsync.state.records import IndexEntry

ADDRESS, RECORD = "address", "record"  # the kinds of meeting_links


def index_address(address: str) -> str:
    """Addresses compare case-insensitively (Salesforce Email, reference B1)."""
    return address.strip().lower()


def index_id(record_id: str) -> str:
    """Ids compare by their case-sensitive 15-character form (reference B2)."""
    return record_id.strip()[:15]


class MeetingIndex:
    """`meeting_index`, `meeting_links` and `directory_seen`."""

    def __init__(self, db: Connection) -> None:
        self.db = db

    def index_meetings(self, entries: Iterable[IndexEntry]) -> None:
        """Replace the index entries of these (user, iCalUID) pairs, in one transaction.

        An empty entry (no addresses, no ids) removes the meeting from the index.
        """
        entries = list(entries)
        if not entries:
            return
        with self.db.transaction():
            for entry in entries:
                pair = [entry.user, entry.ical_uid]
                self.db.exec("DELETE FROM meeting_links WHERE \"user\" = ? AND ical_uid = ?", pair)
                if entry.empty:
                    self.db.exec("DELETE FROM meeting_index WHERE \"user\" = ? AND ical_uid = ?", pair)
                    continue
                start = iso(entry.start) if entry.start is not None else None
                self.db.exec(
                    "INSERT INTO meeting_index (\"user\", ical_uid, start) VALUES (?, ?, ?)"
                    " ON CONFLICT (\"user\", ical_uid) DO UPDATE SET start = excluded.start",
                    [*pair, start],
                )
                links = {(ADDRESS, index_address(a)) for a in entry.addresses}
                links |= {(RECORD, index_id(i)) for i in entry.record_ids}
                for kind, value in sorted(links):
                    self.db.exec(
                        "INSERT INTO meeting_links (\"user\", ical_uid, kind, value)"
                        " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                        [*pair, kind, value],
                    )

    def index_entry(self, user: str, ical_uid: str) -> IndexEntry | None:
        """The stored entry of one meeting (addresses lowercased, ids in 15-character form)."""
        rows = self.db.rows(
            "SELECT start FROM meeting_index WHERE \"user\" = ? AND ical_uid = ?", [user, ical_uid]
        )
        if not rows:
            return None
        links = self.db.rows(
            "SELECT kind, value FROM meeting_links WHERE \"user\" = ? AND ical_uid = ?", [user, ical_uid]
        )
        return IndexEntry(
            user=user,
            ical_uid=ical_uid,
            addresses=frozenset(r["value"] for r in links if r["kind"] == ADDRESS),
            record_ids=frozenset(r["value"] for r in links if r["kind"] == RECORD),
            start=parse_time(rows[0]["start"]),
        )

    def meetings_touching(
        self, addresses: Iterable[str], record_ids: Iterable[str], starting_after: dt.datetime
    ) -> set[tuple[str, str]]:
        """(user, iCalUID) of the indexed meetings linked to any of these addresses or ids and
        starting after `starting_after` (a meeting whose start is unknown counts as inside)."""
        found: set[tuple[str, str]] = set()
        after = iso(starting_after)
        for kind, values in (
            (ADDRESS, {index_address(a) for a in addresses}),
            (RECORD, {index_id(i) for i in record_ids}),
        ):
            for chunk in chunks(sorted(values)):
                marks = ",".join("?" * len(chunk))
                for row in self.db.rows(
                    "SELECT DISTINCT l.\"user\", l.ical_uid FROM meeting_links AS l"
                    " JOIN meeting_index AS m ON m.\"user\" = l.\"user\" AND m.ical_uid = l.ical_uid"
                    f" WHERE l.kind = ? AND l.value IN ({marks})"
                    " AND (m.start IS NULL OR m.start > ?)",
                    [kind, *chunk, after],
                ):
                    found.add((row["user"], row["ical_uid"]))
        return found

    # -- changes already acted on (directory.py) ------------------------------------------------

    def directory_seen(self) -> set[str]:
        return {r["key"] for r in self.db.rows("SELECT key FROM directory_seen")}

    def remember_directory_seen(
        self, seen: Mapping[str, dt.datetime], forget_up_to: dt.datetime
    ) -> None:
        """Add `key → stamp` pairs and drop every pair stamped at or before `forget_up_to`."""
        with self.db.transaction():
            for key, stamp in seen.items():
                self.db.exec(
                    "INSERT INTO directory_seen (key, stamp) VALUES (?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET stamp = excluded.stamp",
                    [key, iso_exact(stamp)],
                )
            self.db.exec("DELETE FROM directory_seen WHERE stamp <= ?", [iso_exact(forget_up_to)])


class Replans:
    """`replans`: meetings waiting to be planned again."""

    def __init__(self, db: Connection) -> None:
        self.db = db

    def queue_replans(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Queue (user, iCalUID) meetings for re-planning (queuing twice keeps one)."""
        pairs = sorted(set(pairs))
        if not pairs:
            return
        with self.db.transaction():
            for user, ical_uid in pairs:
                self.db.exec(
                    "INSERT INTO replans (\"user\", ical_uid) VALUES (?, ?) ON CONFLICT DO NOTHING",
                    [user, ical_uid],
                )

    def replans(self, user: str) -> set[str]:
        """iCalUIDs of this user's meetings waiting to be re-planned."""
        return {r["ical_uid"] for r in self.db.rows("SELECT ical_uid FROM replans WHERE \"user\" = ?", [user])}

    def clear_replans(self, user: str, ical_uids: Iterable[str]) -> None:
        uids = sorted(set(ical_uids))
        if not uids:
            return
        with self.db.transaction():
            for chunk in chunks(uids):
                self.db.exec(
                    f"DELETE FROM replans WHERE \"user\" = ? AND ical_uid IN ({','.join('?' * len(chunk))})",
                    [user, *chunk],
                )
