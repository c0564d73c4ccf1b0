"""Admin commands beside a running `calsync run`: `retry`, `retry --drop` and `resync` are handed to
the daemon (handoff.py) instead of being refused with 75, print what they would print alone and
exit the same way; the service never stops.

The daemon is a real process against both emulators (in this test process); the commands are
real `python -m calsync` processes too. The daemon polls every hour here, so nothing but the
hand-over moves the records.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from daemon_helpers import NotifyListener, wait_until

from calsync.core import config as config_module
from calsync.service import handoff
from calsync.service.admin import RETRY
from calsync.core.errors import EXIT_TEMPFAIL
from calsync.state.lock import LockBusy
from calsync.core.logs import parse_line
from calsync.state.store import StateStore

RULE = "FIELD_CUSTOM_VALIDATION_EXCEPTION"


@pytest.fixture
def listener():
    sock = NotifyListener()
    yield sock
    sock.close()


def refuse_bobs_intro_call(path, sync, sf_emu, google_emu, company, times=1):
    """Bob's intro call synced, then renamed in Google; Salesforce refuses the update: parked."""
    assert sync(path).calendars["bob@acme.test"].ok
    sf_emu.backend.fail_records(1, status_code=RULE, message="Subject must not say moved", times=times)
    google_emu.backend.update_event(company.meetings["lead"], {"summary": "Intro call (moved)"})
    assert sync(path).calendars["bob@acme.test"].failed == 1


@pytest.fixture
def running(make_config, sync, sf_emu, google_emu, company, listener, tmp_path: Path, processes):
    """A config with Bob's intro call parked, and `calsync run` on it (polling hourly)."""
    path = make_config()

    def start(times: int = 1) -> tuple[Path, subprocess.Popen[bytes]]:
        refuse_bobs_intro_call(path, sync, sf_emu, google_emu, company, times=times)
        log = (tmp_path / "daemon.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "calsync", "--config", str(path), "run"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "NOTIFY_SOCKET": listener.address, "CALSYNC_INTERVAL_SECONDS": "3600"},
        )
        processes.append(proc)
        listener.wait_for("READY", "1", timeout=15)
        return path, proc

    return start


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(15)


def daemon_log(tmp_path: Path) -> list[dict[str, str]]:
    return [parse_line(line) for line in (tmp_path / "daemon.log").read_text().splitlines()
            if line.startswith("ts=") or "msg=" in line]


@pytest.mark.parametrize("state_engine", ["sqlite", "postgres"])  # CI runs it on both
def test_retry_beside_the_daemon_writes_the_record_without_stopping_it(running, cli, sf_emu, tmp_path):
    path, proc = running()
    done = cli("--config", str(path), "retry", "--user", "bob@acme.test", timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("written: 'Intro call (moved)'")
    assert "bob@acme.test: created 0, updated 1, deleted 0, failed 0" in done.stdout
    assert "handed over to it as request" in done.stderr
    assert [r for r in sf_emu.backend.list_records("Event") if r["Subject"] == "Intro call (moved)"]
    assert proc.poll() is None  # the service never stopped
    status = cli("--config", str(path), "status", "--check")
    assert status.returncode == 0, status.stdout
    assert stop(proc) == 0
    taken = [l for l in daemon_log(tmp_path) if l.get("msg") == "admin request taken"]
    assert taken and taken[0]["command"] == RETRY


def test_retry_still_refused_beside_the_daemon_exits_65_with_the_reason(running, cli):
    path, proc = running(times=2)  # the retry is refused again
    done = cli("--config", str(path), "retry", "--user", "bob@acme.test", timeout=60)
    assert done.returncode == 65, done.stdout + done.stderr
    assert done.stdout.startswith("still refused: 'Intro call (moved)'")
    assert f"update refused, {RULE}: Subject must not say moved" in done.stdout.splitlines()[0]
    assert proc.poll() is None
    assert stop(proc) == 0


def test_retry_drop_beside_the_daemon_keeps_the_record_visible(running, cli, company):
    path, proc = running()
    done = cli("--config", str(path), "retry", "--drop", "--event-id", company.meetings["lead"],
               timeout=60, env={**os.environ, "SUDO_USER": "alice-admin"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("stopped retrying 'Intro call (moved)'")
    text = cli("--config", str(path), "status", "--user", "bob@acme.test").stdout
    assert "waiting for retry: none" in text
    assert "refused in the last 30 days, no longer waiting: 1" in text
    assert "retrying stopped" in text and "by alice-admin (sudo -u " in text
    report = json.loads(cli("--config", str(path), "status", "--json").stdout)
    (bob,) = [c for c in report["calendars"] if c["user"] == "bob@acme.test"]
    (fate,) = bob["record_history"]
    assert (fate["outcome"], fate["status_code"], fate["subject"]) == ("dropped", RULE, "Intro call (moved)")
    assert fate["dropped_by"].startswith("alice-admin")
    explained = cli("--config", str(path), "explain", "--user", "bob@acme.test",
                    "--event-id", company.meetings["lead"]).stdout
    assert "retrying stopped" in explained and RULE in explained
    assert proc.poll() is None
    assert stop(proc) == 0


def test_resync_beside_the_daemon(running, cli, sf_emu):
    path, proc = running()
    dry = cli("--config", str(path), "resync", "--user", "alice@acme.test", "--dry-run", timeout=60)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "handed over" not in dry.stderr  # a dry run writes nothing: it runs by itself
    victim = next(r for r in sf_emu.backend.list_records("Event")
                  if r["Subject"] == "Globex renewal: pricing review")
    sf_emu.backend.update_record("Event", victim["Id"], {"Location": "drifted"}, system=True)
    owner = next(r for r in sf_emu.backend.list_records("User") if r["Id"][:15] == victim["OwnerId"][:15])
    user = owner["Email"]
    done = cli("--config", str(path), "resync", "--user", user, timeout=90)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "handed over to it as request" in done.stderr
    assert f"listed {user}:" in done.stdout  # the daemon's progress, printed here
    lines = [l for l in done.stdout.splitlines() if victim["Id"] in l]
    assert len(lines) == 1, done.stdout
    (line,) = lines
    start = dt.datetime.fromisoformat(victim["StartDateTime"].replace("+0000", "+00:00"))
    assert f"'Globex renewal: pricing review' {start:%Y-%m-%d %H:%M} UTC" in line
    assert f"owner {user}" in line and "005" not in line.split("owner")[1].split()[0]
    assert proc.poll() is None
    assert stop(proc) == 0


def test_a_daemon_that_does_not_take_the_request_up_gives_75(make_config, tmp_path, processes):
    """An older daemon (no requests table known to it) holds the lock: the request is withdrawn
    after the pick-up time and never runs later."""
    path = make_config()
    cfg = config_module.load(path)
    StateStore(cfg.state.location).close()  # the database exists, migrated
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from calsync.state.lock import WriterLock;"
         " lock = WriterLock(sys.argv[1], 'run'); lock.acquire(); print('locked', flush=True); time.sleep(60)",
         str(cfg.state.location), "calsync"],
        stdout=subprocess.PIPE, text=True)
    processes.append(holder)
    assert holder.stdout.readline().strip() == "locked"
    started = time.monotonic()
    with pytest.raises(LockBusy, match="did not take up request") as caught:
        handoff.hand_off(cfg, RETRY, {"users": [], "event_id": None}, holder.pid, pickup=0.5)
    assert caught.value.exit_code == EXIT_TEMPFAIL and time.monotonic() - started < 10
    store = StateStore(cfg.state.location)
    try:
        assert handoff.take(store, os.getpid()) == []  # withdrawn: a later daemon never runs it
    finally:
        store.close()
