"""Which operation plan() returns for a copy: Create, Update, Delete or Skip."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from planner_builders import (
    CLIENT,
    COLLEAGUE,
    COLLEAGUE_ID,
    NOW,
    OTHER_CLIENT,
    OWNER,
    at,
    cancelled,
    contact,
    copy_of,
    directory,
    event,
    moved,
    plan_one,
    series,
    settings,
    written,
    written_before,
)

from calsync.core.model import Create, Delete, Directory, MeetingCopy, Skip, Update
from calsync.rules.planner import plan


def test_new_meeting_is_created() -> None:
    copy = copy_of(event())
    op = plan_one(copy)
    assert isinstance(op, Create) and op.key == copy.key and op.copy == copy


def test_unchanged_meeting_is_skipped() -> None:
    copy = copy_of(event())
    op = plan_one(copy, previous=written(plan_one(copy)))
    assert isinstance(op, Skip) and op.reason == "unchanged"


def test_an_unchanged_meeting_whose_event_delete_was_never_confirmed_is_read_back() -> None:
    # A delete sent, its answer lost (a crash, a fault), the meeting wanted again: an Update, so
    # that ownership.settle reads the Event and learns whether the delete landed (issue 16).
    copy = copy_of(event())
    before = written(plan_one(copy))
    op = plan_one(copy, previous=replace(before, deleting=True))
    assert isinstance(op, Update) and op.sf_id == before.sf_id


def test_rescheduled_meeting_updates_the_same_event() -> None:
    before = written(plan_one(copy_of(event(start=at(12)))), sf_id="00UEVENT")
    op = plan_one(copy_of(event(start=at(13))), previous=before)
    assert isinstance(op, Update) and op.sf_id == "00UEVENT"
    assert op.fields.start == at(13)


def test_renamed_meeting_updates_the_event() -> None:
    before = written(plan_one(copy_of(event(summary="Demo"))))
    op = plan_one(copy_of(event(summary="Demo v2")), previous=before)
    assert isinstance(op, Update) and op.fields.subject == "Demo v2"


def test_attendee_change_that_changes_the_name_updates_the_event() -> None:
    answers = directory(contact("003BOB"), contact("003DANA", email=OTHER_CLIENT))
    before = written(plan_one(copy_of(event(attendees=(OWNER, CLIENT))), answers=answers))
    op = plan_one(
        copy_of(event(attendees=(OWNER, OTHER_CLIENT, CLIENT))), previous=before, answers=answers
    )
    assert isinstance(op, Update) and op.fields.who_id == "003DANA"


def test_create_that_never_answered_is_created_again() -> None:
    copy = copy_of(event())
    op = plan_one(copy, previous=written_before(copy, sf_id=None))
    assert isinstance(op, Create)


def test_create_that_never_answered_is_deleted_by_key_when_not_wanted() -> None:
    copy = copy_of(event(status="cancelled"))
    op = plan_one(copy, previous=written_before(copy, sf_id=None))
    assert isinstance(op, Delete) and op.sf_id is None


def test_before_lookback_not_created_but_updated() -> None:
    old = copy_of(event(start=NOW - dt.timedelta(days=31)))
    skipped = plan_one(old)
    assert isinstance(skipped, Skip) and skipped.reason == "before lookback window"
    updated = plan_one(old, previous=written_before(old))
    assert isinstance(updated, Update)


def test_before_lookback_previous_event_is_still_deleted() -> None:
    old = copy_of(event(start=NOW - dt.timedelta(days=31), status="cancelled"))
    assert isinstance(plan_one(old, previous=written_before(old)), Delete)


def test_inside_lookback_window_is_created() -> None:
    assert isinstance(plan_one(copy_of(event(start=NOW - dt.timedelta(days=29)))), Create)


def test_each_internal_attendee_gets_their_own_event() -> None:
    meeting = event(attendees=(OWNER, COLLEAGUE, CLIENT))
    copies = [copy_of(meeting), copy_of(meeting, owner=COLLEAGUE)]
    result = plan(copies, {}, directory(contact()), settings(), NOW)
    owners = [op.fields.owner_id for op in result.operations if isinstance(op, Create)]
    assert len({op.key for op in result.operations}) == 2
    assert COLLEAGUE_ID in owners and len(owners) == 2


def test_keys_not_planned_are_not_touched() -> None:
    other = copy_of(event(uid="uid-2"), uid="uid-2")
    known = {other.key: written_before(other)}
    result = plan([copy_of(event())], known, directory(contact()), settings(), NOW)
    assert [op.key for op in result.operations] == [copy_of(event()).key]


def test_repeated_copy_gives_one_operation_for_the_last() -> None:
    first, last = copy_of(event(summary="old")), copy_of(event(summary="new"))
    result = plan([first, last], {}, directory(contact()), settings(), NOW)
    assert len(result.operations) == 1
    op = result.operations[0]
    assert isinstance(op, Create) and op.fields.subject == "new"


def test_owner_without_salesforce_user_is_skipped_not_deleted() -> None:
    copy = copy_of(event(), owner="zoe@acme.test")
    op = plan_one(copy, previous=written_before(copy))
    assert isinstance(op, Skip) and op.reason == "owner has no Salesforce User"


def test_first_occurrence_moved_updates_the_event() -> None:
    before = written(plan_one(copy_of(series(start=at(12)))))
    op = plan_one(copy_of(series(start=at(12)), moved(at(12), to=at(14, 9))), previous=before)
    assert isinstance(op, Update) and op.fields.start == at(14, 9)


def test_first_occurrence_cancelled_updates_the_event_to_the_next() -> None:
    before = written(plan_one(copy_of(series(start=at(12)))))
    op = plan_one(copy_of(series(start=at(12)), cancelled(at(12))), previous=before)
    assert isinstance(op, Update) and op.fields.start == at(19)


def test_later_occurrence_cancelled_leaves_the_event_unchanged() -> None:
    before = written(plan_one(copy_of(series(start=at(12)))))
    op = plan_one(copy_of(series(start=at(12)), cancelled(at(19))), previous=before)
    assert isinstance(op, Skip) and op.reason == "unchanged"


def test_only_the_named_contact_needs_opportunity_lookups():
    from calsync.rules.planner import contacts_to_relate
    from planner_builders import OWNER, contact, copy_of, directory, event, settings

    meeting = event(attendees=[OWNER, "first@cust.test", "second@cust.test"])
    found = directory(contact("003A", "first@cust.test"), contact("003B", "second@cust.test"))
    assert contacts_to_relate([copy_of(meeting)], found, settings()) == {"003A"}


def test_name_candidates_put_an_external_organizer_first():
    from calsync.rules.planner import name_candidates
    from planner_builders import OWNER, copy_of, event, settings

    meeting = event(organizer="boss@cust.test", attendees=["boss@cust.test", OWNER, "a@cust.test", "b@cust.test"])
    (ranks,) = name_candidates([copy_of(meeting)], settings())
    assert ranks.organizer == "boss@cust.test"
    assert ranks.first == "boss@cust.test"
    assert ranks.attendees == ("boss@cust.test", "a@cust.test", "b@cust.test")


def test_name_candidates_of_an_internal_meeting_start_with_the_first_attendee():
    from calsync.rules.planner import name_candidates
    from planner_builders import OWNER, copy_of, event, settings

    (ranks,) = name_candidates([copy_of(event(attendees=[OWNER, "a@cust.test", "b@cust.test"]))], settings())
    assert (ranks.organizer, ranks.first) == (None, "a@cust.test")


def test_a_key_owner_keeps_the_keys_of_the_first_address() -> None:
    """A renamed owner (identity.py): their copies are keyed from the address their Events were
    first keyed from, so the Event of the meeting is found again, not created a second time."""
    before = copy_of(event())
    renamed = MeetingCopy(owner="alice.smith@acme.test", ical_uid="uid-1", items=before.items,
                          key_owner=OWNER)
    assert renamed.key == before.key
    assert MeetingCopy(owner="alice.smith@acme.test", ical_uid="uid-1").key != before.key


def test_two_addresses_of_one_user_share_the_event_while_either_has_the_meeting() -> None:
    """Copies of two configured addresses of one Salesforce User share a key: one dropping the
    meeting does not delete the Event the other still wants, whatever their order."""
    second = "alice.two@acme.test"
    kept = copy_of(event())
    dropped = MeetingCopy(owner=second, ical_uid="uid-1", key_owner=OWNER)  # gone from its calendar
    assert dropped.key == kept.key
    known = {kept.key: written_before(kept)}
    answers = directory(contact())
    answers = Directory(contacts=answers.contacts, users={**answers.users, second: answers.users[OWNER]})
    for order in ([kept, dropped], [dropped, kept]):
        (op,) = plan(order, known, answers, settings(), NOW).operations
        assert isinstance(op, Update) and op.copy.owner == OWNER
    (op,) = plan([dropped], known, answers, settings(), NOW).operations
    assert isinstance(op, Delete)
