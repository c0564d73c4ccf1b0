"""The emulated org as plain Python objects: records, users, sessions, limits, injected failures.

No HTTP here (the moto layout): `routes.py` parses requests, calls these methods and renders
their answers. The backend is also the `SoqlSchema` and `SoqlData` the SOQL engine reads
(`object_name`, `field`, `relationship`, `rows`, `get`).

Writes go through one path, `_save`, whatever the door (single-record REST, Collections,
upsert, control API), so every validation rule of reference B3/B5 applies everywhere:
field existence and permissions, required fields, lengths, restricted picklists, references,
uniqueness, and the Event rules (start/end/duration, all-day, 14 days, Who/What, private,
EventWhoIds with Shared Activities). EventRelation rows follow WhoId/EventWhoIds/WhatId.

Rows hold wire values: datetimes "2026-01-05T15:00:00.000+0000", dates "2026-01-05", ids in
18-character form. A deleted row keeps `IsDeleted = true` (queryAll still sees it).

One `RLock` guards everything; a Collections request with allOrNone runs under it with an undo
log, so a rollback restores exactly the rows it touched.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import math
import re
import secrets
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from calsync.sandbox.salesforce.errors import (
    LOCK_MESSAGE,
    ROLLED_BACK_MESSAGE,
    ApiError,
    RecordError,
    RecordFailed,
    invalid_type,
    json_parser_error,
)
from calsync.sandbox.salesforce.schema import (
    TEXT_TYPES,
    FieldDef,
    ObjectDef,
    id_number,
    make_id,
    standard_objects,
    to_18,
)

log = logging.getLogger(__name__)

Row = dict[str, Any]
Clock = Callable[[], dt.datetime]
RecordPredicate = Callable[[dict[str, Any]], bool]

MAX_COLLECTION_RECORDS = 200  # reference B4
DEFAULT_BATCH_SIZE = 2000  # reference B1
MIN_BATCH_SIZE = 200
MAX_MULTIDAY_MINUTES = 14 * 1440  # "Multiday events can't exceed 14 days" (reference B3)
MAX_SHARED_CONTACTS = 50  # Shared Activities: <= 50 contacts or one lead (reference B3)
MAX_OPEN_CURSORS = 100
# Events dated 365 days ago or more are archived (IsArchived): query() leaves them out, queryAll()
# returns them, and they can still be updated and deleted (reference B10; SOAP API Developer
# Guide, "Archived Activities": "Events with an ActivityDateTime or ActivityDate value greater
# than or equal to 365 days old"). Salesforce archives them in a background run; the emulator
# applies the rule at every read, as if that run had just happened.
ARCHIVE_AGE = dt.timedelta(days=365)
# Java's String.trim() characters: every code point up to U+0020 (reference B10).
_JAVA_TRIM = "".join(chr(code) for code in range(0x21))

_DT_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?\s*(Z|[+-]\d{2}:?\d{2})?\Z"
)
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_AUDIT_FIELDS = ("CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById", "SystemModstamp")
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+\Z")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def wire_datetime(value: dt.datetime) -> str:
    """Salesforce's datetime wire form: 2026-01-05T15:00:00.000+0000 (reference B3)."""
    value = value.astimezone(dt.timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def parse_datetime(text: str) -> dt.datetime | None:
    """An ISO-8601 datetime as Salesforce accepts it (Z, +0000, +00:00, no zone = UTC)."""
    m = _DT_RE.match(text.strip())
    if not m:
        return None
    year, month, day, hour, minute, second, frac, zone = m.groups()
    try:
        micro = int((frac or "0")[:6].ljust(6, "0"))
        tz = dt.timezone.utc
        if zone and zone != "Z":
            sign = 1 if zone[0] == "+" else -1
            digits = zone[1:].replace(":", "")
            tz = dt.timezone(sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
        return dt.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro,
                           tzinfo=tz).astimezone(dt.timezone.utc)
    except ValueError:
        return None


def parse_date(text: str) -> dt.date | None:
    if not _DATE_RE.match(text):
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)


def _utf16_units(text: str) -> int:
    """Salesforce counts text lengths in UTF-16 code units: an astral character counts 2 (B10)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


@dataclass
class Session:
    token: str
    user_id: str
    username: str
    issued_at: dt.datetime
    expires_at: dt.datetime


@dataclass
class ConnectedApp:
    consumer_key: str
    public_key_pem: str | None
    consumer_secret: str | None = None
    authorized_usernames: set[str] | None = None  # None: pre-authorized for every user

    def approved(self, username: str) -> bool:
        return self.authorized_usernames is None or username.lower() in self.authorized_usernames


@dataclass
class FailureRule:
    """Injected per-record failures (`fail_records`): each hit request uses one of `times`."""

    predicate: RecordPredicate | None
    count: int | None
    status_code: str
    message: str
    times: int
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class WriteResult:
    id: str
    created: bool


class MultipleMatches(Exception):
    """An upsert's external id matched several records (single upsert answers 300)."""

    def __init__(self, ids: list[str]) -> None:
        super().__init__(f"{len(ids)} records match")
        self.ids = ids


@dataclass
class _Cursor:
    records: list[dict[str, Any]]
    batch_size: int


@dataclass
class _Plan:
    """What an Event write changes besides its row: the Who relations and the What relation."""

    whos: list[str] | None = None  # None = unchanged
    what_changed: bool = False


@dataclass(frozen=True)
class Trigger:
    """Org automation that rewrites records before they are saved (`add_trigger`)."""

    object_name: str
    on: frozenset[str]  # "insert", "update"
    subject_prefix: str = ""
    subject_suffix: str = ""
    set_fields: dict[str, Any] = field(default_factory=dict)


class SalesforceBackend:
    """State of one emulated org. Thread-safe; every public method takes the lock."""

    def __init__(self, clock: Clock | None = None) -> None:
        self._base_clock: Clock = clock or _utcnow
        # Salesforce's clock is its own (reference B10, "Clocks"): CreatedDate, LastModifiedDate,
        # SystemModstamp and the Date header of every answer follow it, and a client's clock may
        # be minutes away from it (a VM resumed before NTP caught up). The offset moves it.
        self.clock_offset = dt.timedelta(0)
        self._triggers: list[Trigger] = []
        self.lock = threading.RLock()
        self.objects: dict[str, ObjectDef] = standard_objects()
        self._rows: dict[str, dict[str, Row]] = {name: {} for name in self.objects}
        self._index: dict[str, str] = {}  # id15 -> lowercased object name
        self._prefixes = {o.key_prefix: o.name for o in self.objects.values()}
        self._unique: dict[tuple[str, str], dict[str, set[str]]] = {}  # (obj, field) -> value -> ids
        self._relations_by_event: dict[str, set[str]] = {}
        self._serial = itertools.count(1)
        self._undo: list[tuple[str, str, Row | None]] | None = None
        self._cursors: OrderedDict[str, _Cursor] = OrderedDict()
        self._sessions: dict[str, Session] = {}
        self._apps: dict[str, ConnectedApp] = {}
        self._passwords: dict[str, tuple[str, str]] = {}
        self._failures: list[FailureRule] = []
        self._calls: Counter[str] = Counter()
        self.org_id = make_id("00D", 1)
        self.instance_url = "https://127.0.0.1"  # the emulator sets its URL on start
        self.session_lifetime = dt.timedelta(hours=2)
        self.daily_api_max = 15000  # Developer Edition allocation (reference B6)
        self.api_calls = 0
        self.multiday_events = True  # Activity Settings; off: > 1440 minutes fails (reference B3)
        self._shared_activities = False
        for obj in self.objects.values():
            for f in obj.fields.values():
                if f.unique or f.external_id:
                    self._unique[(obj.name.lower(), f.name.lower())] = {}
        self.default_user_id = self.create_user(
            "admin@calsync.example", first_name="Sandbox", last_name="Admin", email="admin@calsync.example"
        )

    # ------------------------------------------------------------------ settings

    @property
    def clock(self) -> Clock:
        """The org's clock: the base clock (wall time, or a test's) plus `clock_offset`."""
        return self._shifted_now

    @clock.setter
    def clock(self, value: Clock) -> None:
        self._base_clock = value

    def _shifted_now(self) -> dt.datetime:
        return self._base_clock() + self.clock_offset

    def add_trigger(self, object_name: str, *, on: Iterable[str] = ("insert",), subject_prefix: str = "",
                    subject_suffix: str = "", set_fields: dict[str, Any] | None = None) -> Trigger:
        """Org automation (an Apex trigger, a record-triggered Flow) on `object_name`: before each
        insert (and/or update) it rewrites the Subject and sets fields, as the user who made the
        write (reference B10, "Triggers, Flows": what is read back may differ from what was sent).
        """
        with self.lock:
            obj = self._object(object_name)
            events = frozenset(on)
            if not events or events - {"insert", "update"}:
                raise ValueError(f"a trigger runs on insert and/or update, not {sorted(events)}")
            values = self.parse_fields(obj.name, dict(set_fields or {}))
            trigger = Trigger(obj.name, events, subject_prefix, subject_suffix, values)
            self._triggers.append(trigger)
            return trigger

    def clear_triggers(self) -> None:
        with self.lock:
            self._triggers.clear()

    def _run_triggers(self, obj: ObjectDef, event: str, row: Row, parsed: dict[str, Any]) -> None:
        """Before-save automation: its changes are part of the write, so they are validated
        with it and recorded under the same user (LastModifiedById) as the rest of it."""
        for trigger in self._triggers:
            if trigger.object_name != obj.name or event not in trigger.on:
                continue
            changes = dict(trigger.set_fields)
            if (trigger.subject_prefix or trigger.subject_suffix) and obj.field("Subject") is not None:
                changes["Subject"] = f"{trigger.subject_prefix}{row.get('Subject') or ''}{trigger.subject_suffix}"
            row.update(changes)
            parsed.update(changes)

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
            obj = self._object(object_name)
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
            for row in self._rows[obj.name.lower()].values():
                row[name] = default
            return fdef

    # ------------------------------------------------------------------ SoqlSchema / SoqlData

    def object_name(self, name: str) -> str | None:
        obj = self.objects.get(name.lower())
        return obj.name if obj else None

    def field(self, obj: str, name: str) -> Any:
        from calsync.sandbox.salesforce.soql import FieldInfo

        o = self.objects.get(obj.lower())
        f = o.field(name) if o else None
        if f is None or not f.queryable:
            return None
        return FieldInfo(f.name, f.soql_type())

    def relationship(self, obj: str, name: str) -> Any:
        from calsync.sandbox.salesforce.soql import RelationshipInfo

        o = self.objects.get(obj.lower())
        if o is None:
            return None
        for f in o.fields.values():
            if f.relationship_name and f.relationship_name.lower() == name.lower() and f.queryable:
                return RelationshipInfo(f.name, f.reference_to)
        return None

    def rows(self, obj: str, include_deleted: bool) -> Iterable[Row]:
        """SoqlData: the rows a query sees. `include_deleted` is queryAll, which alone returns
        deleted rows and archived Events (reference B10)."""
        rows = self._table(obj)
        return [r for r in rows if include_deleted or not (r["IsDeleted"] or r.get("IsArchived"))]

    def get(self, record_id: str) -> tuple[str, Row] | None:
        found = self._find(record_id)
        if found is None or found[1]["IsDeleted"]:
            return None
        if found[0].name == "Event":
            self._archive([found[1]])
        return found[0].name, found[1]

    def _table(self, obj: str) -> list[Row]:
        """Every row of `obj`, deleted ones too, with Events' IsArchived brought up to date."""
        rows = list(self._rows.get(obj.lower(), {}).values())
        if obj.lower() == "event":
            self._archive(rows)
        return rows

    def _archive(self, events: Iterable[Row]) -> None:
        """IsArchived from the org's clock: dated ARCHIVE_AGE ago or more (reference B10).
        Wire values are UTC and fixed-width, so they compare as strings."""
        cutoff = self.clock() - ARCHIVE_AGE
        moment, day = wire_datetime(cutoff), cutoff.astimezone(dt.timezone.utc).date().isoformat()
        for row in events:
            adt, ad = row.get("ActivityDateTime"), row.get("ActivityDate")
            row["IsArchived"] = bool(adt <= moment) if adt else bool(ad and ad <= day)

    # ------------------------------------------------------------------ lookups

    def _object(self, name: str) -> ObjectDef:
        obj = self.objects.get(str(name).lower())
        if obj is None:
            raise invalid_type(name)
        return obj

    def has_object(self, name: str) -> bool:
        return str(name).lower() in self.objects

    def _find(self, record_id: Any) -> tuple[ObjectDef, Row] | None:
        id18 = to_18(record_id) if isinstance(record_id, str) else None
        if id18 is None:
            return None
        obj_name = self._index.get(id18[:15])
        if obj_name is None:
            return None
        return self.objects[obj_name], self._rows[obj_name][id18]

    def record(self, object_name: str, record_id: str, *, include_deleted: bool = False) -> Row | None:
        """A copy of one row of `object_name`, or None."""
        with self.lock:
            obj = self._object(object_name)
            found = self._find(record_id)
            if found is None or found[0] is not obj or (found[1]["IsDeleted"] and not include_deleted):
                return None
            if obj.name == "Event":
                self._archive([found[1]])
            return dict(found[1])

    def list_records(self, object_name: str, *, include_deleted: bool = False) -> list[Row]:
        """Copies of every row of `object_name` in creation order."""
        with self.lock:
            obj = self._object(object_name)
            return [dict(r) for r in self._table(obj.name) if include_deleted or not r["IsDeleted"]]

    def lookup_for_rest(self, object_name: str, record_id: str) -> Row:
        """The row a single-record REST call addresses; ApiError/RecordFailed like Salesforce."""
        obj = self._object(object_name)
        if not re.fullmatch(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?", record_id):
            # Not an id at all: Salesforce reads it as an external id value (404).
            raise ApiError(404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: "
                           f"{record_id}")
        id18 = to_18(record_id)
        if id18 is None or id18[:3] != obj.key_prefix:
            raise ApiError(400, "MALFORMED_ID", f"{obj.label} ID: id value of incorrect type: {record_id}")
        found = self._find(id18)
        if found is None:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        if found[1]["IsDeleted"]:
            raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
        return found[1]

    def rest_record(self, object_name: str, row: Row, api_path: str, fields: list[str] | None = None) -> Row:
        """A row in REST shape: attributes first, then the (selected) queryable fields."""
        obj = self._object(object_name)
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

    def _store(self, obj_name: str, record_id: str, row: Row | None) -> None:
        """Put (or with None remove) a row; keeps the indexes and the undo log in step."""
        table = self._rows[obj_name]
        old = table.get(record_id)
        if self._undo is not None:
            self._undo.append((obj_name, record_id, dict(old) if old is not None else None))
        if old is not None:
            self._unindex(obj_name, old)
        if row is None:
            table.pop(record_id, None)
            self._index.pop(record_id[:15], None)
        else:
            table[record_id] = row
            self._index[record_id[:15]] = obj_name
            self._reindex(obj_name, row)

    def _unindex(self, obj_name: str, row: Row) -> None:
        for (o, fname), values in self._unique.items():
            if o == obj_name:
                f = self.objects[o].fields[fname]
                key = self._unique_key(row.get(f.name))
                if key is not None and key in values:
                    values[key].discard(row["Id"])
                    if not values[key]:
                        del values[key]
        if obj_name == "eventrelation":
            rel = self._relations_by_event.get(row.get("EventId") or "")
            if rel is not None:
                rel.discard(row["Id"])

    def _reindex(self, obj_name: str, row: Row) -> None:
        if obj_name == "eventrelation" and row.get("EventId"):
            self._relations_by_event.setdefault(row["EventId"], set()).add(row["Id"])
        if row["IsDeleted"]:
            return  # recycle-bin rows neither block unique values nor match upserts
        for (o, fname), values in self._unique.items():
            if o == obj_name:
                f = self.objects[o].fields[fname]
                key = self._unique_key(row.get(f.name))
                if key is not None:
                    values.setdefault(key, set()).add(row["Id"])

    @staticmethod
    def _unique_key(value: Any) -> str | None:
        # External ids and unique text compare case-insensitively (not case-sensitive by default).
        if value is None or value == "":
            return None
        return str(value).casefold()

    def _matches(self, obj: ObjectDef, f: FieldDef, value: Any) -> list[str]:
        key = self._unique_key(value)
        if key is None:
            return []
        return sorted(self._unique.get((obj.name.lower(), f.name.lower()), {}).get(key, set()))

    def _new_id(self, obj: ObjectDef) -> str:
        return make_id(obj.key_prefix, next(self._serial))

    def _now(self) -> str:
        return wire_datetime(self.clock())

    def _begin(self) -> None:
        self._undo = []

    def _commit(self) -> None:
        self._undo = None

    def _rollback(self) -> None:
        undo = self._undo or []
        self._undo = None
        for obj_name, record_id, old in reversed(undo):
            self._store(obj_name, record_id, old)

    # ------------------------------------------------------------------ parsing (whole-request errors)

    def parse_fields(self, object_name: str, sent: Any) -> dict[str, Any]:
        """Canonical field names -> coerced values; unknown field or bad JSON type is ApiError.

        Salesforce deserialises the whole body before any DML, so these fail the request (400)."""
        obj = self._object(object_name)
        if not isinstance(sent, dict):
            raise json_parser_error("Cannot deserialize instance of sobject from non-object value")
        out: dict[str, Any] = {}
        for key, value in sent.items():
            if key == "attributes":
                continue
            f = obj.field(key)
            if f is None:
                raise ApiError(400, "INVALID_FIELD", f"No such column '{key}' on sobject of type {obj.name}")
            if f.name == "Id":
                out["Id"] = value  # checked by the operation (insert refuses it, update needs it)
                continue
            out[f.name] = self._coerce(f, value)
        return out

    def _coerce(self, f: FieldDef, value: Any) -> Any:
        if value is None:
            return None

        def bad(kind: str) -> ApiError:
            return json_parser_error(
                f"Cannot deserialize instance of {kind} from {_json_kind(value)} value {value} or request may "
                f"be missing a required field at [line:1, column:1]"
            )

        t = f.type
        if t in TEXT_TYPES or t in ("id", "reference"):
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise bad("string")
            text = value if isinstance(value, str) else str(value)
            if t in TEXT_TYPES:
                # Stored trimmed as Java's String.trim() does, and never empty: "" is null
                # (reference B10, Apex "Primitive Data Types").
                return text.strip(_JAVA_TRIM) or None
            return text
        if t == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise bad("boolean")
        if t == "int":
            if isinstance(value, bool):
                raise bad("int")
            if isinstance(value, int):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
                return int(value)
            raise bad("int")
        if t in ("double", "currency"):
            if isinstance(value, bool):
                raise bad("double")
            if isinstance(value, (int, float)):
                return float(value)
            try:
                return float(value)
            except (TypeError, ValueError):
                raise bad("double") from None
        if t == "date":
            if isinstance(value, str):
                text = value.strip()
                as_datetime = parse_datetime(text)
                day = parse_date(text) or (as_datetime.date() if as_datetime else None)
                if day is not None:
                    return day.isoformat()
            raise bad("date")
        if t == "datetime":
            if isinstance(value, str):
                parsed = parse_datetime(value)
                if parsed is not None:
                    return wire_datetime(parsed)
            raise bad("datetime")
        if t == "junctionidlist":
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return list(value)
            raise bad("JunctionIdList")
        return value

    # ------------------------------------------------------------------ injected failures

    def fail_records(
        self,
        predicate_or_count: RecordPredicate | int,
        status_code: str = "UNABLE_TO_LOCK_ROW",
        message: str | None = None,
        times: int = 1,
        fields: tuple[str, ...] | list[str] = (),
    ) -> FailureRule:
        """Make record writes fail with `status_code` (inside Collections: per-record results).

        An int N fails the first N records of a write request; a predicate gets each record as
        sent (`{"attributes": {"type": ...}, field: value, ...}`, `Id` for updates/deletes) and
        fails those it accepts. The rule applies to the next `times` write requests in which it
        hits at least one record (-1: until cleared). A single-record write it hits answers 400.
        """
        rule = FailureRule(
            predicate=None if isinstance(predicate_or_count, int) else predicate_or_count,
            count=predicate_or_count if isinstance(predicate_or_count, int) else None,
            status_code=status_code,
            message=message or (LOCK_MESSAGE if status_code == "UNABLE_TO_LOCK_ROW" else status_code),
            times=times,
            fields=tuple(fields),
        )
        with self.lock:
            self._failures.append(rule)
        return rule

    def clear_record_failures(self) -> None:
        with self.lock:
            self._failures.clear()

    def _injected_failures(self, records: list[dict[str, Any]]) -> dict[int, RecordError]:
        """The injected errors of a write, by position. They stand for what a validation rule,
        a trigger or a lock refuses, which Salesforce only reaches once it has loaded the record
        ("Triggers and Order of Execution": first it "loads the original record from the
        database", https://developer.salesforce.com/docs/atlas.en-us.apexcode.meta/apexcode/
        apex_triggers_order_of_execution.htm): an update or delete of a record that is gone
        fails as gone (ENTITY_IS_DELETED, INVALID_CROSS_REFERENCE_KEY), whatever is injected."""
        hits: dict[int, RecordError] = {}
        for rule in self._failures:
            if rule.times == 0:
                continue
            if rule.count is not None:
                positions = list(range(min(rule.count, len(records))))
            else:
                assert rule.predicate is not None
                positions = [i for i, r in enumerate(records) if _safe_call(rule.predicate, r)]
            positions = [p for p in positions if p not in hits]
            if not positions:
                continue
            if rule.times > 0:
                rule.times -= 1
            for p in positions:
                hits[p] = RecordError(rule.status_code, rule.message, rule.fields)
        self._failures = [r for r in self._failures if r.times != 0]
        return hits

    # ------------------------------------------------------------------ public writes

    def create_record(self, object_name: str, fields: dict[str, Any], *, user_id: str | None = None,
                      system: bool = True) -> str:
        """Insert one record (control API / tests: `system` skips createable checks). Raises
        ApiError or RecordFailed."""
        with self.lock:
            obj = self._object(object_name)
            parsed = self.parse_fields(obj.name, fields)
            record = {"attributes": {"type": obj.name}, **fields}
            self._raise_injected([record])
            self._begin()
            try:
                new_id = self._insert(obj, parsed, user_id=user_id, system=system)
            except Exception:
                self._rollback()
                raise
            self._commit()
            return new_id

    def update_record(self, object_name: str, record_id: str, fields: dict[str, Any], *,
                      user_id: str | None = None, system: bool = True) -> None:
        with self.lock:
            obj = self._object(object_name)
            parsed = self.parse_fields(obj.name, fields)
            parsed.pop("Id", None)
            row = self.lookup_for_rest(obj.name, record_id)
            self._raise_injected([{"attributes": {"type": obj.name}, **fields, "Id": row["Id"]}])
            self._begin()
            try:
                self._update(obj, row["Id"], parsed, user_id=user_id, system=system)
            except Exception:
                self._rollback()
                raise
            self._commit()

    def delete_record(self, object_name: str, record_id: str) -> None:
        with self.lock:
            obj = self._object(object_name)
            row = self.lookup_for_rest(obj.name, record_id)
            self._raise_injected([{"attributes": {"type": obj.name}, "Id": row["Id"]}])
            self._begin()
            try:
                self._delete(obj, row["Id"])
            except Exception:
                self._rollback()
                raise
            self._commit()

    def restore_records(self, object_name: str, rows: Iterable[dict[str, Any]]) -> None:
        """Test setup: put records exported from another run of the emulator back as they were,
        same Ids, audit fields (who last modified them, when) and IsDeleted. Upgrading calsync
        leaves Salesforce untouched and record ids are permanent (reference B2), so the upgrade
        tests rebuild the org an older calsync wrote to (tests/state/fixtures). No API does
        this. Fields this schema lacks are left out, fields it added are null; ids issued later
        follow the highest restored one. Rows go in as given: Events' relations are restored
        with them (EventRelation rows), not derived."""
        with self.lock:
            obj = self._object(object_name)
            highest = 0
            for given in rows:
                row: Row = {f.name: None for f in obj.fields.values() if f.queryable}
                row.update(_defaults(obj))
                row.update({name: value for name, value in given.items() if name in row})
                self._store(obj.name.lower(), row["Id"], row)
                highest = max(highest, id_number(row["Id"]))
            current = next(self._serial)
            self._serial = itertools.count(max(current, highest + 1))

    def convert_lead(self, lead_id: str, *, account_id: str | None = None, contact_id: str | None = None,
                     opportunity_name: str | None = None,
                     converted_status: str = "Closed - Converted",
                     user_id: str | None = None) -> dict[str, str | None]:
        """convertLead(): the Lead becomes an Account, a Contact and optionally an Opportunity.

        As Salesforce does it (https://developer.salesforce.com/docs/atlas.en-us.api.meta/
        object_ref/sforce_api_calls_convertlead.htm; the fields: Change Events for Lead
        Conversion): a new Account named after the Company unless `account_id` is given, a new
        Contact with the Lead's name and email unless `contact_id` is given (an existing Contact
        only gets its empty fields filled), with `opportunity_name` a new Opportunity whose
        primary contact role is the Contact; then the Lead is updated: IsConverted, Status,
        ConvertedDate and the Converted*Id fields; and the Lead's Events move (`_move_activities`).
        One transaction; every record written gets a new SystemModstamp, and is last modified by
        the converting user (`user_id`, a person; default the org's admin). Returns the ids
        {"account", "contact", "opportunity"}.
        """
        with self.lock:
            lead_obj = self._object("Lead")
            lead = self.lookup_for_rest("Lead", lead_id)
            if lead["IsConverted"]:
                raise RecordFailed(RecordError("CANNOT_UPDATE_CONVERTED_LEAD",
                                               "cannot reference converted lead"))
            user_id = self._user(user_id)["Id"] if user_id else self.default_user_id
            self._begin()
            try:
                ids = self._convert(lead, account_id, contact_id, opportunity_name, user_id)
                today = self.clock().astimezone(dt.timezone.utc).date()
                self._update(lead_obj, lead["Id"], {
                    "IsConverted": True, "Status": converted_status, "ConvertedDate": today.isoformat(),
                    "ConvertedAccountId": ids["account"], "ConvertedContactId": ids["contact"],
                    "ConvertedOpportunityId": ids["opportunity"],
                }, user_id=user_id, system=True)
                made = ids["opportunity"] or (ids["account"] if not account_id else None)
                self._move_activities(lead["Id"], str(ids["contact"]), made, user_id)
            except Exception:
                self._rollback()
                raise
            self._commit()
            return ids

    def _move_activities(self, lead_id: str, contact_id: str, what_id: str | None, user_id: str) -> None:
        """The converted Lead's Events go to what it became (reference B10, "Lead conversion";
        Salesforce Help, "Considerations for Converting Leads" and knowledge article 000385227):
        the Name (WhoId, and with Shared Activities its Who EventRelation) from the Lead to the
        Contact, Related To (WhatId) to the new Opportunity, else to the Account where one was
        made. Last Modified By and Date change on each Event moved: the converting user."""
        event_obj = self._object("Event")
        for event in list(self._rows["event"].values()):
            if event["IsDeleted"]:
                continue
            whos = self._who_relations(event["Id"]) if self._shared_activities else []
            if event.get("WhoId") != lead_id and lead_id not in whos:
                continue
            changes: dict[str, Any] = {"WhoId": contact_id}
            if what_id and not event.get("WhatId"):
                changes["WhatId"] = what_id  # a Lead Name takes no Related To (reference B3)
            self._update(event_obj, event["Id"], changes, user_id=user_id, system=True)

    def _convert(self, lead: Row, account_id: str | None, contact_id: str | None,
                 opportunity_name: str | None, user_id: str | None = None) -> dict[str, str | None]:
        account_obj, contact_obj = self._object("Account"), self._object("Contact")
        if account_id:
            account = self._check_reference(contact_obj, contact_obj.fields["accountid"], account_id)
        else:
            account = self._insert(account_obj, {"Name": lead.get("Company") or lead["LastName"]},
                                   user_id=user_id, system=True)
        person = {"FirstName": lead.get("FirstName"), "LastName": lead["LastName"], "Email": lead.get("Email"),
                  "Phone": lead.get("Phone"), "AccountId": account}
        if contact_id:
            existing = self.lookup_for_rest("Contact", contact_id)
            # Merging into an existing Contact fills only its empty fields (convertLead, Usage).
            filled = {k: v for k, v in person.items() if v is not None and existing.get(k) in (None, "")}
            self._update(contact_obj, existing["Id"], filled, user_id=user_id, system=True)
            contact = existing["Id"]
        else:
            contact = self._insert(contact_obj, person, user_id=user_id, system=True)
        opportunity = None
        if opportunity_name:
            close = self.clock().astimezone(dt.timezone.utc).date() + dt.timedelta(days=30)
            opportunity = self._insert(self._object("Opportunity"), {
                "Name": opportunity_name, "AccountId": account, "StageName": "Prospecting",
                "CloseDate": close.isoformat()}, user_id=user_id, system=True)
            self._insert(self._object("OpportunityContactRole"), {
                "OpportunityId": opportunity, "ContactId": contact, "IsPrimary": True},
                user_id=user_id, system=True)
        return {"account": account, "contact": contact, "opportunity": opportunity}

    def upsert_record(self, object_name: str, ext_field: str, value: str, fields: dict[str, Any], *,
                      user_id: str | None = None, system: bool = False) -> WriteResult:
        """`PATCH /sobjects/{Type}/{ExtField}/{value}` (reference B4). Raises MultipleMatches."""
        with self.lock:
            obj = self._object(object_name)
            f = self._external_field(obj, ext_field)
            parsed = self.parse_fields(obj.name, fields)
            if "Id" in parsed:
                raise RecordFailed(RecordError("INVALID_FIELD", "Unable to create/update fields: Id. Please "
                                               "check the security settings of this field", ("Id",)))
            if f.name in parsed and self._unique_key(parsed[f.name]) != self._unique_key(value):
                raise ApiError(400, "INVALID_FIELD", f"The external ID field {f.name} in the URL does not match "
                               f"the value in the request body")
            self._raise_injected([{"attributes": {"type": obj.name}, **fields, f.name: value}])
            self._begin()
            try:
                result = self._upsert_one(obj, f, value, parsed, user_id=user_id, system=system)
            except Exception:
                self._rollback()
                raise
            self._commit()
            return result

    def _raise_injected(self, records: list[dict[str, Any]]) -> None:
        hits = self._injected_failures(records)
        if hits:
            raise RecordFailed(*hits.values())

    def find_by_external_id(self, object_name: str, ext_field: str, value: str) -> list[str]:
        """Ids of the live records whose external id field matches (case-insensitively)."""
        with self.lock:
            obj = self._object(object_name)
            return self._matches(obj, self._external_field(obj, ext_field), value)

    def _external_field(self, obj: ObjectDef, name: str) -> FieldDef:
        f = obj.field(name)
        if f is None or not (f.external_id or f.name == "Id"):
            raise ApiError(404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: "
                           f"{name}")
        return f

    def _upsert_one(self, obj: ObjectDef, f: FieldDef, value: Any, parsed: dict[str, Any], *,
                    user_id: str | None, system: bool) -> WriteResult:
        if f.name == "Id":
            found = self._find(value)
            if found is None or found[0] is not obj or found[1]["IsDeleted"]:
                raise RecordFailed(RecordError("NOT_FOUND", "Provided external ID field does not exist or is not "
                                               "accessible: Id"))
            self._update(obj, found[1]["Id"], parsed, user_id=user_id, system=system)
            return WriteResult(found[1]["Id"], False)
        matches = self._matches(obj, f, value)
        if len(matches) > 1:
            raise MultipleMatches(matches)
        if matches:
            body = dict(parsed)
            body.pop(f.name, None)
            self._update(obj, matches[0], body, user_id=user_id, system=system)
            return WriteResult(matches[0], False)
        body = dict(parsed)
        body[f.name] = self._coerce(f, value)
        new_id = self._insert(obj, body, user_id=user_id, system=system)
        return WriteResult(new_id, True)

    # ------------------------------------------------------------------ Collections (reference B4)

    def collection_write(
        self,
        operation: str,  # "create" | "update" | "upsert"
        records: Any,
        *,
        all_or_none: bool = False,
        user_id: str | None = None,
        object_name: str | None = None,
        ext_field: str | None = None,
    ) -> list[dict[str, Any]]:
        """One result per record in request order; per-record errors use statusCode."""
        if not isinstance(records, list):
            raise json_parser_error("Cannot deserialize instance of list from non-array value")
        if len(records) > MAX_COLLECTION_RECORDS:
            raise ApiError(400, "EXCEEDED_ID_LIMIT",
                           "record limit reached. cannot submit more than 200 records into this call")
        with self.lock:
            ext: FieldDef | None = None
            upsert_obj: ObjectDef | None = None
            if operation == "upsert":
                assert object_name is not None and ext_field is not None
                upsert_obj = self._object(object_name)
                ext = self._external_field(upsert_obj, ext_field)
            prepared: list[tuple[ObjectDef, dict[str, Any]]] = []
            for rec in records:
                if not isinstance(rec, dict):
                    raise json_parser_error("Cannot deserialize instance of sobject from non-object value")
                attrs = rec.get("attributes")
                type_name = attrs.get("type") if isinstance(attrs, dict) else None
                if not type_name:
                    if upsert_obj is None:
                        raise ApiError(400, "INVALID_TYPE", "Must send a concrete entity type.")
                    type_name = upsert_obj.name
                obj = self._object(type_name)
                if upsert_obj is not None and obj is not upsert_obj:
                    raise ApiError(400, "INVALID_TYPE", f"Upsert records must all be of type {upsert_obj.name}")
                prepared.append((obj, self.parse_fields(obj.name, rec)))
            injected = self._injected_failures(records)
            duplicate_keys: set[str] = set()
            if ext is not None:
                seen = Counter(self._unique_key(p.get(ext.name)) for _, p in prepared)
                duplicate_keys = {k for k, n in seen.items() if k is not None and n > 1}
            self._begin()
            results: list[dict[str, Any]] = []
            failed: list[bool] = []
            for i, (obj, parsed) in enumerate(prepared):
                try:
                    if i in injected:
                        if operation == "update" and parsed.get("Id"):
                            self._row_for_write(obj, parsed["Id"])  # gone fails as gone first
                        raise RecordFailed(injected[i])
                    result = self._collection_one(operation, obj, parsed, ext, duplicate_keys, user_id)
                    results.append(result)
                    failed.append(False)
                except RecordFailed as exc:
                    results.append(_failure(exc.errors, created=False if operation == "upsert" else None))
                    failed.append(True)
            if all_or_none and any(failed):
                self._rollback()
                rolled = RecordError("ALL_OR_NONE_OPERATION_ROLLED_BACK", ROLLED_BACK_MESSAGE)
                results = [
                    r if bad else _failure((rolled,), created=False if operation == "upsert" else None)
                    for r, bad in zip(results, failed)
                ]
            else:
                self._commit()
            return results

    def _collection_one(self, operation: str, obj: ObjectDef, parsed: dict[str, Any], ext: FieldDef | None,
                        duplicate_keys: set[str], user_id: str | None) -> dict[str, Any]:
        if operation == "create":
            if parsed.get("Id"):
                raise RecordFailed(RecordError("INVALID_FIELD", "cannot specify Id in an insert call", ("Id",)))
            parsed.pop("Id", None)
            new_id = self._insert(obj, parsed, user_id=user_id, system=False)
            return {"id": new_id, "success": True, "errors": []}
        if operation == "update":
            record_id = parsed.pop("Id", None)
            if not record_id:
                raise RecordFailed(RecordError("MISSING_ARGUMENT", "Id not specified in an update call"))
            row = self._row_for_write(obj, record_id)
            self._update(obj, row["Id"], parsed, user_id=user_id, system=False)
            return {"id": row["Id"], "success": True, "errors": []}
        assert ext is not None
        parsed.pop("Id", None)
        value = parsed.get(ext.name)
        if value is None or value == "":
            raise RecordFailed(RecordError("MISSING_ARGUMENT", f"{ext.name} not specified"))
        if self._unique_key(value) in duplicate_keys:
            raise RecordFailed(RecordError("DUPLICATE_EXTERNAL_ID", f"Duplicate external id specified: {value}",
                                           (ext.name,)))
        try:
            result = self._upsert_one(obj, ext, value, parsed, user_id=user_id, system=False)
        except MultipleMatches as exc:
            raise RecordFailed(RecordError(
                "DUPLICATE_EXTERNAL_ID",
                f"{ext.name}: more than one record found for external id field: {exc.ids}", (ext.name,))) from None
        return {"id": result.id, "success": True, "errors": [], "created": result.created}

    def _row_for_write(self, obj: ObjectDef | None, record_id: Any) -> Row:
        """The live row a Collections update/delete addresses, or a per-record error."""
        id18 = to_18(record_id) if isinstance(record_id, str) else None
        if id18 is None or (obj is not None and id18[:3] != obj.key_prefix):
            raise RecordFailed(RecordError("MALFORMED_ID", f"malformed id {record_id}"))
        found = self._find(id18)
        if found is None:
            raise RecordFailed(RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id"))
        if found[1]["IsDeleted"]:
            raise RecordFailed(RecordError("ENTITY_IS_DELETED", "entity is deleted"))
        return found[1]

    def collection_delete(self, ids: list[str], *, all_or_none: bool = False) -> list[dict[str, Any]]:
        if len(ids) > MAX_COLLECTION_RECORDS:
            raise ApiError(400, "EXCEEDED_ID_LIMIT",
                           "record limit reached. cannot submit more than 200 records into this call")
        with self.lock:
            records = []
            for record_id in ids:
                found = self._find(record_id)
                type_name = found[0].name if found else None
                records.append({"attributes": {"type": type_name}, "Id": record_id})
            injected = self._injected_failures(records)
            self._begin()
            results: list[dict[str, Any]] = []
            failed: list[bool] = []
            for i, record_id in enumerate(ids):
                try:
                    if i in injected:
                        self._row_for_write(None, record_id)  # gone fails as gone first
                        raise RecordFailed(injected[i])
                    row = self._row_for_write(None, record_id)
                    obj = self.objects[self._index[row["Id"][:15]]]
                    self._delete(obj, row["Id"])
                    results.append({"id": row["Id"], "success": True, "errors": []})
                    failed.append(False)
                except RecordFailed as exc:
                    results.append(_failure(exc.errors))
                    failed.append(True)
            if all_or_none and any(failed):
                self._rollback()
                rolled = RecordError("ALL_OR_NONE_OPERATION_ROLLED_BACK", ROLLED_BACK_MESSAGE)
                results = [r if bad else _failure((rolled,)) for r, bad in zip(results, failed)]
            else:
                self._commit()
            return results

    # ------------------------------------------------------------------ the write path

    def _insert(self, obj: ObjectDef, parsed: dict[str, Any], *, user_id: str | None, system: bool) -> str:
        if parsed.get("Id"):
            raise RecordFailed(RecordError("INVALID_FIELD", "cannot specify Id in an insert call", ("Id",)))
        parsed.pop("Id", None)
        user_id = user_id or getattr(self, "default_user_id", None)
        self._check_editable(obj, parsed, insert=True, system=system)
        row: Row = {f.name: None for f in obj.fields.values() if f.queryable}
        row.update(_defaults(obj))
        for name, value in parsed.items():
            if name in row:
                row[name] = value
        if obj.field("OwnerId") is not None and row.get("OwnerId") is None:
            row["OwnerId"] = user_id  # defaults to the session's user (reference B3)
        self._run_triggers(obj, "insert", row, parsed)
        self._check_row(obj, row, parsed, insert=True)
        plan = self._derive(obj, row, parsed, None)
        now = self._now()
        new_id = self._new_id(obj)
        user_id = user_id or new_id  # only the org's first user creates itself
        row.update(Id=new_id, IsDeleted=False, CreatedDate=now, CreatedById=user_id, LastModifiedDate=now,
                   LastModifiedById=user_id, SystemModstamp=now)
        if system:
            # Control-API seeding may backdate audit fields (tests of LastModifiedDate filters).
            row.update({k: parsed[k] for k in _AUDIT_FIELDS if parsed.get(k) is not None})
        self._check_unique(obj, row, parsed)
        self._store(obj.name.lower(), new_id, row)
        self._after_write(obj, row, plan, None)
        return new_id

    def _update(self, obj: ObjectDef, record_id: str, parsed: dict[str, Any], *, user_id: str | None,
                system: bool) -> None:
        user_id = user_id or self.default_user_id
        existing = self._rows[obj.name.lower()][record_id]
        self._check_editable(obj, parsed, insert=False, system=system)
        row = dict(existing)
        for name, value in parsed.items():
            if name in row:
                row[name] = value
        self._run_triggers(obj, "update", row, parsed)
        self._check_row(obj, row, parsed, insert=False)
        plan = self._derive(obj, row, parsed, existing)
        now = self._now()
        row.update(LastModifiedDate=now, LastModifiedById=user_id, SystemModstamp=now)
        if system:
            row.update({k: parsed[k] for k in _AUDIT_FIELDS if parsed.get(k) is not None})
        self._check_unique(obj, row, parsed)
        self._store(obj.name.lower(), record_id, row)
        self._after_write(obj, row, plan, existing)

    def _delete(self, obj: ObjectDef, record_id: str) -> None:
        row = dict(self._rows[obj.name.lower()][record_id])
        now = self._now()
        row.update(IsDeleted=True, SystemModstamp=now, LastModifiedDate=now)
        self._store(obj.name.lower(), record_id, row)
        if obj.name == "Event":
            # Deleting an event deletes its relations (reference B3, EventRelation).
            for rel_id in list(self._relations_by_event.get(record_id, ())):
                rel = self._rows["eventrelation"][rel_id]
                if not rel["IsDeleted"]:
                    self._store("eventrelation", rel_id, {**rel, "IsDeleted": True, "SystemModstamp": now})
        elif obj.name == "EventRelation":
            self._relation_removed(row)

    def _check_editable(self, obj: ObjectDef, parsed: dict[str, Any], *, insert: bool, system: bool) -> None:
        bad = []
        for name in parsed:
            f = obj.fields[name.lower()]
            if name == "Id":
                continue
            if system:
                if f.type == "junctionidlist" and not f.createable:
                    bad.append(name)
                continue
            if not (f.createable if insert else f.updateable):
                bad.append(name)
        if bad:
            raise RecordFailed(RecordError(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {', '.join(bad)}. Please check the security settings of this "
                "field and verify that it is read/write for your profile or permission set.",
                tuple(bad),
            ))

    def _check_row(self, obj: ObjectDef, row: Row, parsed: dict[str, Any], *, insert: bool) -> None:
        """Field-level rules: required, lengths, picklists, emails, references."""
        missing = []
        for f in obj.fields.values():
            if not f.queryable or f.name == "Id":
                continue
            value = row.get(f.name)
            empty = value is None or value == ""
            if insert and f.required_on_create and empty:
                missing.append(f.name)
            elif not insert and f.name in parsed and empty and not f.nillable:
                missing.append(f.name)
        if missing:
            raise RecordFailed(RecordError("REQUIRED_FIELD_MISSING",
                                           f"Required fields are missing: [{', '.join(missing)}]", tuple(missing)))
        errors: list[RecordError] = []
        for name, value in parsed.items():
            f = obj.fields[name.lower()]
            if value is None or name == "Id":
                continue
            if f.type in TEXT_TYPES and f.length and _utf16_units(value) > f.length:
                shown = value if len(value) <= 100 else value[:100] + "..."
                errors.append(RecordError("STRING_TOO_LONG",
                                          f"{f.label}: data value too large: {shown} (max length={f.length})",
                                          (f.name,)))
            elif f.type == "picklist" and f.restricted_picklist and value not in f.picklist_values:
                errors.append(RecordError("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                                          f"{f.label}: bad value for restricted picklist field: {value}", (f.name,)))
            elif f.type == "email" and value and not _EMAIL_RE.match(value):
                errors.append(RecordError("INVALID_EMAIL_ADDRESS", f"{f.label}: invalid email address: {value}",
                                          (f.name,)))
        if errors:
            raise RecordFailed(*errors)
        for name, value in parsed.items():
            f = obj.fields[name.lower()]
            if f.type == "reference" and value is not None and f.name not in ("CreatedById", "LastModifiedById"):
                row[f.name] = self._check_reference(obj, f, value)
        if insert and row.get("OwnerId") and "OwnerId" not in parsed:
            row["OwnerId"] = self._check_reference(obj, obj.fields["ownerid"], row["OwnerId"])

    def _check_reference(self, obj: ObjectDef, f: FieldDef, value: str) -> str | None:
        """The 18-char id a reference field stores, or the error Salesforce gives (reference B3/B5)."""
        if value == "":
            return None
        id18 = to_18(value)
        target = self._prefixes.get(id18[:3]) if id18 else None
        if id18 is None or target not in f.reference_to:
            if f.name in ("WhoId", "WhatId"):
                raise RecordFailed(RecordError("FIELD_INTEGRITY_EXCEPTION",
                                               f"{f.label}: id value of incorrect type: {value}", (f.name,)))
            raise RecordFailed(RecordError("MALFORMED_ID", f"{f.label}: id value of incorrect type: {value}",
                                           (f.name,)))
        found = self._find(id18)
        if found is None:
            raise RecordFailed(RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", (f.name,)))
        if found[1]["IsDeleted"]:
            raise RecordFailed(RecordError("ENTITY_IS_DELETED", "entity is deleted", (f.name,)))
        if f.name == "OwnerId" and found[0].name == "User" and not found[1]["IsActive"]:
            raise RecordFailed(RecordError("INVALID_CROSS_REFERENCE_KEY", "operation performed with inactive user",
                                           (f.name,)))
        return id18

    def _check_unique(self, obj: ObjectDef, row: Row, parsed: dict[str, Any]) -> None:
        for name in parsed:
            f = obj.fields[name.lower()]
            if not f.unique:
                continue
            others = [i for i in self._matches(obj, f, row.get(f.name)) if i != row["Id"]]
            if others:
                raise RecordFailed(RecordError(
                    "DUPLICATE_VALUE",
                    f"duplicate value found: {f.name} duplicates value on record with id: {others[0]}", (f.name,)))

    # ------------------------------------------------------------------ derived values per object

    def _derive(self, obj: ObjectDef, row: Row, parsed: dict[str, Any], existing: Row | None) -> _Plan:
        if obj.name in ("Contact", "Lead", "User"):
            row["Name"] = " ".join(p for p in (row.get("FirstName"), row.get("LastName")) if p)
        if obj.name == "Opportunity":
            row["IsClosed"] = row.get("StageName") in ("Closed Won", "Closed Lost")
            row["IsWon"] = row.get("StageName") == "Closed Won"
        if obj.name == "Event":
            self._event_times(row, parsed, existing)
            return self._event_links(row, parsed, existing)
        if obj.name == "EventRelation":
            self._relation_rules(row, parsed, existing)
        return _Plan()

    def _event_times(self, row: Row, parsed: dict[str, Any], existing: Row | None) -> None:
        """StartDateTime/EndDateTime/ActivityDateTime/ActivityDate/DurationInMinutes, consistent
        the way Salesforce keeps them (reference B3)."""

        def fie(message: str, *fields: str) -> RecordFailed:
            return RecordFailed(RecordError("FIELD_INTEGRITY_EXCEPTION", message, fields))

        sent = {k: v for k, v in parsed.items() if v is not None}
        start_sent = _dt(sent.get("StartDateTime"))
        adt_sent = _dt(sent.get("ActivityDateTime"))
        end_sent = _dt(sent.get("EndDateTime"))
        ad_sent = parse_date(sent["ActivityDate"]) if "ActivityDate" in sent else None
        duration_sent: int | None = sent.get("DurationInMinutes")
        was_all_day = bool(existing and existing["IsAllDayEvent"])
        old_start = _dt(existing.get("StartDateTime")) if existing else None
        old_duration = existing.get("DurationInMinutes") if existing else None
        duration_field = "DurationInMinutes" if duration_sent is not None else "EndDateTime"

        if row["IsAllDayEvent"]:
            days_seen = {d for d in (ad_sent, start_sent and start_sent.date(), adt_sent and adt_sent.date()) if d}
            if len(days_seen) > 1:
                raise fie("Activity date must match the start date of an all-day event", "ActivityDate")
            if days_seen:
                day = days_seen.pop()
            elif old_start is not None:
                day = old_start.date()
            else:
                raise RecordFailed(RecordError("REQUIRED_FIELD_MISSING", "Required fields are missing: [ActivityDate]",
                                               ("ActivityDate",)))
            if end_sent is not None:
                if end_sent.date() < day:
                    raise fie("End Date Time cannot be earlier than Start Date Time", "EndDateTime")
                days = (end_sent.date() - day).days + 1
                if duration_sent is not None and math.ceil(max(duration_sent, 1) / 1440) != days:
                    raise fie("Duration does not match the start and end of the event", "DurationInMinutes")
            elif duration_sent is not None:
                if duration_sent <= 0:
                    raise fie("Duration must be greater than 0 minutes", "DurationInMinutes")
                days = math.ceil(duration_sent / 1440)
            elif was_all_day and old_duration:
                days = max(1, math.ceil(old_duration / 1440))
            else:
                days = 1  # neither end nor duration: one day (reference B3)
            minutes = days * 1440
            self._check_duration(minutes, duration_field)
            start = _midnight(day)
            row.update(StartDateTime=wire_datetime(start),
                       EndDateTime=wire_datetime(start + dt.timedelta(days=days - 1)),
                       ActivityDateTime=None, ActivityDate=day.isoformat(), DurationInMinutes=minutes)
            return

        if start_sent and adt_sent and start_sent != adt_sent:
            raise fie("Activity date time must equal the start date time", "ActivityDateTime")
        start = start_sent or adt_sent
        if start is None:
            if old_start is None:
                raise RecordFailed(RecordError("REQUIRED_FIELD_MISSING",
                                               "Required fields are missing: [StartDateTime]", ("StartDateTime",)))
            start = old_start
        if ad_sent is not None and ad_sent != start.date():
            raise fie("Activity date must equal the date of the start date time", "ActivityDate")
        if end_sent is not None:
            if end_sent < start:
                raise fie("End Date Time cannot be earlier than Start Date Time", "EndDateTime")
            minutes = int((end_sent - start).total_seconds() // 60)
            if duration_sent is not None and duration_sent != minutes:
                raise fie("Duration does not match the start and end of the event", "DurationInMinutes")
            end = end_sent
        elif duration_sent is not None:
            if duration_sent < 0:
                raise fie("Duration must be between 0 and 1440 minutes" if not self.multiday_events
                          else "Duration must not be negative", "DurationInMinutes")
            minutes = duration_sent
            end = start + dt.timedelta(minutes=minutes)
        elif old_duration is not None:
            minutes = old_duration  # moving the start keeps the duration
            end = start + dt.timedelta(minutes=minutes)
        else:
            raise RecordFailed(RecordError("REQUIRED_FIELD_MISSING", "Required fields are missing: "
                                           "[DurationInMinutes]", ("DurationInMinutes",)))
        self._check_duration(minutes, duration_field)
        row.update(StartDateTime=wire_datetime(start), EndDateTime=wire_datetime(end),
                   ActivityDateTime=wire_datetime(start), ActivityDate=start.date().isoformat(),
                   DurationInMinutes=minutes)

    def _check_duration(self, minutes: int, field_name: str) -> None:
        # From API 39.0 duration errors name EndDateTime unless DurationInMinutes was sent (B3).
        if not self.multiday_events and minutes > 1440:
            raise RecordFailed(RecordError("FIELD_INTEGRITY_EXCEPTION", "Duration must be between 0 and 1440 minutes",
                                           (field_name,)))
        if minutes > MAX_MULTIDAY_MINUTES:
            raise RecordFailed(RecordError("FIELD_INTEGRITY_EXCEPTION", "Multiday events can't exceed 14 days",
                                           (field_name,)))

    def _event_links(self, row: Row, parsed: dict[str, Any], existing: Row | None) -> _Plan:
        """WhoId / EventWhoIds / WhatId rules and AccountId (reference B3)."""
        plan = _Plan()
        current_whos = self._who_relations(existing["Id"]) if existing else []
        if "EventWhoIds" in parsed:
            ids: list[str] = []
            who_field = self.objects["event"].fields["whoid"]
            for value in parsed["EventWhoIds"] or []:
                id18 = self._check_reference_as(who_field, value, "EventWhoIds")
                if id18 and id18 not in ids:
                    ids.append(id18)
            given_who = row.get("WhoId") if "WhoId" in parsed else None
            if given_who and given_who not in ids:
                ids.insert(0, given_who)
            row["WhoId"] = given_who or (ids[0] if ids else None)
            plan.whos = ids
        elif "WhoId" in parsed:
            new = row.get("WhoId")
            old = existing.get("WhoId") if existing else None
            if self._shared_activities and existing:
                whos = [w for w in current_whos if w != old]
                if new:
                    whos = [new] + [w for w in whos if w != new]
                elif whos:
                    row["WhoId"] = whos[0]  # another Who is promoted (reference B3)
                plan.whos = whos
            else:
                plan.whos = [new] if new else []
        elif existing is None:
            plan.whos = []
        whos = plan.whos if plan.whos is not None else current_whos
        leads = [w for w in whos if w.startswith("00Q")]
        contacts = [w for w in whos if w.startswith("003")]
        if len(leads) > 1 or (leads and contacts):
            raise RecordFailed(RecordError("FIELD_INTEGRITY_EXCEPTION",
                                           "You can relate an event to one lead or up to 50 contacts, not both",
                                           ("EventWhoIds",)))
        if len(contacts) > MAX_SHARED_CONTACTS:
            raise RecordFailed(RecordError("FIELD_INTEGRITY_EXCEPTION",
                                           "You can't relate more than 50 contacts to an event", ("EventWhoIds",)))
        who, what = row.get("WhoId"), row.get("WhatId")
        if who and who.startswith("00Q") and what:
            raise RecordFailed(RecordError(
                "FIELD_INTEGRITY_EXCEPTION",
                "Related To ID: You can't relate an event to a lead and to another record at the same time",
                ("WhoId", "WhatId")))
        if row.get("IsPrivate") and (who or what):
            raise RecordFailed(RecordError(
                "FIELD_INTEGRITY_EXCEPTION",
                "You can't relate a private event to other records: remove Name and Related To or clear Private",
                ("IsPrivate",)))
        plan.what_changed = existing is None or existing.get("WhatId") != what
        row["AccountId"] = self._account_of(who, what)
        row["WhoCount"] = len(whos) if self._shared_activities else (1 if who else 0)
        row["WhatCount"] = 1 if what else 0
        return plan

    def _check_reference_as(self, f: FieldDef, value: str, field_name: str) -> str | None:
        try:
            return self._check_reference(self.objects["event"], f, value)
        except RecordFailed as exc:
            err = exc.errors[0]
            raise RecordFailed(RecordError(err.status_code, err.message, (field_name,))) from None

    def _account_of(self, who: str | None, what: str | None) -> str | None:
        # AccountId: the What's account, else the (primary) Who contact's (reference B3).
        if what:
            found = self._find(what)
            if found and found[0].name == "Account":
                return found[1]["Id"]
            if found and found[0].name == "Opportunity":
                return found[1].get("AccountId")
        if who and who.startswith("003"):
            found = self._find(who)
            if found:
                return found[1].get("AccountId")
        return None

    def _relations(self, event_id: str) -> list[Row]:
        ids = self._relations_by_event.get(event_id, set())
        rows = [self._rows["eventrelation"][i] for i in ids]
        return sorted((r for r in rows if not r["IsDeleted"]), key=lambda r: r["Id"])

    def _who_relations(self, event_id: str) -> list[str]:
        event = self._rows["event"].get(event_id)
        whos = [r["RelationId"] for r in self._relations(event_id) if r["IsParent"] and not r["IsWhat"]]
        primary = event.get("WhoId") if event else None
        if primary in whos:
            whos.remove(primary)
            whos.insert(0, primary)
        return whos

    def _after_write(self, obj: ObjectDef, row: Row, plan: _Plan, existing: Row | None) -> None:
        if obj.name == "Event":
            self._sync_event_relations(row, plan)
        elif obj.name == "EventRelation" and existing is None:
            self._relation_added(row)

    def _sync_event_relations(self, event: Row, plan: _Plan) -> None:
        """EventRelation rows follow WhoId/EventWhoIds (IsParent) and WhatId (IsWhat)."""
        event_id = event["Id"]
        now = self._now()
        relations = self._relations(event_id)
        if plan.whos is not None:
            wanted = list(plan.whos)
            for rel in relations:
                if rel["IsParent"] and not rel["IsWhat"] and rel["RelationId"] not in wanted:
                    self._drop_relation(rel, now)
            have = {r["RelationId"] for r in self._relations(event_id) if r["IsParent"] and not r["IsWhat"]}
            for who in wanted:
                if who in have:
                    continue
                invitee = next((r for r in self._relations(event_id) if r["RelationId"] == who), None)
                if invitee is not None:
                    self._store("eventrelation", invitee["Id"], {**invitee, "IsParent": True, "SystemModstamp": now})
                else:
                    self._add_relation(event, who, is_what=False, now=now)
        if plan.what_changed:
            for rel in self._relations(event_id):
                if rel["IsWhat"] and rel["RelationId"] != event.get("WhatId"):
                    self._drop_relation(rel, now)
            if event.get("WhatId") and not any(r["IsWhat"] for r in self._relations(event_id)):
                self._add_relation(event, event["WhatId"], is_what=True, now=now)

    def _drop_relation(self, rel: Row, now: str) -> None:
        if rel["IsInvitee"]:
            self._store("eventrelation", rel["Id"], {**rel, "IsParent": False, "SystemModstamp": now})
        else:
            self._store("eventrelation", rel["Id"], {**rel, "IsDeleted": True, "SystemModstamp": now})

    def _add_relation(self, event: Row, relation_id: str, *, is_what: bool, now: str) -> None:
        obj = self.objects["eventrelation"]
        rel_id = self._new_id(obj)
        row: Row = {f.name: None for f in obj.fields.values() if f.queryable}
        row.update(Id=rel_id, EventId=event["Id"], RelationId=relation_id, IsParent=True, IsWhat=is_what,
                   IsInvitee=False, Status=None, AccountId=event.get("AccountId"), IsDeleted=False,
                   CreatedDate=now, CreatedById=event["LastModifiedById"], LastModifiedDate=now,
                   LastModifiedById=event["LastModifiedById"], SystemModstamp=now)
        self._store("eventrelation", rel_id, row)

    def _relation_rules(self, row: Row, parsed: dict[str, Any], existing: Row | None) -> None:
        """EventRelation written through the API: invitees, or Who relations with Shared Activities."""
        if existing is not None:
            return
        event = self._rows["event"].get(row["EventId"])
        if event is None:
            raise RecordFailed(RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ("EventId",)))
        relation_type = self._prefixes.get(row["RelationId"][:3])
        if "IsInvitee" not in parsed:
            row["IsInvitee"] = not row["IsParent"]
        row["IsWhat"] = False
        row["AccountId"] = event.get("AccountId")
        if any(r["RelationId"] == row["RelationId"] for r in self._relations(event["Id"])):
            raise RecordFailed(RecordError("DUPLICATE_VALUE", "duplicate value found: RelationId duplicates value "
                                           "on record with id: " + event["Id"], ("RelationId",)))
        if row["IsParent"]:
            if relation_type not in ("Contact", "Lead"):
                raise RecordFailed(RecordError("FIELD_INTEGRITY_EXCEPTION", "Only a contact or a lead can be the "
                                               "Name of an event", ("RelationId",)))
            if not self._shared_activities and self._who_relations(event["Id"]):
                raise RecordFailed(RecordError("FIELD_INTEGRITY_EXCEPTION", "An event can be related to only one "
                                               "contact or lead without Shared Activities", ("RelationId",)))
            whos = self._who_relations(event["Id"]) + [row["RelationId"]]
            leads = [w for w in whos if w.startswith("00Q")]
            contacts = [w for w in whos if w.startswith("003")]
            if len(leads) > 1 or (leads and contacts):
                raise RecordFailed(RecordError("FIELD_INTEGRITY_EXCEPTION", "You can relate an event to one lead or "
                                               "up to 50 contacts, not both", ("RelationId",)))
            if len(contacts) > MAX_SHARED_CONTACTS:
                raise RecordFailed(RecordError("FIELD_INTEGRITY_EXCEPTION",
                                               "You can't relate more than 50 contacts to an event", ("RelationId",)))
            if leads and event.get("WhatId"):
                raise RecordFailed(RecordError("FIELD_INTEGRITY_EXCEPTION", "Related To ID: You can't relate an event "
                                               "to a lead and to another record at the same time",
                                               ("WhoId", "WhatId")))
            if event.get("IsPrivate"):
                raise RecordFailed(RecordError("FIELD_INTEGRITY_EXCEPTION", "You can't relate a private event to "
                                               "other records", ("IsPrivate",)))
        elif not row["IsInvitee"]:
            raise RecordFailed(RecordError("FIELD_INTEGRITY_EXCEPTION", "An event relation must be a Name or an "
                                           "invitee", ("IsParent", "IsInvitee")))

    def _relation_added(self, rel: Row) -> None:
        event = self._rows["event"][rel["EventId"]]
        if rel["IsParent"] and not rel["IsWhat"]:
            self._refresh_event_links(event, promote=rel["RelationId"] if not event.get("WhoId") else None)

    def _relation_removed(self, rel: Row) -> None:
        event = self._rows["event"].get(rel["EventId"])
        if event is None or event["IsDeleted"]:
            return
        if rel["IsWhat"]:
            self._store("event", event["Id"], {**event, "WhatId": None, "WhatCount": 0,
                                               "AccountId": self._account_of(event.get("WhoId"), None)})
        elif rel["IsParent"]:
            self._refresh_event_links(event, promote=None)

    def _refresh_event_links(self, event: Row, promote: str | None) -> None:
        whos = [r["RelationId"] for r in self._relations(event["Id"]) if r["IsParent"] and not r["IsWhat"]]
        who = event.get("WhoId")
        if promote:
            who = promote
        if who not in whos:
            who = whos[0] if whos else None  # deleting the Who's relation promotes another (B3)
        updated = {**event, "WhoId": who, "WhoCount": len(whos), "SystemModstamp": self._now(),
                   "AccountId": self._account_of(who, event.get("WhatId"))}
        self._store("event", event["Id"], updated)

    # ------------------------------------------------------------------ query

    def query(self, text: str, *, include_deleted: bool = False, api_path: str = "/services/data/v59.0",
              batch_size: int = DEFAULT_BATCH_SIZE) -> dict[str, Any]:
        """First page of a query/queryAll answer (reference B1)."""
        from calsync.sandbox.salesforce import soql

        with self.lock:
            try:
                result = soql.execute(text, self, self, include_deleted=include_deleted, api_path=api_path,
                                      now=self.clock())
            except soql.SoqlError as exc:
                raise ApiError(400, exc.error_code, exc.message) from None
            count = getattr(result, "count", None)
            if count is not None:
                return {"totalSize": count, "done": True, "records": []}
            records = result.records
            if len(records) <= batch_size:
                return {"totalSize": len(records), "done": True, "records": records}
            locator = "01g" + make_id("RO0", secrets.randbelow(62**9))[3:15]
            self._cursors[locator] = _Cursor(records, batch_size)
            while len(self._cursors) > MAX_OPEN_CURSORS:
                self._cursors.popitem(last=False)
            return {"totalSize": len(records), "done": False,
                    "nextRecordsUrl": f"{api_path}/query/{locator}-{batch_size}", "records": records[:batch_size]}

    def query_more(self, locator: str, offset: int, *, api_path: str = "/services/data/v59.0") -> dict[str, Any]:
        with self.lock:
            cursor = self._cursors.get(locator)
            if cursor is None or offset < 0 or offset > len(cursor.records):
                raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            end = offset + cursor.batch_size
            page = cursor.records[offset:end]
            answer: dict[str, Any] = {"totalSize": len(cursor.records), "done": end >= len(cursor.records),
                                      "records": page}
            if end < len(cursor.records):
                answer["nextRecordsUrl"] = f"{api_path}/query/{locator}-{end}"
            else:
                self._cursors.pop(locator, None)
            return answer

    # ------------------------------------------------------------------ users, sessions, apps

    def create_user(self, username: str, *, first_name: str | None = None, last_name: str | None = None,
                    email: str | None = None, active: bool = True, alias: str | None = None) -> str:
        """A User (Username unique); returns its 18-char id."""
        last = last_name or username.split("@")[0]
        fields = {"Username": username, "FirstName": first_name, "LastName": last, "Email": email or username,
                  "IsActive": active, "Alias": alias or last[:8]}
        with self.lock:
            user_id = getattr(self, "default_user_id", None)
            return self.create_record("User", fields, user_id=user_id, system=True)

    def user_by_username(self, username: str) -> Row | None:
        with self.lock:
            f = self.objects["user"].fields["username"]
            ids = self._matches(self.objects["user"], f, username)
            return dict(self._rows["user"][ids[0]]) if ids else None

    def set_user_active(self, username_or_id: str, active: bool) -> None:
        with self.lock:
            user = self._user(username_or_id)
            self.update_record("User", user["Id"], {"IsActive": bool(active)})

    def _user(self, username_or_id: str) -> Row:
        found = self._find(username_or_id)
        if found is not None and found[0].name == "User":
            return found[1]
        user = self.user_by_username(username_or_id)
        if user is None:
            raise KeyError(f"no such user: {username_or_id}")
        return user

    def create_session(self, username: str | None = None) -> str:
        """A new access token for an existing user (default: the sandbox admin)."""
        with self.lock:
            user = self._user(username) if username else self._rows["user"][self.default_user_id]
            now = self.clock()
            token = f"{self.org_id[:15]}!AQ{secrets.token_urlsafe(48)}"
            self._sessions[token] = Session(token, user["Id"], user["Username"], now, now + self.session_lifetime)
            return token

    def authenticate(self, token: str | None) -> Session | None:
        """The live session of a bearer token: None if unknown, expired or its user inactive."""
        if not token:
            return None
        with self.lock:
            session = self._sessions.get(token)
            if session is None or self.clock() >= session.expires_at:
                return None
            user = self._rows["user"].get(session.user_id)
            if user is None or not user["IsActive"]:
                return None
            return session

    def expire_sessions(self) -> int:
        """End every session now (tests of the 401 path); returns how many there were."""
        with self.lock:
            n = len(self._sessions)
            now = self.clock()
            for s in self._sessions.values():
                s.expires_at = min(s.expires_at, now)
            return n

    def register_connected_app(self, consumer_key: str, public_key_pem: str | bytes | None = None, *,
                               consumer_secret: str | None = None,
                               authorized_usernames: Iterable[str] | None = None) -> ConnectedApp:
        """A connected app for the token endpoint. `authorized_usernames` None = pre-authorized
        for all users (JWT bearer needs pre-authorization, reference B7)."""
        pem = public_key_pem.decode("ascii") if isinstance(public_key_pem, bytes) else public_key_pem
        app = ConnectedApp(consumer_key, pem, consumer_secret,
                           None if authorized_usernames is None else {u.lower() for u in authorized_usernames})
        with self.lock:
            self._apps[consumer_key] = app
        return app

    def connected_app(self, consumer_key: str) -> ConnectedApp | None:
        with self.lock:
            return self._apps.get(consumer_key)

    def set_password(self, username: str, password: str, security_token: str = "") -> None:
        with self.lock:
            self._user(username)
            self._passwords[username.lower()] = (password, security_token)

    def check_password(self, username: str, password_and_token: str) -> bool:
        with self.lock:
            stored = self._passwords.get(username.lower())
            user = self.user_by_username(username)
            if stored is None or user is None or not user["IsActive"]:
                return False
            return secrets.compare_digest(password_and_token, stored[0] + stored[1])

    # ------------------------------------------------------------------ API limits (reference B6)

    def count_call(self, kind: str) -> bool:
        """Count one API call; False (nothing counted) when the daily allocation is used up."""
        with self.lock:
            if self.api_calls >= self.daily_api_max:
                return False
            self.api_calls += 1
            self._calls[kind] += 1
            return True

    def limit_info(self) -> str:
        """The Sforce-Limit-Info header value."""
        with self.lock:
            return f"api-usage={self.api_calls}/{self.daily_api_max}"

    def calls_by_kind(self) -> dict[str, int]:
        """API calls so far by kind: query, collections, sobject, describe, limits, composite, other."""
        with self.lock:
            return dict(self._calls)

    def set_limits(self, *, daily_api_max: int | None = None, api_calls: int | None = None) -> None:
        with self.lock:
            if daily_api_max is not None:
                self.daily_api_max = int(daily_api_max)
            if api_calls is not None:
                self.api_calls = int(api_calls)
                if api_calls == 0:
                    self._calls.clear()

    def limits(self) -> dict[str, Any]:
        """`GET /limits` (reference B6)."""
        with self.lock:
            remaining = max(0, self.daily_api_max - self.api_calls)
            return {
                "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
                "DailyApiRequests": {"Max": self.daily_api_max, "Remaining": remaining},
                "DailyAsyncApexExecutions": {"Max": 250000, "Remaining": 250000},
                "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
                "DailyBulkV2QueryFileStorageMB": {"Max": 976562, "Remaining": 976562},
                "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
                "DataStorageMB": {"Max": 5, "Remaining": 5},
                "FileStorageMB": {"Max": 20, "Remaining": 20},
                "HourlyTimeBasedWorkflow": {"Max": 50, "Remaining": 50},
            }

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "api_calls": self.api_calls,
                "daily_api_max": self.daily_api_max,
                "by_kind": dict(self._calls),
                "records": {o.name: sum(1 for r in self._rows[k].values() if not r["IsDeleted"])
                            for k, o in self.objects.items()},
                "shared_activities": self._shared_activities,
                "multiday_events": self.multiday_events,
                "pending_record_failures": len(self._failures),
            }


# --- helpers ------------------------------------------------------------------------------------


def _failure(errors: Iterable[RecordError], created: bool | None = None) -> dict[str, Any]:
    # A failed result carries no id (reference B4 allows "id": null or none).
    out: dict[str, Any] = {"success": False, "errors": [e.as_result_error() for e in errors]}
    if created is not None:
        out["created"] = created
    return out


def _defaults(obj: ObjectDef) -> Row:
    row: Row = {f.name: False for f in obj.fields.values() if f.type == "boolean"}
    extra: dict[str, dict[str, Any]] = {
        "User": {"IsActive": True, "TimeZoneSidKey": "America/Los_Angeles", "UserType": "Standard"},
        "Lead": {"Status": "Open - Not Contacted"},
        "Event": {"ShowAs": "Busy", "EventSubtype": "Event", "GroupEventType": "0", "WhoCount": 0, "WhatCount": 0},
        "EventRelation": {"Status": "New"},
    }
    row.update(extra.get(obj.name, {}))
    return row


def _dt(value: Any) -> dt.datetime | None:
    return parse_datetime(value) if isinstance(value, str) else None


def _json_kind(value: Any) -> str:
    if isinstance(value, str):
        return "VALUE_STRING"
    if isinstance(value, bool):
        return "VALUE_TRUE" if value else "VALUE_FALSE"
    if isinstance(value, int):
        return "VALUE_NUMBER_INT"
    if isinstance(value, float):
        return "VALUE_NUMBER_FLOAT"
    if isinstance(value, list):
        return "START_ARRAY"
    return "START_OBJECT"


def _safe_call(predicate: RecordPredicate, record: dict[str, Any]) -> bool:
    try:
        return bool(predicate(record))
    except Exception:  # a test's predicate must not break the emulator
        log.exception("fail_records predicate raised")
        return False
