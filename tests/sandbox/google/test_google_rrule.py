"""The emulator's own RFC 5545 expander (calsync/sandbox/google/rrule.py), as plain Python.

Every expected slot below is written out by hand: from the calendar (1 Jan 2026 is a Thursday),
the DST dates (Europe/Berlin 29 Mar and 25 Oct 2026, America/New_York 8 Mar and 1 Nov 2026) or
the worked examples of RFC 5545 §3.8.5.3, never from another expander.
"""

from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo

import pytest

from calsync.core.model import EventTime
from calsync.sandbox.google.rrule import (
    MAX_SLOTS,
    RuleError,
    instance_suffix,
    parse,
    parse_rule,
    slots,
)

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"


def timed(text: str, zone: str = BERLIN) -> EventTime:
    """An EventTime at local wall-clock `text` (ISO, no offset) in `zone`."""
    return EventTime(
        date_time=dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)), time_zone=zone
    )


def day(text: str) -> EventTime:
    return EventTime(date=dt.date.fromisoformat(text))


def starts(start: EventTime, lines: list[str], end: EventTime | None = None, **kw) -> list[str]:
    """Slot starts as Google renders them: local ISO with offset, or the date."""
    out = []
    for slot, _ in slots(start, end, lines, **kw):
        out.append(slot.date.isoformat() if slot.date else slot.date_time.isoformat())
    return out


def ids(start: EventTime, lines: list[str], **kw) -> list[str]:
    return [instance_suffix(slot) for slot, _ in slots(start, None, lines, **kw)]


# -- DTSTART and COUNT ----------------------------------------------------------------------


def test_start_off_the_byday_days_is_still_the_first_of_count() -> None:
    # Tue 6 Jan; RFC 5545 §3.3.10: "The DTSTART property value always counts as the first
    # occurrence", so COUNT=4 is Tue 6, then the rule's Wed 7, Mon 12, Wed 14.
    assert starts(timed("2026-01-06T10:00"), ["RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=4"]) == [
        "2026-01-06T10:00:00+01:00",
        "2026-01-07T10:00:00+01:00",
        "2026-01-12T10:00:00+01:00",
        "2026-01-14T10:00:00+01:00",
    ]


def test_start_off_the_bymonthday_is_the_first_slot_of_an_endless_rule() -> None:
    before = dt.datetime(2026, 4, 1, tzinfo=dt.timezone.utc)
    got = starts(timed("2026-01-10T09:00"), ["RRULE:FREQ=MONTHLY;BYMONTHDAY=15"], before=before)
    assert got == [
        "2026-01-10T09:00:00+01:00",
        "2026-01-15T09:00:00+01:00",
        "2026-02-15T09:00:00+01:00",
        "2026-03-15T09:00:00+01:00",
    ]


def test_count_counts_slots_before_exdate_removes_them() -> None:
    lines = ["RRULE:FREQ=DAILY;COUNT=3", "EXDATE;TZID=Europe/Berlin:20260106T090000"]
    assert ids(timed("2026-01-05T09:00"), lines) == ["20260105T080000Z", "20260107T080000Z"]


def test_rdate_comes_on_top_of_count_and_a_duplicate_rdate_is_one_slot() -> None:
    lines = ["RRULE:FREQ=DAILY;COUNT=2", "RDATE:20260106T080000Z,20260110T080000Z"]
    assert ids(timed("2026-01-05T09:00"), lines) == [
        "20260105T080000Z", "20260106T080000Z", "20260110T080000Z"
    ]


def test_exdate_can_remove_the_start_itself() -> None:
    lines = ["RRULE:FREQ=DAILY;COUNT=3", "EXDATE:20260105T080000Z"]
    assert ids(timed("2026-01-05T09:00"), lines) == ["20260106T080000Z", "20260107T080000Z"]


def test_count_of_one_is_the_start_alone() -> None:
    assert ids(timed("2026-01-05T09:00"), ["RRULE:FREQ=DAILY;COUNT=1"]) == ["20260105T080000Z"]


def test_no_rule_at_all_is_the_start_plus_rdates() -> None:
    lines = ["RDATE;TZID=America/New_York:20260107T030000"]  # 03:00 EST = 08:00Z = 09:00 CET
    assert starts(timed("2026-01-05T09:00"), lines) == [
        "2026-01-05T09:00:00+01:00", "2026-01-07T09:00:00+01:00"
    ]


def test_two_rrules_are_a_union() -> None:
    lines = ["RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=2", "RRULE:FREQ=WEEKLY;BYDAY=FR;COUNT=2"]
    # Mon 5 Jan is the start of both; the second rule's two slots are Mon 5 and Fri 9.
    assert ids(timed("2026-01-05T09:00"), lines) == [
        "20260105T080000Z", "20260109T080000Z", "20260112T080000Z"
    ]


def test_exrule_is_ignored_without_error() -> None:
    lines = ["RRULE:FREQ=DAILY;COUNT=3", "EXRULE:FREQ=DAILY;BYDAY=TU", "EXRULE:nonsense"]
    assert len(ids(timed("2026-01-05T09:00"), lines)) == 3


# -- UNTIL -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "until, last",
    [
        ("20260107T080000Z", "20260107T080000Z"),  # the last slot's own instant: inclusive
        ("20260107T075959Z", "20260106T080000Z"),
        ("20260107T090000", "20260107T080000Z"),  # floating: 09:00 Berlin
        ("20260107", "20260107T080000Z"),  # a DATE on a timed series: the whole local day
    ],
)
def test_until_is_inclusive_in_each_form(until: str, last: str) -> None:
    got = ids(timed("2026-01-05T09:00"), [f"RRULE:FREQ=DAILY;UNTIL={until}"])
    assert got[-1] == last and got[0] == "20260105T080000Z"


def test_start_after_until_is_still_an_instance() -> None:
    got = ids(timed("2026-01-05T09:00"), ["RRULE:FREQ=DAILY;UNTIL=20260101T000000Z"])
    assert got == ["20260105T080000Z"]


def test_all_day_until_date_and_utc_date_time_are_inclusive_dates() -> None:
    assert starts(day("2026-01-05"), ["RRULE:FREQ=DAILY;UNTIL=20260107"]) == [
        "2026-01-05", "2026-01-06", "2026-01-07"
    ]
    assert starts(day("2026-01-05"), ["RRULE:FREQ=DAILY;UNTIL=20260106T000000Z"]) == [
        "2026-01-05", "2026-01-06"
    ]


def test_all_day_slots_keep_the_masters_length_in_days() -> None:
    got = list(slots(day("2026-01-05"), day("2026-01-07"), ["RRULE:FREQ=WEEKLY;COUNT=2"]))
    assert [(s.date, e.date) for s, e in got] == [
        (dt.date(2026, 1, 5), dt.date(2026, 1, 7)),
        (dt.date(2026, 1, 12), dt.date(2026, 1, 14)),
    ]


def test_all_day_exdate_and_rdate_as_dates() -> None:
    lines = ["RRULE:FREQ=DAILY;COUNT=3", "EXDATE;VALUE=DATE:20260106", "RDATE;VALUE=DATE:20260110"]
    assert starts(day("2026-01-05"), lines) == ["2026-01-05", "2026-01-07", "2026-01-10"]


# -- time zones and DST ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "start, zone, expected",
    [
        ("2026-03-23T16:00", BERLIN, ["20260323T150000Z", "20260330T140000Z"]),
        ("2026-10-19T16:00", BERLIN, ["20261019T140000Z", "20261026T150000Z"]),
        ("2026-03-02T09:00", NEW_YORK, ["20260302T140000Z", "20260309T130000Z"]),
        ("2026-10-26T09:00", NEW_YORK, ["20261026T130000Z", "20261102T140000Z"]),
    ],
)
def test_weekly_keeps_wall_clock_time_across_dst_changes(
    start: str, zone: str, expected: list[str]
) -> None:
    got = list(slots(timed(start, zone), None, ["RRULE:FREQ=WEEKLY;COUNT=2"]))
    assert [instance_suffix(s) for s, _ in got] == expected
    assert {s.date_time.strftime("%H:%M") for s, _ in got} == {start[-5:]}


def test_spring_gap_time_moves_forward_by_the_gap() -> None:
    # 02:30 does not exist on 29 Mar in Berlin: the offset before the gap (+01:00) gives 01:30Z,
    # shown as 03:30 summer time (RFC 5545 §3.3.5).
    assert starts(timed("2026-03-22T02:30"), ["RRULE:FREQ=WEEKLY;COUNT=3"]) == [
        "2026-03-22T02:30:00+01:00",
        "2026-03-29T03:30:00+02:00",
        "2026-04-05T02:30:00+02:00",
    ]


def test_ambiguous_autumn_time_is_its_first_occurrence() -> None:
    # 02:30 happens twice on 25 Oct in Berlin; the first is summer time (00:30Z).
    assert ids(timed("2026-10-24T02:30"), ["RRULE:FREQ=DAILY;COUNT=3"]) == [
        "20261024T003000Z", "20261025T003000Z", "20261026T013000Z"
    ]


def test_slots_last_exactly_as_long_as_the_master_across_a_change() -> None:
    # 2 hours from 01:00 on 29 Mar: 00:00Z to 02:00Z, which is 04:00 summer time (§3.8.5.3).
    got = list(slots(timed("2026-03-28T01:00"), timed("2026-03-28T03:00"),
                     ["RRULE:FREQ=DAILY;COUNT=2"]))
    assert got[1][1].date_time.isoformat() == "2026-03-29T04:00:00+02:00"
    assert got[1][1].time_zone == BERLIN


def test_exdate_in_another_zone_removes_the_same_instant() -> None:
    # 10:00 New York (EST, -05:00) on 12 Jan is 16:00 Berlin.
    lines = ["RRULE:FREQ=WEEKLY;COUNT=3", 'EXDATE;TZID="America/New_York":20260112T100000']
    assert ids(timed("2026-01-05T16:00"), lines) == ["20260105T150000Z", "20260119T150000Z"]


def test_exdate_date_on_a_timed_series_removes_that_local_day() -> None:
    lines = ["RRULE:FREQ=DAILY;COUNT=3", "EXDATE;VALUE=DATE:20260106"]
    assert ids(timed("2026-01-05T09:00"), lines) == ["20260105T080000Z", "20260107T080000Z"]


def test_rdate_period_counts_by_its_start() -> None:
    lines = ["RRULE:FREQ=DAILY;COUNT=1", "RDATE;VALUE=PERIOD:20260109T120000Z/PT1H"]
    assert ids(timed("2026-01-05T09:00"), lines) == ["20260105T080000Z", "20260109T120000Z"]


# -- BYxxx parts (examples of RFC 5545 §3.8.5.3 where they exist) ----------------------------


def test_monthly_last_friday() -> None:
    assert starts(timed("2026-01-30T10:00"), ["RRULE:FREQ=MONTHLY;BYDAY=-1FR;COUNT=4"]) == [
        "2026-01-30T10:00:00+01:00",
        "2026-02-27T10:00:00+01:00",
        "2026-03-27T10:00:00+01:00",
        "2026-04-24T10:00:00+02:00",
    ]


def test_monthly_on_the_31st_skips_shorter_months() -> None:
    assert starts(day("2026-01-31"), ["RRULE:FREQ=MONTHLY;BYMONTHDAY=31;COUNT=4"]) == [
        "2026-01-31", "2026-03-31", "2026-05-31", "2026-07-31"
    ]


def test_monthly_last_day_counts_from_the_end() -> None:
    assert starts(day("2026-01-31"), ["RRULE:FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=4"]) == [
        "2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30"
    ]


def test_bysetpos_last_workday_of_the_month() -> None:
    rule = "RRULE:FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;COUNT=4"
    assert starts(day("2026-01-30"), [rule]) == [
        "2026-01-30", "2026-02-27", "2026-03-31", "2026-04-30"
    ]


def test_yearly_feb_29_lands_on_leap_years_only() -> None:
    assert starts(day("2024-02-29"), ["RRULE:FREQ=YEARLY;COUNT=2"]) == [
        "2024-02-29", "2028-02-29"
    ]


def test_yearly_ordinal_weekday_counts_in_the_year_or_in_bymonth() -> None:
    # The 20th Monday of 2026 is 18 May (first Monday 5 Jan + 19 weeks); of 2027, 17 May.
    assert starts(day("2026-05-18"), ["RRULE:FREQ=YEARLY;BYDAY=20MO;COUNT=2"]) == [
        "2026-05-18", "2027-05-17"
    ]
    # The last Sunday of October: 25 Oct 2026, 31 Oct 2027.
    assert starts(day("2026-10-25"), ["RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU;COUNT=2"]) == [
        "2026-10-25", "2027-10-31"
    ]


@pytest.mark.parametrize(
    "wkst, expected",
    [("MO", ["1997-08-05", "1997-08-10", "1997-08-19", "1997-08-24"]),
     ("SU", ["1997-08-05", "1997-08-17", "1997-08-19", "1997-08-31"])],
)
def test_wkst_decides_which_days_share_a_biweekly_week(wkst: str, expected: list[str]) -> None:
    # RFC 5545 §3.8.5.3, "An example where the days generated makes a difference because of WKST".
    rule = f"RRULE:FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST={wkst}"
    assert starts(day("1997-08-05"), [rule]) == expected


def test_byweekno_monday_of_week_20() -> None:
    # RFC 5545 §3.8.5.3: "Monday of week number 20": May 12 1997, May 11 1998, May 17 1999.
    got = starts(timed("1997-05-12T09:00", NEW_YORK), ["RRULE:FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO"],
                 limit=3)
    assert got == [
        "1997-05-12T09:00:00-04:00", "1998-05-11T09:00:00-04:00", "1999-05-17T09:00:00-04:00"
    ]


def test_byyearday_every_third_year() -> None:
    # RFC 5545 §3.8.5.3: "Every third year on the 1st, 100th, and 200th day".
    got = starts(day("1997-01-01"), ["RRULE:FREQ=YEARLY;INTERVAL=3;COUNT=6;BYYEARDAY=1,100,200"])
    assert got == [
        "1997-01-01", "1997-04-10", "1997-07-19", "2000-01-01", "2000-04-09", "2000-07-18"
    ]


@pytest.mark.parametrize(
    "rule",
    ["RRULE:FREQ=DAILY;BYHOUR=9,10,11,12,13,14,15,16;BYMINUTE=0,20,40",
     "RRULE:FREQ=MINUTELY;INTERVAL=20;BYHOUR=9,10,11,12,13,14,15,16"],
)
def test_every_twenty_minutes_in_office_hours(rule: str) -> None:
    # RFC 5545 §3.8.5.3: both rules give 9:00, 9:20, ... 16:40 each day.
    got = starts(timed("1997-09-02T09:00", NEW_YORK), [rule], limit=25)
    day_one = [f"1997-09-02T{h:02}:{m:02}:00-04:00" for h in range(9, 17) for m in (0, 20, 40)]
    assert got == day_one + ["1997-09-03T09:00:00-04:00"]


def test_hourly_interval_steps_over_midnight() -> None:
    assert ids(timed("2026-01-05T20:00"), ["RRULE:FREQ=HOURLY;INTERVAL=5;COUNT=3"]) == [
        "20260105T190000Z", "20260106T000000Z", "20260106T050000Z"
    ]


# -- bounds and errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "rule, most",
    [
        ("RRULE:FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=-30", 1),  # February never has 30 days
        ("RRULE:FREQ=YEARLY;BYYEARDAY=366;BYMONTH=1", 1),  # day 366 is never in January
        ("RRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=31", 1),
        ("RRULE:FREQ=SECONDLY", MAX_SLOTS),
        ("RRULE:FREQ=SECONDLY;BYSECOND=0", MAX_SLOTS),
        ("RRULE:FREQ=SECONDLY;BYHOUR=3;BYMINUTE=7;BYSECOND=9", MAX_SLOTS),
        ("RRULE:FREQ=HOURLY;INTERVAL=24;BYHOUR=5", 1),  # 09:00 + 24h steps never reach 05:00
        ("RRULE:FREQ=MINUTELY;BYSECOND=60", 1),  # a leap second never happens
    ],
)
def test_hostile_rules_finish_at_once(rule: str, most: int) -> None:
    began = time.perf_counter()
    got = ids(timed("2026-01-01T09:00"), [rule])
    assert time.perf_counter() - began < 0.5
    assert 1 <= len(got) <= most
    assert got[0] == "20260101T080000Z"


def test_nothing_lies_beyond_the_horizon_of_five_times_366_days() -> None:
    got = ids(day("2026-01-01"), ["RRULE:FREQ=DAILY"], limit=10_000)
    # 2026-01-01 + 1826 days is 2031-01-01, + 1830 days is 2031-01-05.
    assert len(got) == 1831 and got[-1] == "20310105"


def test_after_before_and_limit_bound_what_is_yielded() -> None:
    utc = dt.timezone.utc
    got = ids(timed("2026-01-05T09:00"), ["RRULE:FREQ=DAILY"],
              after=dt.datetime(2026, 1, 7, 8, tzinfo=utc),
              before=dt.datetime(2026, 1, 12, 8, tzinfo=utc), limit=3)
    assert got == ["20260107T080000Z", "20260108T080000Z", "20260109T080000Z"]


@pytest.mark.parametrize(
    "lines",
    [
        ["RRULE:FREQ=NOPE"],
        ["RRULE:"],
        ["RRULE:FREQ=DAILY;UNTIL=garbage"],
        ["RRULE:FREQ=DAILY;COUNT=0"],
        ["RRULE:FREQ=DAILY;INTERVAL=-1"],
        ["RRULE:FREQ=MONTHLY;BYMONTHDAY=0"],
        ["RRULE:FREQ=MONTHLY;BYMONTHDAY=32"],
        ["RRULE:FREQ=MONTHLY;BYDAY=0MO"],
        ["RRULE:FREQ=MONTHLY;BYDAY=XX"],
        ["RRULE:FREQ=DAILY;BYHOUR=-1"],
        ["RRULE:FREQ=DAILY;FREQ=WEEKLY"],
        ["RRULE:FREQ=YEARLY;BYEASTER=0"],
        ["RRULE:FREQ=DAILY;WKST=XX"],
        ["EXDATE:xyz"],
        ["EXDATE;VALUE=DATE:20260105T090000"],
        ["EXDATE;TZID=Mars/Olympus:20260105T090000"],
        ["RDATE:20260230T090000Z"],
    ],
)
def test_unreadable_lines_raise_rule_error(lines: list[str]) -> None:
    with pytest.raises(RuleError):
        list(slots(timed("2026-01-05T09:00"), None, lines))


def test_unknown_start_zone_raises_rule_error() -> None:
    start = EventTime(date_time=dt.datetime(2026, 1, 5, 9, tzinfo=dt.timezone.utc),
                      time_zone="Nowhere/Land")
    with pytest.raises(RuleError):
        list(slots(start, None, ["RRULE:FREQ=DAILY;COUNT=2"]))


@pytest.mark.parametrize("year", [1, 9999])
def test_edge_of_the_calendar_gives_slots_or_rule_error(year: int) -> None:
    start = EventTime(date_time=dt.datetime(year, 1, 1, tzinfo=dt.timezone.utc),
                      time_zone=NEW_YORK if year == 1 else BERLIN)
    try:
        got = list(slots(start, None, ["RRULE:FREQ=YEARLY;BYWEEKNO=1"], limit=10))
    except RuleError:
        return
    assert 1 <= len(got) <= 10


def test_parse_reads_parameters_case_and_lists() -> None:
    parsed = parse([
        "rrule:freq=monthly;byday=1mo,-1fr;bysetpos=1;wkst=su",
        "EXDATE;VALUE=DATE:20260105,20260106",
        "X-OTHER:ignored",
    ])
    (rule,) = parsed.rules
    assert rule.freq == "MONTHLY" and rule.by_day == ((1, 0), (-1, 4))
    assert rule.by_set_pos == frozenset({1}) and rule.week_start == 6
    assert parsed.exdates == (dt.date(2026, 1, 5), dt.date(2026, 1, 6))
    assert parse_rule("FREQ=DAILY;UNTIL=20260105T090000Z;").until == dt.datetime(
        2026, 1, 5, 9, tzinfo=dt.timezone.utc
    )


def test_instance_suffix_is_utc_for_timed_and_the_date_for_all_day() -> None:
    assert instance_suffix(timed("2026-07-01T09:30")) == "20260701T073000Z"
    assert instance_suffix(day("2026-07-01")) == "20260701"
