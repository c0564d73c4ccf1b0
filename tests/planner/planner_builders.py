"""Small builders so planner tests read like the rules: events, series, directory, settings.

Defaults describe one ordinary meeting: Alice (a configured user at acme.test) meets Bob
(bob@client.test) on Monday 12 Jan 2026 15:00-16:00 UTC; "now" is Saturday 10 Jan 2026 noon.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from calsync.core.model import (
    Contact,
    Conversion,
    Create,
    Directory,
    EventTime,
    GoogleEvent,
    Lead,
    MeetingCopy,
    Operation,
    Opportunity,
    Person,
    PlanSettings,
    Update,
    Written,
)
from calsync.rules.planner import Plan, plan

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 1, 10, 12, 0, tzinfo=UTC)

OWNER = "alice@acme.test"
OWNER_ID = "005000000000001AAA"
COLLEAGUE = "carol@acme.test"
COLLEAGUE_ID = "005000000000002AAA"
CLIENT = "bob@client.test"
OTHER_CLIENT = "dana@other.test"


def at(day: int, hour: int = 15, minute: int = 0, month: int = 1, year: int = 2026) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=UTC)


def when(start: dt.datetime, minutes: int = 60) -> dict[str, EventTime]:
    """start/end keyword arguments of a timed event."""
    return {
        "start": EventTime(date_time=start),
        "end": EventTime(date_time=start + dt.timedelta(minutes=minutes)),
    }


def all_day(first: dt.date, days: int = 1) -> dict[str, EventTime]:
    """start/end keyword arguments of an all-day event (Google's end date is exclusive)."""
    return {"start": EventTime(date=first), "end": EventTime(date=first + dt.timedelta(days=days))}


def person(email: str, **kwargs: Any) -> Person:
    return Person(email=email, **kwargs)


def _people(attendees: Iterable[str | Person], owner: str) -> tuple[Person, ...]:
    people = []
    for attendee in attendees:
        if isinstance(attendee, Person):
            people.append(attendee)
        elif attendee == owner:
            people.append(Person(email=attendee, self=True, response_status="accepted"))
        else:
            people.append(Person(email=attendee))
    return tuple(people)


_UNSET: Any = object()


def event(
    id: str = "ev1",
    *,
    uid: str = "uid-1",
    summary: str | None = "Demo",
    start: dt.datetime | EventTime | None = at(12),
    minutes: int = 60,
    end: EventTime | None = _UNSET,
    organizer: str | Person | None = OWNER,
    attendees: Iterable[str | Person] = (OWNER, CLIENT),
    owner: str = OWNER,
    **kwargs: Any,
) -> GoogleEvent:
    """A confirmed meeting, timed `minutes` long from `start` unless `end` is given.

    Attendees given as strings become plain attendees (the owner: self, accepted); keyword
    arguments set any other GoogleEvent field.
    """
    if isinstance(start, dt.datetime):
        start_time: EventTime | None = EventTime(date_time=start)
        end_time = EventTime(date_time=start + dt.timedelta(minutes=minutes))
    else:
        start_time, end_time = start, None
    if end is not _UNSET:
        end_time = end
    if isinstance(organizer, str):
        organizer = Person(email=organizer, self=organizer == owner)
    return GoogleEvent(
        id=id,
        ical_uid=uid,
        summary=summary,
        start=start_time,
        end=end_time,
        organizer=organizer,
        attendees=_people(attendees, owner),
        **kwargs,
    )


def series(
    rule: str = "RRULE:FREQ=WEEKLY;COUNT=10", *extra: str, start: dt.datetime = at(12), **kwargs: Any
) -> GoogleEvent:
    """A series master: its start/end are the first instance's (reference A4)."""
    return event("series1", start=start, recurrence=(rule, *extra), **kwargs)


def moved(slot: dt.datetime, to: dt.datetime, **kwargs: Any) -> GoogleEvent:
    """A modified occurrence of series1 that was in `slot` and now starts at `to`."""
    suffix = slot.strftime("%Y%m%dT%H%M%SZ")
    return event(
        f"series1_{suffix}",
        start=to,
        recurring_event_id="series1",
        original_start=EventTime(date_time=slot),
        **kwargs,
    )


def cancelled(slot: dt.datetime) -> GoogleEvent:
    """A cancelled occurrence of series1: only id, recurringEventId, originalStartTime (A3)."""
    return GoogleEvent(
        id=f"series1_{slot.strftime('%Y%m%dT%H%M%SZ')}",
        status="cancelled",
        recurring_event_id="series1",
        original_start=EventTime(date_time=slot),
    )


def deleted(id: str = "ev1") -> GoogleEvent:
    """A deleted event: only its id is guaranteed (reference A3)."""
    return GoogleEvent(id=id, status="cancelled")


def copy_of(*items: GoogleEvent, owner: str = OWNER, uid: str = "uid-1") -> MeetingCopy:
    return MeetingCopy(owner=owner, ical_uid=uid, items=items)


def contact(
    id: str = "003000000000001AAA",
    email: str = CLIENT,
    created: str = "2020-01-01T00:00:00.000+0000",
    account_id: str | None = None,
) -> Contact:
    return Contact(id=id, email=email, created_date=created, account_id=account_id)


def lead(
    id: str = "00Q000000000001AAA",
    email: str = CLIENT,
    created: str = "2020-01-01T00:00:00.000+0000",
) -> Lead:
    return Lead(id=id, email=email, created_date=created)


def opportunity(
    id: str, contact_id: str = "003000000000001AAA", is_closed: bool = False,
    close_date: str | None = None,
) -> Opportunity:
    return Opportunity(id=id, contact_id=contact_id, is_closed=is_closed, close_date=close_date)


def converted(
    lead_id: str = "00Q000000000001AAA",
    email: str = CLIENT,
    into: Contact | None = None,
    opportunity_id: str | None = None,
) -> Conversion:
    """A Lead with address `email`, converted into `into` (a Contact with another address by
    default), with its Account and, when given, a new Opportunity (reference B10)."""
    into = into or contact("003000000000009AAA", email="bob.b@client.test", account_id="001000000000009AAA")
    return Conversion(
        Lead(lead_id, email, "2020-01-01T00:00:00.000+0000", converted_contact_id=into.id,
             converted_account_id=into.account_id, converted_opportunity_id=opportunity_id, is_converted=True),
        into,
    )


def directory(*records: Contact | Lead | Conversion, opportunities: Iterable[Opportunity] = ()) -> Directory:
    """A directory holding these Contacts/Leads (keyed by lowercased email; a converted Lead by
    its own) and both users."""
    contacts: dict[str, tuple[Contact, ...]] = {}
    leads: dict[str, tuple[Lead, ...]] = {}
    conversions: dict[str, tuple[Conversion, ...]] = {}
    for record in records:
        if isinstance(record, Conversion):
            address = record.lead.email.lower()
            conversions[address] = (*conversions.get(address, ()), record)
            continue
        address = record.email.lower()
        if isinstance(record, Contact):
            contacts[address] = (*contacts.get(address, ()), record)
        else:
            leads[address] = (*leads.get(address, ()), record)
    by_contact: dict[str, tuple[Opportunity, ...]] = {}
    for opp in opportunities:
        by_contact[opp.contact_id] = (*by_contact.get(opp.contact_id, ()), opp)
    return Directory(
        contacts=contacts,
        leads=leads,
        converted=conversions,
        primary_opportunities=by_contact,
        users={OWNER: OWNER_ID, COLLEAGUE: COLLEAGUE_ID},
    )


def settings(**kwargs: Any) -> PlanSettings:
    values: dict[str, Any] = {
        "internal_domains": frozenset({"acme.test"}),
        "configured_users": frozenset({OWNER, COLLEAGUE}),
    }
    values.update(kwargs)
    return PlanSettings(**values)


def plan_one(
    copy: MeetingCopy,
    previous: Written | None = None,
    answers: Directory | None = None,
    config: PlanSettings | None = None,
    now: dt.datetime = NOW,
) -> Operation:
    """Plan one copy (Bob is a Contact unless `answers` says otherwise) and return its one op."""
    result = plan_all(copy, previous=previous, answers=answers, config=config, now=now)
    assert len(result.operations) == 1
    return result.operations[0]


def plan_all(
    copy: MeetingCopy,
    previous: Written | None = None,
    answers: Directory | None = None,
    config: PlanSettings | None = None,
    now: dt.datetime = NOW,
) -> Plan:
    known = {} if previous is None else {previous.key: previous}
    return plan(
        [copy],
        known,
        answers if answers is not None else directory(contact()),
        config if config is not None else settings(),
        now,
    )


def written(op: Operation, sf_id: str = "00U000000000001AAA") -> Written:
    """What the state store would hold after `op` (a Create or Update) went through."""
    assert isinstance(op, (Create, Update))
    return Written(
        key=op.key,
        owner=op.copy.owner,
        ical_uid=op.copy.ical_uid,
        sf_id=op.sf_id if isinstance(op, Update) else sf_id,
        fingerprint=op.fields.fingerprint(),
    )


def written_before(copy: MeetingCopy, sf_id: str | None = "00U000000000001AAA") -> Written:
    """A previous write for this copy with a fingerprint nothing will match."""
    return Written(
        key=copy.key, owner=copy.owner, ical_uid=copy.ical_uid, sf_id=sf_id, fingerprint="old"
    )
