"""calsync's calendar item format, and how an item reads as a `core.model.GoogleEvent`.

An item is one event as a plain JSON object, in the shape of Google Calendar v3's Event resource
(reference A1, A3, A4): `id`, `status` ("cancelled" for a deleted event or occurrence),
`iCalUID`, `recurringEventId` and `originalStartTime` for an exception of a series, `recurrence`,
`start`/`end` (`date` or `dateTime` with `timeZone`), `organizer`, `attendees`, `summary`, ...
It is what a calendar source delivers (source.py) and what the mirror stores (engine/mirror.py
reads `id`, `iCalUID`, `recurringEventId` and `status` of stored items itself), so the reading
below is the provider-neutral one: the Google adapter passes Google's items through as they are;
another provider's adapter translates its events into this shape.

`to_google_event` never raises on odd input: a field it cannot read becomes empty.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from calsync.core.model import EventTime, GoogleEvent, Person


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def _time(value: Any) -> EventTime | None:
    if not isinstance(value, Mapping):
        return None
    zone = _text(value.get("timeZone"))
    if isinstance(value.get("date"), str):
        try:
            return EventTime(date=dt.date.fromisoformat(value["date"]), time_zone=zone)
        except ValueError:
            return None
    if isinstance(value.get("dateTime"), str):
        try:
            moment = dt.datetime.fromisoformat(value["dateTime"].replace("Z", "+00:00"))
        except ValueError:
            return None
        if moment.tzinfo is None:
            if not zone:
                return None
            try:
                from zoneinfo import ZoneInfo

                moment = moment.replace(tzinfo=ZoneInfo(zone))
            except Exception:
                return None
        return EventTime(date_time=moment, time_zone=zone)
    return None


def _person(value: Any) -> Person | None:
    if not isinstance(value, Mapping):
        return None
    return Person(
        email=_text(value.get("email")),
        display_name=_text(value.get("displayName")),
        self=value.get("self") is True,
        organizer=value.get("organizer") is True,
        resource=value.get("resource") is True,
        optional=value.get("optional") is True,
        response_status=_text(value.get("responseStatus")) or "needsAction",
    )


def to_google_event(item: Mapping[str, Any]) -> GoogleEvent:
    """Normalise one events.list item; never raises on odd input (fields become empty)."""
    attendees = item.get("attendees")
    recurrence = item.get("recurrence")
    updated = None
    if isinstance(item.get("updated"), str):
        try:
            updated = dt.datetime.fromisoformat(item["updated"].replace("Z", "+00:00"))
        except ValueError:
            updated = None
    return GoogleEvent(
        id=str(item.get("id") or ""),
        status=_text(item.get("status")) or "confirmed",
        ical_uid=_text(item.get("iCalUID")),
        summary=_text(item.get("summary")),
        description=_text(item.get("description")),
        location=_text(item.get("location")),
        start=_time(item.get("start")),
        end=_time(item.get("end")),
        end_time_unspecified=item.get("endTimeUnspecified") is True,
        organizer=_person(item.get("organizer")),
        attendees=tuple(
            p for p in (_person(a) for a in (attendees if isinstance(attendees, list) else [])) if p
        ),
        recurrence=tuple(r for r in (recurrence if isinstance(recurrence, list) else []) if isinstance(r, str)),
        recurring_event_id=_text(item.get("recurringEventId")),
        original_start=_time(item.get("originalStartTime")),
        event_type=_text(item.get("eventType")) or "default",
        visibility=_text(item.get("visibility")) or "default",
        updated=updated,
    )
