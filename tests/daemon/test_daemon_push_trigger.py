"""What the daemon does with a push notification (daemon.notify_change), in-process with a fake
sync: a burst gives one sync, a notification during a run gives exactly one more run, a
calendar backing off keeps its backoff, and a poll that finds changes no notification
announced replaces the channel. The listener and the channels are tested end to end in
tests/e2e/test_push_e2e.py.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
from pathlib import Path

import pytest
from daemon_helpers import FakeSync, NotifyListener, wait_until, write_config

from calsync.core import config as config_module
from calsync.service.daemon import CalendarRun, Daemon
from calsync.service.notify import Notifier

USERS = ["alice@acme.test", "bob@acme.test"]
ALICE = USERS[0]


@pytest.fixture
def make_daemon(tmp_path: Path):
    sock = NotifyListener()
    path = write_config(tmp_path / "calsync.toml", USERS)
    made: list[Daemon] = []

    def make(fake, *, interval: float = 30.0) -> Daemon:
        daemon = Daemon(lambda: config_module.load(path),
                        interval_override=dt.timedelta(seconds=interval),
                        notifier=Notifier(sock.address), sync_one=fake, stop_grace=2.0,
                        rng=random.Random(3), watchdog_seconds=None)
        made.append(daemon)
        daemon.start()
        return daemon

    yield make
    for daemon in made:
        daemon.stop()
    sock.close()


def test_a_burst_of_notifications_gives_one_sync(make_daemon):
    fake = FakeSync()
    daemon = make_daemon(fake, interval=60)  # no periodic run during the test
    for _ in range(50):
        assert daemon.notify_change(ALICE)
    wait_until(lambda: fake.count(ALICE) == 1, timeout=2)
    time.sleep(0.8)  # well past the debounce: nothing else comes from the burst
    assert fake.count(ALICE) == 1


def test_a_notification_during_a_run_gives_exactly_one_more_run(make_daemon):
    fake = FakeSync(sleep={ALICE: 1.0})
    daemon = make_daemon(fake, interval=60)
    daemon.notify_change(ALICE)
    wait_until(lambda: ALICE in daemon._running, timeout=2)
    for _ in range(10):  # the change may be later than this run's listing: one more run
        assert daemon.notify_change(ALICE)
    wait_until(lambda: fake.count(ALICE) == 2, timeout=5)
    time.sleep(1.5)
    assert fake.count(ALICE) == 2
    assert fake.max_running[ALICE] == 1  # never two at once


def test_a_calendar_backing_off_is_not_synced_by_notifications(make_daemon):
    fake = FakeSync(failing={ALICE})
    daemon = make_daemon(fake, interval=2)
    wait_until(lambda: daemon._status[ALICE].consecutive_failures >= 2, timeout=20)
    wait_until(lambda: not daemon._running, timeout=5)
    before = fake.count(ALICE)
    assert daemon.notify_change(ALICE) is False
    time.sleep(1.0)
    assert fake.count(ALICE) == before


def test_unknown_calendars_and_a_stopping_daemon_ignore_notifications(make_daemon):
    daemon = make_daemon(FakeSync())
    assert daemon.notify_change("mallory@acme.test") is False
    daemon.stop()
    assert daemon.notify_change(ALICE) is False


class _Push:
    """The part of PushService the daemon asks after a poll (no listener, no channels)."""

    def __init__(self) -> None:
        self.suspects: list[str] = []
        self.listener = self
        self.opened_at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)

    def opened_before(self, user: str, moment: dt.datetime) -> bool:
        return self.opened_at < moment

    def suspect(self, user: str) -> None:
        self.suspects.append(user)

    def stop(self, deadline: float = 0.0) -> list:
        return []


class _ChangesOnce:
    """A sync that finds `items` changes on its second run of alice, none otherwise."""

    def __init__(self) -> None:
        self.runs: dict[str, int] = {}
        self.lock = threading.Lock()

    def __call__(self, config: object, user: str) -> CalendarRun:
        with self.lock:
            self.runs[user] = self.runs.get(user, 0) + 1
            count = self.runs[user]
        return CalendarRun(user, True, None, 0, items=3 if (user == ALICE and count == 2) else 0)


def test_changes_no_notification_announced_make_the_channel_suspect(make_daemon):
    sync = _ChangesOnce()
    daemon = make_daemon(sync, interval=1.5)
    push = daemon.push = _Push()
    wait_until(lambda: sync.runs.get(ALICE, 0) >= 3, timeout=20)
    assert push.suspects == [ALICE]


def test_changes_a_notification_announced_keep_the_channel(make_daemon):
    sync = _ChangesOnce()
    daemon = make_daemon(sync, interval=1.5)
    push = daemon.push = _Push()
    wait_until(lambda: sync.runs.get(ALICE, 0) == 1, timeout=20)
    with daemon._lock:  # a notification arrived after the first run began
        daemon._notified[ALICE] = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=5)
    wait_until(lambda: sync.runs.get(ALICE, 0) >= 3, timeout=20)
    assert push.suspects == []
