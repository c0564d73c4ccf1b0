"""Invitations from outside (issue 16c): a meeting organised by someone who is neither internal
nor a Contact or Lead counts only once its owner accepted it or answered maybe; one organised by
an internal user, a Contact or a Lead counts answered or not."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from planner_builders import (
    CLIENT,
    COLLEAGUE,
    OWNER,
    contact,
    converted,
    copy_of,
    directory,
    event,
    lead,
    person,
    plan_one,
    written,
)
from planner_builders import settings as plan_settings

from calsync.core.model import Create, Delete, Skip
from calsync.rules.planner import NOT_ACCEPTED, name_candidates
from calsync.rules.planner.selection import accepted_by_owner

STRANGER = "events@conference.test"


def invitation(answer: str, organizer: str = STRANGER, *, by_address: bool = False, **kwargs):
    me = person(OWNER, self=not by_address, response_status=answer)
    return copy_of(event(organizer=organizer, attendees=(person(organizer, organizer=True), me, CLIENT), **kwargs))


def test_a_strangers_unanswered_invitation_with_a_customer_is_not_logged() -> None:
    op = plan_one(invitation("needsAction"))  # Bob, the customer, is a Contact
    assert isinstance(op, Skip) and op.reason == NOT_ACCEPTED


def test_once_the_owner_accepts_or_answers_maybe_it_is_logged() -> None:
    for answer in ("accepted", "tentative"):
        op = plan_one(invitation(answer))
        assert isinstance(op, Create) and op.fields.who_id == contact().id


def test_the_owners_answer_is_found_by_address_too() -> None:
    assert isinstance(plan_one(invitation("accepted", by_address=True)), Create)
    no_entry = copy_of(event(organizer=STRANGER, attendees=(STRANGER, CLIENT)))
    assert isinstance(plan_one(no_entry), Skip)  # no answer of theirs at all: not accepted


def test_invitations_from_contacts_leads_and_colleagues_are_logged_unanswered() -> None:
    assert isinstance(plan_one(invitation("needsAction", organizer=CLIENT)), Create)  # a Contact
    host = "host@prospect.test"
    answers = directory(lead("00QHOST", email=host), contact())
    assert isinstance(plan_one(invitation("needsAction", organizer=host), answers=answers), Create)
    assert isinstance(plan_one(invitation("needsAction", organizer=COLLEAGUE)), Create)  # a calsync user
    assert isinstance(plan_one(invitation("needsAction", organizer="boss@acme.test")), Create)  # internal
    answers = directory(converted(email=host), contact())  # a converted Lead is its Contact
    assert isinstance(plan_one(invitation("needsAction", organizer=host), answers=answers), Create)


def test_an_excluded_organizer_is_an_outsider() -> None:
    op = plan_one(invitation("needsAction", organizer="noreply@zoom.test"), config=plan_settings(exclude=("noreply@*",)))
    assert isinstance(op, Skip) and op.reason == NOT_ACCEPTED


def test_an_outside_organizer_who_declined_is_still_looked_up() -> None:
    # A declined organizer is no Name, but being a Contact they make the meeting count.
    host = "host@client.test"
    declined = event(organizer=host, attendees=(person(host, organizer=True, response_status="declined"),
                                                 person(OWNER, self=True), CLIENT))
    (ranks,) = name_candidates([copy_of(declined)], plan_settings())
    assert ranks.host == host and ranks.organizer is None
    answers = directory(contact("003HOST", email=host), contact())
    op = plan_one(copy_of(declined), answers=answers)
    assert isinstance(op, Create) and op.fields.who_id == contact().id
    assert isinstance(plan_one(copy_of(declined)), Skip)  # not on file: a stranger


def test_a_logged_meeting_whose_stranger_invitation_is_unanswered_goes_as_any_unwanted_one() -> None:
    before = written(plan_one(invitation("accepted")))
    op = plan_one(invitation("needsAction"), previous=before)
    assert isinstance(op, Delete) and op.reason == NOT_ACCEPTED


ORGANIZERS = {
    "stranger": STRANGER, "contact": CLIENT, "lead": "lead@prospect.test", "colleague": COLLEAGUE,
    "internal": "boss@acme.test", "owner": OWNER,
}


@settings(max_examples=120, deadline=None)
@given(kind=st.sampled_from(sorted(ORGANIZERS)), answer=st.sampled_from(["needsAction", "accepted", "tentative"]),
       flagged_only=st.booleans())
def test_only_strangers_invitations_wait_for_the_owners_answer(kind, answer, flagged_only) -> None:
    organizer = ORGANIZERS[kind]
    me = person(OWNER, self=True, response_status=answer, organizer=organizer == OWNER)
    attendees = (person(organizer, organizer=True), me, CLIENT) if organizer != OWNER else (me, CLIENT)
    # Google may name the organizer only by the attendee flag (selection.organizer_of).
    meeting = event(organizer=None if flagged_only else organizer, attendees=attendees)
    answers = directory(contact(), lead("00QLEAD", email=ORGANIZERS["lead"]))
    op = plan_one(copy_of(meeting), answers=answers)
    wanted = kind != "stranger" or accepted_by_owner(meeting, OWNER)
    assert isinstance(op, Create) == wanted
    if not wanted:
        assert isinstance(op, Skip) and op.reason == NOT_ACCEPTED
