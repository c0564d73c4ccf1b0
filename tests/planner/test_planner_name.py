"""The Name (WhoId) rule (calsync/planner/name.py)."""

from __future__ import annotations

from planner_builders import (
    CLIENT,
    COLLEAGUE,
    OTHER_CLIENT,
    OWNER,
    contact,
    copy_of,
    directory,
    event,
    lead,
    person,
    plan_all,
    plan_one,
    settings,
)

from calsync.core.model import Create, Operation

HOST = "host@client.test"


def who(op: Operation) -> str | None:
    assert isinstance(op, Create), op
    return op.fields.who_id


def test_external_organizer_is_the_name() -> None:
    answers = directory(contact("003HOST", email=HOST), contact("003BOB", email=CLIENT))
    meeting = event(organizer=HOST, attendees=(CLIENT, HOST, OWNER))
    assert who(plan_one(copy_of(meeting), answers=answers)) == "003HOST"


def test_external_organizer_who_is_a_lead_beats_attendee_contacts() -> None:
    answers = directory(lead("00QHOST", email=HOST), contact("003BOB", email=CLIENT))
    meeting = event(organizer=HOST, attendees=(CLIENT, OWNER))
    assert who(plan_one(copy_of(meeting), answers=answers)) == "00QHOST"


def test_internal_meeting_names_the_first_contact_among_attendees() -> None:
    answers = directory(contact("003DANA", email=OTHER_CLIENT), contact("003BOB", email=CLIENT))
    meeting = event(attendees=(OWNER, OTHER_CLIENT, CLIENT))
    assert who(plan_one(copy_of(meeting), answers=answers)) == "003DANA"


def test_unknown_external_organizer_falls_back_to_attendees() -> None:
    meeting = event(organizer=HOST, attendees=(OWNER, CLIENT))
    assert who(plan_one(copy_of(meeting), answers=directory(contact("003BOB")))) == "003BOB"


def test_excluded_organizer_is_not_the_name() -> None:
    answers = directory(contact("003HOST", email=HOST), contact("003BOB", email=CLIENT))
    meeting = event(organizer=HOST, attendees=(OWNER, CLIENT))
    op = plan_one(copy_of(meeting), answers=answers, config=settings(exclude=("host@*",)))
    assert who(op) == "003BOB"


def test_contact_attendee_beats_an_earlier_lead_attendee() -> None:
    answers = directory(lead("00QDANA", email=OTHER_CLIENT), contact("003BOB", email=CLIENT))
    meeting = event(attendees=(OWNER, OTHER_CLIENT, CLIENT))
    assert who(plan_one(copy_of(meeting), answers=answers)) == "003BOB"


def test_first_lead_is_the_name_when_no_contact() -> None:
    answers = directory(lead("00QDANA", email=OTHER_CLIENT), lead("00QBOB", email=CLIENT))
    meeting = event(attendees=(OWNER, OTHER_CLIENT, CLIENT))
    assert who(plan_one(copy_of(meeting), answers=answers)) == "00QDANA"


def test_address_that_is_contact_and_lead_gives_the_contact() -> None:
    answers = directory(lead("00QBOB"), contact("003BOB"))
    assert who(plan_one(copy_of(event()), answers=answers)) == "003BOB"


def test_attendee_address_matches_case_insensitively() -> None:
    meeting = event(attendees=(OWNER, person(" Bob@Client.TEST ")))
    assert who(plan_one(copy_of(meeting), answers=directory(contact("003BOB")))) == "003BOB"


def test_internal_organizer_and_colleagues_are_never_the_name() -> None:
    answers = directory(contact("003CAROL", email=COLLEAGUE), contact("003BOB"))
    meeting = event(organizer=COLLEAGUE, attendees=(COLLEAGUE, OWNER, CLIENT))
    assert who(plan_one(copy_of(meeting), answers=answers)) == "003BOB"


def test_shared_address_takes_the_oldest_contact_with_a_warning() -> None:
    answers = directory(
        contact("003NEW", created="2024-05-01T00:00:00.000+0000"),
        contact("003OLD", created="2021-05-01T00:00:00.000+0000"),
    )
    result = plan_all(copy_of(event()), answers=answers)
    assert who(result.operations[0]) == "003OLD"
    assert len(result.warnings) == 1 and CLIENT in result.warnings[0]


def test_shared_address_same_age_takes_the_lowest_id() -> None:
    answers = directory(lead("00QB"), lead("00QA"))
    assert who(plan_one(copy_of(event()), answers=answers)) == "00QA"


def test_one_contact_per_address_gives_no_warning() -> None:
    assert plan_all(copy_of(event())).warnings == ()


def test_shared_activities_relate_every_contact_with_the_name_first():
    from planner_builders import OWNER, contact, copy_of, directory, event, plan_one, settings

    meeting = event(attendees=[OWNER, "a@cust.test", "lead@cust.test", "b@cust.test"])
    found = directory(contact("003A", "a@cust.test"), contact("003B", "b@cust.test"))
    op = plan_one(copy_of(meeting), answers=found, config=settings(shared_activities=True))
    assert op.fields.who_id == "003A"
    assert op.fields.to_salesforce()["EventWhoIds"] == ["003A", "003B"]


def test_shared_activities_stop_at_fifty_contacts():
    from planner_builders import OWNER, contact, copy_of, directory, event, plan_one, settings

    guests = [f"g{i:02d}@cust.test" for i in range(60)]
    found = directory(*(contact(f"003{i:02d}", g) for i, g in enumerate(guests)))
    op = plan_one(copy_of(event(attendees=[OWNER, *guests])), answers=found, config=settings(shared_activities=True))
    assert len(op.fields.who_ids) == 50 and op.fields.who_ids[0] == "00300"


def test_shared_activities_over_fifty_contacts_warn_once_naming_the_meeting():
    from planner_builders import OWNER, contact, copy_of, directory, event, plan_all, settings

    guests = [f"g{i:02d}@cust.test" for i in range(60)]
    found = directory(*(contact(f"003{i:02d}", g) for i, g in enumerate(guests)))
    meeting = event("big1", summary="All hands", attendees=[OWNER, *guests])
    planned = plan_all(copy_of(meeting), answers=found, config=settings(shared_activities=True))
    assert len(planned.warnings) == 1
    assert "'All hands'" in planned.warnings[0] and "big1" in planned.warnings[0]
    assert "10 were left out" in planned.warnings[0]


def test_shared_activities_with_a_lead_name_relate_the_lead_alone():
    from planner_builders import OWNER, copy_of, directory, event, lead, plan_one, settings

    meeting = event(attendees=[OWNER, "lead@cust.test"])
    op = plan_one(copy_of(meeting), answers=directory(lead("00QA", "lead@cust.test")),
                  config=settings(shared_activities=True))
    body = op.fields.to_salesforce()
    assert body["WhoId"] == "00QA" and body["EventWhoIds"] == ["00QA"] and body["WhatId"] is None


def test_without_shared_activities_no_event_who_ids_are_written():
    from planner_builders import OWNER, contact, copy_of, directory, event, plan_one

    found = directory(contact("003A", "a@cust.test"), contact("003B", "b@cust.test"))
    op = plan_one(copy_of(event(attendees=[OWNER, "a@cust.test", "b@cust.test"])), answers=found)
    assert "EventWhoIds" not in op.fields.to_salesforce()
