"""calsync's expansion (recurrence.py, via dateutil) against the emulator's own (rrule.py).

The emulator's expander is checked on its own against hand-computed instances
(tests/sandbox/google/test_google_rrule.py); here both read the same rules and must give the
same first slots, start and end compared as instants (dates for all-day series). The cases
include every disagreement found so far (a start off the rule, RDATE with TZID, instances across
a DST change, a floating EXDATE on a zoned series), each fixed on calsync's side.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterator
from zoneinfo import ZoneInfo

import pytest

from calsync.rules import recurrence
from calsync.core.model import EventTime
from calsync.sandbox.google import rrule

FIRST = 40  # slots compared per rule
BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"

Slots = Callable[..., Iterator[tuple[EventTime, EventTime]]]


def timed(text: str, zone: str = BERLIN, minutes: int = 60) -> tuple[EventTime, EventTime]:
    begin = dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone))
    end = begin + dt.timedelta(minutes=minutes)
    return EventTime(date_time=begin, time_zone=zone), EventTime(date_time=end, time_zone=zone)


def all_day(text: str, days: int = 1) -> tuple[EventTime, EventTime]:
    begin = dt.date.fromisoformat(text)
    return EventTime(date=begin), EventTime(date=begin + dt.timedelta(days=days))


def _point(value: EventTime) -> str:
    if value.date is not None:
        return value.date.isoformat()
    assert value.date_time is not None
    return value.date_time.astimezone(dt.timezone.utc).isoformat()


def _first(slots: Slots, series: tuple[EventTime, EventTime], lines: list[str]) -> list[tuple]:
    start, end = series
    return [(_point(s), _point(e)) for s, e in itertools.islice(slots(start, end, lines), FIRST)]


CASES = [
    pytest.param(timed("2026-03-02T16:00"), ["RRULE:FREQ=WEEKLY;COUNT=40"], id="weekly-dst"),
    pytest.param(timed("2026-03-01T09:00", NEW_YORK), ["RRULE:FREQ=DAILY"], id="daily-new-york"),
    pytest.param(timed("2026-01-30T10:00"), ["RRULE:FREQ=MONTHLY;BYDAY=-1FR"], id="last-friday"),
    pytest.param(timed("2026-01-13T10:00"), ["RRULE:FREQ=MONTHLY;BYDAY=2TU,-2TH"], id="nth-days"),
    pytest.param(timed("2026-01-31T10:00"), ["RRULE:FREQ=MONTHLY;BYMONTHDAY=31"], id="the-31st"),
    pytest.param(all_day("2026-01-31"), ["RRULE:FREQ=MONTHLY;BYMONTHDAY=-1"], id="last-day"),
    pytest.param(all_day("2024-02-29"), ["RRULE:FREQ=YEARLY"], id="feb-29"),
    pytest.param(
        all_day("2026-01-30"), ["RRULE:FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1"],
        id="last-workday",
    ),
    pytest.param(
        timed("1997-08-05T09:00", NEW_YORK),
        ["RRULE:FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=SU"], id="wkst",
    ),
    pytest.param(
        timed("2026-12-28T09:00"), ["RRULE:FREQ=YEARLY;BYWEEKNO=1,53"], id="byweekno-edges"
    ),
    pytest.param(
        all_day("1997-01-01"), ["RRULE:FREQ=YEARLY;INTERVAL=3;BYYEARDAY=1,100,200,-1"],
        id="byyearday",
    ),
    pytest.param(all_day("2026-10-25"), ["RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU"], id="-1SU"),
    pytest.param(timed("2026-01-13T10:00"), ["RRULE:FREQ=YEARLY;BYMONTH=1,7"], id="bymonth"),
    pytest.param(
        timed("2026-01-13T10:00"), ["RRULE:FREQ=WEEKLY;BYDAY=TU,TH;BYHOUR=10,14"], id="byhour"
    ),
    pytest.param(
        timed("1997-09-02T09:00", NEW_YORK),
        ["RRULE:FREQ=MINUTELY;INTERVAL=20;BYHOUR=9,10,11,12,13,14,15,16"], id="minutely",
    ),
    pytest.param(
        timed("2026-01-05T16:00"),
        ["RRULE:FREQ=WEEKLY;COUNT=6",
         "EXDATE;TZID=America/New_York:20260112T100000,20260126T100000"],
        id="exdate-tzid",
    ),
    pytest.param(
        all_day("2026-01-05"), ["RRULE:FREQ=DAILY;COUNT=6", "EXDATE;VALUE=DATE:20260106,20260108"],
        id="exdate-date",
    ),
    pytest.param(
        all_day("2026-01-05"), ["RRULE:FREQ=WEEKLY;BYDAY=MO,TH;UNTIL=20260129"],
        id="all-day-until-date",
    ),
    pytest.param(
        all_day("2026-01-05"), ["RRULE:FREQ=DAILY;UNTIL=20260110T000000Z"], id="all-day-until-utc"
    ),
    pytest.param(
        timed("2026-01-05T16:00"), ["RRULE:FREQ=DAILY;UNTIL=20260110T150000Z"], id="until-utc"
    ),
    pytest.param(
        timed("2026-01-05T16:00"), ["RRULE:FREQ=WEEKLY;COUNT=3", "RDATE:20260107T110000Z"],
        id="rdate-utc",
    ),
    pytest.param(
        timed("2026-01-06T10:00"), ["RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=4"],
        id="start-off-byday",
    ),
    pytest.param(
        timed("2026-01-13T10:00"), ["RRULE:FREQ=MONTHLY;INTERVAL=5;BYMONTHDAY=1,-1"],
        id="start-off-bymonthday",
    ),
    pytest.param(
        timed("2026-01-05T16:00"),
        ["RRULE:FREQ=WEEKLY;COUNT=3", "RDATE;TZID=Europe/Berlin:20260107T120000"],
        id="rdate-tzid",
    ),
    pytest.param(
        timed("2026-03-22T02:30"), ["RRULE:FREQ=WEEKLY;COUNT=3"], id="spring-gap",
    ),
    pytest.param(
        timed("2026-10-24T02:30"), ["RRULE:FREQ=DAILY;COUNT=3"], id="autumn-repeat",
    ),
    pytest.param(
        timed("2026-01-05T16:00"),
        ["RRULE:FREQ=WEEKLY;COUNT=3", "EXDATE:20260112T160000"],
        id="floating-exdate",
    ),
]


@pytest.mark.parametrize("series, lines", CASES)
def test_calsync_expands_like_the_emulator(
    series: tuple[EventTime, EventTime], lines: list[str]
) -> None:
    emulator = _first(rrule.slots, series, lines)
    assert emulator  # the start is always a slot
    assert _first(recurrence.slots, series, lines) == emulator
