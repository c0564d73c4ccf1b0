"""The Event resource as Google answers it: field order, defaults omitted, per-copy flags, etags.

`render_copy()` renders one copy of a meeting (or of one occurrence) for one calendar owner, as
copies.py stores it (without etag/updated); `render_item()` and `stub()` turn a stored item into
what events.list and events.get answer (reference A3, A5). Pure functions over domain.py's data.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

from calsync.core.model import EventTime
from calsync.sandbox.google.domain import Meeting, StoredItem
from calsync.sandbox.google.eventtime import render_time, rfc3339

# Body keys the renderer places itself; anything else in a body is passed through as is.
_KNOWN_KEYS = frozenset(
    {
        "kind", "id", "iCalUID", "status", "htmlLink", "created", "updated", "etag", "summary",
        "description", "location", "colorId", "creator", "organizer", "start", "end",
        "endTimeUnspecified", "recurrence", "recurringEventId", "originalStartTime",
        "transparency", "visibility", "sequence", "attendees", "attendeesOmitted", "reminders",
        "eventType",
    }
)


def is_master(content: dict[str, Any]) -> bool:
    """A series master: the copy that carries `recurrence`."""
    return bool(content.get("recurrence"))


def is_cancelled_exception(content: dict[str, Any]) -> bool:
    """A cancelled occurrence of a series (an exception item with status cancelled)."""
    return content.get("status") == "cancelled" and "recurringEventId" in content


def html_link(event_id: str, calendar: str | None) -> str:
    eid = base64.urlsafe_b64encode(f"{event_id} {calendar or ''}".strip().encode()).decode()
    return "https://www.google.com/calendar/event?eid=" + eid.rstrip("=")


def render_copy(
    meeting: Meeting,
    owner: str | None,
    body: dict[str, Any],
    item_id: str,
    original_start: EventTime | None,
) -> dict[str, Any]:
    """One copy of an event in Google's field order (reference A5); no etag/updated."""
    content: dict[str, Any] = {
        "kind": "calendar#event",
        "id": item_id,
        "status": body.get("status") or "confirmed",
        "htmlLink": html_link(item_id, owner),
        "created": rfc3339(meeting.created),
    }
    for key in ("summary", "description", "location", "colorId"):
        if body.get(key) is not None:
            content[key] = body[key]
    content["creator"] = _person(body.get("creator") or body["organizer"], owner)
    content["organizer"] = _person(body["organizer"], owner)
    content["start"] = copy.deepcopy(body["start"])
    content["end"] = copy.deepcopy(body["end"])
    if body.get("endTimeUnspecified"):
        content["endTimeUnspecified"] = True
    if original_start is None and body.get("recurrence"):
        content["recurrence"] = list(body["recurrence"])
    if original_start is not None:
        content["recurringEventId"] = meeting.id
        content["originalStartTime"] = render_time(original_start)
    # Google omits the defaults `opaque` and `default` (reference A5).
    if body.get("transparency") not in (None, "opaque"):
        content["transparency"] = body["transparency"]
    if body.get("visibility") not in (None, "default"):
        content["visibility"] = body["visibility"]
    content["iCalUID"] = meeting.ical_uid
    content["sequence"] = meeting.sequence
    attendees = _attendees(body, owner)
    if attendees:
        content["attendees"] = attendees
    for key, value in body.items():
        if key not in _KNOWN_KEYS:
            content[key] = copy.deepcopy(value)
    content["reminders"] = copy.deepcopy(body.get("reminders") or {"useDefault": True})
    content["eventType"] = body.get("eventType") or "default"
    if owner is not None:
        for key, value in meeting.copy_fields.get(owner, {}).items():
            if value is None:
                content.pop(key, None)
            else:
                content[key] = copy.deepcopy(value)
    return content


def _person(person: dict[str, Any], owner: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"email": person["email"]}
    name = person.get("displayName")
    if name:
        out["displayName"] = name
    if owner is not None and person["email"].lower() == owner:
        out["self"] = True
    return out


def _attendees(body: dict[str, Any], owner: str | None) -> list[dict[str, Any]]:
    organizer = body["organizer"]["email"].lower()
    out = []
    for attendee in body.get("attendees") or []:
        email = attendee["email"]
        item: dict[str, Any] = {"email": email}
        if attendee.get("displayName"):
            item["displayName"] = attendee["displayName"]
        # False booleans are omitted, as Google does (reference A5).
        if email.lower() == organizer:
            item["organizer"] = True
        if owner is not None and email.lower() == owner:
            item["self"] = True
        if attendee.get("resource"):
            item["resource"] = True
        if attendee.get("optional"):
            item["optional"] = True
        item["responseStatus"] = attendee.get("responseStatus") or "needsAction"
        if attendee.get("comment"):
            item["comment"] = attendee["comment"]
        if attendee.get("additionalGuests"):
            item["additionalGuests"] = attendee["additionalGuests"]
        out.append(item)
    return out


def with_meta(
    item: StoredItem, content: dict[str, Any], max_attendees: int | None = None
) -> dict[str, Any]:
    """Insert etag and updated where Google puts them; apply maxAttendees (reference A1)."""
    out: dict[str, Any] = {"kind": "calendar#event", "etag": item.etag}
    for key, value in content.items():
        if key == "kind":
            continue
        if key == "attendees" and max_attendees is not None and len(value) > max_attendees:
            out["attendees"] = [copy.deepcopy(a) for a in value if a.get("self")]
            out["attendeesOmitted"] = True
            continue
        out[key] = copy.deepcopy(value)
        if key == "created":
            out["updated"] = rfc3339(item.updated)
    return out


def render_item(item: StoredItem, max_attendees: int | None) -> dict[str, Any]:
    """A stored copy as events.list/events.get answer it."""
    if is_cancelled_exception(item.content):
        # Cancelled occurrence: kind, etag, id, status, recurringEventId, originalStartTime (A3).
        return {"kind": "calendar#event", "etag": item.etag, **{
            k: copy.deepcopy(v) for k, v in item.content.items() if k != "kind"
        }}
    return with_meta(item, item.content, max_attendees)


def stub(item: StoredItem) -> dict[str, Any]:
    """A deleted event: only kind, etag, id, status (reference A3)."""
    return {"kind": "calendar#event", "etag": item.etag, "id": item.id, "status": "cancelled"}
