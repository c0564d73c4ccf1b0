"""The emulated org as plain Python objects: records, users, sessions, limits, injected failures.

No HTTP here (the moto layout): `routes.py` parses requests, calls these methods and renders
their answers. `SalesforceBackend` is a facade over one object per concern, which all share one
`OrgStore` (the rows, their indexes, the undo log, the org's clock and settings, one `RLock`):

    store.py                the records and indexes, reads, transactions, the archive rule
    values.py               JSON values to wire values: trimming, "" as null, datetimes
    field_rules.py          permissions, required fields, UTF-16 lengths, picklists, references
    event_rules.py          the Event rules and the EventRelation rows that follow an Event
    automation.py           triggers that rewrite records before they are saved
    writes.py               the one write path: insert, update, delete to the recycle bin
    failures.py             injected per-record failures (`fail_records`)
    sobject_collections.py  sObject Collections, upsert by External ID, allOrNone
    conversion.py           Lead conversion
    queries.py              query/queryAll over the SOQL engine, query locators
    identity.py             users, sessions, connected apps, passwords
    limits.py               the daily API allocation, Sforce-Limit-Info, calls by kind

The facade is also the `SoqlSchema` and `SoqlData` the SOQL engine reads (`object_name`,
`field`, `relationship`, `rows`, `get`). Every public method takes the lock.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable
from typing import Any

from calsync.sandbox.salesforce.automation import Trigger, Triggers
from calsync.sandbox.salesforce.conversion import LeadConversion
from calsync.sandbox.salesforce.event_rules import EventRules
from calsync.sandbox.salesforce.failures import FailureRule, RecordFailures, RecordPredicate
from calsync.sandbox.salesforce.field_rules import FieldRules
from calsync.sandbox.salesforce.identity import ConnectedApp, Identity, Session
from calsync.sandbox.salesforce.limits import ApiUsage
from calsync.sandbox.salesforce.queries import DEFAULT_BATCH_SIZE, Queries
from calsync.sandbox.salesforce.schema import FieldDef, ObjectDef
from calsync.sandbox.salesforce.sobject_collections import Collections, WriteResult
from calsync.sandbox.salesforce.soql import FieldInfo, RelationshipInfo
from calsync.sandbox.salesforce.store import Clock, OrgStore, Row
from calsync.sandbox.salesforce.values import parse_fields
from calsync.sandbox.salesforce.writes import RecordWriter


class SalesforceBackend:
    """State of one emulated org. Thread-safe; every public method takes the lock."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.store = OrgStore(clock)
        self.failures = RecordFailures()
        self.triggers = Triggers(self.store)
        self.field_rules = FieldRules(self.store)
        self.events = EventRules(self.store, self.field_rules)
        self.writer = RecordWriter(self.store, self.field_rules, self.events, self.triggers, self.failures)
        self.collections = Collections(self.store, self.writer, self.failures)
        self.identity = Identity(self.store, self.writer)
        self.conversion = LeadConversion(self.store, self.writer, self.field_rules, self.events, self.identity)
        self.queries = Queries(self.store)
        self.usage = ApiUsage(self.store.lock)
        self.store.default_user_id = self.create_user(
            "admin@calsync.example", first_name="Sandbox", last_name="Admin", email="admin@calsync.example"
        )

    # ------------------------------------------------------------------ the org and its settings

    @property
    def lock(self) -> threading.RLock:
        return self.store.lock

    @property
    def objects(self) -> dict[str, ObjectDef]:
        return self.store.objects

    @property
    def default_user_id(self) -> str:
        """The sandbox admin's id: the user of control-API writes and of conversions by default."""
        assert self.store.default_user_id is not None
        return self.store.default_user_id

    @property
    def clock(self) -> Clock:
        """The org's clock: the base clock (wall time, or a test's) plus `clock_offset`."""
        return self.store.clock.now

    @clock.setter
    def clock(self, value: Clock) -> None:
        self.store.clock.base = value

    @property
    def clock_offset(self) -> dt.timedelta:
        """How far Salesforce's clock is from the base clock (reference B10, "Clocks")."""
        return self.store.clock.offset

    @clock_offset.setter
    def clock_offset(self, value: dt.timedelta) -> None:
        self.store.clock.offset = value

    @property
    def shared_activities(self) -> bool:
        """"Allow Users to Relate Multiple Contacts to Tasks and Events" (reference B3)."""
        return self.store.shared_activities

    @shared_activities.setter
    def shared_activities(self, value: bool) -> None:
        self.store.shared_activities = value

    @property
    def multiday_events(self) -> bool:
        """Activity Settings; off: > 1440 minutes fails (reference B3)."""
        return self.store.multiday_events

    @multiday_events.setter
    def multiday_events(self, value: bool) -> None:
        self.store.multiday_events = value

    def add_custom_field(self, object_name: str, name: str, type: str, **options: Any) -> FieldDef:  # noqa: A002
        """Add a custom field (`X__c`) to an object; existing rows get null (`OrgStore.add_custom_field`,
        its options by name)."""
        return self.store.add_custom_field(object_name, name, type, **options)

    def add_trigger(self, object_name: str, *, on: Iterable[str] = ("insert",), subject_prefix: str = "",
                    subject_suffix: str = "", set_fields: dict[str, Any] | None = None) -> Trigger:
        """Org automation on `object_name` before each insert and/or update (`Triggers.add`)."""
        return self.triggers.add(object_name, on=on, subject_prefix=subject_prefix,
                                 subject_suffix=subject_suffix, set_fields=set_fields)

    def clear_triggers(self) -> None:
        self.triggers.clear()

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "api_calls": self.usage.api_calls,
                "daily_api_max": self.usage.daily_api_max,
                "by_kind": self.usage.calls_by_kind(),
                "records": {o.name: sum(1 for r in self.store.rows[k].values() if not r["IsDeleted"])
                            for k, o in self.store.objects.items()},
                "shared_activities": self.store.shared_activities,
                "multiday_events": self.store.multiday_events,
                "pending_record_failures": len(self.failures.rules),
            }

    # ------------------------------------------------------------------ SoqlSchema / SoqlData, reads

    def object_name(self, name: str) -> str | None:
        return self.queries.object_name(name)

    def field(self, obj: str, name: str) -> FieldInfo | None:
        return self.queries.field(obj, name)

    def relationship(self, obj: str, name: str) -> RelationshipInfo | None:
        return self.queries.relationship(obj, name)

    def rows(self, obj: str, include_deleted: bool) -> Iterable[Row]:
        return self.queries.rows(obj, include_deleted)

    def get(self, record_id: str) -> tuple[str, Row] | None:
        return self.queries.get(record_id)

    def has_object(self, name: str) -> bool:
        return self.store.has_object(name)

    def record(self, object_name: str, record_id: str, *, include_deleted: bool = False) -> Row | None:
        """A copy of one row of `object_name`, or None."""
        return self.store.record(object_name, record_id, include_deleted=include_deleted)

    def list_records(self, object_name: str, *, include_deleted: bool = False) -> list[Row]:
        """Copies of every row of `object_name` in creation order."""
        return self.store.list_records(object_name, include_deleted=include_deleted)

    def lookup_for_rest(self, object_name: str, record_id: str) -> Row:
        """The row a single-record REST call addresses; ApiError/RecordFailed like Salesforce."""
        return self.store.lookup_for_rest(object_name, record_id)

    def rest_record(self, object_name: str, row: Row, api_path: str, fields: list[str] | None = None) -> Row:
        """A row in REST shape: attributes first, then the (selected) queryable fields."""
        return self.store.rest_record(object_name, row, api_path, fields)

    def parse_fields(self, object_name: str, sent: Any) -> dict[str, Any]:
        """Canonical field names -> coerced values; unknown field or bad JSON type is ApiError."""
        return parse_fields(self.store.object(object_name), sent)

    def query(self, text: str, *, include_deleted: bool = False, api_path: str = "/services/data/v59.0",
              batch_size: int = DEFAULT_BATCH_SIZE) -> dict[str, Any]:
        """First page of a query/queryAll answer (reference B1)."""
        return self.queries.query(text, include_deleted=include_deleted, api_path=api_path, batch_size=batch_size)

    def query_more(self, locator: str, offset: int, *, api_path: str = "/services/data/v59.0") -> dict[str, Any]:
        return self.queries.query_more(locator, offset, api_path=api_path)

    # ------------------------------------------------------------------ writes

    def create_record(self, object_name: str, fields: dict[str, Any], *, user_id: str | None = None,
                      system: bool = True) -> str:
        """Insert one record (control API / tests: `system` skips createable checks). Raises
        ApiError or RecordFailed."""
        return self.writer.create_record(object_name, fields, user_id=user_id, system=system)

    def update_record(self, object_name: str, record_id: str, fields: dict[str, Any], *,
                      user_id: str | None = None, system: bool = True) -> None:
        self.writer.update_record(object_name, record_id, fields, user_id=user_id, system=system)

    def delete_record(self, object_name: str, record_id: str) -> None:
        self.writer.delete_record(object_name, record_id)

    def restore_records(self, object_name: str, rows: Iterable[dict[str, Any]]) -> None:
        """Test setup: records exported from another run back as they were (`RecordWriter`)."""
        self.writer.restore_records(object_name, rows)

    def upsert_record(self, object_name: str, ext_field: str, value: str, fields: dict[str, Any], *,
                      user_id: str | None = None, system: bool = False) -> WriteResult:
        """`PATCH /sobjects/{Type}/{ExtField}/{value}` (reference B4). Raises MultipleMatches."""
        return self.collections.upsert_record(object_name, ext_field, value, fields, user_id=user_id,
                                              system=system)

    def find_by_external_id(self, object_name: str, ext_field: str, value: str) -> list[str]:
        """Ids of the live records whose external id field matches (case-insensitively)."""
        return self.collections.find_by_external_id(object_name, ext_field, value)

    def collection_write(self, operation: str, records: Any, *, all_or_none: bool = False,
                         user_id: str | None = None, object_name: str | None = None,
                         ext_field: str | None = None) -> list[dict[str, Any]]:
        """One result per record in request order; per-record errors use statusCode."""
        return self.collections.collection_write(operation, records, all_or_none=all_or_none, user_id=user_id,
                                                 object_name=object_name, ext_field=ext_field)

    def collection_delete(self, ids: list[str], *, all_or_none: bool = False) -> list[dict[str, Any]]:
        return self.collections.collection_delete(ids, all_or_none=all_or_none)

    def convert_lead(self, lead_id: str, *, account_id: str | None = None, contact_id: str | None = None,
                     opportunity_name: str | None = None, converted_status: str = "Closed - Converted",
                     user_id: str | None = None) -> dict[str, str | None]:
        """convertLead(); returns the ids {"account", "contact", "opportunity"} (`LeadConversion`)."""
        return self.conversion.convert_lead(lead_id, account_id=account_id, contact_id=contact_id,
                                            opportunity_name=opportunity_name, converted_status=converted_status,
                                            user_id=user_id)

    # ------------------------------------------------------------------ injected failures

    def fail_records(self, predicate_or_count: RecordPredicate | int, status_code: str = "UNABLE_TO_LOCK_ROW",
                     message: str | None = None, times: int = 1,
                     fields: tuple[str, ...] | list[str] = ()) -> FailureRule:
        """Make record writes fail with `status_code` (`RecordFailures.add` says how)."""
        with self.lock:
            return self.failures.add(predicate_or_count, status_code, message, times, fields)

    def clear_record_failures(self) -> None:
        with self.lock:
            self.failures.clear()

    # ------------------------------------------------------------------ users, sessions, apps

    @property
    def org_id(self) -> str:
        return self.identity.org_id

    @property
    def instance_url(self) -> str:
        return self.identity.instance_url

    @instance_url.setter
    def instance_url(self, value: str) -> None:
        self.identity.instance_url = value  # the emulator sets its URL on start

    @property
    def session_lifetime(self) -> dt.timedelta:
        return self.identity.session_lifetime

    @session_lifetime.setter
    def session_lifetime(self, value: dt.timedelta) -> None:
        self.identity.session_lifetime = value

    @property
    def _sessions(self) -> dict[str, Session]:
        # Every access token issued, by token (tests check that none reaches a log line).
        return self.identity.sessions

    def create_user(self, username: str, *, first_name: str | None = None, last_name: str | None = None,
                    email: str | None = None, active: bool = True, alias: str | None = None) -> str:
        """A User (Username unique); returns its 18-char id."""
        return self.identity.create_user(username, first_name=first_name, last_name=last_name, email=email,
                                         active=active, alias=alias)

    def user_by_username(self, username: str) -> Row | None:
        return self.identity.user_by_username(username)

    def set_user_active(self, username_or_id: str, active: bool) -> None:
        self.identity.set_user_active(username_or_id, active)

    def create_session(self, username: str | None = None) -> str:
        """A new access token for an existing user (default: the sandbox admin)."""
        return self.identity.create_session(username)

    def authenticate(self, token: str | None) -> Session | None:
        """The live session of a bearer token: None if unknown, expired or its user inactive."""
        return self.identity.authenticate(token)

    def expire_sessions(self) -> int:
        """End every session now (tests of the 401 path); returns how many there were."""
        return self.identity.expire_sessions()

    def register_connected_app(self, consumer_key: str, public_key_pem: str | bytes | None = None, *,
                               consumer_secret: str | None = None,
                               authorized_usernames: Iterable[str] | None = None) -> ConnectedApp:
        """A connected app for the token endpoint (reference B7)."""
        return self.identity.register_connected_app(consumer_key, public_key_pem, consumer_secret=consumer_secret,
                                                    authorized_usernames=authorized_usernames)

    def connected_app(self, consumer_key: str) -> ConnectedApp | None:
        return self.identity.connected_app(consumer_key)

    def set_password(self, username: str, password: str, security_token: str = "") -> None:
        self.identity.set_password(username, password, security_token)

    def check_password(self, username: str, password_and_token: str) -> bool:
        return self.identity.check_password(username, password_and_token)

    # ------------------------------------------------------------------ API limits (reference B6)

    @property
    def api_calls(self) -> int:
        return self.usage.api_calls

    @api_calls.setter
    def api_calls(self, value: int) -> None:
        self.usage.api_calls = value

    @property
    def daily_api_max(self) -> int:
        return self.usage.daily_api_max

    @daily_api_max.setter
    def daily_api_max(self, value: int) -> None:
        self.usage.daily_api_max = value

    def count_call(self, kind: str) -> bool:
        """Count one API call; False (nothing counted) when the daily allocation is used up."""
        return self.usage.count_call(kind)

    def limit_info(self) -> str:
        """The Sforce-Limit-Info header value."""
        return self.usage.limit_info()

    def calls_by_kind(self) -> dict[str, int]:
        """API calls so far by kind: query, collections, sobject, describe, limits, composite, other."""
        return self.usage.calls_by_kind()

    def set_limits(self, *, daily_api_max: int | None = None, api_calls: int | None = None) -> None:
        self.usage.set_limits(daily_api_max=daily_api_max, api_calls=api_calls)

    def limits(self) -> dict[str, Any]:
        """`GET /limits` (reference B6)."""
        return self.usage.limits()
