"""Time in the Google emulator: Google's timestamp and start/end forms, and series expansion.

Pure functions over `EventTime` (calsync.core.model): parsing what callers give (a Google dict, a
datetime, a date, an ISO string), rendering it as Google answers it, and expanding a series into
its slots with the emulator's own RRULE expander (rrule.py).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

from calsync.core.model import EventTime
from calsync.sandbox.google.rrule import RuleError, slots

# The name this logger had before the backend was split (operators and tests filter on it).
log = logging.getLogger("calsync.sandbox.google.backend")

UTC = dt.timezone.utc


def rfc3339(value: dt.datetime) -> str:
    """Google's timestamp form: UTC with milliseconds, e.g. 2026-01-05T15:00:00.000Z."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_instant(text: str) -> dt.datetime:
    """An RFC 3339 timestamp that must carry an offset (reference A1); ValueError otherwise."""
    value = dt.datetime.fromisoformat(text.strip().replace("z", "Z"))
    if value.tzinfo is None:
        raise ValueError(f"timestamp without offset: {text!r}")
    return value


def to_event_time(value: Any) -> EventTime:
    """Accept a Google start/end dict, an EventTime, a datetime, a date or an ISO string."""
    if isinstance(value, EventTime):
        return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime: give an offset or a zone")
        return EventTime(date_time=value)
    if isinstance(value, dt.date):
        return EventTime(date=value)
    if isinstance(value, str):
        if len(value.strip()) == 10:
            return EventTime(date=dt.date.fromisoformat(value.strip()))
        return EventTime(date_time=parse_instant(value))
    if isinstance(value, dict):
        zone_name = value.get("timeZone")
        if value.get("date"):
            return EventTime(date=dt.date.fromisoformat(str(value["date"])), time_zone=zone_name)
        if value.get("dateTime"):
            moment = dt.datetime.fromisoformat(str(value["dateTime"]).replace("z", "Z"))
            if moment.tzinfo is None:
                if not zone_name:
                    raise ValueError("dateTime needs an offset or a timeZone (reference A5)")
                moment = moment.replace(tzinfo=ZoneInfo(zone_name))
            elif zone_name:
                ZoneInfo(zone_name)  # refuse unknown zones early
            return EventTime(date_time=moment, time_zone=zone_name)
    raise ValueError(f"not a start/end: {value!r}")


def render_time(value: EventTime) -> dict[str, str]:
    """The Google dict for a start/end: `date`, or `dateTime` (in its zone) + `timeZone`."""
    if value.date is not None:
        return {"date": value.date.isoformat()}
    assert value.date_time is not None
    moment = value.date_time
    if value.time_zone:
        moment = moment.astimezone(ZoneInfo(value.time_zone))
    text = moment.isoformat(timespec="seconds")
    if text.endswith("+00:00"):
        text = text[:-6] + "Z"
    out = {"dateTime": text}
    if value.time_zone:
        out["timeZone"] = value.time_zone
    return out


def instant(value: EventTime, zone: dt.tzinfo) -> dt.datetime:
    """When a start/end happens; all-day dates start at midnight in the calendar's zone."""
    if value.date is not None:
        return dt.datetime.combine(value.date, dt.time(), zone)
    assert value.date_time is not None
    return value.date_time


def shifted(value: EventTime, delta: dt.timedelta) -> EventTime:
    """`value` moved by `delta`, keeping its kind (date or dateTime) and zone."""
    if value.date is not None:
        return EventTime(date=value.date + delta, time_zone=value.time_zone)
    assert value.date_time is not None
    return EventTime(date_time=value.date_time + delta, time_zone=value.time_zone)


def duration(start: EventTime, end: EventTime) -> dt.timedelta:
    """How long an event lasts; ValueError when start and end are not of the same kind."""
    if start.date is not None and end.date is not None:
        return dt.timedelta(days=(end.date - start.date).days)
    if start.date_time is not None and end.date_time is not None:
        return end.date_time - start.date_time
    raise ValueError("start and end must both be dates or both be dateTimes")


def series_zone(start: EventTime) -> dt.tzinfo:
    """The zone a series' rule expands in: its start's timeZone, else the start's offset."""
    if start.time_zone:
        return ZoneInfo(start.time_zone)
    if start.date_time is not None and start.date_time.tzinfo is not None:
        return start.date_time.tzinfo
    return UTC


def expand(
    start: EventTime,
    end: EventTime,
    recurrence: list[str],
    after: dt.datetime | None = None,
    before: dt.datetime | None = None,
) -> Iterator[tuple[EventTime, EventTime]]:
    """The series' slots by the emulator's own expander (rrule.py); none if it cannot read them."""
    try:
        yield from slots(start, end, recurrence, after=after, before=before)
    except RuleError:
        log.warning("cannot expand recurrence %r", recurrence)
