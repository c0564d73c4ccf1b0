"""A record Salesforce refuses is visible: exit 65, named in `status` and the log, a WARNING for
`status --check`, explained, and tried again (`retry`) or given up on (`retry --drop`).

Salesforce refuses a record through the emulator's per-record failures (a validation rule,
FIELD_CUSTOM_VALIDATION_EXCEPTION), on the real sObject Collections path.
"""

from __future__ import annotations

import datetime as dt
import json

from click.testing import CliRunner

from calsync.core import config as config_module
from calsync.cli import main
from calsync.state.lock import WriterLock
from calsync.state.store import StateStore
from calsync.core.logs import parse_line

RULE = "FIELD_CUSTOM_VALIDATION_EXCEPTION"


def run(path, *args: str):
    return CliRunner().invoke(main, ["--config", str(path), *args])


def refuse_bobs_intro_call(path, sync, sf_emu, google_emu, company):
    """First sync (Bob's calendar clean); then Salesforce refuses the update of his moved intro call."""
    assert sync(path).calendars["bob@acme.test"].ok
    sf_emu.backend.fail_records(1, status_code=RULE, message="Subject must not say moved", times=1)
    google_emu.backend.update_event(company.meetings["lead"], {"summary": "Intro call (moved)"})


def test_sync_exits_65_and_names_the_refused_meeting_in_the_log(cli, make_config, sync, sf_emu, google_emu, company):
    path = make_config()
    refuse_bobs_intro_call(path, sync, sf_emu, google_emu, company)
    done = cli("--config", str(path), "sync")
    assert done.returncode == 65, done.stdout + done.stderr
    assert "bob@acme.test: created 0, updated 0, deleted 0, failed 1" in done.stdout
    assert "1 record refused by Salesforce, parked for a retry" in done.stdout
    (line,) = [parse_line(l) for l in done.stderr.splitlines() if 'msg="failed"' in l]
    assert line["user"] == "bob@acme.test" and line["status_code"] == RULE
    assert line["subject"] == "Intro call (moved)" and line["event_id"] == company.meetings["lead"]
    assert line["start"].startswith((dt.date.today() + dt.timedelta(days=3)).isoformat())


def test_a_calendar_failure_still_exits_1(cli, make_config, sync, sf_emu, google_emu, company):
    google_emu.backend.add_user("erin@acme.test", "Erin", "UTC")
    path = make_config(sync={"users": ["bob@acme.test", "erin@acme.test"]})
    refuse_bobs_intro_call(path, sync, sf_emu, google_emu, company)
    assert cli("--config", str(path), "sync").returncode == 1


def test_status_names_the_parked_meeting_and_check_warns(make_config, sync, sf_emu, google_emu, company):
    path = make_config()
    refuse_bobs_intro_call(path, sync, sf_emu, google_emu, company)
    assert sync(path).calendars["bob@acme.test"].failed == 1
    text = run(path, "status").stdout
    bob = text[text.index("bob@acme.test"):]
    assert "waiting for retry: 1" in bob
    assert (f"'Intro call (moved)' {(dt.date.today() + dt.timedelta(days=3)).isoformat()}" in bob
            and f"(Google event {company.meetings['lead']}), owner bob@acme.test: update refused, {RULE}" in bob)
    (retry,) = next(c for c in json.loads(run(path, "status", "--json").stdout)["calendars"]
                    if c["user"] == "bob@acme.test")["retries"]
    assert retry["subject"] == "Intro call (moved)" and retry["event_id"] == company.meetings["lead"]
    check = run(path, "status", "--check")
    assert check.exit_code == 1, check.output
    assert check.stdout.startswith("CALSYNC WARNING - 1 record refused by Salesforce, waiting for a retry ("
                                   "'Intro call (moved)'")
    assert "| calendars=3;;;0 stale=0;;0;0 unmapped=0;;0;0 parked=1;0;;0" in check.stdout
    assert len(check.stdout.splitlines()) == 1
    explained = run(path, "explain", "--user", "bob@acme.test", "--event-id", company.meetings["lead"]).stdout
    assert f"NOT logged yet: Salesforce refused the update ({RULE}: Subject must not say moved)" in explained


def test_retry_writes_the_parked_record_now(make_config, sync, sf_emu, google_emu, company):
    path = make_config()
    refuse_bobs_intro_call(path, sync, sf_emu, google_emu, company)
    sync(path)
    done = run(path, "retry", "--user", "bob@acme.test")  # the validation rule let go (times=1)
    assert done.exit_code == 0, done.output
    assert done.stdout.startswith("written: 'Intro call (moved)'")
    assert [r for r in sf_emu.backend.list_records("Event") if r["Subject"] == "Intro call (moved)"]
    assert run(path, "status", "--check").exit_code == 0


def test_retry_still_refused_exits_65(make_config, sync, sf_emu, google_emu, company):
    path = make_config()
    refuse_bobs_intro_call(path, sync, sf_emu, google_emu, company)
    sync(path)
    sf_emu.backend.fail_records(1, status_code=RULE, message="still no", times=1)
    done = run(path, "retry", "--event-id", company.meetings["lead"])
    assert done.exit_code == 65, done.output
    assert done.stdout.startswith("still refused: 'Intro call (moved)'")


def test_retry_drop_stops_retrying_and_logs_it(cli, make_config, sync, sf_emu, google_emu, company):
    path = make_config()
    refuse_bobs_intro_call(path, sync, sf_emu, google_emu, company)
    sync(path)
    assert cli("--config", str(path), "retry", "--drop").returncode == 2  # which ones?
    done = cli("--config", str(path), "retry", "--drop", "--event-id", company.meetings["lead"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("stopped retrying 'Intro call (moved)'")
    (line,) = [parse_line(l) for l in done.stderr.splitlines() if 'msg="stopped retrying"' in l]
    assert (line["user"], line["status_code"], line["subject"]) == ("bob@acme.test", RULE, "Intro call (moved)")
    assert run(path, "status", "--check").exit_code == 0
    state = config_module.load(path).state.location
    updates = sf_emu.backend.calls_by_kind().get("collections", 0)
    assert sync(path).ok  # the next cycle does not plan it again
    assert sf_emu.backend.calls_by_kind().get("collections", 0) == updates
    assert "waiting for retry: none" in run(path, "status").stdout.split("bob@acme.test")[1]
    assert StateStore.exists(state)


def test_retry_is_refused_beside_a_lock_holder_that_is_no_running_daemon(make_config, sync, sf_emu, google_emu, company):
    """The lock names `run` but no daemon process answers for it (this test holds it): nothing
    to hand the command to, so 75 as before (tests/daemon/test_daemon_admin_e2e.py: beside a
    real daemon the command is handed over)."""
    path = make_config()
    refuse_bobs_intro_call(path, sync, sf_emu, google_emu, company)
    sync(path)
    with WriterLock(config_module.load(path).state.location, "run"):
        done = run(path, "retry", "--drop", "--user", "bob@acme.test")
    assert done.exit_code == 75
    assert "`calsync run`" in done.output
