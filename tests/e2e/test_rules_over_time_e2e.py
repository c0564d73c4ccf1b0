"""Declines, Shared Activities switches and the activity Date/Time field through both emulators
(issue 8): what the Event says must follow who actually takes part, in a form Salesforce takes.
"""

from __future__ import annotations

import datetime as dt
import logging

from calsync.core import config as config_module
from calsync.service.runtime import resync
from calsync.sandbox.demo import ACTIVITY_FIELD

ALICE = "alice@acme.test"


def _at(days: int, hour: int = 10) -> dict:
    start = dt.datetime.now(dt.timezone.utc).replace(hour=hour, minute=0, second=0, microsecond=0)
    start += dt.timedelta(days=days)
    fmt = lambda t: t.isoformat().replace("+00:00", "Z")  # noqa: E731
    return {"start": {"dateTime": fmt(start), "timeZone": "UTC"},
            "end": {"dateTime": fmt(start + dt.timedelta(hours=1)), "timeZone": "UTC"}}


def _events(sf_emu, subject: str) -> list[dict]:
    return [r for r in sf_emu.backend.list_records("Event") if r["Subject"] == subject]


def _same(a, b) -> bool:
    return (a or "")[:15] == (b or "")[:15]


# -- declines ----------------------------------------------------------------------------------


def test_a_contact_who_declined_is_not_the_name(sync, make_config, sf_emu, google_emu, company):
    made = google_emu.backend.create_event(ALICE, {
        "summary": "Globex sync", "attendees": [ALICE, "hank@globex.test", "marge@globex.test"], **_at(2)})
    path = make_config()
    assert sync(path).ok
    (row,) = _events(sf_emu, "Globex sync")
    assert _same(row["WhoId"], company.contact_ids["hank@globex.test"])
    google_emu.backend.respond("hank@globex.test", made["id"], "declined")
    assert sync(path).ok
    (row,) = _events(sf_emu, "Globex sync")
    assert _same(row["WhoId"], company.contact_ids["marge@globex.test"])


def test_a_meeting_whose_only_contact_declined_is_not_logged(sync, make_config, sf_emu, google_emu):
    made = google_emu.backend.create_event(ALICE, {
        "summary": "Ada one-on-one", "attendees": [ALICE, "ada@umbrella.test"], **_at(2)})
    path = make_config()
    assert sync(path).ok
    assert len(_events(sf_emu, "Ada one-on-one")) == 1
    google_emu.backend.respond("ada@umbrella.test", made["id"], "declined")
    assert sync(path).ok
    assert _events(sf_emu, "Ada one-on-one") == []


def test_an_owner_declining_only_the_first_occurrence_keeps_the_series(sync, make_config, sf_emu, google_emu):
    first = _at(2)
    master = google_emu.backend.create_event(ALICE, {
        "summary": "Weekly Globex", "attendees": [ALICE, "hank@globex.test"], **first,
        "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=5"]})
    path = make_config()
    assert sync(path).ok
    slot = dt.datetime.fromisoformat(first["start"]["dateTime"].replace("Z", "+00:00"))
    google_emu.backend.respond(ALICE, f"{master['id']}_{slot:%Y%m%dT%H%M%SZ}", "declined")
    assert sync(path).ok
    (row,) = _events(sf_emu, "Weekly Globex")
    assert row["StartDateTime"].startswith((slot + dt.timedelta(days=7)).strftime("%Y-%m-%dT%H:%M"))
    google_emu.backend.respond(ALICE, master["id"], "declined")  # the whole series now
    assert sync(path).ok
    assert _events(sf_emu, "Weekly Globex") == []


# -- Shared Activities -------------------------------------------------------------------------


def _relations(sf_emu, event_id: str) -> set[str]:
    rows = sf_emu.backend.list_records("EventRelation")
    return {r["RelationId"][:15] for r in rows if r["EventId"] == event_id and not r.get("IsWhat")}


def test_the_name_switches_between_contacts_and_a_lead_both_ways(sync, make_config, sf_emu, google_emu, company):
    sf_emu.backend.shared_activities = True
    contacts = ["bill@initech.test", "peter@initech.test"]
    made = google_emu.backend.create_event(ALICE, {
        "summary": "Initech and Soylent", "attendees": [ALICE, *contacts], **_at(3)})
    path = make_config(sync={"shared_activities": True})
    assert sync(path).ok
    (row,) = _events(sf_emu, "Initech and Soylent")
    assert _relations(sf_emu, row["Id"]) == {company.contact_ids[c][:15] for c in contacts}
    # The Contacts leave and a Lead comes: the Name becomes the Lead, alone, with no Related To.
    google_emu.backend.update_event(made["id"], {"attendees": [ALICE, "zoe@soylent.test"]})
    result = sync(path)
    assert result.ok and sum(c.failed for c in result.calendars.values()) == 0
    (row,) = _events(sf_emu, "Initech and Soylent")
    assert _same(row["WhoId"], company.lead_ids["zoe@soylent.test"]) and row["WhatId"] is None
    assert _relations(sf_emu, row["Id"]) == {company.lead_ids["zoe@soylent.test"][:15]}
    # And back to the Contacts.
    google_emu.backend.update_event(made["id"], {"attendees": [ALICE, *contacts]})
    result = sync(path)
    assert result.ok and sum(c.failed for c in result.calendars.values()) == 0
    (row,) = _events(sf_emu, "Initech and Soylent")
    assert _same(row["WhoId"], company.contact_ids["bill@initech.test"])
    assert _relations(sf_emu, row["Id"]) == {company.contact_ids[c][:15] for c in contacts}


def test_over_fifty_contacts_relate_the_first_fifty_and_warn_once(sync, make_config, sf_emu, google_emu, caplog):
    sf_emu.backend.shared_activities = True
    guests = [f"guest{i:02d}@bigco.test" for i in range(55)]
    for guest in guests:
        sf_emu.backend.create_record("Contact", {"LastName": guest, "Email": guest})
    google_emu.backend.create_event(ALICE, {"summary": "Big webinar", "attendees": [ALICE, *guests], **_at(4)})
    with caplog.at_level(logging.WARNING):
        assert sync(make_config(sync={"shared_activities": True})).ok
    (row,) = _events(sf_emu, "Big webinar")
    assert len(_relations(sf_emu, row["Id"])) == 50
    warned = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert len(warned) == 1 and "'Big webinar'" in warned[0] and "5 were left out" in warned[0]


# -- the activity Date/Time field ----------------------------------------------------------------


def test_all_day_activity_datetime_is_midnight_in_the_calendars_zone(sync, sf_emu):
    assert sync().ok
    # The demo's all-day onsite is on Bob's calendar, whose zone is America/New_York.
    (row,) = _events(sf_emu, "Globex onsite")
    day = dt.date.fromisoformat(row["ActivityDate"])
    midnight_new_york = dt.datetime.combine(day, dt.time(5)) if not _summer(day) else dt.datetime.combine(day, dt.time(4))
    assert row[ACTIVITY_FIELD].startswith(midnight_new_york.strftime("%Y-%m-%dT%H:%M"))


def _summer(day: dt.date) -> bool:
    from zoneinfo import ZoneInfo

    offset = dt.datetime.combine(day, dt.time(), ZoneInfo("America/New_York")).utcoffset()
    return offset == dt.timedelta(hours=-4)


def test_resync_never_writes_the_activity_field_retroactively(sync, make_config, sf_emu):
    before = make_config(sync={"activity_datetime_field": None})
    assert sync(before).ok
    assert all(r.get(ACTIVITY_FIELD) is None for r in sf_emu.backend.list_records("Event"))
    after = make_config()  # the field is configured from now on
    result = resync(config_module.load(after))
    assert result.ok and [c for c in result.changes if c.action == "update"] == []
    assert all(r.get(ACTIVITY_FIELD) is None for r in sf_emu.backend.list_records("Event"))


# -- invitations from outside (issue 16c) ------------------------------------------------------

STRANGER = "events@conference.test"


def test_a_strangers_invitation_is_logged_only_once_its_owner_accepts(sync, make_config, sf_emu, google_emu, company):
    # Organised by someone neither internal nor a Contact or Lead, with a customer Contact as a
    # guest: each owner's Event waits for that owner's own answer.
    made = google_emu.backend.create_event(STRANGER, {
        "summary": "Partner summit prep", "attendees": [STRANGER, ALICE, "bob@acme.test", "marge@globex.test"],
        **_at(3)})
    path = make_config()
    assert sync(path).ok
    assert _events(sf_emu, "Partner summit prep") == []
    google_emu.backend.respond("bob@acme.test", made["id"], "tentative")  # "maybe" counts
    assert sync(path).ok
    (row,) = _events(sf_emu, "Partner summit prep")
    assert _same(row["OwnerId"], company.sf_user_ids["bob@acme.test"])
    assert _same(row["WhoId"], company.contact_ids["marge@globex.test"])
    google_emu.backend.respond(ALICE, made["id"], "accepted")
    assert sync(path).ok
    owners = sorted(r["OwnerId"][:15] for r in _events(sf_emu, "Partner summit prep"))
    assert owners == sorted(company.sf_user_ids[u][:15] for u in (ALICE, "bob@acme.test"))


def test_invitations_from_contacts_and_colleagues_are_logged_unanswered(sync, make_config, sf_emu, google_emu, company):
    google_emu.backend.create_event("hank@globex.test", {
        "summary": "Hank's review", "attendees": ["hank@globex.test", ALICE, "marge@globex.test"], **_at(3)})
    google_emu.backend.create_event("carol@acme.test", {
        "summary": "Carol's account plan", "attendees": ["carol@acme.test", ALICE, "marge@globex.test"], **_at(4)})
    assert sync(make_config()).ok
    (hanks,) = _events(sf_emu, "Hank's review")  # Alice has not answered: logged as before
    assert _same(hanks["WhoId"], company.contact_ids["hank@globex.test"])
    assert len(_events(sf_emu, "Carol's account plan")) == 2  # Carol's and Alice's


def test_a_logged_strangers_invitation_the_owner_no_longer_accepts_goes_like_any_other(
    sync, make_config, sf_emu, google_emu
):
    made = google_emu.backend.create_event(STRANGER, {
        "summary": "Summit follow-up", "attendees": [STRANGER, ALICE, "marge@globex.test"], **_at(5)})
    google_emu.backend.respond(ALICE, made["id"], "accepted")
    path = make_config()
    assert sync(path).ok
    assert len(_events(sf_emu, "Summit follow-up")) == 1
    google_emu.backend.respond(ALICE, made["id"], "needsAction")
    assert sync(path).ok
    assert _events(sf_emu, "Summit follow-up") == []  # nobody had edited it: deleted
