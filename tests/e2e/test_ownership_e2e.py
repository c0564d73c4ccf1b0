"""A person's edits in Salesforce are kept (issue 10), through both emulators.

A second active User stands in for the sales rep: the Salesforce emulator records them as the
Event's LastModifiedById. Times always follow Google; every other field calsync writes is the
person's once they changed it; an Event a person changed is kept with `Canceled: ` when its
meeting goes; an Event a person deleted stays deleted.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest

ALICE = "alice@acme.test"


def _at(days: int, hour: int = 10, minutes: int = 60) -> dict:
    start = dt.datetime.now(dt.timezone.utc).replace(hour=hour, minute=0, second=0, microsecond=0)
    start += dt.timedelta(days=days)
    fmt = lambda t: t.isoformat().replace("+00:00", "Z")  # noqa: E731
    return {"start": {"dateTime": fmt(start), "timeZone": "UTC"},
            "end": {"dateTime": fmt(start + dt.timedelta(minutes=minutes)), "timeZone": "UTC"}}


@pytest.fixture
def rep(sf_emu):
    return sf_emu.backend.create_user("rep@acme.test", first_name="Rita", last_name="Rep")


def _meeting(google_emu, summary: str, days: int = 3, guests=("hank@globex.test",)) -> dict:
    return google_emu.backend.create_event(ALICE, {
        "summary": summary, "description": "Agenda from Google", "attendees": [ALICE, *guests], **_at(days)})


def _event(sf_emu, predicate) -> dict:
    rows = [r for r in sf_emu.backend.list_records("Event") if predicate(r)]
    assert len(rows) == 1, rows
    return rows[0]


def _by_id(sf_emu, sf_id: str) -> dict | None:
    return next((r for r in sf_emu.backend.list_records("Event") if r["Id"] == sf_id), None)


def test_notes_and_related_to_survive_a_move_while_the_times_follow_google(
    sync, make_config, sf_emu, google_emu, company, rep, caplog
):
    made = _meeting(google_emu, "Globex pricing")
    path = make_config()
    assert sync(path).ok
    row = _event(sf_emu, lambda r: r["Subject"] == "Globex pricing")
    other_opp = sf_emu.backend.create_record("Opportunity", {
        "Name": "Globex services", "AccountId": company.account_ids["Globex"], "StageName": "Prospecting",
        "CloseDate": (dt.date.today() + dt.timedelta(days=90)).isoformat()})
    sf_emu.backend.update_record("Event", row["Id"], {
        "Description": "Agenda from Google\nNotes: they want 3-year pricing", "WhatId": other_opp}, user_id=rep)
    moved = _at(5, 14, minutes=45)
    google_emu.backend.update_event(made["id"], {**moved, "description": "New agenda from Google"})
    with caplog.at_level(logging.INFO):
        assert sync(path).ok
    after = _by_id(sf_emu, row["Id"])
    assert after["Description"] == "Agenda from Google\nNotes: they want 3-year pricing"
    assert after["WhatId"][:15] == other_opp[:15]
    assert after["StartDateTime"].startswith(moved["start"]["dateTime"][:16])
    assert after["DurationInMinutes"] == 45
    kept = [r.fields for r in caplog.records if r.getMessage() == "kept a change made in Salesforce"]
    assert len(kept) == 1 and kept[0]["fields"] == "Description,WhatId" and kept[0]["sf_id"] == row["Id"]
    # Once noted, the person's fields are left out quietly: no second log line, no read-back loop.
    google_emu.backend.update_event(made["id"], _at(6, 9))
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert sync(path).ok
    assert not [r for r in caplog.records if r.getMessage() == "kept a change made in Salesforce"]
    assert _by_id(sf_emu, row["Id"])["WhatId"][:15] == other_opp[:15]


def test_a_title_fixed_in_salesforce_survives_a_rename_in_google(sync, make_config, sf_emu, google_emu, rep):
    made = _meeting(google_emu, "mtg")
    path = make_config()
    assert sync(path).ok
    row = _event(sf_emu, lambda r: r["Subject"] == "mtg")
    sf_emu.backend.update_record("Event", row["Id"], {"Subject": "Globex: renewal kickoff"}, user_id=rep)
    google_emu.backend.update_event(made["id"], {"summary": "meeting (renamed)", **_at(4)})
    assert sync(path).ok
    after = _by_id(sf_emu, row["Id"])
    assert after["Subject"] == "Globex: renewal kickoff"
    assert after["StartDateTime"].startswith(_at(4)["start"]["dateTime"][:16])


def test_a_cancelled_meeting_keeps_an_annotated_event_and_deletes_an_untouched_one(
    sync, make_config, sf_emu, google_emu, rep, caplog
):
    noted, plain = _meeting(google_emu, "Annotated call"), _meeting(google_emu, "Plain call", days=4)
    path = make_config()
    assert sync(path).ok
    row = _event(sf_emu, lambda r: r["Subject"] == "Annotated call")
    sf_emu.backend.update_record("Event", row["Id"], {"Description": "Call notes: follow up"}, user_id=rep)
    google_emu.backend.delete_event(noted["id"])
    google_emu.backend.delete_event(plain["id"])
    with caplog.at_level(logging.INFO):
        result = sync(path)
    assert result.ok
    after = _by_id(sf_emu, row["Id"])
    assert after["Subject"] == "Canceled: Annotated call" and after["Description"] == "Call notes: follow up"
    assert not [r for r in sf_emu.backend.list_records("Event") if r["Subject"] == "Plain call"]
    marked = [r.fields for r in caplog.records if r.getMessage() == "kept an Event a person changed, marked canceled"]
    assert len(marked) == 1 and marked[0]["reason"] == "deleted" and marked[0]["kept"] == "Description"
    # Once only: the next cycles leave it be.
    assert sync(path).ok and sync(path).salesforce_calls == 0
    assert _by_id(sf_emu, row["Id"])["Subject"] == "Canceled: Annotated call"


def test_an_event_deleted_in_salesforce_is_not_recreated_by_a_change_in_google(
    sync, make_config, sf_emu, google_emu, cli
):
    made = _meeting(google_emu, "Deleted by the rep")
    path = make_config()
    assert sync(path).ok
    row = _event(sf_emu, lambda r: r["Subject"] == "Deleted by the rep")
    sf_emu.backend.delete_record("Event", row["Id"])
    google_emu.backend.update_event(made["id"], _at(6))
    assert sync(path).ok
    assert not [r for r in sf_emu.backend.list_records("Event") if r["Subject"] == "Deleted by the rep"]
    google_emu.backend.update_event(made["id"], {"summary": "Deleted by the rep (again moved)", **_at(7)})
    assert sync(path).ok
    assert not [r for r in sf_emu.backend.list_records("Event") if r["Subject"].startswith("Deleted by")]
    status = cli("--config", str(path), "status", "--json")
    assert status.returncode == 0, status.stderr
    alice = next(c for c in json.loads(status.stdout)["calendars"] if c["user"] == ALICE)
    assert [d["sf_id"] for d in alice["deleted_in_salesforce"]] == [row["Id"]]


def test_a_crash_after_an_update_landed_is_not_taken_for_a_persons_edit(sync, make_config, sf_emu, google_emu):
    from calsync.core import config as config_module
    from calsync.state.store import StateStore

    made = _meeting(google_emu, "Before the crash")
    path = make_config()
    assert sync(path).ok
    row = _event(sf_emu, lambda r: r["Subject"] == "Before the crash")
    store = StateStore(config_module.load(path).state.location)
    before = store.written([k for k in store.written_for_owner(ALICE)])
    store.close()
    google_emu.backend.update_event(made["id"], {"summary": "After the crash"})
    assert sync(path).ok
    # The update landed; now put the state back as if the process died before recording the
    # answer: the row as it was, with the hashes of the update sent (recorded before the call).
    store = StateStore(config_module.load(path).state.location)
    for w in store.written(before).values():
        store._exec("UPDATE written SET fingerprint = ?, hashes = ?, pending_hashes = ? WHERE key = ?",
                    [before[w.key].fingerprint, json.dumps(dict(before[w.key].hashes or {})),
                     json.dumps(dict(w.hashes or {})), w.key])
    store.close()
    google_emu.backend.update_event(made["id"], {"summary": "After the crash, renamed again"})
    assert sync(path).ok
    assert _by_id(sf_emu, row["Id"])["Subject"] == "After the crash, renamed again"


def test_shared_contacts_a_person_added_are_kept(sync, make_config, sf_emu, google_emu, company, rep):
    sf_emu.backend.shared_activities = True
    made = _meeting(google_emu, "Initech review", guests=("bill@initech.test",))
    path = make_config(sync={"shared_activities": True})
    assert sync(path).ok
    row = _event(sf_emu, lambda r: r["Subject"] == "Initech review")
    peter = company.contact_ids["peter@initech.test"]
    sf_emu.backend.create_record("EventRelation", {"EventId": row["Id"], "RelationId": peter}, user_id=rep)
    google_emu.backend.update_event(made["id"], _at(8))
    assert sync(path).ok
    relations = {r["RelationId"][:15] for r in sf_emu.backend.list_records("EventRelation")
                 if r["EventId"] == row["Id"] and not r.get("IsWhat")}
    assert peter[:15] in relations
    assert _by_id(sf_emu, row["Id"])["StartDateTime"].startswith(_at(8)["start"]["dateTime"][:16])


def test_a_cycle_with_a_thousand_updates_reads_them_back_in_at_most_five_queries(
    sync, make_config, sf_emu, google_emu, company
):
    from calsync.sandbox.load import rename_meetings, seed_meetings

    seed_meetings(google_emu.backend, sf_emu.backend, company.users, 1000, dt.datetime.now(dt.timezone.utc))
    path = make_config()
    assert sync(path).ok
    assert rename_meetings(google_emu.backend, company.users, 1000) == 1000
    before, kinds = sf_emu.backend.api_calls, dict(sf_emu.backend.calls_by_kind())
    result = sync(path)
    assert result.ok and sum(c.updated for c in result.calendars.values()) == 1000
    by_kind = {k: v - kinds.get(k, 0) for k, v in sf_emu.backend.calls_by_kind().items() if v - kinds.get(k, 0)}
    assert by_kind["collections"] == 5  # 200 records a call
    # Lookups (Contacts, Leads, Opportunities, a few batches each) and the read-back of the
    # 1,000 Events before they are updated: at most one query per 200 of them.
    assert by_kind["query"] <= 5 + 5, by_kind
    assert sf_emu.backend.api_calls - before <= 15, by_kind


# -- a meeting that comes back (issue 16a) ---------------------------------------------------------


def test_a_declined_meeting_accepted_again_loses_only_calsyncs_prefix(
    sync, make_config, sf_emu, google_emu, rep
):
    made = google_emu.backend.create_event("hank@globex.test", {
        "summary": "Globex sync", "attendees": ["hank@globex.test", ALICE], **_at(3)})
    google_emu.backend.respond(ALICE, made["id"], "accepted")
    path = make_config()
    assert sync(path).ok
    row = _event(sf_emu, lambda r: r["Subject"] == "Globex sync")
    sf_emu.backend.update_record("Event", row["Id"], {"Subject": "Globex: pricing, 3-year deal"}, user_id=rep)
    google_emu.backend.respond(ALICE, made["id"], "declined")
    assert sync(path).ok
    assert _by_id(sf_emu, row["Id"])["Subject"] == "Canceled: Globex: pricing, 3-year deal"
    # While it is canceled the rep adds to their title; then the owner accepts again and the
    # organizer moves the meeting.
    sf_emu.backend.update_record("Event", row["Id"], {"Subject": "Canceled: Globex: pricing, 3-year deal (v2)"},
                                 user_id=rep)
    google_emu.backend.respond(ALICE, made["id"], "accepted")
    google_emu.backend.update_event(made["id"], _at(5, 14, minutes=30))
    assert sync(path).ok
    after = _by_id(sf_emu, row["Id"])
    assert after["Subject"] == "Globex: pricing, 3-year deal (v2)"
    assert after["StartDateTime"].startswith(_at(5, 14)["start"]["dateTime"][:16])
    assert after["DurationInMinutes"] == 30
    # The Subject sent is calsync's write, the field still the rep's: a rename in Google and
    # further cycles leave it alone, and nothing is written twice.
    google_emu.backend.update_event(made["id"], {"summary": "Globex sync (renamed)"})
    assert sync(path).ok and sync(path).salesforce_calls == 0
    assert _by_id(sf_emu, row["Id"])["Subject"] == "Globex: pricing, 3-year deal (v2)"
    assert [r["Id"] for r in sf_emu.backend.list_records("Event")
            if "3-year deal" in r["Subject"] or "Globex sync" in r["Subject"]] == [row["Id"]]


def test_a_meeting_restored_from_the_trash_loses_only_calsyncs_prefix(
    sync, make_config, sf_emu, google_emu, rep
):
    made = _meeting(google_emu, "Trash call")
    path = make_config()
    assert sync(path).ok
    row = _event(sf_emu, lambda r: r["Subject"] == "Trash call")
    sf_emu.backend.update_record("Event", row["Id"], {"Subject": "Hank: contract questions"}, user_id=rep)
    google_emu.backend.delete_event(made["id"])
    assert sync(path).ok
    assert _by_id(sf_emu, row["Id"])["Subject"] == "Canceled: Hank: contract questions"
    google_emu.backend.restore_event(made["id"])
    google_emu.backend.update_event(made["id"], _at(6, 11))
    assert sync(path).ok
    after = _by_id(sf_emu, row["Id"])
    assert after["Subject"] == "Hank: contract questions"
    assert after["StartDateTime"].startswith(_at(6, 11)["start"]["dateTime"][:16])
