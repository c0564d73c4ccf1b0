"""`calsync resync`: re-list a window, restore what calsync owns, leave people's edits and
deletions in Salesforce alone unless told otherwise, idempotently."""

from __future__ import annotations

import datetime as dt
import re
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from calsync.core import config as config_module
from calsync.cli import main
from calsync.sandbox.demo import KEY_FIELD
from calsync.state.store import StateStore

ROOT = Path(__file__).resolve().parents[2]


def resync(path: Path, *args: str):
    return CliRunner().invoke(main, ["--config", str(path), "resync", *args])


def writes(sf_emu) -> int:
    return sf_emu.backend.calls_by_kind().get("collections", 0)


def events_of(sf_emu, subject: str, owner_id: str) -> list[dict]:
    return [r for r in sf_emu.backend.list_records("Event")
            if r["Subject"] == subject and r["OwnerId"][:15] == owner_id[:15]]


def the_event(sf_emu, subject: str, owner_id: str) -> dict:
    (row,) = events_of(sf_emu, subject, owner_id)
    return row


def written_rows(path: Path) -> list[tuple]:
    store = StateStore(config_module.load(path).state.path)
    try:
        return sorted(store.db.conn.execute("SELECT key, sf_id, fingerprint, state FROM written"))
    finally:
        store.close()


@pytest.fixture
def synced(make_config, sync):
    path = make_config()
    assert sync(path).ok
    return path


def test_dry_run_reports_peoples_edits_and_deletions_and_writes_nothing(synced, sf_emu, company):
    alice = company.sf_user_ids["alice@acme.test"]
    gone = the_event(sf_emu, "Globex renewal: pricing review", alice)
    edited = the_event(sf_emu, "Umbrella weekly check-in", alice)
    sf_emu.backend.delete_record("Event", gone["Id"])
    sf_emu.backend.update_record("Event", edited["Id"], {"Subject": "Umbrella (renamed by hand)"})
    state_before, writes_before = written_rows(synced), writes(sf_emu)

    result = resync(synced, "--dry-run")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    removed = next(line for line in lines if line.startswith("not restored"))
    assert "deleted in Salesforce" in removed and "--restore-deleted" in removed and gone["Id"] in removed
    kept = next(line for line in lines if line.startswith("kept"))
    assert "'Umbrella (renamed by hand)'" in kept and "edited in Salesforce, kept: Subject" in kept
    assert "alice@acme.test: 4 meetings, would create 0, would update 0, would delete 0" in result.stdout
    assert "edited in Salesforce and kept 1, deleted in Salesforce 1" in result.stdout
    assert writes(sf_emu) == writes_before
    assert written_rows(synced) == state_before
    assert events_of(sf_emu, "Globex renewal: pricing review", alice) == []


def test_dry_run_shows_what_overwrite_edits_and_restore_deleted_would_do(synced, sf_emu, company):
    alice = company.sf_user_ids["alice@acme.test"]
    gone = the_event(sf_emu, "Globex renewal: pricing review", alice)
    edited = the_event(sf_emu, "Umbrella weekly check-in", alice)
    sf_emu.backend.delete_record("Event", gone["Id"])
    sf_emu.backend.update_record("Event", edited["Id"], {"Subject": "Umbrella (renamed by hand)"})
    writes_before = writes(sf_emu)

    result = resync(synced, "--dry-run", "--overwrite-edits", "--restore-deleted")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    create = next(line for line in lines if line.startswith("would create"))
    assert "'Globex renewal: pricing review'" in create and "restored (--restore-deleted)" in create
    update = next(line for line in lines if line.startswith("would update"))
    assert "'Umbrella weekly check-in'" in update and "overwritten (--overwrite-edits): Subject" in update
    assert "alice@acme.test: 4 meetings, would create 1, would update 1, would delete 0" in result.stdout
    assert writes(sf_emu) == writes_before


@pytest.mark.parametrize("external_id", [None, KEY_FIELD])
def test_event_deleted_in_salesforce_is_recreated_only_when_asked(make_config, sync, sf_emu, company, external_id):
    path = make_config(salesforce={"external_id_field": external_id})
    assert sync(path).ok
    bob = company.sf_user_ids["bob@acme.test"]
    gone = the_event(sf_emu, "Intro call with Soylent", bob)
    sf_emu.backend.delete_record("Event", gone["Id"])

    assert resync(path).exit_code == 0
    assert events_of(sf_emu, "Intro call with Soylent", bob) == []
    result = resync(path, "--restore-deleted")

    assert result.exit_code == 0, result.output
    again = the_event(sf_emu, "Intro call with Soylent", bob)
    assert again["Id"] != gone["Id"]
    assert again["WhoId"] == gone["WhoId"] and again["StartDateTime"] == gone["StartDateTime"]
    assert len(sf_emu.backend.list_records("Event")) == 7
    assert again["Id"] in {row[1] for row in written_rows(path)}
    assert sync(path).ok and len(sf_emu.backend.list_records("Event")) == 7  # calsync's again


def test_subject_edited_in_salesforce_is_kept_unless_overwritten(synced, sf_emu, company):
    carol = company.sf_user_ids["carol@acme.test"]
    event = the_event(sf_emu, "Initech expansion workshop", carol)
    sf_emu.backend.update_record("Event", event["Id"], {"Subject": "workshop (my notes)"})

    kept = resync(synced, "--user", "carol@acme.test")
    assert kept.exit_code == 0, kept.output
    assert the_event(sf_emu, "workshop (my notes)", carol)["Id"] == event["Id"]
    assert "carol@acme.test: 5 meetings, created 0, updated 0" in kept.stdout

    result = resync(synced, "--user", "carol@acme.test", "--overwrite-edits")

    assert result.exit_code == 0, result.output
    assert the_event(sf_emu, "Initech expansion workshop", carol)["Id"] == event["Id"]
    assert "carol@acme.test: 5 meetings, created 0, updated 1" in result.stdout


def test_second_resync_changes_nothing(synced, sf_emu, company):
    alice = company.sf_user_ids["alice@acme.test"]
    sf_emu.backend.delete_record("Event", the_event(sf_emu, "Umbrella weekly check-in", alice)["Id"])
    assert resync(synced, "--restore-deleted").exit_code == 0
    before = writes(sf_emu)

    second = resync(synced)

    assert second.exit_code == 0, second.output
    assert writes(sf_emu) == before
    for user in company.users:
        assert f"{user}: " in second.stdout
    summaries = [line for line in second.stdout.splitlines() if " meetings, created " in line]
    assert len(summaries) == 3
    assert all("created 0, updated 0, deleted 0" in line for line in summaries)


def test_resync_keeps_the_sync_token_and_the_next_cycle_writes_nothing(
    synced, sync, sf_emu, google_emu, company
):
    store = StateStore(config_module.load(synced).state.path)
    tokens = {c.user: c.sync_token for c in store.calendars()}
    store.close()
    google_emu.backend.update_event(company.meetings["lead"], {"summary": "Intro call (moved)"})

    assert resync(synced).exit_code == 0
    assert the_event(sf_emu, "Intro call (moved)", company.sf_user_ids["bob@acme.test"])
    store = StateStore(config_module.load(synced).state.path)
    assert {c.user: c.sync_token for c in store.calendars()} == tokens
    store.close()
    before = writes(sf_emu)
    result = sync(synced)
    assert result.ok and result.calendars["bob@acme.test"].items == 1  # the change, seen once
    assert writes(sf_emu) == before


def test_event_id_limits_the_resync_to_one_meeting(synced, sf_emu, company):
    alice = company.sf_user_ids["alice@acme.test"]
    for subject in ("Globex renewal: pricing review", "Initech expansion workshop"):
        sf_emu.backend.delete_record("Event", the_event(sf_emu, subject, alice)["Id"])

    result = resync(synced, "--user", "alice@acme.test", "--event-id", company.meetings["internal"],
                    "--restore-deleted")

    assert result.exit_code == 0, result.output
    assert len(events_of(sf_emu, "Initech expansion workshop", alice)) == 1
    assert events_of(sf_emu, "Globex renewal: pricing review", alice) == []
    assert "alice@acme.test: 1 meetings, created 1" in result.stdout


def test_event_id_not_on_the_calendar_fails_the_user(synced):
    result = resync(synced, "--user", "alice@acme.test", "--event-id", "nosuchevent123")
    assert result.exit_code == 1
    assert "nosuchevent123 is not on alice@acme.test's calendar" in result.stdout


def test_event_id_needs_exactly_one_user(synced):
    result = resync(synced, "--event-id", "abc")
    assert result.exit_code == 2
    assert "exactly one --user" in result.output


def test_until_leaves_later_meetings_alone(synced, sf_emu, company):
    bob = company.sf_user_ids["bob@acme.test"]
    for subject in ("Intro call with Soylent", "Globex onsite"):  # in 3 days, in 5 days
        sf_emu.backend.delete_record("Event", the_event(sf_emu, subject, bob)["Id"])
    until = (dt.date.today() + dt.timedelta(days=4)).isoformat()

    result = resync(synced, "--user", "bob@acme.test", "--until", until, "--restore-deleted")

    assert result.exit_code == 0, result.output
    assert len(events_of(sf_emu, "Intro call with Soylent", bob)) == 1
    assert events_of(sf_emu, "Globex onsite", bob) == []


def test_scripts_resync_runs_calsync_resync(synced, sf_emu, company):
    alice = company.sf_user_ids["alice@acme.test"]
    sf_emu.backend.delete_record("Event", the_event(sf_emu, "Umbrella weekly check-in", alice)["Id"])
    env = {**os.environ, "CALSYNC_CONFIG": str(synced)}

    done = subprocess.run([str(ROOT / "scripts" / "resync"), "--user", "alice@acme.test", "--restore-deleted"],
                          capture_output=True, text=True, timeout=60, env=env)

    assert done.returncode == 0, done.stderr
    assert "listed alice@acme.test: 4 meetings" in done.stdout  # plain lines: not a terminal
    assert len(events_of(sf_emu, "Umbrella weekly check-in", alice)) == 1


def test_meeting_deleted_in_google_is_deleted_by_resync(synced, sync, sf_emu, google_emu, company):
    google_emu.backend.delete_event(company.meetings["lead"])

    result = resync(synced, "--user", "bob@acme.test")

    assert result.exit_code == 0, result.output
    assert events_of(sf_emu, "Intro call with Soylent", company.sf_user_ids["bob@acme.test"]) == []
    assert "bob@acme.test: 5 meetings, created 0, updated 0, deleted 1" in result.stdout
    before = writes(sf_emu)
    assert sync(synced).ok
    assert writes(sf_emu) == before


def test_resync_on_a_terminal_shows_a_progress_bar(synced):
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "calsync", "--config", str(synced), "resync", "--dry-run"],
        stdout=follower, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )
    os.close(follower)
    screen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        screen += chunk
    os.close(leader)
    assert proc.wait(timeout=60) == 0
    text = screen.decode(errors="replace")
    assert "Listing calendars" in text
    assert "listed alice@acme.test" not in text  # the bar replaces the plain lines


def test_resync_lines_name_the_meeting_its_start_and_owner_and_say_why_salesforce_refused(
    synced, sf_emu, company
):
    """The meeting of an Event a person deleted is named (not '(no subject)'), every start reads
    as in `status`, owners are calendar addresses (not 005... Ids), and a record Salesforce
    refuses is on stdout with its statusCode and message."""
    alice = company.sf_user_ids["alice@acme.test"]
    gone = the_event(sf_emu, "Globex renewal: pricing review", alice)
    drifted = the_event(sf_emu, "Umbrella weekly check-in", alice)
    sf_emu.backend.delete_record("Event", gone["Id"])
    sf_emu.backend.update_record("Event", drifted["Id"], {"DurationInMinutes": 5}, system=True)
    sf_emu.backend.fail_records(lambda record: record.get("Subject") == "Umbrella weekly check-in",
                                status_code="FIELD_CUSTOM_VALIDATION_EXCEPTION",
                                message="no check-ins this week", times=-1)
    result = resync(synced, "--user", "alice@acme.test")
    assert result.exit_code == 65, result.output
    lines = result.stdout.splitlines()
    removed = next(line for line in lines if line.startswith("not restored"))
    start = dt.datetime.fromisoformat(gone["StartDateTime"].replace("+0000", "+00:00"))
    assert f"'Globex renewal: pricing review' {start:%Y-%m-%d %H:%M} UTC" in removed
    assert "(no subject)" not in result.stdout and "owner 005" not in result.stdout
    update = next(line for line in lines if line.startswith("update") and drifted["Id"] in line)
    assert "owner alice@acme.test" in update
    assert re.search(r"'Umbrella weekly check-in' \d{4}-\d\d-\d\d \d\d:\d\d UTC", update)
    refused = next(line for line in lines if line.startswith("refused"))
    assert "'Umbrella weekly check-in'" in refused
    assert "update refused by Salesforce, FIELD_CUSTOM_VALIDATION_EXCEPTION: no check-ins this week" in refused


def test_an_event_resync_created_goes_with_a_meeting_deleted_before_the_next_cycle(
    synced, sync, sf_emu, google_emu, company
):
    # A meeting new since the last cycle gets its Event from resync; it is deleted before the
    # next cycle, whose listing shows it as a bare id (reference A3): the Event goes with it.
    start = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0) + dt.timedelta(days=3)
    fmt = lambda t: t.isoformat().replace("+00:00", "Z")  # noqa: E731
    made = google_emu.backend.create_event("alice@acme.test", {
        "summary": "Globex follow-up", "attendees": ["alice@acme.test", "hank@globex.test"],
        "start": {"dateTime": fmt(start)}, "end": {"dateTime": fmt(start + dt.timedelta(hours=1))}})
    result = resync(synced, "--user", "alice@acme.test")
    assert result.exit_code == 0, result.output
    alice = company.sf_user_ids["alice@acme.test"]
    assert len(events_of(sf_emu, "Globex follow-up", alice)) == 1
    google_emu.backend.delete_event(made["id"])
    assert sync(synced).ok
    assert events_of(sf_emu, "Globex follow-up", alice) == []
