"""The Events calsync wrote (`written`), who owns their fields, and the intents around each write.

Per Event key (the owner's key address + iCalUID, `model.event_key`): the Salesforce Event id
and the fingerprint of the fields last written. `state` is `creating` between the intent and
the answer of a create, so a crash in between is reconciled on the next run instead of
duplicated (`intent_sf_at`, m009: Salesforce's clock at the intent, where the search for the
Event that landed starts: `cycle.reconcile_creates`, `landed.py`), and `deleting` between a
delete's call and its answer (an Event then found gone was calsync's own delete, not a
person's). Per-field hashes, kept fields and removed/canceled marks (m004, m007):
ownership.py. An Event written at last settles its parked retry (`retries`) and says so in
`record_history`, in the same transaction.

One SQL for both engines (connection.py): `substr`, `COALESCE`, `CASE` and `ON CONFLICT(key)
DO UPDATE ... excluded.` mean the same in PostgreSQL; the column `"user"` of the tables
`orphans` joins is quoted.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from typing import Any

from calsync.core.model import Written
from calsync.state.connection import Connection, chunks, iso, iso_exact, parse_time
from calsync.state.records import Orphan, PendingCreate, Record

# Hashes of unanswered updates kept per field (record_update_intents): bounded, should a
# calendar crash on the same Event again and again.
PENDING_KEPT = 16


class WrittenEvents:
    """The `written` table."""

    def __init__(self, db: Connection) -> None:
        self.db = db

    def written(self, keys: Iterable[str]) -> dict[str, Written]:
        found: dict[str, Written] = {}
        for chunk in chunks(sorted(set(keys))):
            marks = ",".join("?" * len(chunk))
            for row in self.db.rows(f"SELECT * FROM written WHERE key IN ({marks})", chunk):
                found[row["key"]] = _written(row)
        return found

    def written_for_owner(self, owner: str) -> dict[str, Written]:
        rows = self.db.rows("SELECT * FROM written WHERE owner = ?", [owner])
        return {r["key"]: _written(r) for r in rows}

    def count_written(self, owner: str | None = None) -> int:
        if owner is None:
            rows = self.db.rows("SELECT COUNT(*) AS n FROM written WHERE sf_id IS NOT NULL AND removed_at IS NULL")
        else:
            rows = self.db.rows(
                "SELECT COUNT(*) AS n FROM written WHERE owner = ? AND sf_id IS NOT NULL"
                " AND removed_at IS NULL", [owner]
            )
        return int(rows[0]["n"])

    def orphans(self, owner: str, limit: int) -> list[Orphan]:
        """Up to `limit` Events calsync wrote on `owner`'s calendar (not deleted or canceled by
        a person, no create pending) whose iCalUID has no row in the mirror and that nothing
        queues already (a parked retry, a queued re-plan), oldest write first. An Event whose
        meeting calsync last decided to delete is left out: its delete was refused and parked,
        and a parked record an operator dropped (`calsync retry --drop`) stays dropped.

        Two indexed lookups per Event of the owner; run at most daily per calendar and on full
        listings (`sweep.due`), never on an idle poll."""
        rows = self.db.rows(
            "SELECT w.key, w.ical_uid, w.sf_id, d.event_id FROM written AS w"
            " LEFT JOIN decisions AS d ON d.\"user\" = w.owner AND d.ical_uid = w.ical_uid"
            " WHERE w.owner = ? AND w.sf_id IS NOT NULL AND w.state != 'creating'"
            " AND w.removed_at IS NULL AND w.canceled_at IS NULL"
            " AND (d.action IS NULL OR d.action != 'delete')"
            " AND NOT EXISTS (SELECT 1 FROM google_items AS g"
            "                 WHERE g.\"user\" = w.owner AND g.ical_uid = w.ical_uid)"
            " AND NOT EXISTS (SELECT 1 FROM retries AS r WHERE r.key = w.key)"
            " AND NOT EXISTS (SELECT 1 FROM replans AS q"
            "                 WHERE q.\"user\" = w.owner AND q.ical_uid = w.ical_uid)"
            " ORDER BY w.updated_at, w.key LIMIT ?",
            [owner, limit],
        )
        return [Orphan(r["key"], r["ical_uid"], r["sf_id"], r["event_id"]) for r in rows]

    def record_create_intents(
        self,
        intents: Iterable[tuple[str, str, str, dict[str, Any]]],
        at: dt.datetime,
        sf_at: dt.datetime | None = None,
    ) -> None:
        """Before creating Events: remember (key, owner, ical_uid, record) as `creating`, with
        calsync's time `at` and Salesforce's `sf_at` (None when unknown).

        Committed before the Salesforce call, so a crash after the call leaves a trace that the
        next run reconciles (finds the Event that landed) instead of creating it twice.
        """
        sf_iso = iso_exact(sf_at) if sf_at is not None else None
        with self.db.transaction():
            for key, owner, ical_uid, record in intents:
                self.db.exec(
                    "INSERT INTO written (key, owner, ical_uid, sf_id, fingerprint, state, intent,"
                    " intent_at, updated_at, intent_sf_at) VALUES (?, ?, ?, NULL, NULL, 'creating', ?, ?, ?, ?)"
                    " ON CONFLICT(key) DO UPDATE SET state = 'creating', intent = excluded.intent,"
                    " intent_at = excluded.intent_at, updated_at = excluded.updated_at,"
                    " intent_sf_at = excluded.intent_sf_at",
                    [key, owner, ical_uid, json.dumps(record), iso(at), iso(at), sf_iso],
                )

    def pending_creates(self, owners: Iterable[str] | None = None) -> list[PendingCreate]:
        rows = self.db.rows("SELECT * FROM written WHERE state = 'creating' ORDER BY intent_at, key")
        wanted = set(owners) if owners is not None else None
        return [
            PendingCreate(
                key=r["key"],
                owner=r["owner"],
                ical_uid=r["ical_uid"],
                intent=json.loads(r["intent"] or "{}"),
                intent_at=parse_time(r["intent_at"]) or dt.datetime.now(dt.timezone.utc),
                intent_sf_at=parse_time(r.get("intent_sf_at")),
            )
            for r in rows
            if wanted is None or r["owner"] in wanted
        ]

    def claims(self, ids: Iterable[str] | None = None) -> dict[str, str]:
        """15-character Event Id → key, for every Event the state records (reference B2), or
        only for these Event ids (15 or 18 characters): a chunk's Events need not load the
        whole table (100,000 rows held ~30 MB at once, issue 12)."""
        if ids is None:
            rows = self.db.rows("SELECT key, sf_id FROM written WHERE sf_id IS NOT NULL")
            return {str(r["sf_id"])[:15]: r["key"] for r in rows}
        found: dict[str, str] = {}
        for part in chunks(sorted({str(i)[:15] for i in ids})):
            marks = ",".join("?" * len(part))
            for r in self.db.rows(
                f"SELECT key, sf_id FROM written WHERE substr(sf_id, 1, 15) IN ({marks})", part
            ):
                found[str(r["sf_id"])[:15]] = r["key"]
        return found

    def record_written_many(self, rows: Iterable[Record | tuple[Any, ...]], at: dt.datetime) -> None:
        """Events now hold these fields (a whole Collections answer), in one transaction: store
        each one's id and fingerprint, clear any retry.

        The Event is calsync's again as written: not removed, not canceled; the fields a person
        owns (`kept`) stay theirs unless the record gives a new set.
        """
        records = [r if isinstance(r, Record) else Record(*r) for r in rows]
        if not records:
            return
        with self.db.transaction():
            for r in records:
                hashes = json.dumps(dict(r.hashes), sort_keys=True) if r.hashes is not None else None
                kept = json.dumps(sorted(r.kept)) if r.kept is not None else None
                self.db.exec(
                    "INSERT INTO written (key, owner, ical_uid, sf_id, fingerprint, state, intent,"
                    " intent_at, updated_at, hashes, kept) VALUES (?, ?, ?, ?, ?, 'synced', NULL, NULL, ?, ?, ?)"
                    " ON CONFLICT(key) DO UPDATE SET sf_id = excluded.sf_id,"
                    " fingerprint = excluded.fingerprint, state = 'synced', intent = NULL,"
                    " intent_at = NULL, intent_sf_at = NULL, updated_at = excluded.updated_at, hashes = excluded.hashes,"
                    " kept = COALESCE(excluded.kept, written.kept), removed_at = NULL, canceled_at = NULL,"
                    " canceled_prefix = NULL,"
                    " pending_hashes = NULL",
                    [r.key, r.owner, r.ical_uid, r.sf_id, r.fingerprint, iso(at), hashes, kept],
                )
                # A parked record written at last: its history says so (m010, history.py).
                self.db.exec(
                    "INSERT INTO record_history (key, owner, ical_uid, kind, operation, status_code,"
                    " attempts, at) SELECT key, owner, ical_uid, 'written', operation, status_code,"
                    " attempts, ? FROM retries WHERE key = ?", [iso(at), r.key])
                self.db.exec("DELETE FROM retries WHERE key = ?", [r.key])

    def record_update_intents(self, pending: Mapping[str, Mapping[str, str]]) -> None:
        """Before updating Events: the hashes of what is being sent, committed before the call.

        If the process dies after Salesforce took the update but before its answer is recorded,
        the next read finds these values and knows them for calsync's own (ownership.edited).
        Each unanswered update adds its hashes to those before it (until a write is recorded):
        after two crashes in a row the Event may hold either update, the one sent first when
        the second process died before its call went out.
        """
        if not pending:
            return
        with self.db.transaction():
            earlier: dict[str, dict[str, list[str]]] = {}
            for chunk in chunks(sorted(pending)):
                marks = ",".join("?" * len(chunk))
                for row in self.db.rows(
                    f"SELECT key, pending_hashes FROM written WHERE key IN ({marks})"
                    " AND pending_hashes IS NOT NULL", chunk,
                ):
                    earlier[row["key"]] = _pending(row["pending_hashes"])
            for key, hashes in pending.items():
                merged = earlier.get(key, {})
                for name, value in hashes.items():
                    seen = [v for v in merged.get(name, []) if v != value]
                    merged[name] = [*seen, value][-PENDING_KEPT:]
                self.db.exec("UPDATE written SET pending_hashes = ? WHERE key = ?",
                           [json.dumps(merged, sort_keys=True), key])

    def record_delete_intents(self, keys: Iterable[str]) -> None:
        """Before deleting Events: mark them `deleting`, committed before the call, so an Event
        found gone afterwards is known for calsync's own delete, not a person's (ownership.py)."""
        keys = sorted(set(keys))
        if not keys:
            return
        with self.db.transaction():
            for key in keys:
                self.db.exec("UPDATE written SET state = 'deleting' WHERE key = ? AND sf_id IS NOT NULL", [key])

    def abandon_deletes(self, keys: Iterable[str]) -> None:
        """Deletes Salesforce refused: the Events are still there, and still calsync's."""
        keys = sorted(set(keys))
        if not keys:
            return
        with self.db.transaction():
            for key in keys:
                self.db.exec("UPDATE written SET state = 'synced' WHERE key = ? AND state = 'deleting'", [key])

    def keep_fields(self, kept: Mapping[str, Iterable[str]]) -> None:
        """Fields a person changed (ownership.py): calsync leaves them out from now on."""
        if not kept:
            return
        with self.db.transaction():
            for key, names in kept.items():
                self.db.exec("UPDATE written SET kept = ? WHERE key = ?", [json.dumps(sorted(names)), key])

    def mark_removed(self, keys: Iterable[str], at: dt.datetime) -> None:
        """These Events were deleted in Salesforce by someone: they stay deleted."""
        keys = sorted(set(keys))
        if not keys:
            return
        with self.db.transaction():
            for key in keys:
                self.db.exec(
                    "UPDATE written SET removed_at = COALESCE(removed_at, ?) WHERE key = ?", [iso(at), key]
                )
                self.db.exec("DELETE FROM retries WHERE key = ?", [key])

    def mark_canceled(
        self, key: str, hashes: Mapping[str, str], at: dt.datetime, *, prefixed: bool = True
    ) -> None:
        """The meeting went but a person had changed its Event: kept, with `Canceled: `.

        The fingerprint no desired body has, so the Event is written again if the meeting comes
        back; `hashes` now say what calsync last wrote (its Subject with the prefix). `prefixed`:
        calsync added the prefix itself (False: the Subject carried it already)."""
        with self.db.transaction():
            self.db.exec(
                "UPDATE written SET canceled_prefix = CASE WHEN canceled_at IS NULL THEN ?"
                " ELSE canceled_prefix END, canceled_at = COALESCE(canceled_at, ?),"
                " fingerprint = 'canceled', hashes = ?, updated_at = ?, pending_hashes = NULL"
                " WHERE key = ?",
                [int(prefixed), iso(at), json.dumps(dict(hashes), sort_keys=True), iso(at), key],
            )
            self.db.exec("DELETE FROM retries WHERE key = ?", [key])

    def removed_in_salesforce(self, owner: str | None = None) -> list[Written]:
        """Events a person deleted in Salesforce, which calsync does not re-create."""
        sql = "SELECT * FROM written WHERE removed_at IS NOT NULL" + (" AND owner = ?" if owner else "")
        return [_written(r) for r in self.db.rows(sql + " ORDER BY key", [owner] if owner else [])]

    def forget_written_many(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        if not keys:
            return
        with self.db.transaction():
            for key in keys:
                self.db.exec("DELETE FROM written WHERE key = ?", [key])
                self.db.exec("DELETE FROM retries WHERE key = ?", [key])

    def abandon_create(self, key: str) -> None:
        """A create was refused: nothing landed, so the key goes back to having no Event."""
        with self.db.transaction():
            self.db.exec("DELETE FROM written WHERE key = ? AND sf_id IS NULL", [key])
            self.db.exec(
                "UPDATE written SET state = 'synced', intent = NULL, intent_at = NULL, intent_sf_at = NULL"
                " WHERE key = ?",
                [key],
            )


def _written(row: Mapping[str, Any]) -> Written:
    return Written(
        key=row["key"],
        owner=row["owner"],
        ical_uid=row["ical_uid"],
        sf_id=row["sf_id"],
        fingerprint=row["fingerprint"],
        hashes=json.loads(row["hashes"]) if row.get("hashes") else None,
        kept=frozenset(json.loads(row["kept"])) if row.get("kept") else frozenset(),
        removed=row.get("removed_at") is not None,
        canceled=row.get("canceled_at") is not None,
        prefixed=None if row.get("canceled_prefix") is None else bool(row["canceled_prefix"]),
        written_at=parse_time(row.get("updated_at")),
        pending=_pending(row["pending_hashes"]) if row.get("pending_hashes") else None,
        deleting=row.get("state") == "deleting",
    )


def _pending(text: str) -> dict[str, list[str]]:
    """Stored pending hashes, field → the hashes of every unanswered update (a single hash in
    rows written before they were kept as a list)."""
    found = json.loads(text)
    return {name: [value] if isinstance(value, str) else list(value) for name, value in found.items()}
