"""Converted Leads (issue 16b): the Lead's address stands for the Contact it became.

Salesforce moves a converted Lead's activities to its Contact, which may be an existing one
with another address (reference B10); calsync follows, finding that Contact through
ConvertedContactId rather than by email.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from planner_builders import (
    CLIENT,
    OTHER_CLIENT,
    OWNER,
    contact,
    converted,
    copy_of,
    directory,
    event,
    lead,
    opportunity,
    plan_all,
    plan_one,
    written,
)

from calsync.core.model import Create, Delete, Update

HANK = contact("003000000000009AAA", email="bob.b@client.test", account_id="001000000000009AAA")


def test_a_converted_leads_address_names_the_contact_it_became() -> None:
    op = plan_one(copy_of(event()), answers=directory(converted(into=HANK)))
    assert isinstance(op, Create) and op.fields.who_id == HANK.id
    assert op.fields.what_id == HANK.account_id  # Related To as the rules give for that Contact


def test_the_contacts_primary_opportunity_is_related_to() -> None:
    answers = directory(converted(into=HANK, opportunity_id="006NEW"),
                        opportunities=[opportunity("006NEW", contact_id=HANK.id)])
    op = plan_one(copy_of(event()), answers=answers)
    assert isinstance(op, Create) and (op.fields.who_id, op.fields.what_id) == (HANK.id, "006NEW")


def test_an_event_named_after_the_lead_follows_it_to_its_contact() -> None:
    before = written(plan_one(copy_of(event()), answers=directory(lead())))
    op = plan_one(copy_of(event()), previous=before, answers=directory(converted(into=HANK)))
    assert isinstance(op, Update) and op.fields.who_id == HANK.id  # kept, never deleted


def test_a_contact_with_the_address_itself_comes_first() -> None:
    own = contact("003000000000001AAA", email=CLIENT)
    op = plan_one(copy_of(event()), answers=directory(own, converted(into=HANK)))
    assert isinstance(op, Create) and op.fields.who_id == own.id


def test_a_converted_lead_is_a_contact_before_any_lead() -> None:
    answers = directory(lead("00QDANA", email=OTHER_CLIENT), converted(into=HANK))
    meeting = event(attendees=(OWNER, OTHER_CLIENT, CLIENT))
    assert plan_one(copy_of(meeting), answers=answers).fields.who_id == HANK.id


def test_two_leads_of_one_address_converted_into_two_contacts_take_the_oldest_with_a_warning() -> None:
    older = contact("003000000000007AAA", email="x@client.test", created="2019-01-01T00:00:00.000+0000")
    answers = directory(converted("00Q1", into=HANK), converted("00Q2", into=older))
    result = plan_all(copy_of(event()), answers=answers)
    assert result.operations[0].fields.who_id == older.id
    assert any("converted Leads" in w for w in result.warnings)


@settings(max_examples=100, deadline=None)
@given(with_opportunity=st.booleans(), organizer_is_the_lead=st.booleans(), written_before=st.booleans())
def test_a_meeting_of_a_converted_lead_is_never_dropped(with_opportunity, organizer_is_the_lead, written_before):
    # Whoever organised it and whatever the conversion made, the meeting keeps an Event naming
    # the Contact: created, or the one written before updated, never deleted.
    opps = [opportunity("006NEW", contact_id=HANK.id)] if with_opportunity else []
    answers = directory(converted(into=HANK, opportunity_id="006NEW" if with_opportunity else None),
                        opportunities=opps)
    meeting = event(organizer=CLIENT if organizer_is_the_lead else OWNER, attendees=(OWNER, CLIENT))
    before = written(plan_one(copy_of(meeting), answers=directory(lead()))) if written_before else None
    op = plan_one(copy_of(meeting), previous=before, answers=answers)
    assert not isinstance(op, Delete)
    assert isinstance(op, Update if written_before else Create) and op.fields.who_id == HANK.id
    assert op.fields.what_id == ("006NEW" if with_opportunity else HANK.account_id)
