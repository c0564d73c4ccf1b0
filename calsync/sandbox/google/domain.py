"""The emulated Workspace domain's data: users, meetings, each user's calendar of stored items.

One `Domain` object is shared by every concern of the backend (users.py, copies.py, events.py,
listing.py): each reads and changes this data under its one lock, rather than reaching into the
other concerns. A `Meeting` is the organizer's truth; a `StoredItem` is one copy of it (or of one
of its occurrences) in one calendar, as events.list sees it (copies.py renders them).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from calsync.core.model import EventTime


@dataclass(frozen=True)
class User:
    """A user of the emulated Workspace domain; owns the calendar named by `email`."""

    email: str
    display_name: str | None = None
    time_zone: str = "UTC"


@dataclass
class Occurrence:
    """An exception of a series: a modified (`changes`) or cancelled occurrence (reference A4)."""

    original_start: EventTime
    changes: dict[str, Any]
    cancelled: bool = False


@dataclass
class Meeting:
    """The organizer's truth for one event or series; copies are rendered from it."""

    id: str
    ical_uid: str
    body: dict[str, Any]  # normalised Google-shaped fields of the event / series master
    created: dt.datetime
    sequence: int = 0
    exceptions: dict[str, Occurrence] = field(default_factory=dict)  # by instance id
    copy_fields: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-copy overrides
    deleted: bool = False
    placed: dict[str, set[str]] = field(default_factory=dict)  # calendar -> item ids


@dataclass
class StoredItem:
    """One item of one calendar as events.list sees it."""

    id: str
    meeting_id: str
    ical_uid: str
    content: dict[str, Any]  # the rendered resource without etag/updated
    seq: int  # change number; incremental sync returns items above the token's
    updated: dt.datetime
    deleted: bool = False

    @property
    def etag(self) -> str:
        return f'"{int(self.updated.timestamp() * 1000)}{self.seq % 1000000:06d}"'


@dataclass
class Calendar:
    owner: str
    created: dt.datetime
    items: dict[str, StoredItem] = field(default_factory=dict)


@dataclass(eq=False)  # one shared object: identity, not value, equality
class Domain:
    """Users, meetings and calendars, the change counter and the lock that guards them all.

    `clock` is read on every use: tests replace it (through `GoogleBackend.clock`) mid-run.
    """

    clock: Callable[[], dt.datetime]
    users: dict[str, User] = field(default_factory=dict)
    meetings: dict[str, Meeting] = field(default_factory=dict)
    calendars: dict[str, Calendar] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    seq: int = 0  # the last change number given to a stored item

    def now(self) -> dt.datetime:
        return self.clock()

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def calendar(self, user: str) -> Calendar:
        calendar = self.calendars.get(user.strip().lower())
        if calendar is None:
            raise KeyError(f"no calendar {user!r}")
        return calendar

    def live_meeting(self, event_id: str) -> Meeting:
        meeting = self.meetings.get(event_id)
        if meeting is None:
            raise KeyError(f"no event {event_id!r}")
        if meeting.deleted:
            raise ValueError(f"event {event_id!r} is deleted")
        return meeting
