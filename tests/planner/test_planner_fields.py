"""The Event field values calsync writes (calsync/planner/fields.py)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from planner_builders import OWNER_ID, all_day, at, copy_of, event, plan_one, settings

from calsync.core.model import Create, EventFields, EventTime, GoogleEvent, PlanSettings

UTC = dt.timezone.utc


def fields_of(meeting: GoogleEvent, config: PlanSettings | None = None) -> EventFields:
    op = plan_one(copy_of(meeting), config=config)
    assert isinstance(op, Create), op
    return op.fields


def test_event_belongs_to_the_owners_salesforce_user() -> None:
    assert fields_of(event()).owner_id == OWNER_ID


def test_subject_is_the_summary() -> None:
    assert fields_of(event(summary="Quarterly review")).subject == "Quarterly review"


def test_blank_summary_becomes_no_title() -> None:
    assert fields_of(event(summary="   ")).subject == "(No title)"
    assert fields_of(event(summary=None)).subject == "(No title)"


def test_subject_is_cut_to_255_characters() -> None:
    assert fields_of(event(summary="é" * 300)).subject == "é" * 255


def test_location_is_cut_to_255_characters() -> None:
    assert fields_of(event(location="x" * 256)).location == "x" * 255


def test_description_is_cut_to_32000_characters() -> None:
    assert fields_of(event(description="d" * 40_000)).description == "d" * 32_000


def test_empty_description_and_location_are_none() -> None:
    fields = fields_of(event(description="", location=" "))
    assert (fields.description, fields.location) == (None, None)


def test_timed_start_and_end_are_utc() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    start = dt.datetime(2026, 1, 12, 16, 0, tzinfo=berlin)
    fields = fields_of(event(start=start, minutes=45))
    assert fields.start == at(12, 15) and fields.start.tzinfo == UTC
    assert fields.end == at(12, 15, 45) and fields.duration_minutes == 45
    assert fields.is_all_day is False and fields.activity_date is None


def test_duration_counts_whole_minutes() -> None:
    meeting = event(end=EventTime(date_time=at(12, 15) + dt.timedelta(minutes=30, seconds=59)))
    fields = fields_of(meeting)
    assert fields.duration_minutes == 30 and fields.end == at(12, 15, 30)


def test_end_time_unspecified_ends_at_the_start() -> None:
    fields = fields_of(event(end_time_unspecified=True))
    assert fields.end == fields.start and fields.duration_minutes == 0


def test_all_day_event_uses_activity_date_and_whole_days() -> None:
    fields = fields_of(event(**all_day(dt.date(2026, 1, 12), days=3)))
    assert fields.is_all_day is True and fields.activity_date == dt.date(2026, 1, 12)
    assert fields.duration_minutes == 3 * 1440
    assert fields.start == dt.datetime(2026, 1, 12, tzinfo=UTC)
    assert fields.end == dt.datetime(2026, 1, 15, tzinfo=UTC)


def test_one_day_all_day_event_lasts_1440_minutes() -> None:
    assert fields_of(event(**all_day(dt.date(2026, 1, 12)))).duration_minutes == 1440


def test_event_is_a_busy_public_meeting() -> None:
    fields = fields_of(event())
    assert (fields.event_type, fields.show_as, fields.is_private) == ("Meeting", "Busy", False)


def test_activity_datetime_field_comes_from_settings() -> None:
    fields = fields_of(event(), config=settings(activity_datetime_field="MixmaxActivityDateTime"))
    assert fields.to_salesforce()["MixmaxActivityDateTime"] == "2026-01-12T15:00:00.000+0000"


def test_all_day_activity_datetime_is_midnight_in_the_calendars_zone() -> None:
    from dataclasses import replace

    copy = replace(copy_of(event(**all_day(dt.date(2026, 1, 12)))), time_zone="America/Los_Angeles")
    op = plan_one(copy, config=settings(activity_datetime_field="MixmaxActivityDateTime"))
    assert isinstance(op, Create)
    # Midnight in Los Angeles (UTC-8 in January) is 08:00 UTC, not midnight UTC.
    assert op.fields.to_salesforce()["MixmaxActivityDateTime"] == "2026-01-12T08:00:00.000+0000"
    assert op.fields.to_salesforce()["ActivityDate"] == "2026-01-12"


def test_all_day_activity_datetime_with_an_unknown_zone_is_midnight_utc() -> None:
    from dataclasses import replace

    copy = replace(copy_of(event(**all_day(dt.date(2026, 1, 12)))), time_zone="Mars/Olympus\x00")
    op = plan_one(copy, config=settings(activity_datetime_field="MixmaxActivityDateTime"))
    assert op.fields.to_salesforce()["MixmaxActivityDateTime"] == "2026-01-12T00:00:00.000+0000"


HOSTILE = "Q3\x00 review\x07\x1b[31m\r\nnext\tsteps\x7f é"


def test_control_characters_leave_the_subject_and_newlines_become_spaces() -> None:
    # C0 controls other than tab and newline are removed; a newline in a Subject is a space.
    assert fields_of(event(summary=HOSTILE)).subject == "Q3 review[31m next\tsteps\x7f é"


def test_control_characters_leave_location_and_description_which_keep_newlines_and_tabs() -> None:
    fields = fields_of(event(location=HOSTILE, description=HOSTILE))
    assert fields.location == "Q3 review[31m\nnext\tsteps\x7f é"
    assert fields.description == "Q3 review[31m\nnext\tsteps\x7f é"


def test_a_summary_of_control_characters_only_is_no_title() -> None:
    assert fields_of(event(summary="\x00\x1b\r\n")).subject == "(No title)"


# --- as Salesforce stores text (reference B10): trimmed like Java's String.trim(), "" as null,
# lengths in UTF-16 code units. Anything else would come back different from what was sent.

EMOJI = "\N{GRINNING FACE}"  # two UTF-16 code units


def test_location_and_description_are_trimmed_as_salesforce_stores_them() -> None:
    fields = fields_of(event(location="  Room 4 ", description="\n\nJoin the call\nDial-in: 123\n"))
    assert fields.location == "Room 4"
    assert fields.description == "Join the call\nDial-in: 123"


def test_a_non_breaking_space_is_not_trimmed_as_salesforce_keeps_it() -> None:
    assert fields_of(event(location="\u00a0Room 4\u00a0")).location == "\u00a0Room 4\u00a0"


def test_blank_location_and_description_are_sent_as_null() -> None:
    fields = fields_of(event(location="", description=" \n\t\r\n"))
    assert fields.location is None and fields.description is None


def test_a_subject_of_emoji_is_cut_at_255_utf16_units_without_splitting_one() -> None:
    subject = fields_of(event(summary=EMOJI * 200)).subject
    assert subject == EMOJI * 127  # 254 code units: a 128th would need 256


def test_location_and_description_count_utf16_units() -> None:
    fields = fields_of(event(location="a" + EMOJI * 200, description=EMOJI * 20_000))
    assert fields.location == "a" + EMOJI * 127  # 255 code units
    assert fields.description == EMOJI * 16_000  # 32,000 code units


def test_a_cut_that_ends_on_a_space_is_trimmed_again() -> None:
    assert fields_of(event(location="x" * 254 + " tail")).location == "x" * 254
    assert fields_of(event(summary="y" * 254 + " tail")).subject == "y" * 254
