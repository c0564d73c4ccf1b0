"""`calsync status`: what the state database says, read without network or writes."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from click.testing import CliRunner

from calsync.core import config as config_module
from calsync.cli import main
from calsync.state.store import StateStore


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


# --- status --check: monitoring-plugin semantics (monitoring.py) ----------------------------------


def check(path: Path, *args: str):
    return CliRunner().invoke(main, ["--config", str(path), "status", "--check", *args])


def test_check_is_ok_after_a_clean_sync(sync, make_config):
    path = make_config()
    assert sync(path).ok
    result = check(path)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("CALSYNC OK - 3 calendars synced within 2h, none failing 3 times in a row, no record waiting for a retry |")
    assert "oldest_sync_age=" in result.stdout and ";;7200;0" in result.stdout  # 3 × 40 min


def test_check_is_critical_for_a_calendar_older_than_max_age(sync, make_config):
    from freezegun import freeze_time

    path = make_config()
    sync(path)
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=3)
    with freeze_time(later):
        default = check(path)
        relaxed = check(path, "--max-age", "4h")
    assert default.exit_code == 2, default.output
    assert default.stdout.startswith("CALSYNC CRITICAL - 3 of 3 calendars not synced within 2h (")
    assert "alice@acme.test last synced 3h ago" in default.stdout and "stale=3;;0;0" in default.stdout
    assert relaxed.exit_code == 0, relaxed.output


def test_check_is_critical_for_a_user_without_a_salesforce_user(sync, make_config, google_emu):
    google_emu.backend.add_user("erin@acme.test", "Erin New", "UTC")
    path = make_config(sync={"users": ["alice@acme.test", "erin@acme.test"]})
    sync(path)
    result = check(path)
    assert result.exit_code == 2
    assert "users without a Salesforce User: erin@acme.test" in result.stdout
    assert "unmapped=1;;0;0" in result.stdout


def test_check_before_any_sync_is_critical_never_synced(make_config):
    result = check(make_config())
    assert result.exit_code == 2
    assert "alice@acme.test never synced" in result.stdout


def test_check_of_an_unreadable_state_or_configuration_is_unknown(make_config, tmp_path):
    bad = tmp_path / "garbage.db"
    bad.write_bytes(b"this is not a database" * 100)
    result = check(make_config(state={"path": str(bad)}))
    assert result.exit_code == 3
    assert result.stdout.startswith("CALSYNC UNKNOWN - ") and "damaged" in result.stdout
    missing = CliRunner().invoke(main, ["--config", str(tmp_path / "none.toml"), "status", "--check"])
    assert missing.exit_code == 3 and "configuration file not found" in missing.stdout
    assert check(make_config(), "--max-age", "soon").exit_code == 3


def test_status_needs_no_secret(sync, make_config, tmp_path, monkeypatch):
    path = make_config()
    sync(path)
    path.write_text(path.read_text().replace('access_token = "', '# access_token = "'))
    monkeypatch.setenv("CALSYNC_CREDENTIAL_STORE", str(tmp_path / "no-store"))
    for args in (["status"], ["status", "--json"], ["status", "--check"]):
        result = CliRunner().invoke(main, ["--config", str(path), *args])
        assert result.exit_code == 0, (args, result.output)
