"""Expansion of Google recurrence rules (RFC 5545 RRULE/EXRULE/RDATE/EXDATE lines) into slots.

Google gives a series master `start`/`end` (the first instance's) and `recurrence` lines without
DTSTART (reference A4); slots expand in `start.timeZone` so they keep their wall-clock time across
DST changes. Used by the planner (first occurrence of a series) and by the Google emulator
(singleEvents=true), so both read a rule the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from zoneinfo import ZoneInfo

from dateutil import rrule

from calsync.model import EventTime

# A hostile rule (FREQ=SECONDLY forever) must not spin: callers never need more slots than this.
MAX_SLOTS = 5000


class RecurrenceError(ValueError):
    """The recurrence lines or the master's start cannot be expanded."""


def _zone(start: EventTime) -> dt.tzinfo | None:
    if start.time_zone:
        try:
            return ZoneInfo(start.time_zone)
        except Exception as exc:  # ZoneInfoNotFoundError, ValueError on odd names
            raise RecurrenceError(f"unknown time zone {start.time_zone!r}") from exc
    return start.date_time.tzinfo if start.date_time else None


def _dtstart(start: EventTime) -> dt.datetime:
    if start.date is not None:
        return dt.datetime.combine(start.date, dt.time())
    if start.date_time is None:
        raise RecurrenceError("series master has no start")
    zone = _zone(start)
    return start.date_time.astimezone(zone) if zone else start.date_time


def _normalise_lines(lines: Sequence[str], all_day: bool) -> str:
    kept = []
    for line in lines:
        line = line.strip()
        name = line.split(":", 1)[0].split(";", 1)[0].upper()
        if name not in {"RRULE", "EXRULE", "RDATE", "EXDATE"}:
            continue  # Google never sends DTSTART here; ignore anything else rather than fail
        if all_day:
            # All-day series are naive dates; dateutil refuses a UTC UNTIL with a naive DTSTART.
            line = line.replace("Z;", ";").rstrip("Z") if "UNTIL=" in line else line
        kept.append(line)
    return "\n".join(kept)


def slots(
    start: EventTime,
    end: EventTime | None,
    recurrence: Sequence[str],
    *,
    after: dt.datetime | None = None,
    before: dt.datetime | None = None,
    limit: int = MAX_SLOTS,
) -> Iterator[tuple[EventTime, EventTime]]:
    """Yield (start, end) of each slot of the series in order, as Google would list instances.

    `after`/`before` (aware) bound slot starts; all-day slots compare at midnight UTC.
    Raises RecurrenceError for rules dateutil cannot read.
    """
    all_day = start.date is not None
    dtstart = _dtstart(start)
    if end is not None and end.date is not None and all_day:
        length = dt.datetime.combine(end.date, dt.time()) - dtstart
    elif end is not None and end.date_time is not None and not all_day:
        length = end.date_time - start.date_time  # type: ignore[operator]
    else:
        length = dt.timedelta(days=1) if all_day else dt.timedelta(0)
    text = _normalise_lines(recurrence, all_day)
    if not text:
        candidates: Iterator[dt.datetime] = iter([dtstart])
    else:
        try:
            rules = rrule.rrulestr(text, dtstart=dtstart, forceset=True, unfold=True)
        except Exception as exc:  # dateutil raises ValueError/TypeError/KeyError on bad input
            raise RecurrenceError(f"cannot read recurrence {text!r}: {exc}") from exc
        candidates = iter(rules)
    count = 0
    while count < limit:
        try:
            slot = next(candidates)
        except StopIteration:
            return
        except Exception as exc:
            raise RecurrenceError(f"cannot expand recurrence: {exc}") from exc
        count += 1
        if all_day:
            instant = slot.replace(tzinfo=dt.timezone.utc)
        else:
            instant = slot
        if after is not None and instant < after:
            continue
        if before is not None and instant >= before:
            return
        if all_day:
            yield EventTime(date=slot.date()), EventTime(date=(slot + length).date())
        else:
            yield (
                EventTime(date_time=slot, time_zone=start.time_zone),
                EventTime(date_time=slot + length, time_zone=start.time_zone),
            )


def instance_suffix(slot_start: EventTime) -> str:
    """The `<masterId>_<suffix>` Google uses for instance ids (reference A4, observed)."""
    if slot_start.date is not None:
        return slot_start.date.strftime("%Y%m%d")
    assert slot_start.date_time is not None
    return slot_start.date_time.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def same_slot(a: EventTime, b: EventTime) -> bool:
    """Whether two originalStartTime values name the same slot (compared as instants)."""
    if a.date is not None or b.date is not None:
        return a.date == b.date
    if a.date_time is None or b.date_time is None:
        return False
    return a.date_time == b.date_time
