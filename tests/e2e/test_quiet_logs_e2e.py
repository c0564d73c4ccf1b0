"""Logs an operator can live with: an idle poll says nothing at INFO, every action line names the
meeting (subject, start), an upsert that found its Event says `adopted`, the daemon sums up each
interval in one line.

Real `calsync` processes against the emulators; the lines are read back with `logs.parse_line`.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from calsync.core import config as config_module
from calsync.core.logs import parse_line
from calsync.sandbox.demo import KEY_FIELD

ACTIONS = {"created", "adopted", "updated", "deleted", "skipped", "failed"}


def lines(stderr: str) -> list[dict[str, str]]:
    return [parse_line(l) for l in stderr.splitlines() if "msg=" in l]


def test_an_idle_poll_logs_nothing_at_info(cli, make_config):
    path = make_config()
    first = cli("--config", str(path), "sync")
    assert first.returncode == 0, first.stderr
    assert [l for l in lines(first.stderr) if l["msg"] == "calendar synced"]  # a first sync says so
    idle = cli("--config", str(path), "sync")
    assert idle.returncode == 0
    assert [l for l in lines(idle.stderr) if l.get("level") == "info"] == []
    debug = cli("--config", str(path), "--log-level", "debug", "sync")
    synced = [l for l in lines(debug.stderr) if l["msg"] == "calendar synced"]
    assert len(synced) == 3 and {l["level"] for l in synced} == {"debug"}


def test_every_action_line_names_the_meetings_subject_and_start(cli, make_config, google_emu, company):
    path = make_config()
    done = cli("--config", str(path), "sync")
    google_emu.backend.update_event(company.meetings["lead"], {"summary": "Intro call (moved)"})
    google_emu.backend.delete_event(company.meetings["external"])
    again = cli("--config", str(path), "sync")
    actions = [l for l in lines(done.stderr + again.stderr) if l["msg"] in ACTIONS]
    assert {l["msg"] for l in actions} >= {"created", "updated", "deleted", "skipped"}
    for line in actions:
        assert line.get("subject") and line.get("start"), line
        dt.datetime.fromisoformat(line["start"]) if "T" in line["start"] else dt.date.fromisoformat(line["start"])


@pytest.mark.sqlite_only("restores the state from a copy of its file")
def test_an_upsert_that_finds_its_event_says_adopted(cli, make_config, google_emu, company, tmp_path):
    """A state restored from a backup older than a meeting: the incremental listing sees the
    meeting as new, the upsert on the External ID finds the Event already there."""
    path = make_config(salesforce={"external_id_field": KEY_FIELD})
    assert cli("--config", str(path), "sync").returncode == 0
    state = config_module.load(path).state.path
    backup = tmp_path / "backup.db"
    cli("--config", str(path), "status")  # nothing open: a plain copy is a backup
    shutil.copy(state, backup)
    start = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    google_emu.backend.create_event("alice@acme.test", {
        "summary": "Globex follow-up", "attendees": ["alice@acme.test", "hank@globex.test"],
        "start": {"dateTime": start.isoformat()}, "end": {"dateTime": (start + dt.timedelta(hours=1)).isoformat()}})
    made = cli("--config", str(path), "sync")
    assert [l["msg"] for l in lines(made.stderr) if l.get("subject") == "Globex follow-up"] == ["created"]
    for suffix in ("", "-wal", "-shm"):
        Path(f"{state}{suffix}").unlink(missing_ok=True)
    shutil.copy(backup, state)
    again = cli("--config", str(path), "sync")
    assert again.returncode == 0, again.stderr
    (line,) = [l for l in lines(again.stderr) if l.get("subject") == "Globex follow-up"]
    assert line["msg"] == "adopted" and line["user"] == "alice@acme.test"
    assert line["start"] == start.isoformat(timespec="minutes")


def test_the_daemon_sums_up_each_interval_in_one_line(make_config, tmp_path, processes):
    path = make_config()
    log = tmp_path / "daemon.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "calsync", "--config", str(path), "run"],
        stdin=subprocess.DEVNULL, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        env={**os.environ, "CALSYNC_INTERVAL_SECONDS": "2"},
    )
    processes.append(proc)
    deadline = dt.datetime.now() + dt.timedelta(seconds=30)
    summaries: list[dict[str, str]] = []
    while dt.datetime.now() < deadline and len(summaries) < 3:
        summaries = [l for l in lines(log.read_text()) if l["msg"] == "daemon summary"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    assert len(summaries) >= 3, log.read_text()
    assert {"polled", "changed", "failing", "salesforce_calls", "failed_runs"} <= set(summaries[0])
    assert sum(int(l["polled"]) for l in summaries) >= 3
    idle = [l for l in lines(log.read_text()) if l["msg"] == "calendar synced" and l["level"] == "info"]
    assert len(idle) == 3  # the first sync of each calendar; the idle polls after it are quiet
