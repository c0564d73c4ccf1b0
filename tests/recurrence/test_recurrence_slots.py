"""Series expansion shared by the planner and the Google emulator."""

from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo

import pytest

from calsync.core.model import EventTime
from calsync.rules.recurrence import RecurrenceError, instance_suffix, slots

BERLIN = ZoneInfo("Europe/Berlin")


def timed(y, mo, d, h):
    return EventTime(date_time=dt.datetime(y, mo, d, h, tzinfo=BERLIN), time_zone="Europe/Berlin")


def test_weekly_series_keeps_wall_clock_time_across_dst():
    got = list(slots(timed(2026, 3, 20, 16), timed(2026, 3, 20, 17), ["RRULE:FREQ=WEEKLY;COUNT=3"]))
    assert [s.date_time.hour for s, _ in got] == [16, 16, 16]
    assert [instance_suffix(s) for s, _ in got] == ["20260320T150000Z", "20260327T150000Z", "20260403T140000Z"]


def test_exdate_with_tzid_removes_a_slot():
    lines = ["RRULE:FREQ=WEEKLY;COUNT=3", "EXDATE;TZID=Europe/Berlin:20260327T160000"]
    got = [s.date_time.day for s, _ in slots(timed(2026, 3, 20, 16), timed(2026, 3, 20, 17), lines)]
    assert got == [20, 3]


def test_all_day_series_with_utc_until_is_inclusive():
    start, end = EventTime(date=dt.date(2026, 1, 5)), EventTime(date=dt.date(2026, 1, 6))
    got = list(slots(start, end, ["RRULE:FREQ=DAILY;UNTIL=20260106T000000Z"]))
    assert [(s.date, e.date) for s, e in got] == [
        (dt.date(2026, 1, 5), dt.date(2026, 1, 6)),
        (dt.date(2026, 1, 6), dt.date(2026, 1, 7)),
    ]


def test_endless_rule_is_cut_at_the_limit():
    assert len(list(slots(timed(2026, 1, 1, 9), None, ["RRULE:FREQ=SECONDLY"], limit=50))) == 50


def test_impossible_rule_is_refused_at_once():
    began = time.monotonic()
    with pytest.raises(RecurrenceError):
        list(slots(timed(2026, 1, 1, 9), None, ["RRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=31"]))
    assert time.monotonic() - began < 0.5


# Rules that pass the up-front check but never match, or never select, a slot: dateutil alone
# searches each of them to year 9999 (seconds of CPU apiece).
NEVER = [
    "RRULE:FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=-30",
    "RRULE:FREQ=DAILY;BYYEARDAY=366;BYMONTH=1",
    "RRULE:FREQ=DAILY;BYWEEKNO=53;BYMONTH=3",
    "RRULE:FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=-30",
    "RRULE:FREQ=WEEKLY;BYWEEKNO=53;BYMONTH=3",
    "RRULE:FREQ=MONTHLY;BYDAY=MO;BYSETPOS=6",
    "RRULE:FREQ=SECONDLY;BYSETPOS=2",
]


def test_rules_that_never_match_end_at_once_with_the_start_as_only_slot():
    # The master's start is always the first instance (RFC 5545 §3.3.10, reference A4); the rule
    # adds none, and finding that out is bounded.
    began = time.process_time()
    for rule in NEVER:
        got = list(slots(timed(2026, 1, 5, 9), timed(2026, 1, 5, 10), [rule]))
        assert [s for s, _ in got] == [timed(2026, 1, 5, 9)], rule
        removed = [rule, "EXDATE;TZID=Europe/Berlin:20260105T090000"]
        assert list(slots(timed(2026, 1, 5, 9), timed(2026, 1, 5, 10), removed)) == [], rule
    assert time.process_time() - began < 1.0  # all of them, twice, in CPU time


def test_a_rule_stops_at_the_horizon_even_with_every_slot_cancelled_beyond_it():
    # Only 29 February matches; slots past the five-year horizon are never searched for.
    got = list(slots(timed(2028, 2, 29, 9), None, ["RRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29"]))
    assert [s.date_time.year for s, _ in got] == [2028, 2032]


def test_bounded_rules_still_give_their_slots():
    lines = ["RRULE:FREQ=MONTHLY;BYDAY=-1FR;COUNT=4"]
    got = [s.date_time.day for s, _ in slots(timed(2026, 1, 30, 9), None, lines)]
    assert got == [30, 27, 27, 24]
    # Two slots a day up to the horizon (1,830 days on, at 09:00): no period budget cuts it.
    hourly = list(slots(timed(2026, 1, 5, 9), None, ["RRULE:FREQ=HOURLY;BYHOUR=9,15"], limit=4000))
    assert len(hourly) == 2 * 1830 + 1


@pytest.mark.parametrize("lines", [["RRULE:FREQ=NOPE"], ["RRULE:FREQ=DAILY;UNTIL=garbage"], ["EXDATE:xyz"]])
def test_unreadable_rules_raise_recurrence_error(lines):
    with pytest.raises(RecurrenceError):
        list(slots(timed(2026, 1, 1, 9), None, lines))


@pytest.mark.parametrize("year", [1, 9999])
def test_odd_start_gives_slots_or_recurrence_error_never_another_exception(year):
    start = EventTime(date_time=dt.datetime(year, 1, 1, tzinfo=dt.timezone.utc), time_zone="Europe/Berlin")
    try:
        list(slots(start, None, ["RRULE:FREQ=DAILY"], limit=10))
    except RecurrenceError:
        pass


def test_start_off_the_rule_is_the_first_slot_and_counts_toward_count():
    # 6 Jan 2026 is a Tuesday. RFC 5545 §3.8.5.3: DTSTART always counts as the first occurrence.
    got = list(slots(timed(2026, 1, 6, 10), timed(2026, 1, 6, 11), ["RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=4"]))
    assert [s.date_time.strftime("%a %d") for s, _ in got] == ["Tue 06", "Wed 07", "Mon 12", "Wed 14"]


def test_start_on_the_rule_is_not_doubled():
    got = list(slots(timed(2026, 1, 5, 10), None, ["RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=3"]))
    assert [s.date_time.day for s, _ in got] == [5, 7, 12]


def test_exdate_can_remove_a_start_that_is_off_the_rule():
    lines = ["RRULE:FREQ=WEEKLY;BYDAY=MO;UNTIL=20260120T000000Z", "EXDATE;TZID=Europe/Berlin:20260106T100000"]
    got = list(slots(timed(2026, 1, 6, 10), None, lines))
    assert [s.date_time.day for s, _ in got] == [12, 19]


def test_a_utc_until_on_the_previous_utc_day_keeps_its_last_local_slot():
    # 00:30 in Berlin on the 11th is 23:30 UTC on the 10th: UNTIL is inclusive.
    lines = ["RRULE:FREQ=DAILY;UNTIL=20260110T233000Z"]
    start = EventTime(date_time=dt.datetime(2026, 1, 9, 0, 30, tzinfo=BERLIN), time_zone="Europe/Berlin")
    assert [s.date_time.day for s, _ in slots(start, None, lines)] == [9, 10, 11]
