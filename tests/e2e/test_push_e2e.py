"""Push notifications end to end: `calsync run` as a real process with `[google] push_url` and
`push_listen`, the Google emulator delivering notifications by POST (its push.py), both
emulators reached through the real client libraries.

The emulator takes http:// addresses here (`require_https = False`): the listener is on
loopback with no TLS proxy in front, which Google itself would refuse (`calsync doctor` says
so, tests/ops/test_ops_push.py).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from calsync.state.store import StateStore, push_channels

ALICE, BOB, CAROL = "alice@acme.test", "bob@acme.test", "carol@acme.test"


def wait_until(predicate, timeout: float, what=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"condition not met within {timeout}s" + (f": {what()[-3000:]}" if what else ""))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def push_daemon(make_config, google_emu, sync, tmp_path: Path, processes):
    """start(interval_seconds, **overrides) → (process, listener URL); first sync already done."""
    google_emu.backend.push.require_https = False
    procs: list[subprocess.Popen[bytes]] = processes
    log_path = tmp_path / "daemon.log"

    def start(interval: float = 600, **overrides):
        # First runs are spread over min(interval / 2, 60 s) in the order of [sync] users:
        # with alice and bob last, their scheduled first runs come 20-60 s after the start,
        # after these tests (a change they see within seconds came by push).
        overrides.setdefault("sync", {"users": [CAROL, BOB, ALICE]})
        port = _free_port()
        url = f"http://127.0.0.1:{port}/google/notify"
        google = {"push_url": url, "push_listen": f"127.0.0.1:{port}", **overrides.pop("google", {})}
        path = make_config(google=google, **overrides)
        assert sync(path).ok  # Events exist; the daemon's polls are incremental from here
        proc = subprocess.Popen(
            [sys.executable, "-m", "calsync", "--config", str(path), "run"],
            stdin=subprocess.DEVNULL, stdout=log_path.open("ab"), stderr=subprocess.STDOUT,
            env={**os.environ, "CALSYNC_INTERVAL_SECONDS": str(interval)},
        )
        procs.append(proc)
        wait_until(lambda: len(google_emu.backend.push.live()) >= len(_users(path)), timeout=15,
                   what=lambda: log_path.read_text())
        return proc, url, path

    start.log = log_path  # type: ignore[attr-defined]
    return start


def _users(path: Path) -> list[str]:
    import tomllib

    return list(tomllib.loads(path.read_text())["sync"]["users"])


def _subjects(sf_emu) -> set[str]:
    return {row["Subject"] for row in sf_emu.backend.list_records("Event")}


def _lists(google_emu, user: str) -> int:
    return google_emu.backend.stats()["events_list_calls"].get(user, 0)


def _events(google_emu, kind: str, user: str) -> list:
    return [h for h in list(google_emu.backend.push.history) if h[1] == kind and h[3] == user]


def test_a_change_reaches_salesforce_in_seconds(push_daemon, google_emu, sf_emu, company):
    proc, _, _ = push_daemon(interval=600)  # polling alone: up to ten minutes
    syncs = google_emu.backend.push.sent(outcome="delivered")
    assert {d.calendar for d in syncs if d.state == "sync"} == set(company.users)
    began = time.monotonic()
    google_emu.backend.update_event(company.meetings["external"], {"summary": "Globex: moved by push"})
    wait_until(lambda: "Globex: moved by push" in _subjects(sf_emu), timeout=5)
    assert time.monotonic() - began < 5  # about half a second unloaded; polling: minutes
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0


@pytest.mark.parametrize("state_engine", ["sqlite", "postgres"])  # CI runs it on both
def test_channels_open_renew_before_expiry_and_stop(push_daemon, google_emu, make_config, tmp_path, state_location):
    push = google_emu.backend.push
    push.max_ttl = dt.timedelta(seconds=8)  # Google grants less than asked
    proc, _, path = push_daemon(interval=600)
    first = {c.calendar: c.id for c in push.live()}
    # Renewal: a new channel opens while the old one lives, then the old one is stopped
    # before its expiration (within half of an 8 s lifetime here, a tenth of a week normally).
    wait_until(lambda: _events(google_emu, "stopped", ALICE), timeout=15)
    [(stopped_at, _, old_id, _)] = _events(google_emu, "stopped", ALICE)[:1]
    assert old_id == first[ALICE]
    assert stopped_at < push.granted[old_id]
    opened = [h for h in _events(google_emu, "opened", ALICE) if h[2] != old_id]
    assert opened and opened[0][0] <= stopped_at
    assert not _events(google_emu, "expired", ALICE)
    # status shows each calendar's channel expiry
    status = subprocess.run([sys.executable, "-m", "calsync", "--config", str(path), "status", "--json"],
                            capture_output=True, text=True, timeout=60)
    shown = {c["user"]: c["push_channel_expires_at"] for c in json.loads(status.stdout)["calendars"]}
    assert all(shown[u] for u in (ALICE, BOB, CAROL)), shown
    # A calendar removed by a reload: its channel is stopped.
    text = path.read_text().replace(f'"{BOB}", ', "").replace(f', "{BOB}"', "")
    path.write_text(text)
    proc.send_signal(signal.SIGHUP)
    wait_until(lambda: not push.live(BOB) and _events(google_emu, "stopped", BOB), timeout=10)
    # Shutdown stops every channel and forgets them.
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert push.live() == []
    store = StateStore(state_location)
    try:
        assert push_channels(store) == []
    finally:
        store.close()


def test_a_lost_notification_is_covered_by_the_next_poll_and_the_channel_replaced(
    push_daemon, google_emu, sf_emu, company
):
    push = google_emu.backend.push
    proc, _, _ = push_daemon(interval=3)
    old = push.live(ALICE)[0].id
    before = _lists(google_emu, ALICE)
    wait_until(lambda: _lists(google_emu, ALICE) >= before + 2, timeout=10)  # polls after the channel
    push.forget(calendar=ALICE)  # Google lost the channel: no notification, no error
    google_emu.backend.update_event(company.meetings["external"], {"summary": "Globex: found by a poll"})
    wait_until(lambda: "Globex: found by a poll" in _subjects(sf_emu), timeout=10)
    # The poll found changes no notification announced: a new channel replaces the lost one.
    wait_until(lambda: push.live(ALICE) and push.live(ALICE)[0].id != old, timeout=10)
    # A dropped notification: covered by the next poll as well.
    push.drop_next = 1
    google_emu.backend.update_event(company.meetings["external"], {"summary": "Globex: dropped"})
    wait_until(lambda: "Globex: dropped" in _subjects(sf_emu), timeout=10)
    assert push.sent(outcome="dropped")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0


def test_a_wrong_token_or_an_unknown_channel_is_refused_and_syncs_nothing(
    push_daemon, google_emu, company
):
    proc, url, _ = push_daemon(interval=600)
    channel = google_emu.backend.push.live(ALICE)[0]
    assert requests.get(url, timeout=5).text == "calsync push listener\n"
    before = _lists(google_emu, ALICE)
    headers = {"X-Goog-Channel-ID": channel.id, "X-Goog-Resource-ID": channel.resource_id,
               "X-Goog-Resource-State": "exists", "X-Goog-Message-Number": "7",
               "X-Goog-Channel-Token": "forged-token-value"}
    assert requests.post(url, headers=headers, timeout=5).status_code == 403
    assert requests.post(url, headers={**headers, "X-Goog-Channel-ID": "no-such-channel"},
                         timeout=5).status_code == 404
    no_token = {k: v for k, v in headers.items() if k != "X-Goog-Channel-Token"}
    assert requests.post(url, headers=no_token, timeout=5).status_code == 403
    time.sleep(1.5)  # past the debounce: nothing ran
    assert _lists(google_emu, ALICE) == before
    log = push_daemon.log.read_text()
    assert 'msg="push notification refused" reason="wrong token"' in log
    assert 'reason="unknown channel" channel=no-such-channel' in log
    assert "forged-token-value" not in log
    # The real token (Google's header) is acted on.
    good = {**headers, "X-Goog-Channel-Token": channel.token}
    assert requests.post(url, headers=good, timeout=5).status_code == 200
    wait_until(lambda: _lists(google_emu, ALICE) == before + 1, timeout=5)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0


def test_a_burst_of_changes_gives_one_sync(push_daemon, google_emu, sf_emu, company):
    proc, _, _ = push_daemon(interval=600)
    before = _lists(google_emu, ALICE)
    for n in range(10):  # ten notifications for alice within a few milliseconds
        google_emu.backend.update_event(company.meetings["external"], {"summary": f"Globex #{n}"})
    wait_until(lambda: "Globex #9" in _subjects(sf_emu), timeout=5)
    time.sleep(1.0)
    delivered = [d for d in google_emu.backend.push.sent(ALICE, "delivered") if d.state == "exists"]
    assert len(delivered) == 10
    assert _lists(google_emu, ALICE) - before <= 2  # one sync, or one more if a run was going
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
