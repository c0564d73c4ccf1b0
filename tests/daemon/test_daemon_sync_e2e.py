"""`calsync run` as a real process syncing the demo company against both emulators.

The emulators run in the test process (tests/conftest.py); the daemon reaches them over
loopback through the real google-api-python-client and simple-salesforce. A meeting changed
in Google lands in Salesforce on a later run, without restarting anything.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from daemon_helpers import NotifyListener, wait_until


@pytest.fixture
def listener():
    sock = NotifyListener()
    yield sock
    sock.close()


@pytest.fixture
def daemon(make_config, listener, tmp_path: Path, processes):
    procs: list[subprocess.Popen[bytes]] = processes
    log_path = tmp_path / "daemon.log"

    def start(**overrides) -> subprocess.Popen[bytes]:
        config = make_config(**overrides)
        proc = subprocess.Popen(
            [sys.executable, "-m", "calsync", "--config", str(config), "run"],
            stdin=subprocess.DEVNULL, stdout=log_path.open("wb"), stderr=subprocess.STDOUT,
            env={**os.environ, "NOTIFY_SOCKET": listener.address, "CALSYNC_INTERVAL_SECONDS": "1"},
        )
        procs.append(proc)
        return proc

    start.log = log_path  # type: ignore[attr-defined]
    return start


def subjects(sf_emu) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for row in sf_emu.backend.list_records("Event"):
        found.setdefault(row["Subject"], []).append(row)
    return found


@pytest.mark.parametrize("state_engine", ["sqlite", "postgres"])  # CI runs it on both
def test_daemon_syncs_and_a_changed_meeting_lands_on_a_later_run(daemon, listener, sf_emu, google_emu, company, tmp_path, state_location):
    proc = daemon()
    listener.wait_for("READY", "1", timeout=15)
    wait_until(lambda: len(sf_emu.backend.list_records("Event")) == 7, timeout=20)
    listener.wait_for("STATUS", where=lambda m: m["STATUS"].startswith("3 calendars, 3 ok"), timeout=10)
    before = {r["Id"] for r in subjects(sf_emu)["Globex renewal: pricing review"]}

    google_emu.backend.update_event(company.meetings["external"], {"summary": "Globex renewal: moved"})
    wait_until(lambda: len(subjects(sf_emu).get("Globex renewal: moved", [])) == 2, timeout=20)
    assert {r["Id"] for r in subjects(sf_emu)["Globex renewal: moved"]} == before
    assert len(sf_emu.backend.list_records("Event")) == 7

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0, daemon.log.read_text()
    listener.wait_for("STOPPING", "1", timeout=2)
    from calsync.state.store import StateStore

    store = StateStore(state_location)  # make_config's state
    saved = {c.user: c for c in store.calendars()}
    assert set(saved) == set(company.users)
    assert all(c.sync_token and c.last_success_at for c in saved.values())
    assert len(store.written_for_owner("alice@acme.test")) == 3
    store.close()


def test_unmapped_user_fails_alone_and_the_daemon_keeps_running(daemon, listener, sf_emu, company):
    proc = daemon(sync={"users": [*company.users, "nobody@acme.test"]})
    listener.wait_for("READY", "1", timeout=15)
    status = listener.wait_for(
        "STATUS", timeout=20,
        where=lambda m: "3 ok, 1 failing (nobody@acme.test" in m["STATUS"],
    )
    assert status["STATUS"].startswith("4 calendars, 3 ok")
    assert len(sf_emu.backend.list_records("Event")) == 7
    time.sleep(0.3)
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    assert "no active Salesforce User with this email" in daemon.log.read_text()


def test_doctor_warns_that_the_running_daemon_uses_an_access_token(daemon, listener, make_config):
    from click.testing import CliRunner

    from calsync.cli import main

    proc = daemon()  # the sandbox configuration: auth = "access_token"
    listener.wait_for("READY", "1", timeout=15)
    result = CliRunner().invoke(main, ["--config", str(make_config()), "doctor"])
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    assert result.exit_code == 0, result.output  # a warning, not a failure
    # (The test configuration holds the token itself in a 0644 file: that is warned about too.)
    (line,) = [l for l in result.stdout.splitlines() if l.startswith("WARN Salesforce credential")]
    assert f'the daemon (pid {proc.pid}) runs with auth = "access_token", a token that expires' in line
