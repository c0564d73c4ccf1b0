"""The Related To (WhatId) rule (calsync/planner/related_to.py)."""

from __future__ import annotations

from planner_builders import CLIENT, contact, copy_of, directory, event, lead, opportunity, plan_one

from calsync.core.model import Create, Directory, Operation, Opportunity

BOB = "003000000000001AAA"


def what(op: Operation) -> str | None:
    assert isinstance(op, Create), op
    return op.fields.what_id


def with_opportunities(*opps: Opportunity, account_id: str | None = "001BOB") -> Directory:
    return directory(contact(BOB, account_id=account_id), opportunities=opps)


def test_primary_contact_opportunity_is_related_to() -> None:
    answers = with_opportunities(opportunity("006A", BOB))
    assert what(plan_one(copy_of(event()), answers=answers)) == "006A"


def test_open_opportunity_beats_closed_one() -> None:
    answers = with_opportunities(
        opportunity("006CLOSED", BOB, is_closed=True, close_date="2026-06-01"),
        opportunity("006OPEN", BOB, close_date="2025-01-01"),
    )
    assert what(plan_one(copy_of(event()), answers=answers)) == "006OPEN"


def test_latest_close_date_wins_among_open_opportunities() -> None:
    answers = with_opportunities(
        opportunity("006EARLY", BOB, close_date="2026-02-01"),
        opportunity("006LATE", BOB, close_date="2026-09-01"),
        opportunity("006NODATE", BOB),
    )
    assert what(plan_one(copy_of(event()), answers=answers)) == "006LATE"


def test_lowest_id_breaks_a_close_date_tie() -> None:
    answers = with_opportunities(
        opportunity("006B", BOB, close_date="2026-02-01"),
        opportunity("006A", BOB, close_date="2026-02-01"),
    )
    assert what(plan_one(copy_of(event()), answers=answers)) == "006A"


def test_no_opportunity_relates_to_the_contacts_account() -> None:
    assert what(plan_one(copy_of(event()), answers=with_opportunities())) == "001BOB"


def test_no_opportunity_no_account_leaves_related_to_empty() -> None:
    answers = with_opportunities(account_id=None)
    assert what(plan_one(copy_of(event()), answers=answers)) is None


def test_other_contacts_opportunity_is_not_related_to() -> None:
    answers = with_opportunities(opportunity("006DANA", "003DANA"))
    assert what(plan_one(copy_of(event()), answers=answers)) == "001BOB"


def test_lead_name_has_no_related_to() -> None:
    answers = directory(lead("00QBOB", email=CLIENT))
    assert what(plan_one(copy_of(event()), answers=answers)) is None
