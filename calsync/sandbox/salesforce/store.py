"""The org's records, shared by every concern of the backend: rows per sObject, the indexes
that keep ids, unique values and Event relations findable, the undo log of a transaction, the
org's clock and its settings.

Rows hold wire values: datetimes "2026-01-05T15:00:00.000+0000", dates "2026-01-05", ids in
18-character form. A deleted row keeps `IsDeleted = true` (queryAll still sees it): that is the
recycle bin. Events' `IsArchived` is derived from the org's clock at every read (`archive`).

One `RLock` guards everything; a Collections request with allOrNone runs under it with an undo
log, so a rollback restores exactly the rows it touched. The store checks nothing: the rules
live in the concerns that write through it (`writes.py`, `event_rules.py`, ...).
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from calsync.sandbox.salesforce.errors import ApiError, invalid_type
from calsync.sandbox.salesforce.schema import (
    TEXT_TYPES,
    FieldDef,
    ObjectDef,
    make_id,
    standard_objects,
    to_18,
)
from calsync.sandbox.salesforce.values import utcnow, wire_datetime

Row = dict[str, Any]
Clock = Callable[[], dt.datetime]

# Events dated 365 days ago or more are archived (IsArchived): query() leaves them out, queryAll()
# returns them, and they can still be updated and deleted (reference B10; SOAP API Developer
# Guide, "Archived Activities": "Events with an ActivityDateTime or ActivityDate value greater
# than or equal to 365 days old"). Salesforce archives them in a background run; the emulator
# applies the rule at every read, as if that run had just happened.
ARCHIVE_AGE = dt.timedelta(days=365)


class OrgClock:
    """The org's clock: the base clock (wall time, or a test's) plus `offset`.

    Salesforce's clock is its own (reference B10, "Clocks"): CreatedDate, LastModifiedDate,
    SystemModstamp and the Date header of every answer follow it, and a client's clock may
    be minutes away from it (a VM resumed before NTP caught up). The offset moves it."""

    def __init__(self, base: Clock | None = None) -> None:
        self.base: Clock = base or utcnow
        self.offset = dt.timedelta(0)

    def now(self) -> dt.datetime:
        return self.base() + self.offset


class OrgStore:
    """Every row of the org and the indexes over them. Callers hold `lock` around their use."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = OrgClock(clock)
        self.lock = threading.RLock()
        self.objects: dict[str, ObjectDef] = standard_objects()
        self.rows: dict[str, dict[str, Row]] = {name: {} for name in self.objects}
        self.index: dict[str, str] = {}  # id15 -> lowercased object name
        self.prefixes = {o.key_prefix: o.name for o in self.objects.values()}
        self._unique: dict[tuple[str, str], dict[str, set[str]]] = {}  # (obj, field) -> value -> ids
        self.relations_by_event: dict[str, set[str]] = {}
        self.serial = itertools.count(1)
        self._undo: list[tuple[str, str, Row | None]] | None = None
        self.default_user_id: str | None = None  # the sandbox admin, once created
        self.multiday_events = True  # Activity Settings; off: > 1440 minutes fails (reference B3)
        self._shared_activities = False
        for obj in self.objects.values():
            for f in obj.fields.values():
                if f.unique or f.external_id:
                    self._unique[(obj.name.lower(), f.name.lower())] = {}

    # ------------------------------------------------------------------ settings

    @property
    def shared_activities(self) -> bool:
        """"Allow Users to Relate Multiple Contacts to Tasks and Events" (reference B3)."""
        return self._shared_activities

    @shared_activities.setter
    def shared_activities(self, value: bool) -> None:
        with self.lock:
            self._shared_activities = bool(value)
            self.objects["event"].replace_field("EventWhoIds", createable=bool(value), updateable=bool(value))

    def add_custom_field(
        self,
        object_name: str,
        name: str,
        type: str,  # noqa: A002 - the describe word
        *,
        length: int | None = None,
        label: str | None = None,
        external_id: bool = False,
        unique: bool = False,
        createable: bool = True,
        updateable: bool = True,
        nillable: bool = True,
        reference_to: tuple[str, ...] | list[str] = (),
        picklist_values: tuple[str, ...] | list[str] = (),
    ) -> FieldDef:
        """Add a custom field (`X__c`) to an object; existing rows get null."""
        if not name.endswith("__c"):
            raise ValueError(f"custom field names end with __c: {name!r}")
        type_ = {"dateTime": "datetime", "text": "string", "integer": "int", "number": "double",
                 "checkbox": "boolean", "longtextarea": "textarea"}.get(type, type).lower()
        allowed = TEXT_TYPES | {"boolean", "int", "double", "currency", "date", "datetime", "reference"}
        if type_ not in allowed:
            raise ValueError(f"unsupported custom field type {type!r}")
        if length is None:
            length = {"textarea": 32768, "email": 80, "phone": 40}.get(type_, 255) if type_ in TEXT_TYPES else 0
        with self.lock:
            obj = self.object(object_name)
            fdef = FieldDef(
                name=name, type=type_, label=label or name[:-3].replace("_", " "), length=length,
                createable=createable, updateable=updateable, nillable=nillable and type_ != "boolean",
                defaulted_on_create=type_ == "boolean", external_id=external_id, unique=unique, custom=True,
                reference_to=tuple(reference_to),
                relationship_name=name[:-3] + "__r" if type_ == "reference" else None,
                picklist_values=tuple(picklist_values), precision=18 if type_ in ("double", "currency") else 0,
            )
            obj.add(fdef)
            key = (obj.name.lower(), name.lower())
            if unique or external_id:
                self._unique[key] = {}
            default: Any = False if type_ == "boolean" else None
            for row in self.rows[obj.name.lower()].values():
                row[name] = default
            return fdef

    # ------------------------------------------------------------------ lookups

    def object(self, name: str) -> ObjectDef:
        obj = self.objects.get(str(name).lower())
        if obj is None:
            raise invalid_type(name)
        return obj

    def has_object(self, name: str) -> bool:
        return str(name).lower() in self.objects

    def find(self, record_id: Any) -> tuple[ObjectDef, Row] | None:
        id18 = to_18(record_id) if isinstance(record_id, str) else None
        if id18 is None:
            return None
        obj_name = self.index.get(id18[:15])
        if obj_name is None:
            return None
        return self.objects[obj_name], self.rows[obj_name][id18]

    def table(self, obj: str) -> list[Row]:
        """Every row of `obj`, deleted ones too, with Events' IsArchived brought up to date."""
        rows = list(self.rows.get(obj.lower(), {}).values())
        if obj.lower() == "event":
            self.archive(rows)
        return rows

    def archive(self, events: Iterable[Row]) -> None:
        """IsArchived from the org's clock: dated ARCHIVE_AGE ago or more (reference B10).
        Wire values are UTC and fixed-width, so they compare as strings."""
        cutoff = self.clock.now() - ARCHIVE_AGE
        moment, day = wire_datetime(cutoff), cutoff.astimezone(dt.timezone.utc).date().isoformat()
        for row in events:
            adt, ad = row.get("ActivityDateTime"), row.get("ActivityDate")
            row["IsArchived"] = bool(adt <= moment) if adt else bool(ad and ad <= day)

    def record(self, object_name: str, record_id: str, *, include_deleted: bool = False) -> Row | None:
        """A copy of one row of `object_name`, or None."""
        with self.lock:
            obj = self.object(object_name)
            found = self.find(record_id)
            if found is None or found[0] is not obj or (found[1]["IsDeleted"] and not include_deleted):
                return None
            if obj.name == "Event":
                self.archive([found[1]])
            return dict(found[1])

    def list_records(self, object_name: str, *, include_deleted: bool = False) -> list[Row]:
        """Copies of every row of `object_name` in creation order."""
        with self.lock:
            obj = self.object(object_name)
            return [dict(r) for r in self.table(obj.name) if include_deleted or not r["IsDeleted"]]

    def lookup_for_rest(self, object_name: str, record_id: str) -> Row:
        """The row a single-record REST call addresses; ApiError/RecordFailed like Salesforce."""
        obj = self.object(object_name)
        if not re.fullmatch(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?", record_id):
            # Not an id at all: Salesforce reads it as an external id value (404).
            raise ApiError(404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: "
                           f"{record_id}")
        id18 = to_18(record_id)
        if id18 is None or id18[:3] != obj.key_prefix:
            raise ApiError(400, "MALFORMED_ID", f"{obj.label} ID: id value of incorrect type: {record_id}")
        found = self.find(id18)
        if found is None:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        if found[1]["IsDeleted"]:
            raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
        return found[1]

    def rest_record(self, object_name: str, row: Row, api_path: str, fields: list[str] | None = None) -> Row:
        """A row in REST shape: attributes first, then the (selected) queryable fields."""
        obj = self.object(object_name)
        out: Row = {"attributes": {"type": obj.name, "url": f"{api_path}/sobjects/{obj.name}/{row['Id']}"}}
        if fields:
            for name in fields:
                f = obj.field(name)
                if f is None or not f.queryable:
                    raise ApiError(400, "INVALID_FIELD", f"No such column '{name}' on entity '{obj.name}'")
                out[f.name] = row.get(f.name)
        else:
            for f in obj.fields.values():
                if f.queryable:
                    out[f.name] = row.get(f.name)
        return out

    # ------------------------------------------------------------------ storage

    def put(self, obj_name: str, record_id: str, row: Row | None) -> None:
        """Put (or with None remove) a row; keeps the indexes and the undo log in step."""
        table = self.rows[obj_name]
        old = table.get(record_id)
        if self._undo is not None:
            self._undo.append((obj_name, record_id, dict(old) if old is not None else None))
        if old is not None:
            self._unindex(obj_name, old)
        if row is None:
            table.pop(record_id, None)
            self.index.pop(record_id[:15], None)
        else:
            table[record_id] = row
            self.index[record_id[:15]] = obj_name
            self._reindex(obj_name, row)

    def _unindex(self, obj_name: str, row: Row) -> None:
        for (o, fname), values in self._unique.items():
            if o == obj_name:
                f = self.objects[o].fields[fname]
                key = self.unique_key(row.get(f.name))
                if key is not None and key in values:
                    values[key].discard(row["Id"])
                    if not values[key]:
                        del values[key]
        if obj_name == "eventrelation":
            rel = self.relations_by_event.get(row.get("EventId") or "")
            if rel is not None:
                rel.discard(row["Id"])

    def _reindex(self, obj_name: str, row: Row) -> None:
        if obj_name == "eventrelation" and row.get("EventId"):
            self.relations_by_event.setdefault(row["EventId"], set()).add(row["Id"])
        if row["IsDeleted"]:
            return  # recycle-bin rows neither block unique values nor match upserts
        for (o, fname), values in self._unique.items():
            if o == obj_name:
                f = self.objects[o].fields[fname]
                key = self.unique_key(row.get(f.name))
                if key is not None:
                    values.setdefault(key, set()).add(row["Id"])

    @staticmethod
    def unique_key(value: Any) -> str | None:
        # External ids and unique text compare case-insensitively (not case-sensitive by default).
        if value is None or value == "":
            return None
        return str(value).casefold()

    def matches(self, obj: ObjectDef, f: FieldDef, value: Any) -> list[str]:
        """Ids of the live rows whose unique or external id field `f` holds `value`."""
        key = self.unique_key(value)
        if key is None:
            return []
        return sorted(self._unique.get((obj.name.lower(), f.name.lower()), {}).get(key, set()))

    def new_id(self, obj: ObjectDef) -> str:
        return make_id(obj.key_prefix, next(self.serial))

    def now(self) -> str:
        return wire_datetime(self.clock.now())

    # ------------------------------------------------------------------ transactions

    def begin(self) -> None:
        self._undo = []

    def commit(self) -> None:
        self._undo = None

    def rollback(self) -> None:
        undo = self._undo or []
        self._undo = None
        for obj_name, record_id, old in reversed(undo):
            self.put(obj_name, record_id, old)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All of the block's writes or none: any exception rolls them back and goes on."""
        self.begin()
        try:
            yield
        except Exception:
            self.rollback()
            raise
        self.commit()


def defaults(obj: ObjectDef) -> Row:
    """The values a new row of `obj` starts with: booleans false, and per-object defaults."""
    row: Row = {f.name: False for f in obj.fields.values() if f.type == "boolean"}
    extra: dict[str, dict[str, Any]] = {
        "User": {"IsActive": True, "TimeZoneSidKey": "America/Los_Angeles", "UserType": "Standard"},
        "Lead": {"Status": "Open - Not Contacted"},
        "Event": {"ShowAs": "Busy", "EventSubtype": "Event", "GroupEventType": "0", "WhoCount": 0, "WhatCount": 0},
        "EventRelation": {"Status": "New"},
    }
    row.update(extra.get(obj.name, {}))
    return row
