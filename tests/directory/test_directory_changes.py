"""The pure parts of directory.py: which addresses and ids a change names, and what the meeting
index holds for a planned meeting (by the planner's own Name and Related To rules)."""

from __future__ import annotations

import datetime as dt

from calsync.engine.directory import DirectoryChanges, index_entry
from calsync.core.model import (
    Contact,
    Directory,
    EventTime,
    GoogleEvent,
    Lead,
    MeetingCopy,
    Opportunity,
    Person,
    PlanSettings,
)
from calsync.salesforce.org import ChangedRecord

UTC = dt.timezone.utc
STAMP = dt.datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
START = dt.datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
OWNER = "alice@acme.test"
HANK = "003RO0000000001AAA"
MARGE = "003RO0000000002AAA"
ZOE = "00QRO0000000001AAA"
RENEWAL = "006RO0000000001AAA"
GLOBEX = "001RO0000000001AAA"
SETTINGS = PlanSettings(internal_domains=frozenset({"acme.test"}), configured_users=frozenset({OWNER}))


def meeting(*guests: str, uid: str = "uid-1", organizer: str = OWNER, **fields: object) -> MeetingCopy:
    item = GoogleEvent(
        id="ev1", ical_uid=uid, summary="Renewal",
        start=EventTime(date_time=START), end=EventTime(date_time=START + dt.timedelta(hours=1)),
        organizer=Person(organizer, self=organizer == OWNER),
        attendees=(Person(OWNER, self=True, response_status="accepted"), *(Person(g) for g in guests)),
        **fields,  # type: ignore[arg-type]
    )
    return MeetingCopy(OWNER, uid, (item,))


def answers(*records: Contact | Lead, opportunities: tuple[Opportunity, ...] = ()) -> Directory:
    contacts = {r.email: (r,) for r in records if isinstance(r, Contact)}
    leads = {r.email: (r,) for r in records if isinstance(r, Lead)}
    by_contact: dict[str, tuple[Opportunity, ...]] = {}
    for opp in opportunities:
        by_contact[opp.contact_id] = (*by_contact.get(opp.contact_id, ()), opp)
    return Directory(contacts=contacts, leads=leads, primary_opportunities=by_contact, users={OWNER: "005x"})


def test_changed_contacts_and_leads_give_their_address_and_15_char_id():
    changes = DirectoryChanges.from_answers(
        contacts=[ChangedRecord(HANK, STAMP, email="Hank@Globex.test")],
        leads=[ChangedRecord(ZOE, STAMP, email="zoe@soylent.test", linked=(MARGE,))],
        roles=[],
    )
    assert changes.addresses == {"hank@globex.test", "zoe@soylent.test"}
    assert changes.record_ids == {HANK[:15], ZOE[:15], MARGE[:15]}


def test_changed_roles_give_their_contact_and_opportunity_not_their_own_id():
    changes = DirectoryChanges.from_answers([], [], [ChangedRecord("00KRO0000000001AAA", STAMP, linked=(HANK, RENEWAL))])
    assert changes == DirectoryChanges(frozenset(), frozenset({HANK[:15], RENEWAL[:15]}))


def test_no_answers_no_changes():
    assert DirectoryChanges.from_answers([], [], []).empty


def test_index_entry_of_a_contact_meeting_holds_candidates_name_and_opportunity():
    copy = meeting("hank@globex.test", "marge@globex.test", "bob@acme.test")
    entry = index_entry(copy, answers(
        Contact(HANK, "hank@globex.test", "2020", GLOBEX),
        opportunities=(Opportunity(RENEWAL, HANK, is_closed=False),),
    ), SETTINGS)
    assert entry.addresses == {"hank@globex.test", "marge@globex.test"}
    assert entry.record_ids == {HANK, RENEWAL}
    assert (entry.user, entry.ical_uid, entry.start) == (OWNER, "uid-1", START)


def test_index_entry_without_an_opportunity_holds_the_account():
    entry = index_entry(meeting("hank@globex.test"), answers(Contact(HANK, "hank@globex.test", "2020", GLOBEX)),
                        SETTINGS)
    assert entry.record_ids == {HANK, GLOBEX}


def test_index_entry_keeps_the_addresses_of_a_meeting_without_contact_or_lead():
    entry = index_entry(meeting("newbie@initech.test"), answers(), SETTINGS)
    assert entry.addresses == {"newbie@initech.test"} and entry.record_ids == frozenset()
    assert not entry.empty


def test_index_entry_of_a_lead_meeting_holds_the_lead_only():
    entry = index_entry(meeting("zoe@soylent.test"), answers(Lead(ZOE, "zoe@soylent.test", "2020")), SETTINGS)
    assert entry.record_ids == {ZOE}


def test_shared_activities_index_every_contact_of_the_meeting():
    directory = answers(Contact(HANK, "hank@globex.test", "2020"), Contact(MARGE, "marge@globex.test", "2020"))
    copy = meeting("hank@globex.test", "marge@globex.test")
    assert index_entry(copy, directory, SETTINGS).record_ids == {HANK}
    shared = PlanSettings(SETTINGS.internal_domains, SETTINGS.configured_users, shared_activities=True)
    assert index_entry(copy, directory, shared).record_ids == {HANK, MARGE}


def test_a_meeting_calsync_does_not_sync_has_an_empty_entry():
    assert index_entry(meeting("hank@globex.test", visibility="private"), answers(), SETTINGS).empty
    assert index_entry(MeetingCopy(OWNER, "gone", ()), answers(), SETTINGS).empty
