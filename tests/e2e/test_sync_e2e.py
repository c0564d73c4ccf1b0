"""Whole cycles through the real client libraries against both emulators (demo company)."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from calsync.sandbox.demo import ACTIVITY_FIELD, KEY_FIELD


def events(sf_emu):
    return sf_emu.backend.list_records("Event")


def by_subject(sf_emu):
    found: dict[str, list[dict]] = {}
    for row in events(sf_emu):
        found.setdefault(row["Subject"], []).append(row)
    return found


def owners(rows, company):
    ids = {v[:15]: k for k, v in company.sf_user_ids.items()}
    return sorted(ids[r["OwnerId"][:15]] for r in rows)


def google_calls(google_emu):
    return sum(google_emu.backend.stats()["events_list_calls"].values())


def test_first_sync_creates_one_event_per_internal_attendee(sync, sf_emu, company):
    result = sync()
    assert result.ok, {u: c.error for u, c in result.calendars.items()}
    found = by_subject(sf_emu)
    assert owners(found["Globex renewal: pricing review"], company) == ["alice@acme.test", "bob@acme.test"]
    assert owners(found["Initech expansion workshop"], company) == ["alice@acme.test", "carol@acme.test"]
    assert owners(found["Intro call with Soylent"], company) == ["bob@acme.test"]
    assert owners(found["Umbrella weekly check-in"], company) == ["alice@acme.test"]
    assert owners(found["Globex onsite"], company) == ["bob@acme.test"]
    assert sum(len(v) for v in found.values()) == 7


def test_meetings_without_a_customer_or_not_wanted_are_not_logged(sync, sf_emu):
    sync()
    subjects = set(by_subject(sf_emu))
    for skipped in ("Initech pricing (confidential)", "Team pipeline review", "Vacation",
                    "Umbrella roadmap preview", "Catch-up with Olaf (converted lead)"):
        assert skipped not in subjects


def test_external_organizer_is_the_name_and_primary_opportunity_the_related_to(sync, sf_emu, company):
    sync()
    for row in by_subject(sf_emu)["Globex renewal: pricing review"]:
        assert row["WhoId"][:15] == company.contact_ids["hank@globex.test"][:15]
        assert row["WhatId"][:15] == company.opportunity_ids["Globex platform renewal"][:15]
        assert row["Type"] == "Meeting" and row["ShowAs"] == "Busy"
        assert row[ACTIVITY_FIELD] == row["StartDateTime"]


def test_internal_meeting_names_first_contact_attendee_and_its_account(sync, sf_emu, company):
    sync()
    for row in by_subject(sf_emu)["Initech expansion workshop"]:
        assert row["WhoId"][:15] == company.contact_ids["bill@initech.test"][:15]
        assert row["WhatId"][:15] == company.account_ids["Initech"][:15]


def test_lead_is_the_name_with_no_related_to(sync, sf_emu, company):
    sync()
    (row,) = by_subject(sf_emu)["Intro call with Soylent"]
    assert row["WhoId"][:15] == company.lead_ids["zoe@soylent.test"][:15]
    assert row["WhatId"] is None


def test_all_day_meeting_is_an_all_day_event(sync, sf_emu):
    sync()
    (row,) = by_subject(sf_emu)["Globex onsite"]
    assert row["IsAllDayEvent"] is True
    assert row["DurationInMinutes"] == 2 * 1440


def test_second_sync_without_changes_makes_no_salesforce_call(sync, make_config, sf_emu, google_emu):
    path = make_config()
    sync(path)
    google_before, sf_before = google_calls(google_emu), sf_emu.backend.api_calls
    result = sync(path)
    assert result.ok
    assert sf_emu.backend.api_calls == sf_before
    assert google_calls(google_emu) - google_before == 3  # one events.list per calendar
    assert result.salesforce_calls == 0


def test_first_sync_call_budget(sync, sf_emu):
    before = sf_emu.backend.api_calls
    sync()
    # users, describe, contacts, leads, opportunities, existing Events to adopt, one Collections
    assert sf_emu.backend.api_calls - before <= 7


def test_rescheduled_meeting_updates_the_same_event(sync, make_config, sf_emu, google_emu, company):
    path = make_config()
    sync(path)
    before = {r["Id"]: r for r in by_subject(sf_emu)["Globex renewal: pricing review"]}
    day = dt.date.today() + dt.timedelta(days=8)
    google_emu.backend.update_event(company.meetings["external"], {
        "start": {"dateTime": f"{day}T11:00:00Z"}, "end": {"dateTime": f"{day}T11:45:00Z"},
        "summary": "Globex renewal: moved",
    })
    result = sync(path)
    assert result.ok
    after = {r["Id"]: r for r in by_subject(sf_emu)["Globex renewal: moved"]}
    assert set(after) == set(before)
    assert all(r["StartDateTime"].startswith(f"{day}T11:00:00") for r in after.values())
    assert all(r["DurationInMinutes"] == 45 for r in after.values())
    assert len(events(sf_emu)) == 7


def test_cancelled_meeting_deletes_its_events(sync, make_config, sf_emu, google_emu, company):
    path = make_config()
    sync(path)
    google_emu.backend.delete_event(company.meetings["external"])
    assert sync(path).ok
    assert "Globex renewal: pricing review" not in by_subject(sf_emu)
    assert len(events(sf_emu)) == 5


def test_attendee_change_moves_the_name(sync, make_config, sf_emu, google_emu, company):
    path = make_config()
    sync(path)
    google_emu.backend.update_event(company.meetings["internal"], {
        "attendees": ["alice@acme.test", "peter@initech.test", "carol@acme.test"],
    })
    assert sync(path).ok
    for row in by_subject(sf_emu)["Initech expansion workshop"]:
        assert row["WhoId"][:15] == company.contact_ids["peter@initech.test"][:15]
        # Peter is primary on the open expansion and the closed pilot: the open one wins.
        assert row["WhatId"][:15] == company.opportunity_ids["Initech expansion"][:15]


def test_owner_declining_later_removes_their_event_only(sync, make_config, sf_emu, google_emu, company):
    path = make_config()
    sync(path)
    google_emu.backend.respond("bob@acme.test", company.meetings["external"], "declined")
    assert sync(path).ok
    assert owners(by_subject(sf_emu)["Globex renewal: pricing review"], company) == ["alice@acme.test"]


def test_sync_token_410_recovers_without_duplicates(sync, make_config, sf_emu, google_emu, company):
    path = make_config()
    sync(path)
    google_emu.backend.delete_event(company.meetings["lead"])
    google_emu.backend.invalidate_sync_tokens()
    result = sync(path)
    assert result.ok
    assert all(c.full_sync for c in result.calendars.values())
    counts = Counter((r["Subject"], r["OwnerId"]) for r in events(sf_emu))
    assert max(counts.values()) == 1
    assert "Intro call with Soylent" not in by_subject(sf_emu)
    assert len(events(sf_emu)) == 6


def test_cancelled_first_occurrence_moves_the_event_to_the_next(sync, make_config, sf_emu, google_emu, company):
    path = make_config()
    sync(path)
    (before,) = by_subject(sf_emu)["Umbrella weekly check-in"]
    master = company.meetings["weekly"]
    first = google_emu.backend.get_event("alice@acme.test", master)["start"]
    google_emu.backend.cancel_occurrence(master, first)
    assert sync(path).ok
    (after,) = by_subject(sf_emu)["Umbrella weekly check-in"]
    assert after["Id"] == before["Id"]
    moved = dt.datetime.fromisoformat(after["StartDateTime"].replace("+0000", "+00:00"))
    was = dt.datetime.fromisoformat(before["StartDateTime"].replace("+0000", "+00:00"))
    assert moved - was == dt.timedelta(days=7)


def test_series_split_starts_a_new_series_synced_once(sync, make_config, sf_emu, google_emu, company):
    path = make_config()
    sync(path)
    master = company.meetings["weekly"]
    first = google_emu.backend.get_event("alice@acme.test", master)["start"]
    third = dt.datetime.fromisoformat(first["dateTime"].replace("Z", "+00:00")) + dt.timedelta(days=14)
    google_emu.backend.split_series(
        master, {"dateTime": third.isoformat().replace("+00:00", "Z"), "timeZone": first.get("timeZone")},
        {"summary": "Umbrella weekly check-in (new time)"},
    )
    assert sync(path).ok
    found = by_subject(sf_emu)
    assert len(found["Umbrella weekly check-in"]) == 1
    assert len(found["Umbrella weekly check-in (new time)"]) == 1


def test_refused_record_is_parked_and_retried_next_cycle(sync, make_config, sf_emu, google_emu, company):
    path = make_config()
    sync(path)
    sf_emu.backend.fail_records(1, status_code="UNABLE_TO_LOCK_ROW",
                                message="unable to obtain exclusive access to this record", times=1)
    google_emu.backend.update_event(company.meetings["lead"], {"summary": "Intro call (moved)"})
    first = sync(path)
    assert first.ok
    assert first.calendars["bob@acme.test"].failed == 1
    assert "Intro call (moved)" not in by_subject(sf_emu)
    from calsync.core.config import load
    from calsync.state.store import StateStore

    store = StateStore(load(path).state.location)
    (retry,) = store.retries()
    assert retry.status_code == "UNABLE_TO_LOCK_ROW"
    # Make it due now, as the next cycle after the delay would see it.
    store._exec("UPDATE retries SET next_attempt_at = '2000-01-01T00:00:00+00:00'")
    store.close()
    assert sync(path).ok
    assert "Intro call (moved)" in by_subject(sf_emu)


def test_unmapped_user_is_reported_and_the_others_sync(sync, make_config, sf_emu, google_emu):
    google_emu.backend.add_user("erin@acme.test", "Erin New", "UTC")
    path = make_config(sync={"users": ["alice@acme.test", "erin@acme.test"]})
    result = sync(path)
    assert not result.ok
    assert result.calendars["alice@acme.test"].ok
    assert "no active Salesforce User" in result.calendars["erin@acme.test"].error


def test_missing_activity_field_is_reported_once_and_left_out(sync, make_config, sf_emu, caplog):
    path = make_config(sync={"activity_datetime_field": "Nope__c"})
    with caplog.at_level("ERROR"):
        assert sync(path).ok
    assert sum("activity field unusable" in r.getMessage() for r in caplog.records) == 1
    assert len(events(sf_emu)) == 7


@pytest.mark.parametrize("external_id", [KEY_FIELD, None])
def test_crash_after_create_before_commit_leaves_no_duplicate(
    make_config, sync, sf_emu, external_id
):
    """The write lands, the process dies before recording it: the next run adopts the Event."""
    from calsync.core import config as config_module
    from calsync.service.runtime import open_cycle

    path = make_config(salesforce={"external_id_field": external_id})
    cfg = config_module.load(path)

    class Killed(BaseException):
        pass

    with open_cycle(cfg) as cycle:
        def die(*args, **kwargs):
            raise Killed()

        cycle.store.record_written_many = die  # the Salesforce answer is lost with the process
        with pytest.raises(Killed):
            cycle.run()
    landed = len(events(sf_emu))
    assert landed >= 1
    result = sync(path)
    assert result.ok
    assert len(events(sf_emu)) == 7
    keys = Counter((r["Subject"], r["OwnerId"]) for r in events(sf_emu))
    assert max(keys.values()) == 1
    assert sync(path).salesforce_calls == 0


def test_request_limit_exceeded_stops_writes_and_the_next_cycle_catches_up(sync, make_config, sf_emu):
    from calsync.sandbox.salesforce.errors import request_limit_fault

    path = make_config()
    sf_emu.faults.add(request_limit_fault(times=-1, method="POST"))
    first = sync(path)
    assert not first.ok
    assert events(sf_emu) == []
    sf_emu.faults.clear()
    second = sync(path)
    assert second.ok
    assert len(events(sf_emu)) == 7


def test_daily_call_budget_keeps_the_rest_of_the_allowance(sync, make_config, sf_emu):
    path = make_config(salesforce={"daily_call_budget": 5000})
    sf_emu.backend.set_limits(daily_api_max=15000, api_calls=10_001)
    result = sync(path)
    assert not result.ok
    assert "daily_call_budget" in next(iter(result.calendars.values())).error
    assert sf_emu.backend.api_calls == 10_001 + 1  # only the call that revealed the usage


def test_activity_field_is_not_written_retroactively(sync, make_config, sf_emu, google_emu, company):
    path = make_config(sync={"activity_datetime_field": None})
    sync(path)
    assert all(r[ACTIVITY_FIELD] is None for r in events(sf_emu))
    path = make_config()  # the field is configured from now on
    google_emu.backend.update_event(company.meetings["lead"], {"summary": "Intro call (v2)"})
    google_emu.backend.invalidate_sync_tokens()  # even a full resync rewrites nothing unchanged
    assert sync(path).ok
    written = {r["Subject"]: r[ACTIVITY_FIELD] for r in events(sf_emu)}
    assert written["Intro call (v2)"] is not None
    assert written["Globex onsite"] is None


@pytest.mark.sqlite_only("deletes the state file and its -wal/-shm beside it")
def test_lost_state_database_does_not_duplicate_events(sync, make_config, sf_emu, tmp_path):
    path = make_config()
    sync(path)
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    result = sync(path)
    assert result.ok
    assert sum(c.created for c in result.calendars.values()) == 0
    counts = Counter((r["Subject"], r["OwnerId"]) for r in events(sf_emu))
    assert len(counts) == 7 and max(counts.values()) == 1


def test_shared_activities_relate_every_contact_of_the_meeting(sync, make_config, sf_emu, google_emu, company):
    sf_emu.backend.shared_activities = True
    google_emu.backend.update_event(company.meetings["internal"], {
        "attendees": ["alice@acme.test", "bill@initech.test", "peter@initech.test", "carol@acme.test"],
    })
    assert sync(make_config(sync={"shared_activities": True})).ok
    event_ids = {r["Id"] for r in by_subject(sf_emu)["Initech expansion workshop"]}
    relations = [r for r in sf_emu.backend.list_records("EventRelation") if r["EventId"] in event_ids]
    related = {(r["EventId"], r["RelationId"][:15]) for r in relations if not r.get("IsWhat")}
    for event_id in event_ids:
        assert (event_id, company.contact_ids["bill@initech.test"][:15]) in related
        assert (event_id, company.contact_ids["peter@initech.test"][:15]) in related
    for row in by_subject(sf_emu)["Initech expansion workshop"]:
        assert row["WhoId"][:15] == company.contact_ids["bill@initech.test"][:15]


def test_user_map_names_the_salesforce_user_whose_email_differs(sync, make_config, sf_emu, company):
    other = sf_emu.backend.create_user("alice.sales@acme-org.test", first_name="Alice", last_name="Sales",
                                       email="alice.sales@acme-org.test")
    path = make_config(sync={"users": ["alice@acme.test"],
                             "user_map": {"alice@acme.test": "alice.sales@acme-org.test"}})
    assert sync(path).ok
    owners_seen = {r["OwnerId"][:15] for r in events(sf_emu)}
    assert owners_seen == {other[:15]}


def test_inactive_salesforce_user_is_not_an_owner(sync, make_config, sf_emu, company):
    sf_emu.backend.set_user_active("bob@acme.test", False)
    result = sync(make_config())
    assert not result.ok
    assert "no active Salesforce User" in result.calendars["bob@acme.test"].error
    assert result.calendars["alice@acme.test"].ok


def test_org_refusing_the_adoption_query_still_syncs(sync, make_config, sf_emu):
    from calsync.sandbox.salesforce.errors import error_body
    from calsync.sandbox.server import Fault

    fault = sf_emu.faults.add(Fault(status=400, body=error_body("MALFORMED_QUERY", "unexpected token: '>'"),
                                    query_contains="StartDateTime >", times=1))
    result = sync(make_config())
    assert fault.times == 0  # the adoption query was refused
    assert result.ok
    assert len(events(sf_emu)) == 7


def test_org_refusing_the_reconcile_query_holds_only_that_calendar_and_creates_nothing_twice(
    make_config, sync, sf_emu
):
    from calsync.core import config as config_module
    from calsync.service.runtime import open_cycle
    from calsync.sandbox.salesforce.errors import error_body
    from calsync.sandbox.server import Fault

    path = make_config()
    with open_cycle(config_module.load(path)) as cycle:
        cycle.store.record_create_intents([("k-lost", "alice@acme.test", "uid-lost", {"Subject": "x"})],
                                          dt.datetime.now(dt.timezone.utc))
    fault = sf_emu.faults.add(Fault(status=400, body=error_body("MALFORMED_QUERY", "unexpected token: '>'"),
                                    query_contains="CreatedDate >", times=1))
    result = sync(path)
    assert fault.times == 0
    # Issue 16: creating again could double an Event that landed; the intent waits instead.
    assert not result.calendars["alice@acme.test"].ok
    assert "cannot reconcile earlier creates" in (result.calendars["alice@acme.test"].error or "")
    assert all(result.calendars[u].ok for u in ("bob@acme.test", "carol@acme.test"))
    again = sync(path)  # Salesforce answers again: nothing of it landed, Alice's calendar goes on
    assert again.ok and len(events(sf_emu)) == 7
