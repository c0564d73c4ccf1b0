"""One writer per state database: two `sync` at once, or `run` plus a hand-run `sync`, on an org
without an External ID field (where nothing in Salesforce stops a second copy) never double an
Event."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections import Counter

from calsync.sandbox.load import seed_meetings
from calsync.sandbox.server import Fault

COLLECTIONS = "/services/data/v59.0/composite/sobjects"
MEETINGS = 150


def duplicates(sf_emu) -> int:
    counts = Counter((r["OwnerId"], r["Subject"], r["StartDateTime"]) for r in sf_emu.backend.list_records("Event"))
    return sum(n - 1 for n in counts.values())


def start(*args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "calsync", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **env})


def seeded(google_emu, sf_emu, company, make_config):
    seed_meetings(google_emu.backend, sf_emu.backend, company.users, MEETINGS, dt.datetime.now(dt.timezone.utc))
    # Every create is held a moment, so both processes are surely writing at the same time.
    sf_emu.faults.add(Fault(delay=0.3, method="POST", path_prefix=COLLECTIONS, times=-1))
    return make_config(salesforce={"external_id_field": None})


def test_two_syncs_started_together_create_each_event_once(google_emu, sf_emu, company, make_config):
    path = seeded(google_emu, sf_emu, company, make_config)
    first, second = (start("--config", str(path), "sync") for _ in range(2))
    outs = [p.communicate(timeout=120) for p in (first, second)]
    codes = sorted(p.returncode for p in (first, second))
    assert codes == [0, 75], outs
    refused = next(err for p, (_, err) in zip((first, second), outs) if p.returncode == 75)
    assert "`calsync sync` (pid" in refused and "is writing this state database" in refused
    assert len(sf_emu.backend.list_records("Event")) == MEETINGS + 7
    assert duplicates(sf_emu) == 0


def test_two_syncs_with_wait_run_one_after_the_other(google_emu, sf_emu, company, make_config):
    path = seeded(google_emu, sf_emu, company, make_config)
    runs = [start("--config", str(path), "sync", "--wait", "60") for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in runs]
    assert [p.returncode for p in runs] == [0, 0], outs
    assert len(sf_emu.backend.list_records("Event")) == MEETINGS + 7
    assert duplicates(sf_emu) == 0


def test_a_hand_run_sync_beside_the_daemon_is_refused(google_emu, sf_emu, company, make_config, cli):
    path = seeded(google_emu, sf_emu, company, make_config)
    daemon = start("--config", str(path), "run", CALSYNC_INTERVAL_SECONDS="1")
    try:
        deadline = time.monotonic() + 60
        while len(sf_emu.backend.list_records("Event")) < MEETINGS + 7 and time.monotonic() < deadline:
            assert daemon.poll() is None, daemon.communicate()
            refused = cli("--config", str(path), "sync")  # while the daemon's first cycles run
            assert refused.returncode == 75, refused.stderr
            assert f"`calsync run` (pid {daemon.pid}" in refused.stderr and "stop it first" in refused.stderr
        assert len(sf_emu.backend.list_records("Event")) == MEETINGS + 7
        began = time.monotonic()
        waited = cli("--config", str(path), "sync", "--wait", "1")
        assert waited.returncode == 75 and time.monotonic() - began >= 1
        assert "after waiting 1 s" in waited.stderr
        assert cli("--config", str(path), "status").returncode == 0  # readers never take the lock
        assert cli("--config", str(path), "resync", "--dry-run").returncode == 0
        # A resync that writes is handed to the daemon, which runs it as the only writer
        # (handoff.py); the duplicates check below still holds.
        resynced = cli("--config", str(path), "resync")
        assert resynced.returncode == 0 and "handed over to it" in resynced.stderr, resynced.stderr
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.communicate(timeout=30)
    assert daemon.returncode == 0
    done = cli("--config", str(path), "sync")  # the daemon stopped: the hand run goes through
    assert done.returncode == 0, done.stderr
    assert duplicates(sf_emu) == 0 and len(sf_emu.backend.list_records("Event")) == MEETINGS + 7
