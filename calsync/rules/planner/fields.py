"""The values calsync writes on one Salesforce Event, from the occurrence it syncs.

`timing()` turns a Google start/end into UTC instants and a duration (used both for the fields
and for the 14-day and lookback rules); `event_fields()` builds the `EventFields` whose
`fingerprint()` tells the planner whether an Event needs an Update.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from calsync.rules import sftext
from calsync.core.model import EventFields, EventTime, GoogleEvent, PlanSettings

UTC = dt.timezone.utc

# Field lengths of the Salesforce Event object (reference B3, C7), in UTF-16 code units (B10).
SUBJECT_MAX = 255
LOCATION_MAX = 255
DESCRIPTION_MAX = 32_000

NO_TITLE = "(No title)"
# calsync's choice for private meetings it syncs: keep the links, withhold the content (C7).
PRIVATE_SUBJECT = "Private meeting"

MINUTES_PER_DAY = 1440


@dataclass(frozen=True)
class Timing:
    """Where an occurrence sits in time, as Salesforce will see it (all instants UTC)."""

    start: dt.datetime
    end: dt.datetime
    is_all_day: bool
    activity_date: dt.date | None
    duration_minutes: int
    length: dt.timedelta  # the span Google gave (timed: end - start, before rounding to minutes)


class UnreadableTime(ValueError):
    """The occurrence's start or end cannot be placed in time (missing, or out of range)."""


def utc(value: dt.datetime) -> dt.datetime:
    """The instant in UTC; a naive value (which Google never sends) is taken as UTC."""
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def instant(value: EventTime | None) -> dt.datetime | None:
    """A Google start/end as a UTC instant (all-day: midnight UTC), None if it has none or it
    is out of range."""
    if value is None:
        return None
    try:
        if value.date is not None:
            return dt.datetime.combine(value.date, dt.time(), tzinfo=UTC)
        if value.date_time is not None:
            return utc(value.date_time)
    except (OverflowError, ValueError):
        return None
    return None


def timing(occurrence: GoogleEvent) -> Timing:
    """The occurrence's UTC start/end and duration; raises UnreadableTime when it has none."""
    try:
        return _timing(occurrence)
    except UnreadableTime:
        raise
    except (OverflowError, ValueError, TypeError) as exc:  # dates at the edge of the calendar
        raise UnreadableTime("unreadable start or end") from exc


def _timing(occurrence: GoogleEvent) -> Timing:
    start_time = occurrence.start
    end_time = None if occurrence.end_time_unspecified else occurrence.end
    if start_time is None:
        raise UnreadableTime("no start")
    if start_time.date is not None:
        # Google's all-day end.date is exclusive (reference A5, C6): 5 Jan → 6 Jan is one day.
        days = 1
        if end_time is not None and end_time.date is not None:
            days = max((end_time.date - start_time.date).days, 1)
        start = dt.datetime.combine(start_time.date, dt.time(), tzinfo=UTC)
        length = dt.timedelta(days=days)
        return Timing(
            start=start,
            end=start + length,
            is_all_day=True,
            activity_date=start_time.date,
            duration_minutes=MINUTES_PER_DAY * days,
            length=length,
        )
    if start_time.date_time is None:
        raise UnreadableTime("no start")
    start = utc(start_time.date_time)
    # endTimeUnspecified: ignore `end` (reference A5); a missing or all-day end counts the same.
    raw_end = start
    if end_time is not None and end_time.date_time is not None:
        raw_end = utc(end_time.date_time)
    length = max(raw_end - start, dt.timedelta(0))
    minutes = int(length.total_seconds() // 60)
    return Timing(
        start=start,
        # Salesforce takes EndDateTime and DurationInMinutes only if consistent (reference B3),
        # so the end is the start plus the whole minutes written.
        end=start + dt.timedelta(minutes=minutes),
        is_all_day=False,
        activity_date=None,
        duration_minutes=minutes,
        length=length,
    )


# C0 control characters other than tab and newline: an invitation from anyone can carry NUL,
# BEL or ESC, which have no place in a Salesforce text field.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f]")


def _clean(text: str) -> str:
    return _CONTROLS.sub("", text)


def _cut(text: str | None, limit: int) -> str | None:
    """Location or Description as Salesforce stores it (sftext.stored: trimmed, within `limit`
    UTF-16 code units), None when nothing but whitespace is left."""
    text = _clean(text) if text is not None else None
    if text is None or not text.strip():
        return None
    return sftext.stored(text, limit)


def subject(summary: str | None) -> str:
    """The summary without control characters (a newline becomes a space) and surrounding
    whitespace, or "(No title)" when it is empty; cut to Salesforce's 255 UTF-16 code units."""
    summary = _clean(summary).replace("\n", " ") if summary is not None else None
    if summary is None or not summary.strip():
        return NO_TITLE
    # Cut, then stripped again: a cut may end on a space, which Salesforce would trim (B10).
    return sftext.cut(summary.strip(), SUBJECT_MAX).strip() or NO_TITLE


def event_fields(
    occurrence: GoogleEvent,
    when: Timing,
    *,
    owner_id: str,
    who_id: str | None,
    what_id: str | None,
    private: bool,
    settings: PlanSettings,
    who_ids: tuple[str, ...] = (),
    time_zone: str | None = None,
) -> EventFields:
    """The Event calsync wants for this occurrence.

    `private`: the meeting is private/confidential and `private_events = "sync"`: keep the Who and
    What links but withhold subject, description and location; IsPrivate stays false because a
    private Event cannot be linked to Contacts, Leads, Opportunities or Accounts (reference B3, C7).
    `time_zone`: the calendar's zone; an all-day meeting's activity Date/Time is its midnight there.
    """
    return EventFields(
        owner_id=owner_id,
        subject=PRIVATE_SUBJECT if private else subject(occurrence.summary),
        start=when.start,
        end=when.end,
        is_all_day=when.is_all_day,
        activity_date=when.activity_date,
        duration_minutes=when.duration_minutes,
        location=None if private else _cut(occurrence.location, LOCATION_MAX),
        description=None if private else _cut(occurrence.description, DESCRIPTION_MAX),
        who_id=who_id,
        what_id=what_id,
        is_private=False,
        event_type="Meeting",
        show_as="Busy",
        activity_datetime_field=settings.activity_datetime_field,
        who_ids=who_ids,
        activity_at=local_midnight(when.activity_date, time_zone) if when.is_all_day else None,
    )


def local_midnight(day: dt.date | None, time_zone: str | None) -> dt.datetime | None:
    """Midnight starting `day` in `time_zone`, as a UTC instant (None: midnight UTC is used).

    An all-day meeting has a date, not an instant (reference A5); the instant a person means by
    "that day" is its start in their calendar's zone, not in UTC.
    """
    if day is None or not time_zone:
        return None
    try:
        zone = ZoneInfo(time_zone)
    except Exception:  # ZoneInfoNotFoundError, ValueError, OSError on hostile names
        return None  # an unknown zone name from the listing: midnight UTC as before
    return dt.datetime.combine(day, dt.time(), tzinfo=zone).astimezone(UTC)
