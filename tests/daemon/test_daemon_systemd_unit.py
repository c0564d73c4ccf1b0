"""systemd/calsync.service: hardened (exposure ≤ 2.0) and clean under `systemd-analyze verify`.

Needs `systemd-analyze` (Debian/Ubuntu package `systemd`); skipped only when it is missing.
verify wants ExecStart= to exist, so it checks a copy pointing at this environment's `calsync`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from configparser import ConfigParser
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "calsync.service"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze not installed (apt package: systemd)")


def settings() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


@needs_analyze
def test_exposure_score_is_at_most_2():
    result = subprocess.run(
        [ANALYZE, "security", "--offline=yes", "--no-pager", str(UNIT)],
        capture_output=True, text=True, timeout=60,
    )
    match = re.search(r"Overall exposure level for calsync\.service: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 2.0, result.stdout


@needs_analyze
def test_verify_has_nothing_to_say(tmp_path):
    calsync = Path(sys.executable).with_name("calsync")
    assert calsync.exists(), "the calsync console script is not installed next to this python"
    text = UNIT.read_text()
    assert "ExecStart=/opt/calsync/bin/calsync " in text
    copy = tmp_path / "calsync.service"
    copy.write_text(text.replace("/opt/calsync/bin/calsync", str(calsync)))
    result = subprocess.run(
        [ANALYZE, "verify", "--no-pager", str(copy)], capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0 and result.stdout == "" and result.stderr == "", (
        result.stdout + result.stderr
    )


def test_unit_is_a_notify_service_with_a_watchdog():
    found = settings()
    assert found["Type"] == ["notify"]
    assert found["NotifyAccess"] == ["main"]
    assert found["WatchdogSec"] and found["WatchdogSec"][0] not in ("", "0")
    assert found["Restart"] == ["on-failure"]
    assert found["ExecStart"][0].endswith(" run")


def test_secrets_come_as_credentials_not_environment():
    found = settings()
    names = {value.split(":", 1)[0] for value in found["LoadCredential"]}
    # JWT bearer auth by default: a key that does not expire (calsync.toml names it "%d/...").
    assert names == {"google_service_account.json", "salesforce_jwt.key"}
    assert all(value.split(":", 1)[1] == f"/etc/credstore/calsync/{value.split(':', 1)[0]}"
               for value in found["LoadCredential"])  # where an admin's shell reads them too
    assert not any("SALESFORCE" in value.upper() for value in found.get("Environment", []))


def test_the_service_runs_as_the_static_user_the_sysusers_file_creates():
    found = settings()
    assert found["User"] == ["calsync"] and found["Group"] == ["calsync"]
    assert "DynamicUser" not in found  # a dynamic user does not exist for `sudo -u` outside it
    sysusers = (UNIT.parent / "calsync.sysusers").read_text()
    entries = [line.split() for line in sysusers.splitlines() if line and not line.startswith("#")]
    assert [e[:3] for e in entries] == [["u", "calsync", "-"]]


def test_reload_checks_the_configuration_before_signalling():
    found = settings()
    check, signal = found["ExecReload"]
    assert check.startswith("/opt/calsync/bin/calsync --config /etc/calsync/calsync.toml check-config")
    assert signal == "/bin/kill -HUP $MAINPID"


def test_state_and_configuration_directories_match_the_documented_paths():
    found = settings()
    assert found["StateDirectory"] == ["calsync"]  # /var/lib/calsync/state.db
    assert found["ConfigurationDirectory"] == ["calsync"]  # /etc/calsync/calsync.toml
    assert "--config /etc/calsync/calsync.toml" in found["ExecStart"][0]


def test_outbound_https_is_not_blocked():
    found = settings()
    assert found["RestrictAddressFamilies"] == ["AF_INET AF_INET6 AF_UNIX"]
    for value in found.get("IPAddressDeny", []):
        assert "any" not in value.split()
    assert "PrivateNetwork" not in found


def test_unit_parses_as_ini():
    parser = ConfigParser(strict=False, interpolation=None)
    parser.read_string(UNIT.read_text())
    assert set(parser.sections()) == {"Unit", "Service", "Install"}


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None, reason="systemd-sysusers not installed")
def test_sysusers_file_creates_the_calsync_user(tmp_path):
    (tmp_path / "etc").mkdir()  # an empty root: passwd and group are created there
    done = subprocess.run(
        ["systemd-sysusers", f"--root={tmp_path}", str(UNIT.parent / "calsync.sysusers")],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0 and "not a valid" not in done.stderr, done.stderr
    (user,) = [l.split(":") for l in (tmp_path / "etc/passwd").read_text().splitlines()
               if l.startswith("calsync:")]
    assert user[5] == "/var/lib/calsync" and int(user[2]) < 1000  # a system user, home = state
    assert any(l.startswith("calsync:") for l in (tmp_path / "etc/group").read_text().splitlines())


def test_journald_keeps_the_lines_of_a_first_sync():
    """journald's default (10,000 lines per 30 s) would drop lines of a 100,000-meeting first sync
    (~17,000 per 30 s): the unit raises the service's own limit."""
    found = settings()
    assert found["LogRateLimitIntervalSec"] == ["30s"]
    assert int(found["LogRateLimitBurst"][0]) >= 20_000


@pytest.mark.skipif(shutil.which("systemd-tmpfiles") is None or shutil.which("systemd-sysusers") is None,
                    reason="systemd-tmpfiles/systemd-sysusers not installed")
def test_tmpfiles_creates_the_state_directory_before_the_first_start(tmp_path):
    (tmp_path / "etc").mkdir()
    for tool, name in (("systemd-sysusers", "calsync.sysusers"), ("systemd-tmpfiles", "calsync.tmpfiles")):
        args = [tool, f"--root={tmp_path}", str(UNIT.parent / name)]
        if tool == "systemd-tmpfiles":
            args.insert(1, "--create")
        done = subprocess.run(args, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    state = tmp_path / "var/lib/calsync"
    (user,) = [l.split(":") for l in (tmp_path / "etc/passwd").read_text().splitlines()
               if l.startswith("calsync:")]
    info = state.stat()
    assert state.is_dir() and (info.st_mode & 0o777) == 0o700 and info.st_uid == int(user[2])
    assert settings()["StateDirectory"] == ["calsync"] and settings()["StateDirectoryMode"] == ["0700"]

def test_open_files_and_memory_are_limited():
    """LimitNOFILE= and MemoryMax= (systemd/README.md "Limits"): the listeners hold at most
    120 connections and the daemon about 250 descriptors in all; its RSS was 74-138 MB."""
    found = settings()
    assert found["LimitNOFILE"] == ["1024"]
    assert found["MemoryMax"] == ["512M"]
