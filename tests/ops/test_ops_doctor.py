"""`calsync doctor`: every check against the sandbox company, and the ones that fail."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from calsync.cli import main


def doctor(path: Path):
    return CliRunner().invoke(main, ["--config", str(path), "doctor"])


def fails(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("FAIL")]


def test_doctor_passes_every_check_against_the_sandbox_company(make_config, sf_emu):
    result = doctor(make_config())
    assert result.exit_code == 0, result.output
    assert fails(result.stdout) == []
    for name in ("configuration", "state database", "Google access for alice@acme.test",
                 "Google access for carol@acme.test", "Salesforce login", "Salesforce API allowance",
                 "Event permissions", "Event fields", "activity field Calsync_Activity_DateTime__c",
                 "Salesforce users"):
        assert f"ok   {name}" in result.stdout
    assert "daily API calls remaining" in result.stdout


def test_doctor_writes_nothing(make_config, sf_emu, tmp_path):
    path = make_config()
    writes_before = sf_emu.backend.calls_by_kind().get("collections", 0)
    doctor(path)
    assert not (tmp_path / "state.db").exists()
    assert sf_emu.backend.calls_by_kind().get("collections", 0) == writes_before


def test_missing_activity_field_fails_with_advice(make_config):
    result = doctor(make_config(sync={"activity_datetime_field": "Meeting_Start__c"}))
    assert result.exit_code == 1
    (line,) = fails(result.stdout)
    assert "activity field Meeting_Start__c: does not exist on Event" in line
    advice = result.stdout.splitlines()[result.stdout.splitlines().index(line) + 1]
    assert "→" in advice and "Date/Time field Meeting_Start__c" in advice


def test_external_id_field_that_is_not_an_external_id_fails(make_config):
    result = doctor(make_config(salesforce={"external_id_field": "Calsync_Activity_DateTime__c"}))
    assert result.exit_code == 1
    assert any("is not marked External ID" in line for line in fails(result.stdout))


def test_unmapped_user_fails(make_config, google_emu):
    google_emu.backend.add_user("erin@acme.test", "Erin New", "UTC")
    result = doctor(make_config(sync={"users": ["alice@acme.test", "erin@acme.test"]}))
    assert result.exit_code == 1
    (line,) = fails(result.stdout)
    assert line.startswith("FAIL Salesforce users: no active Salesforce User for erin@acme.test")
    assert "user_map" in result.stdout


def test_inactive_user_is_named_as_inactive(make_config, google_emu):
    google_emu.backend.add_user("dave@acme.test", "Dave Gone", "UTC")
    result = doctor(make_config(sync={"users": ["alice@acme.test", "dave@acme.test"]}))
    assert result.exit_code == 1
    assert "dave@acme.test (inactive User)" in result.stdout


def test_bad_salesforce_token_fails_without_showing_it(make_config):
    token = "00DSANDBOX!ARnotAValidSessionTokenAtAll1234567890"
    result = doctor(make_config(salesforce={"access_token": token}))
    assert result.exit_code == 1
    assert any(line.startswith("FAIL Salesforce login") for line in fails(result.stdout))
    assert "salesforce.access_token" in result.stdout  # what to do
    assert token not in result.output
    assert token[:20] not in result.output


def test_google_user_without_delegation_fails(make_config, google_emu):
    google_emu.backend.add_user("erin@acme.test", "Erin New", "UTC")
    path = make_config(sync={"users": ["alice@acme.test", "erin@acme.test"]})
    google_emu.backend.users.pop("erin@acme.test")  # gone from the domain: invalid_grant
    result = doctor(path)
    assert result.exit_code == 1
    assert any(line.startswith("FAIL Google access for erin@acme.test") for line in fails(result.stdout))
    assert "ok   Google access for alice@acme.test" in result.stdout


def test_configuration_that_does_not_load_exits_78(tmp_path):
    bad = tmp_path / "calsync.toml"
    bad.write_text("[sync]\nusers = 'alice'\n")
    result = doctor(bad)
    assert result.exit_code == 78
    assert result.stdout.startswith("FAIL configuration")


def test_before_the_first_start_doctor_says_what_systemd_will_create(make_config, tmp_path):
    """The systemd install before `systemctl start`: /var/lib/calsync does not exist yet. doctor
    says systemd creates it (or tmpfiles.d now), a warning, not a FAIL."""
    from calsync.core import config as config_module
    from calsync.commands import doctor as ops

    root = tmp_path / "var-lib"
    root.mkdir()
    cfg = config_module.load(make_config(state={"path": str(root / "calsync" / "state.db")}))
    check = ops._check_state(cfg, state_root=root)
    assert check.ok and check.warn
    assert f"{root / 'calsync'} does not exist yet: systemd creates it" in check.detail
    assert "systemd-tmpfiles --create /etc/tmpfiles.d/calsync.conf" in (check.advice or "")
    assert not (root / "calsync").exists()  # doctor writes nothing
    elsewhere = config_module.load(make_config(state={"path": str(tmp_path / "a" / "b" / "state.db")}))
    assert ops._check_state(elsewhere, state_root=root).detail.endswith(
        f"the first sync creates it (and the directory {tmp_path / 'a' / 'b'}, mode 0700)")


def test_a_secret_in_a_readable_config_and_a_listener_on_all_addresses_are_warned_about(
        make_config, cli):
    path = make_config(google={"push_url": "https://calsync.example.com/google/notify",
                               "push_listen": "0.0.0.0:8790"},
                       metrics={"listen": "[::]:9464"})
    path.chmod(0o644)  # the access_token of make_config is in the file
    checked = cli("--config", str(path), "check-config")
    assert checked.returncode == 0, checked.stderr  # warnings, not failures: reloads go on
    assert "WARN secret in a readable configuration:" in checked.stderr
    assert "salesforce.access_token" in checked.stderr and "(mode 0644)" in checked.stderr
    assert "WARN google.push_listen on all addresses" in checked.stderr
    assert "WARN metrics.listen on all addresses" in checked.stderr
    import tomllib

    token = tomllib.loads(path.read_text())["salesforce"]["access_token"]
    assert token not in checked.stderr + checked.stdout  # the secret itself is never shown
    doctor = cli("--config", str(path), "doctor")
    assert "WARN secret in a readable configuration" in doctor.stdout
    assert "WARN google.push_listen on all addresses" in doctor.stdout
    # Owner-only file, loopback listeners: nothing to say.
    quiet = make_config(google={"push_url": "https://calsync.example.com/google/notify",
                                "push_listen": "127.0.0.1:8790"}, metrics={"listen": "[::1]:9464"})
    quiet.chmod(0o600)
    checked = cli("--config", str(quiet), "check-config")
    assert checked.returncode == 0 and "WARN" not in checked.stderr, checked.stderr
