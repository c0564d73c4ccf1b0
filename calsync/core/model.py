"""Frozen data that crosses calsync's boundaries.

Google side: `EventTime`, `Person`, `GoogleEvent` (one item of an events.list answer, normalised)
and `MeetingCopy` (every item one owner's calendar holds for one iCalUID: a single event, or a
series master with its exceptions).

Salesforce side: `Contact`, `Lead`, `Conversion`, `Opportunity`, `Directory` (the answers of
the batched lookups) and `EventFields` (the values calsync writes on one Salesforce Event).

Between them: `Written` (what calsync previously wrote for a key, from the state store),
`PlanSettings`, and the operations the planner returns: `Create`, `Update`, `Delete`, `Skip`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class EventTime:
    """A Google start/end: exactly one of `date` (all-day) or `date_time` (aware) is set."""

    date: dt.date | None = None
    date_time: dt.datetime | None = None
    time_zone: str | None = None

    @property
    def is_all_day(self) -> bool:
        return self.date is not None


@dataclass(frozen=True)
class Person:
    """An organizer or attendee. `email` is kept as Google sent it; compare with `address`."""

    email: str | None
    display_name: str | None = None
    self: bool = False
    organizer: bool = False
    resource: bool = False
    optional: bool = False
    response_status: str = "needsAction"

    @property
    def address(self) -> str | None:
        """The email lowercased and stripped, the form every comparison uses."""
        return self.email.strip().lower() if self.email else None


@dataclass(frozen=True)
class GoogleEvent:
    """One item of an events.list answer (singleEvents=false).

    A cancelled item may carry only `id` (deleted event) or `id`, `recurring_event_id` and
    `original_start` (cancelled occurrence); every other field is then empty.
    """

    id: str
    status: str = "confirmed"
    ical_uid: str | None = None
    summary: str | None = None
    description: str | None = None
    location: str | None = None
    start: EventTime | None = None
    end: EventTime | None = None
    end_time_unspecified: bool = False
    organizer: Person | None = None
    attendees: tuple[Person, ...] = ()
    recurrence: tuple[str, ...] = ()
    recurring_event_id: str | None = None
    original_start: EventTime | None = None
    event_type: str = "default"
    visibility: str = "default"
    updated: dt.datetime | None = None

    @property
    def is_cancelled(self) -> bool:
        return self.status == "cancelled"


@dataclass(frozen=True)
class MeetingCopy:
    """What one owner's calendar holds for one iCalUID.

    `items` holds the single event, or the series master followed by its exceptions (modified
    and cancelled occurrences). Empty `items` means the meeting is no longer on the calendar.
    """

    owner: str  # the configured user's address, lowercased
    ical_uid: str
    items: tuple[GoogleEvent, ...] = ()
    time_zone: str | None = None  # the calendar's zone (the listing's timeZone), for all-day dates
    event_id: str | None = None  # the Google id of its single event or master, kept once it is gone
    # The address the owner's keys are hashed from when it is not `owner` (identity.py): the
    # first address calsync saw for their Salesforce User, kept across renames.
    key_owner: str | None = None

    @property
    def key(self) -> str:
        return event_key(self.key_owner or self.owner, self.ical_uid)


def event_key(owner: str, ical_uid: str) -> str:
    """The deterministic key of the one Salesforce Event per (meeting, owner).

    A recurring series counts once, so the iCalUID (shared by all its occurrences and by every
    attendee's copy) plus the owner identifies the Event. Hashed so it fits an External ID field
    (255 characters) whatever Google sends. `owner` is the address the owner's keys are hashed
    from (`MeetingCopy.key_owner`), which outlives a change of their address (identity.py).
    """
    digest = hashlib.sha256(f"{owner.strip().lower()}\n{ical_uid}".encode()).hexdigest()
    return f"cs1-{digest[:40]}"


@dataclass(frozen=True)
class Contact:
    id: str
    email: str
    created_date: str  # as Salesforce returns it; ISO strings order correctly
    account_id: str | None = None


@dataclass(frozen=True)
class Lead:
    """A Lead by its address. Once converted (reference B10: IsConverted), the records it
    became: the Contact (which may be an existing one with another address), the Account and,
    when one was made, the Opportunity."""

    id: str
    email: str
    created_date: str
    converted_contact_id: str | None = None
    converted_account_id: str | None = None
    converted_opportunity_id: str | None = None
    is_converted: bool = False


@dataclass(frozen=True)
class Conversion:
    """A converted Lead and the Contact it became, as Salesforce holds that Contact now (found
    through ConvertedContactId, not by address: its own Email may differ)."""

    lead: Lead
    contact: Contact


@dataclass(frozen=True)
class Opportunity:
    """An Opportunity on which some Contact has a primary OpportunityContactRole."""

    id: str
    contact_id: str
    is_closed: bool
    close_date: str | None = None


@dataclass(frozen=True)
class Directory:
    """Salesforce's answers for the addresses of the meetings being planned.

    Keys of `contacts`, `leads` and `converted` are lowercased addresses; `leads` holds
    unconverted Leads only, `converted` the converted Leads of an address with the Contact each
    became (Salesforce moved the Lead's activities there, reference B10). `users` maps each
    configured user's address to their active Salesforce User Id.
    """

    contacts: dict[str, tuple[Contact, ...]] = field(default_factory=dict)
    leads: dict[str, tuple[Lead, ...]] = field(default_factory=dict)
    converted: dict[str, tuple[Conversion, ...]] = field(default_factory=dict)
    primary_opportunities: dict[str, tuple[Opportunity, ...]] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)

    def conversions(self) -> dict[str, Lead]:
        """The converted Leads this directory knows, by 15-character Lead Id (ownership.py:
        the Name and Related To Salesforce gave their Events by converting are not edits)."""
        return {c.lead.id[:15]: c.lead for found in self.converted.values() for c in found}


@dataclass(frozen=True)
class EventFields:
    """The values calsync writes on one Salesforce Event (and fingerprints)."""

    owner_id: str
    subject: str
    start: dt.datetime  # UTC
    end: dt.datetime  # UTC
    is_all_day: bool
    activity_date: dt.date | None
    duration_minutes: int
    location: str | None
    description: str | None
    who_id: str | None
    what_id: str | None
    is_private: bool = False
    event_type: str = "Meeting"
    show_as: str = "Busy"
    activity_datetime_field: str | None = None  # custom Date/Time field, gets `activity_at`
    who_ids: tuple[str, ...] = ()  # Shared Activities: every Contact, the Name first (<= 50)
    activity_at: dt.datetime | None = None  # the activity field's value when not `start` (all-day)

    def to_salesforce(self) -> dict[str, Any]:
        """The record body for the REST API (without `attributes`/`Id`)."""
        record: dict[str, Any] = {
            "OwnerId": self.owner_id,
            "Subject": self.subject,
            "IsAllDayEvent": self.is_all_day,
            "DurationInMinutes": self.duration_minutes,
            "Location": self.location,
            "Description": self.description,
            "WhoId": self.who_id,
            "WhatId": self.what_id,
            "IsPrivate": self.is_private,
            "Type": self.event_type,
            "ShowAs": self.show_as,
        }
        if self.is_all_day:
            # All-day Events take ActivityDate + DurationInMinutes; ActivityDateTime must stay
            # empty (Salesforce Event object reference, IsAllDayEvent).
            assert self.activity_date is not None
            record["ActivityDate"] = self.activity_date.isoformat()
        else:
            record["StartDateTime"] = sf_datetime(self.start)
            record["EndDateTime"] = sf_datetime(self.end)
        if self.activity_datetime_field:
            record[self.activity_datetime_field] = sf_datetime(self.activity_at or self.start)
        if self.who_ids:
            record["EventWhoIds"] = list(self.who_ids)
        return record

    def fingerprint(self, omit: Iterable[str] = ()) -> str:
        """The fingerprint of what calsync writes, leaving out the fields a person owns."""
        body = {k: v for k, v in self.to_salesforce().items() if k not in set(omit)}
        return fingerprint_of(body, ignore=self.activity_datetime_field)


def fingerprint_of(record: dict[str, Any], ignore: str | None = None) -> str:
    """The fingerprint of a record body: equal bodies, equal fingerprints.

    The activity Date/Time field (`ignore`) is left out: it only repeats the start, and turning
    it on must not rewrite unchanged Events (it is written "never retroactively", only on
    Events created or updated from then on).
    """
    kept = {k: v for k, v in record.items() if k != ignore}
    body = json.dumps(kept, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()[:32]


def sf_datetime(value: dt.datetime) -> str:
    """Salesforce's dateTime form, always UTC: 2026-01-05T15:00:00.000+0000."""
    utc = value.astimezone(dt.timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


@dataclass(frozen=True)
class Written:
    """What calsync last wrote for a key (a row of the state store), and who owns what now.

    `hashes`: per field, the hash of the value calsync last wrote (ownership.hashes; None for an
    Event written before they were kept). `kept`: fields a person changed since, which calsync
    no longer writes. `removed`: the Event was deleted in Salesforce and stays deleted.
    `canceled`: its meeting went, but a person had changed it, so it was kept with `Canceled: `.
    `prefixed`: calsync itself put that `Canceled: ` on the Subject (False: it was there already;
    None: kept before calsync noted which), so the prefix is calsync's to take off again.
    """

    key: str
    owner: str
    ical_uid: str
    sf_id: str | None  # None while a create is in flight (intent recorded, no answer yet)
    fingerprint: str | None
    hashes: Mapping[str, str] | None = None
    kept: frozenset[str] = frozenset()
    removed: bool = False
    canceled: bool = False
    prefixed: bool | None = None
    written_at: dt.datetime | None = None
    # Per field, the hashes of the updates sent since the last recorded write, answers not recorded.
    pending: Mapping[str, Sequence[str]] | None = None
    deleting: bool = False  # a delete was sent, its answer not recorded


@dataclass(frozen=True)
class PlanSettings:
    internal_domains: frozenset[str]
    configured_users: frozenset[str]  # lowercased addresses of every configured user
    exclude: tuple[str, ...] = ()  # glob patterns on lowercased addresses
    lookback_days: int = 30
    private_events: Literal["skip", "sync"] = "skip"
    activity_datetime_field: str | None = None
    shared_activities: bool = False  # relate every Contact of the meeting (EventWhoIds)


@dataclass(frozen=True)
class Create:
    key: str
    copy: MeetingCopy
    fields: EventFields


@dataclass(frozen=True)
class Update:
    key: str
    sf_id: str
    copy: MeetingCopy
    fields: EventFields
    kept: frozenset[str] = frozenset()  # a person's fields: not written, not fingerprinted
    omit: frozenset[str] = frozenset()  # further fields left out so the kept ones stay valid
    # A Subject sent although a person owns it: theirs, without the `Canceled: ` calsync put on
    # it when the meeting went (ownership.settle, when the meeting comes back).
    subject: str | None = None

    def body(self) -> dict[str, Any]:
        """The record to send: the fields calsync wants, but those a person owns."""
        body = {k: v for k, v in self.fields.to_salesforce().items() if k not in self.kept | self.omit}
        if self.subject is not None:
            body["Subject"] = self.subject
        return body


@dataclass(frozen=True)
class Delete:
    key: str
    sf_id: str | None
    owner: str
    reason: str


@dataclass(frozen=True)
class Retire:
    """The meeting is gone but a person changed its Event: keep the Event, mark it canceled.

    `subject`: the Subject to write (`Canceled: ` + the current one), None when it already
    carries the prefix (nothing to send)."""

    key: str
    sf_id: str
    owner: str
    reason: str
    kept: frozenset[str]
    subject: str | None


@dataclass(frozen=True)
class Skip:
    """Nothing to write; `reason` says why (logged: 'unchanged' is not logged per event)."""

    key: str
    owner: str
    reason: str


Operation = Create | Update | Delete | Retire | Skip
