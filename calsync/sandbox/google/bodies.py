"""Google-shaped event bodies as the emulator keeps them: checked, completed, changed, readdressed.

`normalise()` is what Google does to the body a caller sends (organizer and attendee entries, the
organizer among the guests, response statuses, start/end forms, a readable recurrence);
`apply_changes()` is an edit, `readdressed()` a Workspace rename (users.py). Pure functions: the
domain's users are passed in.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from calsync.core.model import EventTime
from calsync.sandbox.google.domain import User
from calsync.sandbox.google.eventtime import duration, render_time, shifted, to_event_time
from calsync.sandbox.google.rrule import RuleError, slots

RESPONSE_STATUSES = frozenset({"needsAction", "declined", "tentative", "accepted"})


def normalise(
    users: dict[str, User],
    organizer: str | dict[str, Any] | None,
    body: dict[str, Any],
    previous: dict[str, Any] | None,
) -> dict[str, Any]:
    """Check and complete a Google-shaped body; raises ValueError on bad input."""
    body = copy.deepcopy(body)
    if organizer is None:
        raise ValueError("an event needs an organizer")
    person = dict(organizer) if isinstance(organizer, dict) else {"email": organizer}
    if not person.get("email") or "@" not in person["email"]:
        raise ValueError(f"bad organizer {organizer!r}")
    person["email"] = person["email"].strip()
    given = body.get("organizer") if isinstance(body.get("organizer"), dict) else {}
    if not person.get("displayName") and given.get("email", "").lower() == person[
        "email"
    ].lower() and given.get("displayName"):
        person["displayName"] = given["displayName"]
    fill_name(users, person)
    body["organizer"] = {k: v for k, v in person.items() if k in ("email", "displayName")}
    if "creator" in body:
        creator = body["creator"]
        body["creator"] = {"email": creator} if isinstance(creator, str) else dict(creator)

    if "start" not in body:
        raise ValueError("an event needs a start")
    zone_default = users.get(person["email"].lower(), User("x", None, "UTC")).time_zone
    start = to_event_time(body["start"])
    if body.get("recurrence") and start.date_time is not None and not start.time_zone:
        # Recurring events need start.timeZone, the zone the rule expands in (reference A4).
        start = EventTime(date_time=start.date_time, time_zone=zone_default)
    if body.get("end") is None:
        end = shifted(start, dt.timedelta(days=1) if start.date else dt.timedelta(hours=1))
    else:
        end = to_event_time(body["end"])
        if end.date_time is not None and start.time_zone and not end.time_zone:
            end = EventTime(date_time=end.date_time, time_zone=start.time_zone)
    if duration(start, end) < dt.timedelta(0):
        raise ValueError("end before start")
    body["start"], body["end"] = render_time(start), render_time(end)

    if body.get("recurrence"):
        if isinstance(body["recurrence"], str):
            body["recurrence"] = [body["recurrence"]]
        body["recurrence"] = [str(line) for line in body["recurrence"]]
        try:
            # Reads every line and the zone; the first slot is the start itself, so cheap.
            next(iter(slots(start, end, body["recurrence"], limit=1)), None)
        except RuleError as exc:
            raise ValueError(str(exc)) from exc

    old = {
        a["email"].lower(): a for a in (previous or {}).get("attendees") or []
    }
    attendees = []
    for raw in body.get("attendees") or []:
        attendee = {"email": raw} if isinstance(raw, str) else dict(raw)
        if not attendee.get("email") or "@" not in attendee["email"]:
            raise ValueError(f"bad attendee {raw!r}")
        attendee.pop("self", None)
        attendee.pop("organizer", None)
        if attendee["email"].lower().endswith("@resource.calendar.google.com"):
            attendee.setdefault("resource", True)  # rooms are resources (reference A5)
        status = attendee.get("responseStatus") or old.get(
            attendee["email"].lower(), {}
        ).get("responseStatus")
        if status is None:
            is_organizer = attendee["email"].lower() == person["email"].lower()
            status = "accepted" if is_organizer else "needsAction"
        if status not in RESPONSE_STATUSES:
            raise ValueError(f"bad responseStatus {status!r}")
        attendee["responseStatus"] = status
        fill_name(users, attendee)
        attendees.append(attendee)
    if attendees and person["email"].lower() not in {a["email"].lower() for a in attendees}:
        # Google lists the organizer among the guests, accepted (reference A5).
        organizer_attendee = {"email": person["email"], "responseStatus": "accepted"}
        if person.get("displayName"):
            organizer_attendee["displayName"] = person["displayName"]
        attendees.insert(0, organizer_attendee)
    if attendees:
        body["attendees"] = attendees
    else:
        body.pop("attendees", None)
    return body


def fill_name(users: dict[str, User], person: dict[str, Any]) -> None:
    """Give a person without a displayName the name of the domain user they are, if any."""
    user = users.get(person["email"].lower())
    if not person.get("displayName") and user is not None and user.display_name:
        person["displayName"] = user.display_name


def readdressed(body: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """`body` with every person entry (organizer, creator, attendees) of `old` carrying `new`."""
    def person(value: Any) -> Any:
        if isinstance(value, dict) and str(value.get("email") or "").strip().lower() == old:
            return {**value, "email": new}
        if isinstance(value, str) and value.strip().lower() == old:
            return new
        return value

    out = dict(body)
    for key in ("organizer", "creator"):
        if key in out:
            out[key] = person(out[key])
    if isinstance(out.get("attendees"), list):
        out["attendees"] = [person(a) for a in out["attendees"]]
    return out


def apply_changes(body: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`body` with `changes` applied: a key set to None removes the field; ids never change."""
    out = copy.deepcopy(body)
    for key, value in changes.items():
        if key in ("id", "iCalUID", "recurringEventId", "originalStartTime"):
            raise ValueError(f"{key} cannot change")
        if value is None:
            out.pop(key, None)
        else:
            out[key] = copy.deepcopy(value)
    return out

