"""The daemon in-process: jobs, concurrency, backoff, reload and stop, with a fake sync.

The scheduler, its thread pool and the notify socket are real; only `sync_one` (what one
calendar's run does) is a stand-in, so timing and failures can be set per calendar.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from pathlib import Path

import pytest
from daemon_helpers import FakeSync, NotifyListener, utcnow, wait_until, write_config

from calsync.core import config as config_module
from calsync.service.daemon import Daemon
from calsync.service.notify import Notifier

USERS = ["alice@acme.test", "bob@acme.test", "carol@acme.test"]


@pytest.fixture
def listener():
    sock = NotifyListener()
    yield sock
    sock.close()


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_config(tmp_path / "calsync.toml", USERS)


@pytest.fixture
def make_daemon(config_path: Path, listener: NotifyListener):
    made: list[Daemon] = []

    def make(fake: FakeSync, *, interval: float = 0.6, stop_grace: float = 2.0, seed: int = 1) -> Daemon:
        daemon = Daemon(
            lambda: config_module.load(config_path),
            interval_override=dt.timedelta(seconds=interval),
            notifier=Notifier(listener.address),
            sync_one=fake,
            stop_grace=stop_grace,
            rng=random.Random(seed),
            watchdog_seconds=None,
        )
        made.append(daemon)
        return daemon

    yield make
    for daemon in made:
        daemon.stop()


def test_ready_after_every_calendar_is_scheduled(make_daemon, listener):
    daemon = make_daemon(FakeSync())
    daemon.start()
    ready = listener.wait_for("READY", "1", timeout=2)
    assert ready["STATUS"].startswith("3 calendars, 0 ok, 3 pending, next run ")
    assert sorted(j.id for j in daemon.scheduler.get_jobs()) == [f"calendar:{u}" for u in USERS]


def test_jobs_never_overlap_coalesce_and_have_a_misfire_grace(make_daemon):
    daemon = make_daemon(FakeSync())
    daemon.start()
    for job in daemon.scheduler.get_jobs():
        assert job.max_instances == 1
        assert job.coalesce is True
        assert job.misfire_grace_time == 1  # at least a second, even for a 0.6 s test interval


def test_first_runs_are_soon_and_staggered(make_daemon):
    fake = FakeSync()
    started = time.monotonic()
    make_daemon(fake, interval=3).start()  # stagger window: min(interval / 2, 60 s) = 1.5 s
    wait_until(lambda: all(fake.count(u) for u in USERS), timeout=3)
    firsts = sorted(fake.starts(u)[0] - started for u in USERS)
    assert firsts[-1] < 1.7
    assert firsts[1] - firsts[0] > 0.05 and firsts[2] - firsts[1] > 0.05


def test_every_calendar_runs_about_every_interval(make_daemon):
    fake = FakeSync()
    make_daemon(fake, interval=0.3).start()
    time.sleep(1.5)
    for user in USERS:
        assert 3 <= fake.count(user) <= 6, (user, fake.count(user))


def test_slow_calendar_does_not_delay_the_others(make_daemon):
    fake = FakeSync(sleep={"alice@acme.test": 2.0})
    make_daemon(fake, interval=0.4).start()
    time.sleep(1.8)
    assert fake.count("alice@acme.test") == 0  # still in its first run
    assert fake.count("bob@acme.test") >= 3
    assert fake.count("carol@acme.test") >= 3


def test_one_calendar_never_syncs_twice_at_once(make_daemon):
    fake = FakeSync(sleep={"alice@acme.test": 0.5})
    make_daemon(fake, interval=0.15).start()
    wait_until(lambda: fake.count("alice@acme.test") >= 2, timeout=5)
    assert fake.max_running["alice@acme.test"] == 1


def test_failing_calendar_backs_off_and_is_reported(make_daemon, listener):
    fake = FakeSync(failing={"bob@acme.test"})
    daemon = make_daemon(fake, interval=0.3)
    daemon.start()
    wait_until(lambda: fake.count("bob@acme.test") >= 3, timeout=5)
    before = utcnow()
    wait_until(lambda: daemon.calendars()[1].consecutive_failures >= 3, timeout=2)
    # After 3 failures the next run is 0.3 s × 2² = 1.2 s away (minus up to 10 % jitter).
    next_run = daemon.scheduler.get_job("calendar:bob@acme.test").next_run_time
    assert dt.timedelta(seconds=0.9) < next_run - before < dt.timedelta(seconds=1.3)
    count = fake.count("bob@acme.test")
    time.sleep(0.7)
    assert fake.count("bob@acme.test") == count  # backing off...
    assert fake.count("alice@acme.test") >= 4  # ...while the others go on
    assert "1 failing (bob@acme.test ×3)" in daemon.status()


def test_recovered_calendar_returns_to_the_interval(make_daemon):
    fake = FakeSync(failing={"bob@acme.test"})
    daemon = make_daemon(fake, interval=0.3)
    daemon.start()
    wait_until(lambda: fake.count("bob@acme.test") >= 2, timeout=5)
    fake.failing.clear()
    wait_until(lambda: daemon.calendars()[1].state == "ok", timeout=5)
    assert daemon.status().startswith("3 calendars, 3 ok")
    count = fake.count("bob@acme.test")
    time.sleep(0.75)
    assert fake.count("bob@acme.test") >= count + 2


def test_crashing_sync_counts_as_a_failure_and_the_daemon_goes_on(make_daemon):
    class Broken(FakeSync):
        def __call__(self, config, user):
            result = super().__call__(config, user)
            if user == "carol@acme.test":
                raise RuntimeError("bug")
            return result

    fake = Broken()
    daemon = make_daemon(fake, interval=0.3)
    daemon.start()
    wait_until(lambda: daemon.calendars()[2].consecutive_failures >= 2, timeout=5)
    assert daemon.calendars()[2].last_error == "RuntimeError: bug"
    assert daemon.healthy


def test_reload_adds_and_removes_calendars(make_daemon, config_path, listener):
    fake = FakeSync()
    daemon = make_daemon(fake, interval=0.3)
    daemon.start()
    listener.wait_for("READY")
    write_config(config_path, ["bob@acme.test", "dan@acme.test"])
    assert daemon.reload() is True
    reloading = listener.wait_for("RELOADING", "1")
    assert int(reloading["MONOTONIC_USEC"]) > 0
    ready = listener.wait_for("READY", "1")
    assert ready["STATUS"].startswith("2 calendars")
    assert sorted(j.id for j in daemon.scheduler.get_jobs()) == [
        "calendar:bob@acme.test", "calendar:dan@acme.test"]
    wait_until(lambda: fake.count("dan@acme.test") >= 1, timeout=3)
    alice = fake.count("alice@acme.test")
    time.sleep(0.7)
    assert fake.count("alice@acme.test") <= alice + 1  # at most one run already under way


def test_bad_new_configuration_is_refused_and_the_old_one_kept(make_daemon, config_path, listener):
    daemon = make_daemon(FakeSync(), interval=0.3)
    daemon.start()
    config_path.write_text("[sync\nusers = ")
    assert daemon.reload() is False
    listener.wait_for("RELOADING", "1")
    listener.wait_for("READY", "1")
    assert len(daemon.scheduler.get_jobs()) == 3
    assert daemon.config.sync.users == tuple(USERS)


def test_reload_with_a_new_interval_retimes_the_jobs(config_path, listener):
    daemon = Daemon(lambda: config_module.load(config_path), notifier=Notifier(listener.address),
                    sync_one=FakeSync(), watchdog_seconds=None)  # no override: 40 minutes
    daemon.start()
    try:
        # As if every calendar had just run: the next runs are 40 minutes away.
        for job in daemon.scheduler.get_jobs():
            daemon.scheduler.modify_job(job.id, next_run_time=utcnow() + dt.timedelta(minutes=40))
        write_config(config_path, USERS, interval_minutes=2)
        assert daemon.reload()
        soon = utcnow() + dt.timedelta(minutes=2)
        for job in daemon.scheduler.get_jobs():
            # 2 minutes less the 12 s jitter: APScheduler only ever adds jitter, so no two runs
            # are more than 2 minutes apart.
            assert job.trigger.interval == dt.timedelta(minutes=2) - dt.timedelta(seconds=12)
            assert job.next_run_time <= soon
    finally:
        daemon.stop()


def test_stop_lets_a_running_job_finish(make_daemon, listener):
    fake = FakeSync(sleep={u: 0.8 for u in USERS})
    daemon = make_daemon(fake, interval=0.3)
    daemon.start()
    wait_until(lambda: sum(fake.running.values()) >= 1, timeout=3)
    assert daemon.stop() is True
    assert sum(fake.running.values()) == 0
    assert daemon.abandoned == ()
    listener.wait_for("STOPPING", "1")


def test_stop_gives_up_after_the_grace_period(make_daemon):
    fake = FakeSync(sleep={"alice@acme.test": 3.0})
    daemon = make_daemon(fake, interval=0.3, stop_grace=0.3)
    daemon.start()
    wait_until(lambda: fake.running.get("alice@acme.test") == 1, timeout=3)
    started = time.monotonic()
    assert daemon.stop() is False
    assert time.monotonic() - started < 1.0
    assert daemon.abandoned == ("alice@acme.test",)


def test_no_new_run_starts_after_stop(make_daemon):
    fake = FakeSync()
    daemon = make_daemon(fake, interval=0.2)
    daemon.start()
    wait_until(lambda: len(fake.runs) >= 3, timeout=3)
    daemon.stop()
    count = len(fake.runs)
    time.sleep(0.5)
    assert len(fake.runs) == count


def test_failures_from_the_state_store_show_after_a_restart(make_daemon, config_path):
    from calsync.state.store import StateStore

    store = StateStore(config_path.parent / "state.db")
    store.record_failure_of_calendar("carol@acme.test", "token refused", utcnow())
    store.record_failure_of_calendar("carol@acme.test", "token refused", utcnow())
    store.close()
    daemon = make_daemon(FakeSync(), interval=30)
    daemon.start()
    assert "1 failing (carol@acme.test ×2)" in daemon.status()


def test_the_daemon_holds_the_writer_lock_from_start_to_stop(make_daemon, tmp_path):
    from calsync.state.lock import LockBusy, WriterLock

    state = tmp_path / "state.db"
    daemon = make_daemon(FakeSync())
    with WriterLock(state, "sync"):  # a hand-run sync is writing: the daemon does not start
        with pytest.raises(LockBusy, match="`calsync sync`"):
            daemon.start()
    daemon = make_daemon(FakeSync())
    daemon.start()
    with pytest.raises(LockBusy, match="`calsync run`"):
        WriterLock(state, "sync").acquire()
    assert daemon.stop()
    WriterLock(state, "sync").acquire()  # released when the daemon stopped
