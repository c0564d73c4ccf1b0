"""The one write path of the emulated org: insert, update and delete (to the recycle bin).

Writes go through here whatever the door (single-record REST, Collections, upsert, lead
conversion, control API), so every validation rule of reference B3/B5 applies everywhere:
field existence and permissions, required fields, lengths, restricted picklists, references,
uniqueness (`field_rules.py`), and the Event rules (`event_rules.py`). Triggers run before the
checks (`automation.py`); injected failures refuse a request before it writes (`failures.py`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

from calsync.sandbox.salesforce.automation import Triggers
from calsync.sandbox.salesforce.errors import RecordError, RecordFailed
from calsync.sandbox.salesforce.event_rules import EventPlan, EventRules
from calsync.sandbox.salesforce.failures import RecordFailures
from calsync.sandbox.salesforce.field_rules import FieldRules
from calsync.sandbox.salesforce.schema import ObjectDef, id_number
from calsync.sandbox.salesforce.store import OrgStore, Row, defaults
from calsync.sandbox.salesforce.values import parse_fields

_AUDIT_FIELDS = ("CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById", "SystemModstamp")


class RecordWriter:
    """Single-record writes, and the insert/update/delete every other write is made of."""

    def __init__(self, store: OrgStore, fields: FieldRules, events: EventRules, triggers: Triggers,
                 failures: RecordFailures) -> None:
        self.store = store
        self.fields = fields
        self.events = events
        self.triggers = triggers
        self.failures = failures

    # ------------------------------------------------------------------ single records

    def create_record(self, object_name: str, fields: dict[str, Any], *, user_id: str | None = None,
                      system: bool = True) -> str:
        """Insert one record (control API / tests: `system` skips createable checks). Raises
        ApiError or RecordFailed."""
        with self.store.lock:
            obj = self.store.object(object_name)
            parsed = parse_fields(obj, fields)
            record = {"attributes": {"type": obj.name}, **fields}
            self.failures.raise_hits([record])
            with self.store.transaction():
                return self.insert(obj, parsed, user_id=user_id, system=system)

    def update_record(self, object_name: str, record_id: str, fields: dict[str, Any], *,
                      user_id: str | None = None, system: bool = True) -> None:
        with self.store.lock:
            obj = self.store.object(object_name)
            parsed = parse_fields(obj, fields)
            parsed.pop("Id", None)
            row = self.store.lookup_for_rest(obj.name, record_id)
            self.failures.raise_hits([{"attributes": {"type": obj.name}, **fields, "Id": row["Id"]}])
            with self.store.transaction():
                self.update(obj, row["Id"], parsed, user_id=user_id, system=system)

    def delete_record(self, object_name: str, record_id: str) -> None:
        with self.store.lock:
            obj = self.store.object(object_name)
            row = self.store.lookup_for_rest(obj.name, record_id)
            self.failures.raise_hits([{"attributes": {"type": obj.name}, "Id": row["Id"]}])
            with self.store.transaction():
                self.delete(obj, row["Id"])

    def restore_records(self, object_name: str, rows: Iterable[dict[str, Any]]) -> None:
        """Test setup: put records exported from another run of the emulator back as they were,
        same Ids, audit fields (who last modified them, when) and IsDeleted. Upgrading calsync
        leaves Salesforce untouched and record ids are permanent (reference B2), so the upgrade
        tests rebuild the org an older calsync wrote to (tests/state/fixtures). No API does
        this. Fields this schema lacks are left out, fields it added are null; ids issued later
        follow the highest restored one. Rows go in as given: Events' relations are restored
        with them (EventRelation rows), not derived."""
        with self.store.lock:
            obj = self.store.object(object_name)
            highest = 0
            for given in rows:
                row: Row = {f.name: None for f in obj.fields.values() if f.queryable}
                row.update(defaults(obj))
                row.update({name: value for name, value in given.items() if name in row})
                self.store.put(obj.name.lower(), row["Id"], row)
                highest = max(highest, id_number(row["Id"]))
            current = next(self.store.serial)
            self.store.serial = itertools.count(max(current, highest + 1))

    # ------------------------------------------------------------------ the write path

    def insert(self, obj: ObjectDef, parsed: dict[str, Any], *, user_id: str | None, system: bool) -> str:
        if parsed.get("Id"):
            raise RecordFailed(RecordError("INVALID_FIELD", "cannot specify Id in an insert call", ("Id",)))
        parsed.pop("Id", None)
        user_id = user_id or self.store.default_user_id
        self.fields.check_editable(obj, parsed, insert=True, system=system)
        row: Row = {f.name: None for f in obj.fields.values() if f.queryable}
        row.update(defaults(obj))
        for name, value in parsed.items():
            if name in row:
                row[name] = value
        if obj.field("OwnerId") is not None and row.get("OwnerId") is None:
            row["OwnerId"] = user_id  # defaults to the session's user (reference B3)
        self.triggers.run(obj, "insert", row, parsed)
        self.fields.check_row(obj, row, parsed, insert=True)
        plan = self._derive(obj, row, parsed, None)
        now = self.store.now()
        new_id = self.store.new_id(obj)
        user_id = user_id or new_id  # only the org's first user creates itself
        row.update(Id=new_id, IsDeleted=False, CreatedDate=now, CreatedById=user_id, LastModifiedDate=now,
                   LastModifiedById=user_id, SystemModstamp=now)
        if system:
            # Control-API seeding may backdate audit fields (tests of LastModifiedDate filters).
            row.update({k: parsed[k] for k in _AUDIT_FIELDS if parsed.get(k) is not None})
        self.fields.check_unique(obj, row, parsed)
        self.store.put(obj.name.lower(), new_id, row)
        self.events.after_write(obj, row, plan, None)
        return new_id

    def update(self, obj: ObjectDef, record_id: str, parsed: dict[str, Any], *, user_id: str | None,
               system: bool) -> None:
        user_id = user_id or self.store.default_user_id
        existing = self.store.rows[obj.name.lower()][record_id]
        self.fields.check_editable(obj, parsed, insert=False, system=system)
        row = dict(existing)
        for name, value in parsed.items():
            if name in row:
                row[name] = value
        self.triggers.run(obj, "update", row, parsed)
        self.fields.check_row(obj, row, parsed, insert=False)
        plan = self._derive(obj, row, parsed, existing)
        now = self.store.now()
        row.update(LastModifiedDate=now, LastModifiedById=user_id, SystemModstamp=now)
        if system:
            row.update({k: parsed[k] for k in _AUDIT_FIELDS if parsed.get(k) is not None})
        self.fields.check_unique(obj, row, parsed)
        self.store.put(obj.name.lower(), record_id, row)
        self.events.after_write(obj, row, plan, existing)

    def delete(self, obj: ObjectDef, record_id: str) -> None:
        """To the recycle bin: the row stays with IsDeleted (queryAll sees it)."""
        row = dict(self.store.rows[obj.name.lower()][record_id])
        now = self.store.now()
        row.update(IsDeleted=True, SystemModstamp=now, LastModifiedDate=now)
        self.store.put(obj.name.lower(), record_id, row)
        self.events.deleted(obj, record_id, row, now)

    # ------------------------------------------------------------------ derived values per object

    def _derive(self, obj: ObjectDef, row: Row, parsed: dict[str, Any], existing: Row | None) -> EventPlan:
        if obj.name in ("Contact", "Lead", "User"):
            row["Name"] = " ".join(p for p in (row.get("FirstName"), row.get("LastName")) if p)
        if obj.name == "Opportunity":
            row["IsClosed"] = row.get("StageName") in ("Closed Won", "Closed Lost")
            row["IsWon"] = row.get("StageName") == "Closed Won"
        if obj.name == "Event":
            self.events.times(row, parsed, existing)
            return self.events.links(row, parsed, existing)
        if obj.name == "EventRelation":
            self.events.relation_rules(row, parsed, existing)
        return EventPlan()
