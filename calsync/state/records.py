"""The records the state hands out: one frozen dataclass (or named tuple) per kind of row.

What the concern modules return and take (calendars.py, google_items.py, written.py,
retries.py, decisions.py, meeting_index.py, push_channels.py, record_history.py), kept apart
from the queries so that a caller (the engine, the rules, the commands) imports the shapes of
the state without its SQL. What calsync wrote for an Event key is `core.model.Written`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple


@dataclass(frozen=True)
class CalendarState:
    """One calendar's sync state (`calendars`): its Google sync token, the last cycle's outcome."""

    user: str
    sync_token: str | None
    token_saved_at: dt.datetime | None
    last_attempt_at: dt.datetime | None
    last_success_at: dt.datetime | None
    last_result: dict[str, Any]
    last_error: str | None
    consecutive_failures: int
    time_zone: str | None = None
    swept_at: dt.datetime | None = None


@dataclass(frozen=True)
class MirrorRow:
    """One Google item as the mirror keeps it (`google_items`), its raw JSON in `payload`."""

    event_id: str
    ical_uid: str
    recurring_event_id: str | None
    payload: dict[str, Any]


@dataclass(frozen=True)
class Retry:
    """A record Salesforce refused, parked until `next_attempt_at` (`retries`)."""

    key: str
    owner: str
    ical_uid: str
    operation: str
    status_code: str | None
    message: str | None
    attempts: int
    next_attempt_at: dt.datetime


@dataclass(frozen=True)
class IndexEntry:
    """What ties one meeting of one user's calendar to Salesforce (the meeting index).

    `addresses`: the candidate addresses (external people who could be its Name), kept even when
    none is a Contact or Lead yet. `record_ids`: the Contacts, Leads, Opportunities and Accounts
    its Event names or relates to. `start`: the synced occurrence's start (UTC). No addresses
    and no ids: the meeting is not indexed (`index_meetings` removes it).
    """

    user: str
    ical_uid: str
    addresses: frozenset[str] = frozenset()
    record_ids: frozenset[str] = frozenset()
    start: dt.datetime | None = None

    @property
    def empty(self) -> bool:
        return not self.addresses and not self.record_ids


class Record(NamedTuple):
    """One Event as calsync just wrote it (`record_written_many`)."""

    key: str
    owner: str
    ical_uid: str
    sf_id: str
    fingerprint: str
    hashes: Mapping[str, str] | None = None  # ownership.hashes of the body sent
    kept: frozenset[str] | None = None  # the person's fields; None: as before


@dataclass(frozen=True)
class StoredDecision:
    """The last decision for one meeting of one calendar (`explain.py` fills `detail`)."""

    user: str
    ical_uid: str
    event_id: str | None
    subject: str | None
    start: dt.datetime | None
    action: str  # create, update, delete, unchanged, skip
    reason: str | None  # the rule, for delete and skip
    decided_at: dt.datetime
    detail: dict[str, Any]


@dataclass(frozen=True)
class PushChannel:
    """A notification channel calsync opened on one user's calendar (m006_push, push.py).

    `resource_id` and `expires_at` are None between the watch request and its answer (a
    channel is recorded before the request: Google's `sync` message may come first)."""

    channel_id: str
    user: str
    token: str
    address: str
    resource_id: str | None
    expires_at: dt.datetime | None
    opened_at: dt.datetime


@dataclass(frozen=True)
class Orphan:
    """An Event calsync wrote whose meeting the mirror does not know (`sweep.py`)."""

    key: str
    ical_uid: str
    sf_id: str
    event_id: str | None  # the Google id its meeting had when last planned (decisions), if known


@dataclass(frozen=True)
class PendingCreate:
    """A create whose intent was recorded but whose answer never was (crash or lost reply)."""

    key: str
    owner: str
    ical_uid: str
    intent: dict[str, Any]
    intent_at: dt.datetime  # calsync's clock
    intent_sf_at: dt.datetime | None = None  # Salesforce's clock (m009), when it was known


@dataclass(frozen=True)
class HistoryEntry:
    """One thing that happened to a record Salesforce refused: `refused` (with the attempt
    number), `dropped` (`calsync retry --drop`, with who asked) or `written` (at last)."""

    key: str
    owner: str
    ical_uid: str
    kind: str
    operation: str | None
    status_code: str | None
    message: str | None
    attempts: int | None
    at: dt.datetime
    by: str | None = None
