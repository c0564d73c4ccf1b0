"""`calsync explain`: why a meeting was or was not logged, from the decision the state keeps.

The demo company synced once against both emulators; then `explain` per meeting, in-process
(`CliRunner`) like an operator's shell would see it: the Event written, the Name and Related To
and why, every person's verdict, and each rule that skips a meeting.
"""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner

from calsync.core import config as config_module
from calsync.cli import main
from calsync.state.lock import WriterLock


def explain(path, *args: str):
    return CliRunner().invoke(main, ["--config", str(path), "explain", *args])


def event_of(sf_emu, subject: str, owner_id: str) -> str:
    (row,) = [r for r in sf_emu.backend.list_records("Event")
              if r["Subject"] == subject and r["OwnerId"][:15] == owner_id[:15]]
    return row["Id"]


def test_a_logged_meeting_names_its_event_name_related_to_and_everyone(sync, make_config, company, sf_emu):
    path = make_config()
    assert sync(path).ok
    done = explain(path, "--user", "alice@acme.test", "--event-id", company.meetings["external"])
    assert done.exit_code == 0, done.output
    out = done.stdout
    event = event_of(sf_emu, "Globex renewal: pricing review", company.sf_user_ids["alice@acme.test"])
    assert f"logged: Salesforce Event {event} (created)" in out
    hank = company.contact_ids["hank@globex.test"]
    assert f"Name: Contact {hank} (hank@globex.test): the organizer is outside the company and is a Contact" in out
    opportunity = company.opportunity_ids["Globex platform renewal"]
    assert f"Related To: Opportunity {opportunity}: the Opportunity where the Contact has the primary role (open" in out
    assert "attendee alice@acme.test (Alice Archer): not a candidate: the calendar's owner" in out
    assert "attendee bob@acme.test (Bob Baker): not a candidate: a calsync user (colleague)" in out
    assert "attendee marge@globex.test: candidate: comes after the Name" in out


def test_room_exclusion_and_lead_verdicts(sync, make_config, company):
    path = make_config()
    sync(path)
    internal = explain(path, "--user", "alice@acme.test", "--event-id", company.meetings["internal"]).stdout
    assert "conf-room-1@resource.calendar.google.com: not a candidate: a room or resource" in internal
    assert "the first attendee, in Google's order, who is a Contact" in internal
    assert f"Related To: Account {company.account_ids['Initech']}: the Contact's Account" in internal
    lead = explain(path, "--user", "bob@acme.test", "--event-id", company.meetings["lead"]).stdout
    assert "noreply@soylent.test: not a candidate: excluded by the pattern 'noreply@*' ([sync] exclude)" in lead
    assert f"Name: Lead {company.lead_ids['zoe@soylent.test']} (zoe@soylent.test): no attendee is a Contact" in lead
    assert "Related To: none: an Event whose Name is a Lead cannot be related to a record" in lead


def _old_series(google_emu, now: dt.datetime) -> dict:
    start = (now - dt.timedelta(days=40)).replace(hour=9, minute=0, second=0, microsecond=0)
    return google_emu.backend.create_event("alice@acme.test", {
        "summary": "Old Globex series", "attendees": ["alice@acme.test", "hank@globex.test"],
        "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=10"],
        "start": {"dateTime": start.isoformat(), "timeZone": "UTC"},
        "end": {"dateTime": (start + dt.timedelta(minutes=30)).isoformat(), "timeZone": "UTC"}})


def _three_weeks(google_emu, now: dt.datetime) -> dict:
    day = now.date() + dt.timedelta(days=3)
    return google_emu.backend.create_event("alice@acme.test", {
        "summary": "Globex residency", "attendees": ["alice@acme.test", "hank@globex.test"],
        "start": {"date": day.isoformat()}, "end": {"date": (day + dt.timedelta(days=21)).isoformat()}})


def _strangers_invitation(google_emu, now: dt.datetime) -> dict:
    return google_emu.backend.create_event("events@conference.test", {
        "summary": "Partner summit prep", "attendees": ["events@conference.test", "alice@acme.test",
                                                       "marge@globex.test"],
        "start": {"dateTime": (now + dt.timedelta(days=3)).isoformat()},
        "end": {"dateTime": (now + dt.timedelta(days=3, hours=1)).isoformat()}})


@pytest.mark.parametrize("user, label, rule", [
    ("alice@acme.test", _strangers_invitation,
     "it is an invitation from someone outside the company who is not a Salesforce Contact or Lead,"
     " and the calendar's owner has not accepted it (nor answered maybe)"),
    ("carol@acme.test", "private", 'it is private (or confidential) and [sync] private_events = "skip"'),
    ("carol@acme.test", "declined", "the calendar's owner declined it"),
    ("bob@acme.test", "out-of-office", "it is not a meeting but an out-of-office block (Google eventType outOfOffice)"),
    ("alice@acme.test", "internal-only", "nobody outside the company who takes part is a Salesforce Contact or Lead"),
    ("carol@acme.test", "converted-lead", "nobody outside the company who takes part is a Salesforce Contact or Lead"),
    ("alice@acme.test", _old_series,
     "it starts before the lookback window ([sync] lookback_days); calsync never creates Events that far back"),
    ("alice@acme.test", _three_weeks, "it lasts longer than 14 days, the longest Event Salesforce takes"),
])
def test_each_skip_rule_is_said_in_plain_words(sync, make_config, company, google_emu, user, label, rule):
    now = dt.datetime.now(dt.timezone.utc)
    event_id = company.meetings[label] if isinstance(label, str) else label(google_emu, now)["id"]
    path = make_config()
    assert sync(path).ok
    done = explain(path, "--user", user, "--event-id", event_id)
    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    assert ": not logged" in lines[1]
    assert lines[2] == f"  rule: {rule}"


def test_a_private_meeting_says_what_its_people_are_without_a_name(sync, make_config, company):
    path = make_config()
    sync(path)
    out = explain(path, "--user", "carol@acme.test", "--event-id", company.meetings["private"]).stdout
    assert f"attendee bill@initech.test: candidate [Contact {company.contact_ids['bill@initech.test']}]: a Contact" in out
    assert "Name:" not in out


def test_a_converted_leads_address_is_no_contact_or_lead(sync, make_config, company):
    path = make_config()
    sync(path)
    out = explain(path, "--user", "carol@acme.test", "--event-id", company.meetings["converted-lead"]).stdout
    assert "attendee old@soylent.test: candidate: no Contact or Lead with this address" in out


def test_a_converted_leads_contact_is_named_and_said_to_be_one(sync, make_config, company, google_emu, sf_emu):
    zoe, hank = company.lead_ids["zoe@soylent.test"], company.contact_ids["hank@globex.test"]
    sf_emu.backend.convert_lead(zoe, account_id=company.account_ids["Globex"], contact_id=hank)
    path = make_config()
    sync(path)
    out = explain(path, "--user", "bob@acme.test", "--event-id", company.meetings["lead"]).stdout
    assert f"attendee zoe@soylent.test: candidate [Contact {hank}, converted Lead {zoe}]: the Name" in out
    assert (f"Name: Contact {hank} (zoe@soylent.test): the first attendee, in Google's order, who is a Contact;"
            f" the Lead with this address ({zoe}) was converted into this Contact") in out


def test_a_cancelled_meeting_says_its_event_was_deleted(sync, make_config, company, google_emu, sf_emu):
    path = make_config()
    sync(path)
    google_emu.backend.delete_event(company.meetings["lead"])
    sync(path)
    out = explain(path, "--user", "bob@acme.test", "--event-id", company.meetings["lead"]).stdout
    assert out.startswith("bob@acme.test: 'Intro call with Soylent', ")  # as it was known
    assert "not logged: its Event was deleted" in out
    assert "rule: the meeting is no longer on the calendar" in out
    assert not [r for r in sf_emu.backend.list_records("Event") if r["Subject"] == "Intro call with Soylent"]


def test_subject_search_lists_every_match_since_a_date(sync, make_config, company):
    path = make_config()
    sync(path)
    both = explain(path, "--user", "bob@acme.test", "--subject", "GLOBEX")
    assert both.exit_code == 0
    assert "'Globex renewal: pricing review'" in both.stdout and "'Globex onsite'" in both.stdout
    later = (dt.date.today() + dt.timedelta(days=4)).isoformat()  # the onsite starts in 5 days
    one = explain(path, "--user", "bob@acme.test", "--subject", "globex", "--since", later)
    assert "'Globex onsite'" in one.stdout and "pricing review" not in one.stdout


def test_nothing_matched_exits_1_and_says_what_to_try(sync, make_config):
    path = make_config()
    sync(path)
    done = explain(path, "--user", "alice@acme.test", "--event-id", "nosuchevent")
    assert done.exit_code == 1
    assert "no decision about Google event nosuchevent" in done.stdout and "--live" in done.stdout
    assert explain(path, "--user", "alice@acme.test").exit_code == 2  # neither --event-id nor --subject


def test_explain_reads_while_a_writer_holds_the_state_and_needs_no_secret(sync, make_config, company, monkeypatch):
    path = make_config()
    sync(path)
    text = path.read_text().replace('access_token = "', 'removed = "')
    path.write_text(text.replace("removed = ", "# removed = "))  # the token only the service has
    state = config_module.load(make_config()).state.location
    with WriterLock(state, "run"):  # the daemon runs
        done = explain(path, "--user", "alice@acme.test", "--event-id", company.meetings["external"])
    assert done.exit_code == 0, done.output
    assert "logged: Salesforce Event" in done.stdout


def test_live_decides_again_and_names_what_changed_without_writing(sync, make_config, company, sf_emu):
    path = make_config()
    sync(path)
    role = next(r for r in sf_emu.backend.list_records("OpportunityContactRole")
                if r["ContactId"][:15] == company.contact_ids["hank@globex.test"][:15])
    sf_emu.backend.delete_record("OpportunityContactRole", role["Id"])
    writes = sf_emu.backend.calls_by_kind().get("collections", 0)
    done = explain(path, "--user", "alice@acme.test", "--event-id", company.meetings["external"], "--live")
    assert done.exit_code == 0, done.output
    out = done.stdout
    assert "decided now (--live, nothing written): logged: Event" in out and "would be updated" in out
    assert f"Related To: Account {company.account_ids['Globex']}: the Contact's Account" in out
    opportunity = company.opportunity_ids["Globex platform renewal"]
    assert f"related to {opportunity} → {company.account_ids['Globex']}" in out
    assert sf_emu.backend.calls_by_kind().get("collections", 0) == writes  # nothing written
    stored = explain(path, "--user", "alice@acme.test", "--event-id", company.meetings["external"]).stdout
    assert f"Related To: Opportunity {opportunity}" in stored  # the state was not changed either


def test_live_passes_every_google_request_through_the_request_budget(sync, make_config, company,
                                                                     google_emu, tmp_path):
    """explain --live lists the meeting again, and for an id the state does not know asks
    events.get first: every one of those Calendar requests waits for the budget (quota.py),
    like the daemon's polls, so an admin's explain never pushes the project over Google's
    limits on its own. (Token requests are not part of the Calendar quota.)"""
    from calsync.service import runtime
    from calsync.calendar.google.clients import clients_for, forget_clients

    path = make_config()
    assert sync(path).ok
    unknown = google_emu.backend.create_event("alice@acme.test", {  # made after the sync
        "summary": "Not yet synced", "attendees": ["alice@acme.test", "hank@globex.test"],
        "start": {"dateTime": (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)).isoformat()},
        "end": {"dateTime": (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2, hours=1)).isoformat()},
    })["id"]
    cfg = config_module.load(path)

    def calendar_requests() -> int:
        return sum(1 for _, _, where, _ in list(google_emu.answers) if not where.startswith("/token"))

    for event_id in (company.meetings["external"], unknown):
        forget_clients()
        before = calendar_requests()
        [(found, _)] = runtime.explain_live(cfg, "alice@acme.test", event_id=event_id)
        made = calendar_requests() - before
        assert made >= 1
        assert clients_for(cfg.google).budget.requests == made, (event_id, made)
    assert found.decision.subject == "Not yet synced"


def test_resync_keeps_the_decision_it_made(sync, make_config, company, sf_emu):
    path = make_config()
    sync(path)
    alice = company.sf_user_ids["alice@acme.test"]
    old = event_of(sf_emu, "Globex renewal: pricing review", alice)
    sf_emu.backend.delete_record("Event", old)  # deleted by hand in Salesforce
    done = CliRunner().invoke(main, ["--config", str(path), "resync", "--user", "alice@acme.test"])
    assert done.exit_code == 0, done.output
    out = explain(path, "--user", "alice@acme.test", "--event-id", company.meetings["external"]).stdout
    assert f"its Event {old} was deleted in Salesforce by a person and stays deleted" in out
    assert "--restore-deleted" in out
    done = CliRunner().invoke(main, ["--config", str(path), "resync", "--user", "alice@acme.test",
                                     "--restore-deleted"])
    assert done.exit_code == 0, done.output
    new = event_of(sf_emu, "Globex renewal: pricing review", alice)
    out = explain(path, "--user", "alice@acme.test", "--event-id", company.meetings["external"]).stdout
    assert f"logged: Salesforce Event {new} (created)" in out and new != old
    weekly = explain(path, "--user", "alice@acme.test", "--event-id", company.meetings["weekly"]).stdout
    assert "(unchanged since it was written)" in weekly  # resync found it as it should be
