"""How the emulator expands recurring series, read through the real client (reference A4).

Every expected instance is written out by hand from the calendar (1 Jan 2026 is a Thursday) and
the DST dates (Europe/Berlin: 29 Mar and 25 Oct 2026; America/New_York: 8 Mar and 1 Nov 2026),
not computed by any expander: instance ids carry the slot's UTC start (`<id>_YYYYMMDDTHHMMSSZ`)
or its date for all-day series.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from google_helpers import ALICE, list_all, timed

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"


def _series(emulator: Any, start: str, rules: list[str], zone: str = BERLIN) -> str:
    """A one-hour timed series of Alice's starting at `start` (ISO with offset); its id."""
    body = {"summary": "Series", **timed(start, zone=zone), "recurrence": rules}
    return emulator.backend.create_event(ALICE, body)["id"]


def _all_day(emulator: Any, date: str, rules: list[str]) -> str:
    body = {"summary": "All day", "start": {"date": date}, "recurrence": rules}
    return emulator.backend.create_event(ALICE, body)["id"]


def _instances(make_service: Any, **params: Any) -> list[dict[str, Any]]:
    items, _ = list_all(make_service(), singleEvents=True, orderBy="startTime", **params)
    return items


def _suffixes(items: list[dict[str, Any]], master_id: str) -> list[str]:
    assert all(item["recurringEventId"] == master_id for item in items)
    return [item["id"].removeprefix(f"{master_id}_") for item in items]


@pytest.mark.parametrize(
    "start, zone, expected_ids, expected_starts",
    [
        # Berlin, spring: CET (+01:00) until 29 Mar, then CEST (+02:00).
        ("2026-03-23T16:00:00+01:00", BERLIN,
         ["20260323T150000Z", "20260330T140000Z"],
         ["2026-03-23T16:00:00+01:00", "2026-03-30T16:00:00+02:00"]),
        # Berlin, autumn: back to CET on 25 Oct.
        ("2026-10-19T16:00:00+02:00", BERLIN,
         ["20261019T140000Z", "20261026T150000Z"],
         ["2026-10-19T16:00:00+02:00", "2026-10-26T16:00:00+01:00"]),
        # New York, spring: EST (-05:00) until 8 Mar, then EDT (-04:00).
        ("2026-03-06T09:00:00-05:00", NEW_YORK,
         ["20260306T140000Z", "20260313T130000Z"],
         ["2026-03-06T09:00:00-05:00", "2026-03-13T09:00:00-04:00"]),
        # New York, autumn: back to EST on 1 Nov.
        ("2026-10-30T09:00:00-04:00", NEW_YORK,
         ["20261030T130000Z", "20261106T140000Z"],
         ["2026-10-30T09:00:00-04:00", "2026-11-06T09:00:00-05:00"]),
    ],
)
def test_weekly_series_keeps_wall_clock_time_across_dst(
    emulator: Any, make_service: Any, start: str, zone: str,
    expected_ids: list[str], expected_starts: list[str],
) -> None:
    master_id = _series(emulator, start, ["RRULE:FREQ=WEEKLY;COUNT=2"], zone=zone)
    items = _instances(make_service)
    assert _suffixes(items, master_id) == expected_ids
    assert [item["start"] for item in items] == [
        {"dateTime": text, "timeZone": zone} for text in expected_starts
    ]
    assert [item["originalStartTime"] for item in items] == [item["start"] for item in items]


def test_start_in_the_spring_gap_moves_forward_an_hour(emulator: Any, make_service: Any) -> None:
    # Sundays 02:30 Berlin: on 29 Mar 02:30 does not exist; RFC 5545 §3.3.5 reads it with the
    # offset from before the gap, 01:30Z, which is 03:30 summer time.
    master_id = _series(emulator, "2026-03-22T02:30:00+01:00", ["RRULE:FREQ=WEEKLY;COUNT=3"])
    items = _instances(make_service)
    assert _suffixes(items, master_id) == [
        "20260322T013000Z", "20260329T013000Z", "20260405T003000Z"
    ]
    assert items[1]["start"]["dateTime"] == "2026-03-29T03:30:00+02:00"
    assert items[1]["end"]["dateTime"] == "2026-03-29T04:30:00+02:00"


def test_start_off_the_byday_days_is_the_first_instance_and_counts(
    emulator: Any, make_service: Any
) -> None:
    # Start Tuesday 6 Jan, rule Mondays and Wednesdays. RFC 5545 §3.8.5.3: "The DTSTART property
    # defines the first instance in the recurrence set" (a DTSTART off the rule makes the set
    # "undefined" there), and §3.3.10 COUNT: "The DTSTART property value always counts as the
    # first occurrence"; Google shows that first instance. Reading used: COUNT=4 is Tue 6,
    # Wed 7, Mon 12, Wed 14 (not Wed 7, Mon 12, Wed 14, Mon 19 as dateutil gives).
    master_id = _series(
        emulator, "2026-01-06T10:00:00+01:00", ["RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=4"]
    )
    assert _suffixes(_instances(make_service), master_id) == [
        "20260106T090000Z", "20260107T090000Z", "20260112T090000Z", "20260114T090000Z"
    ]


def test_all_day_series_with_a_date_until_includes_that_date(
    emulator: Any, make_service: Any
) -> None:
    # Mondays and Thursdays from Mon 5 Jan until Thu 15 Jan inclusive.
    master_id = _all_day(emulator, "2026-01-05", ["RRULE:FREQ=WEEKLY;BYDAY=MO,TH;UNTIL=20260115"])
    items = _instances(make_service)
    assert _suffixes(items, master_id) == ["20260105", "20260108", "20260112", "20260115"]
    assert items[-1]["start"] == {"date": "2026-01-15"}
    assert items[-1]["end"] == {"date": "2026-01-16"}


def test_all_day_series_with_a_utc_until_ends_on_its_date(
    emulator: Any, make_service: Any
) -> None:
    master_id = _all_day(emulator, "2026-01-05", ["RRULE:FREQ=DAILY;UNTIL=20260107T000000Z"])
    assert _suffixes(_instances(make_service), master_id) == ["20260105", "20260106", "20260107"]


def test_exdate_in_new_york_time_removes_the_berlin_slot(
    emulator: Any, make_service: Any
) -> None:
    # Mondays 16:00 Berlin (CET); 10:00 New York (EST) on 12 Jan is the same instant, 15:00Z.
    master_id = _series(
        emulator,
        "2026-01-05T16:00:00+01:00",
        ["RRULE:FREQ=WEEKLY;COUNT=4", "EXDATE;TZID=America/New_York:20260112T100000"],
    )
    assert _suffixes(_instances(make_service), master_id) == [
        "20260105T150000Z", "20260119T150000Z", "20260126T150000Z"
    ]


def test_rdate_adds_an_instance_in_order(emulator: Any, make_service: Any) -> None:
    master_id = _series(
        emulator,
        "2026-01-05T16:00:00+01:00",
        ["RRULE:FREQ=WEEKLY;COUNT=2", "RDATE;TZID=Europe/Berlin:20260107T120000"],
    )
    items = _instances(make_service)
    assert _suffixes(items, master_id) == [
        "20260105T150000Z", "20260107T110000Z", "20260112T150000Z"
    ]
    added = items[1]
    assert added["start"] == {"dateTime": "2026-01-07T12:00:00+01:00", "timeZone": BERLIN}
    assert added["end"] == {"dateTime": "2026-01-07T13:00:00+01:00", "timeZone": BERLIN}


def test_cancelled_occurrence_still_uses_up_its_place_in_count(
    emulator: Any, make_service: Any
) -> None:
    # COUNT=4 from Mon 5 Jan: 5, 12, 19, 26 Jan. Cancelling 12 Jan does not bring 2 Feb in.
    master_id = _series(emulator, "2026-01-05T16:00:00+01:00", ["RRULE:FREQ=WEEKLY;COUNT=4"])
    emulator.backend.cancel_occurrence(master_id, "2026-01-12T16:00:00+01:00")
    assert _suffixes(_instances(make_service), master_id) == [
        "20260105T150000Z", "20260119T150000Z", "20260126T150000Z"
    ]
    with_deleted = _instances(make_service, showDeleted=True)
    assert _suffixes(with_deleted, master_id) == [
        "20260105T150000Z", "20260112T150000Z", "20260119T150000Z", "20260126T150000Z"
    ]
    assert with_deleted[1]["status"] == "cancelled"


def test_monthly_last_friday(emulator: Any, make_service: Any) -> None:
    # Last Fridays: 30 Jan, 27 Feb, 27 Mar (CET), 24 Apr (CEST).
    master_id = _series(
        emulator, "2026-01-30T10:00:00+01:00", ["RRULE:FREQ=MONTHLY;BYDAY=-1FR;COUNT=4"]
    )
    assert _suffixes(_instances(make_service), master_id) == [
        "20260130T090000Z", "20260227T090000Z", "20260327T090000Z", "20260424T080000Z"
    ]


def test_monthly_on_the_31st_skips_months_without_one(emulator: Any, make_service: Any) -> None:
    # Not clamped to 28 Feb / 30 Apr (RFC 5545 §3.3.10: invalid dates are ignored).
    master_id = _series(
        emulator, "2026-01-31T09:00:00+01:00", ["RRULE:FREQ=MONTHLY;BYMONTHDAY=31;COUNT=4"]
    )
    items = _instances(make_service)
    assert _suffixes(items, master_id) == [
        "20260131T080000Z", "20260331T070000Z", "20260531T070000Z", "20260731T070000Z"
    ]
    assert [item["start"]["dateTime"][:10] for item in items] == [
        "2026-01-31", "2026-03-31", "2026-05-31", "2026-07-31"
    ]


def test_yearly_series_on_29_february_falls_on_leap_years(
    emulator: Any, make_service: Any
) -> None:
    master_id = _all_day(emulator, "2024-02-29", ["RRULE:FREQ=YEARLY;COUNT=2"])
    items = _instances(
        make_service, timeMin="2024-01-01T00:00:00Z", timeMax="2029-01-01T00:00:00Z"
    )
    assert _suffixes(items, master_id) == ["20240229", "20280229"]


@pytest.mark.parametrize(
    "rule",
    [
        "RRULE:FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=-30",
        "RRULE:FREQ=YEARLY;BYYEARDAY=366;BYMONTH=1",
        "RRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=31",
    ],
)
def test_rule_that_never_matches_lists_only_its_start_at_once(
    emulator: Any, make_service: Any, rule: str
) -> None:
    began = time.perf_counter()
    master_id = _series(emulator, "2026-01-05T09:00:00+01:00", [rule])
    assert _suffixes(_instances(make_service), master_id) == ["20260105T080000Z"]
    assert time.perf_counter() - began < 2


def test_endless_secondly_rule_lists_what_the_window_holds(
    emulator: Any, make_service: Any
) -> None:
    master_id = _series(emulator, "2026-01-05T09:00:00+01:00", ["RRULE:FREQ=SECONDLY"])
    items = _instances(
        make_service, timeMin="2026-01-05T08:00:00Z", timeMax="2026-01-05T08:00:03Z"
    )
    assert _suffixes(items, master_id) == [
        "20260105T080000Z", "20260105T080001Z", "20260105T080002Z"
    ]


def test_unreadable_rule_is_refused_at_creation(emulator: Any) -> None:
    with pytest.raises(ValueError, match="FREQ"):
        _series(emulator, "2026-01-05T09:00:00+01:00", ["RRULE:FREQ=FORTNIGHTLY"])
