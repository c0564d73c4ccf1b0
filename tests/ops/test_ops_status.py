"""`calsync status`: what the state database says, read without network or writes."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from calsync import config as config_module
from calsync.cli import main
from calsync.state import StateStore


def status_json(path: Path) -> dict:
    result = CliRunner().invoke(main, ["--config", str(path), "status", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_status_json_reports_each_calendar_after_a_sync(sync, make_config, company):
    path = make_config()
    assert sync(path).ok
    report = status_json(path)
    assert report["never_synced"] is False
    calendars = {c["user"]: c for c in report["calendars"]}
    assert set(calendars) == set(company.users)
    alice = calendars["alice@acme.test"]
    assert alice["last_attempt_ok"] is True
    assert alice["last_success_at"] is not None
    assert alice["sync_token"] is True
    assert 0 <= alice["token_age_seconds"] < 60
    assert alice["last_result"]["full_sync"] is True
    assert alice["retries"] == []
    assert alice["next_run"] != "now"  # the interval (40 min) has not passed
    # The demo company: alice owns 3 Events, bob 3, carol 1 (tests/e2e).
    assert {u: c["last_result"]["created"] for u, c in calendars.items()} == {
        "alice@acme.test": 3, "bob@acme.test": 3, "carol@acme.test": 1,
    }
    assert {u: c["events_written"] for u, c in calendars.items()} == {
        "alice@acme.test": 3, "bob@acme.test": 3, "carol@acme.test": 1,
    }


def test_status_lists_a_parked_retry_with_its_status_code(sync, make_config, sf_emu, google_emu, company):
    path = make_config()
    sync(path)
    sf_emu.backend.fail_records(1, status_code="FIELD_CUSTOM_VALIDATION_EXCEPTION",
                                message="Subject must not mention pricing", times=1)
    google_emu.backend.update_event(company.meetings["lead"], {"summary": "Intro call (moved)"})
    assert sync(path).calendars["bob@acme.test"].failed == 1
    report = status_json(path)
    bob = next(c for c in report["calendars"] if c["user"] == "bob@acme.test")
    (retry,) = bob["retries"]
    assert retry["status_code"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert retry["operation"] == "update"
    assert retry["attempts"] == 1
    assert bob["last_result"]["failed"] == 1
    alice = next(c for c in report["calendars"] if c["user"] == "alice@acme.test")
    assert alice["retries"] == []


def test_status_text_shows_a_failed_last_attempt(sync, make_config, google_emu):
    google_emu.backend.add_user("erin@acme.test", "Erin New", "UTC")
    path = make_config(sync={"users": ["alice@acme.test", "erin@acme.test"]})
    sync(path)
    result = CliRunner().invoke(main, ["--config", str(path), "status"])
    assert result.exit_code == 0
    text = result.stdout
    erin = text[text.index("erin@acme.test"):]
    assert "last attempt FAILED" in erin
    assert "no active Salesforce User" in erin
    assert "last successful sync: never" in erin


def test_status_before_any_sync_says_never_synced_and_creates_nothing(make_config):
    path = make_config()
    state = Path(config_module.load(path).state.path)
    report = status_json(path)
    assert report["never_synced"] is True
    assert all(c["next_run"] == "now" for c in report["calendars"])
    assert not state.exists()
    text = CliRunner().invoke(main, ["--config", str(path), "status"]).stdout
    assert "never synced" in text


def test_status_reads_without_writing_the_state_database(sync, make_config):
    path = make_config()
    sync(path)
    state = Path(config_module.load(path).state.path)
    store = StateStore(state)
    store.close()
    before = state.read_bytes()
    status_json(path)
    assert state.read_bytes() == before


def test_status_of_an_unreadable_state_database_exits_74(make_config, tmp_path):
    bad = tmp_path / "garbage.db"
    bad.write_bytes(b"this is not a database" * 100)
    path = make_config(state={"path": str(bad)})
    result = CliRunner().invoke(main, ["--config", str(path), "status"])
    assert result.exit_code == 74
