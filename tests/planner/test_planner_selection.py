"""Which meetings count and which occurrence of a series is synced (calsync/planner/selection.py)."""

from __future__ import annotations

import datetime as dt

from planner_builders import (
    CLIENT,
    COLLEAGUE,
    OTHER_CLIENT,
    OWNER,
    all_day,
    at,
    cancelled,
    contact,
    copy_of,
    deleted,
    directory,
    event,
    moved,
    person,
    plan_one,
    series,
    settings,
    written_before,
)

from calsync.core.model import Create, Delete, EventTime, GoogleEvent, Skip
from calsync.rules.planner import addresses_to_look_up, first_occurrence

# --- first occurrence of a series ------------------------------------------------------------


def test_single_event_is_its_own_first_occurrence() -> None:
    single = event()
    assert first_occurrence(copy_of(single)) == single


def test_series_syncs_its_first_occurrence() -> None:
    found = first_occurrence(copy_of(series(start=at(12))))
    assert found is not None and found.start == EventTime(date_time=at(12))


def test_first_occurrence_moved_moves_the_event() -> None:
    exception = moved(at(12), to=at(13, 9), summary="Demo (moved)")
    found = first_occurrence(copy_of(series(start=at(12)), exception))
    assert found == exception


def test_first_occurrence_cancelled_moves_to_next() -> None:
    found = first_occurrence(copy_of(series(start=at(12)), cancelled(at(12))))
    assert found is not None and found.start == EventTime(date_time=at(19))
    assert found.end == EventTime(date_time=at(19, 16))


def test_moved_later_occurrence_never_becomes_the_event() -> None:
    later = moved(at(19), to=at(11, 9))  # the second slot moved before the first
    found = first_occurrence(copy_of(series(start=at(12)), later))
    assert found is not None and found.start == EventTime(date_time=at(12))


def test_exdate_removes_the_first_slot() -> None:
    master = series("RRULE:FREQ=WEEKLY;COUNT=3", "EXDATE:20260112T150000Z", start=at(12))
    found = first_occurrence(copy_of(master))
    assert found is not None and found.start == EventTime(date_time=at(19))


def test_every_occurrence_cancelled_leaves_nothing() -> None:
    master = series("RRULE:FREQ=WEEKLY;COUNT=2", start=at(12))
    assert first_occurrence(copy_of(master, cancelled(at(12)), cancelled(at(19)))) is None


def test_exception_without_master_is_the_meeting() -> None:
    one = moved(at(19), to=at(19, 10))
    earlier_gone = cancelled(at(12))
    assert first_occurrence(copy_of(earlier_gone, one)) == one


def test_earliest_of_several_orphan_exceptions_is_the_meeting() -> None:
    late = moved(at(26), to=at(26))
    early = moved(at(19), to=at(19))
    assert first_occurrence(copy_of(late, early)) == early


def test_unreadable_recurrence_uses_the_masters_start() -> None:
    master = series("RRULE:FREQ=SOMETIMES", start=at(12))
    assert first_occurrence(copy_of(master)) == master


def test_all_day_series_cancelled_first_day_moves_to_next() -> None:
    master = event(
        "series1", recurrence=("RRULE:FREQ=DAILY;COUNT=3",), **all_day(dt.date(2026, 1, 12))
    )
    gone = GoogleEvent(
        id="series1_20260112",
        status="cancelled",
        recurring_event_id="series1",
        original_start=EventTime(date=dt.date(2026, 1, 12)),
    )
    found = first_occurrence(copy_of(master, gone))
    assert found is not None and found.start == EventTime(date=dt.date(2026, 1, 13))


def test_owner_declining_only_the_first_occurrence_moves_the_event_to_the_next() -> None:
    mine = person(OWNER, self=True, response_status="declined")
    declined_first = moved(at(12), to=at(12), attendees=(mine, CLIENT))
    copy = copy_of(series(start=at(12)), declined_first)
    found = first_occurrence(copy)
    assert found is not None and found.start == EventTime(date_time=at(19))
    assert isinstance(plan_one(copy), Create)


def test_owner_declining_the_first_two_occurrences_moves_the_event_to_the_third() -> None:
    mine = person(OWNER, self=True, response_status="declined")
    copy = copy_of(
        series(start=at(12)),
        moved(at(12), to=at(12), attendees=(mine, CLIENT)),
        cancelled(at(19)),
        moved(at(26), to=at(26), attendees=(mine, CLIENT)),
    )
    found = first_occurrence(copy)
    assert found is not None and found.start == EventTime(date_time=at(2, month=2))


def test_owner_declining_the_whole_series_removes_its_event() -> None:
    mine = person(OWNER, self=True, response_status="declined")
    copy = copy_of(series(start=at(12), attendees=(mine, CLIENT)))
    op = plan_one(copy, previous=written_before(copy))
    assert isinstance(op, Delete) and op.reason == "declined"


def test_series_declined_but_one_occurrence_accepted_syncs_that_occurrence() -> None:
    mine = person(OWNER, self=True, response_status="declined")
    accepted = moved(at(26), to=at(27, 9), attendees=(OWNER, CLIENT))
    copy = copy_of(series(start=at(12), attendees=(mine, CLIENT)), accepted)
    assert first_occurrence(copy) == accepted


def test_a_colleague_declining_the_first_occurrence_does_not_move_the_owners_event() -> None:
    theirs = person(COLLEAGUE, response_status="declined")
    first = moved(at(12), to=at(12), attendees=(OWNER, theirs, CLIENT))
    found = first_occurrence(copy_of(series(start=at(12)), first))
    assert found == first


def test_masters_start_is_the_first_occurrence_even_off_the_rule() -> None:
    # 12 Jan 2026 is a Monday; the rule names Wednesdays and Fridays only (reference A4).
    master = series("RRULE:FREQ=WEEKLY;BYDAY=WE,FR;COUNT=3", start=at(12))
    found = first_occurrence(copy_of(master))
    assert found is not None and found.start == EventTime(date_time=at(12))
    gone = first_occurrence(copy_of(master, cancelled(at(12))))
    assert gone is not None and gone.start == EventTime(date_time=at(14))


# --- which meetings are synced ---------------------------------------------------------------


def test_meeting_gone_from_calendar_deletes_previous() -> None:
    copy = copy_of()
    op = plan_one(copy, previous=written_before(copy))
    assert isinstance(op, Delete) and op.reason == "deleted"


def test_cancelled_event_deletes_previous() -> None:
    copy = copy_of(deleted())
    op = plan_one(copy, previous=written_before(copy))
    assert isinstance(op, Delete) and op.reason == "cancelled"


def test_cancelled_event_never_synced_is_skipped() -> None:
    op = plan_one(copy_of(event(status="cancelled")))
    assert isinstance(op, Skip) and op.reason == "cancelled"


def test_a_rule_that_never_matches_leaves_the_masters_start_as_the_meeting() -> None:
    copy = copy_of(series("RRULE:FREQ=DAILY;BYYEARDAY=366;BYMONTH=1", start=at(12)))
    op = plan_one(copy)
    assert isinstance(op, Create) and op.fields.start == at(12)


def test_a_rule_that_never_matches_with_its_start_excluded_has_no_occurrence() -> None:
    # Passes the up-front check, matches no day, and EXDATE takes the start: not "cancelled",
    # nothing was cancelled.
    master = series("RRULE:FREQ=DAILY;BYYEARDAY=366;BYMONTH=1", "EXDATE:20260112T150000Z", start=at(12))
    copy = copy_of(master)
    op = plan_one(copy)
    assert isinstance(op, Skip) and op.reason == "recurrence has no occurrence"
    op = plan_one(copy, previous=written_before(copy))
    assert isinstance(op, Delete) and op.reason == "recurrence has no occurrence"


def test_out_of_office_is_not_a_meeting() -> None:
    copy = copy_of(event(event_type="outOfOffice"))
    op = plan_one(copy, previous=written_before(copy))
    assert isinstance(op, Delete) and op.reason == "not a meeting (eventType=outOfOffice)"


def test_declined_by_owner_deletes_previous() -> None:
    mine = person(OWNER, self=True, response_status="declined")
    copy = copy_of(event(attendees=(mine, CLIENT)))
    op = plan_one(copy, previous=written_before(copy))
    assert isinstance(op, Delete) and op.reason == "declined"


def test_declined_by_owner_address_without_self_counts() -> None:
    mine = person(OWNER.upper(), response_status="declined")
    op = plan_one(copy_of(event(attendees=(mine, CLIENT))))
    assert isinstance(op, Skip) and op.reason == "declined"


def test_meeting_whose_only_contact_declined_is_not_logged() -> None:
    theirs = person(CLIENT, response_status="declined")
    copy = copy_of(event(attendees=(OWNER, theirs)))
    assert isinstance(plan_one(copy), Skip)
    op = plan_one(copy, previous=written_before(copy))
    assert isinstance(op, Delete) and op.reason == "no Contact or Lead"


def test_declined_contact_is_not_a_candidate_but_others_are() -> None:
    theirs = person(CLIENT, response_status="declined")
    copy = copy_of(event(attendees=(OWNER, theirs, OTHER_CLIENT)))
    assert addresses_to_look_up([copy], settings()) == {OTHER_CLIENT}


def test_private_meeting_is_skipped_by_default() -> None:
    op = plan_one(copy_of(event(visibility="private")))
    assert isinstance(op, Skip) and op.reason == "private"


def test_confidential_meeting_counts_as_private() -> None:
    copy = copy_of(event(visibility="confidential"))
    op = plan_one(copy, previous=written_before(copy))
    assert isinstance(op, Delete) and op.reason == "private"


def test_private_meeting_synced_withholds_content_but_keeps_links() -> None:
    copy = copy_of(event(visibility="private", description="secret", location="HQ"))
    op = plan_one(copy, config=settings(private_events="sync"))
    assert isinstance(op, Create)
    fields = op.fields
    assert (fields.subject, fields.description, fields.location) == ("Private meeting", None, None)
    assert fields.who_id == "003000000000001AAA" and fields.is_private is False
    assert fields.show_as == "Busy"


def test_timed_meeting_longer_than_14_days_is_skipped() -> None:
    op = plan_one(copy_of(event(minutes=14 * 1440 + 1)))
    assert isinstance(op, Skip) and op.reason == "longer than 14 days"


def test_timed_meeting_of_exactly_14_days_is_synced() -> None:
    assert isinstance(plan_one(copy_of(event(minutes=14 * 1440))), Create)


def test_all_day_meeting_longer_than_14_days_is_skipped() -> None:
    copy = copy_of(event(**all_day(dt.date(2026, 1, 12), days=15)))
    op = plan_one(copy, previous=written_before(copy))
    assert isinstance(op, Delete) and op.reason == "longer than 14 days"


def test_all_day_meeting_of_14_days_is_synced() -> None:
    assert isinstance(plan_one(copy_of(event(**all_day(dt.date(2026, 1, 12), days=14)))), Create)


def test_meeting_without_start_is_skipped() -> None:
    op = plan_one(copy_of(event(start=None)))
    assert isinstance(op, Skip) and op.reason == "no start"


def test_internal_meeting_is_not_synced() -> None:
    op = plan_one(copy_of(event(attendees=(OWNER, COLLEAGUE, "erin@acme.test"))))
    assert isinstance(op, Skip) and op.reason == "no Contact or Lead"


def test_internal_domain_matches_case_insensitively() -> None:
    insider = "Frank@ACME.Test"
    answers = directory(contact(email=insider.lower()))
    op = plan_one(copy_of(event(attendees=(OWNER, insider))), answers=answers)
    assert isinstance(op, Skip) and op.reason == "no Contact or Lead"


def test_configured_user_outside_internal_domains_is_no_candidate() -> None:
    partner_user = "gina@partner.test"
    answers = directory(contact(email=partner_user))
    config = settings(configured_users=frozenset({OWNER, partner_user}))
    op = plan_one(copy_of(event(attendees=(OWNER, partner_user))), answers=answers, config=config)
    assert isinstance(op, Skip) and op.reason == "no Contact or Lead"


def test_excluded_address_is_no_candidate() -> None:
    config = settings(exclude=("*@CLIENT.test",))
    op = plan_one(copy_of(event()), config=config)
    assert isinstance(op, Skip) and op.reason == "no Contact or Lead"


def test_resource_is_no_candidate() -> None:
    room = person(CLIENT, resource=True)
    op = plan_one(copy_of(event(attendees=(OWNER, room))))
    assert isinstance(op, Skip) and op.reason == "no Contact or Lead"


def test_external_address_without_contact_or_lead_deletes_previous() -> None:
    copy = copy_of(event())
    op = plan_one(copy, previous=written_before(copy), answers=directory())
    assert isinstance(op, Delete) and op.reason == "no Contact or Lead"


# --- addresses_to_look_up --------------------------------------------------------------------


def test_addresses_to_look_up_are_the_lowercased_external_people() -> None:
    meeting = event(
        organizer="Host@Client.test",
        attendees=(OWNER, COLLEAGUE, "Dana@Other.test", person("room@rooms.test", resource=True)),
    )
    found = addresses_to_look_up([copy_of(meeting)], settings())
    assert found == frozenset({"host@client.test", "dana@other.test"})


def test_addresses_to_look_up_skip_excluded_addresses() -> None:
    found = addresses_to_look_up([copy_of(event())], settings(exclude=("bob@*",)))
    assert found == frozenset()


def test_addresses_to_look_up_come_from_the_synced_occurrence() -> None:
    later = moved(at(19), to=at(19), attendees=(OWNER, "late@other.test"))
    found = addresses_to_look_up([copy_of(series(start=at(12)), later)], settings())
    assert found == frozenset({CLIENT})


def test_addresses_to_look_up_ignore_meetings_that_will_not_sync() -> None:
    declined = event(attendees=(person(OWNER, self=True, response_status="declined"), CLIENT))
    assert addresses_to_look_up([copy_of(declined)], settings()) == frozenset()


def test_deleted_series_leaves_nothing() -> None:
    master_gone = GoogleEvent(id="series1", status="cancelled")
    copy = copy_of(master_gone, cancelled(at(19)))
    op = plan_one(copy, previous=written_before(copy))
    assert isinstance(op, Delete) and op.reason == "cancelled"


def test_series_at_the_edge_of_time_does_not_raise() -> None:
    # Converting year 1 to New York time overflows inside the recurrence expansion.
    edge = EventTime(date_time=dt.datetime(1, 1, 1, tzinfo=dt.UTC), time_zone="America/New_York")
    master = event("series1", start=edge, end=edge, recurrence=("RRULE:FREQ=DAILY;COUNT=3",))
    assert first_occurrence(copy_of(master)) == master  # the master's own start
    op = plan_one(copy_of(master))
    assert isinstance(op, Skip) and op.reason == "before lookback window"
