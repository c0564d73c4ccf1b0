"""Backoff, first-run stagger, the interval jitter and the STATUS= line (pure functions)."""

from __future__ import annotations

import datetime as dt
import random
import statistics

import pytest

from calsync.service.board import CalendarStatus
from calsync.service.health import status_line
from calsync.service.scheduling import (
    MAX_BACKOFF,
    Schedule,
    backoff_delay,
    first_run_offsets,
)

MIN = dt.timedelta(minutes=1)


def no_jitter(interval: dt.timedelta, failures: int) -> dt.timedelta:
    return backoff_delay(interval, failures, jitter=0)


@pytest.mark.parametrize("failures, minutes", [(1, 40), (2, 80), (3, 160), (4, 320)])
def test_backoff_doubles_the_interval_per_failure(failures, minutes):
    assert no_jitter(40 * MIN, failures) == minutes * MIN


def test_backoff_is_capped_at_six_hours():
    assert no_jitter(40 * MIN, 5) == MAX_BACKOFF == dt.timedelta(hours=6)
    assert no_jitter(40 * MIN, 10_000) == MAX_BACKOFF


def test_no_failure_no_backoff():
    assert no_jitter(40 * MIN, 0) == 40 * MIN


def test_an_interval_longer_than_the_cap_is_never_shortened():
    assert no_jitter(dt.timedelta(hours=8), 3) == dt.timedelta(hours=8)


def test_backoff_jitter_only_shortens_and_by_at_most_ten_percent():
    rng = random.Random(7)
    delays = [backoff_delay(40 * MIN, 3, rng=rng) for _ in range(500)]
    assert all(144 * MIN <= d <= 160 * MIN for d in delays)
    assert len(set(delays)) > 400  # really random, so failing calendars come back apart
    capped = [backoff_delay(40 * MIN, 9, rng=rng) for _ in range(200)]
    assert max(capped) <= MAX_BACKOFF


def test_first_runs_come_one_per_slot_across_the_window():
    window = dt.timedelta(seconds=60)
    offsets = first_run_offsets(6, window, random.Random(3))
    assert offsets == sorted(offsets)
    for index, offset in enumerate(offsets):
        assert dt.timedelta(seconds=10 * index) <= offset <= dt.timedelta(seconds=10 * (index + 1))


def test_first_runs_differ_between_starts():
    window = dt.timedelta(seconds=60)
    assert first_run_offsets(3, window, random.Random(1)) != first_run_offsets(3, window, random.Random(2))


def test_no_calendars_no_offsets():
    assert first_run_offsets(0, dt.timedelta(seconds=60)) == []


def test_schedule_for_default_interval():
    schedule = Schedule.for_interval(40 * MIN)
    assert schedule.jitter == 4 * MIN
    assert schedule.misfire_grace_seconds == 40 * 60
    assert schedule.stagger_window == dt.timedelta(seconds=60)


def test_interval_jitter_is_capped_at_five_minutes():
    assert Schedule.for_interval(dt.timedelta(hours=6)).jitter == 5 * MIN


def test_jitter_only_shortens_the_wait_between_two_runs():
    # APScheduler 3 adds uniform(0, jitter) to each fire time and counts on from there: over
    # many runs no two starts of one calendar are further apart than the interval.
    schedule = Schedule.for_interval(40 * MIN)
    trigger = schedule.trigger()
    random.seed(11)
    now = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    fire = trigger.get_next_fire_time(None, now)
    times = [fire]
    for _ in range(2000):
        fire = trigger.get_next_fire_time(fire, fire)
        times.append(fire)
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:])]
    assert max(gaps) <= 2400
    assert min(gaps) >= 2400 - 240  # at most the jitter (4 minutes) sooner
    assert statistics.mean(gaps) < 2400 - 60  # and it does vary, so calendars drift apart


def test_status_line_all_ok():
    calendars = [CalendarStatus(u, "ok") for u in ("a@x.test", "b@x.test", "c@x.test")]
    next_run = dt.datetime(2025, 3, 4, 10, 42, tzinfo=dt.timezone.utc)
    assert status_line(calendars, next_run) == "3 calendars, 3 ok, next run 10:42:00 UTC"


def test_status_line_names_failing_calendars_worst_first():
    calendars = [
        CalendarStatus("a@x.test", "ok"),
        CalendarStatus("b@x.test", "failing", 2, "boom"),
        CalendarStatus("c@x.test", "failing", 5, "boom"),
        CalendarStatus("d@x.test"),
    ]
    next_run = dt.datetime(2025, 3, 4, 11, 42, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert status_line(calendars, next_run) == (
        "4 calendars, 1 ok, 2 failing (c@x.test ×5, b@x.test ×2), 1 pending, next run 10:42:00 UTC"
    )


def test_status_line_counts_records_waiting_for_retry():
    calendars = [CalendarStatus("a@x.test", "ok", waiting=1), CalendarStatus("b@x.test", "ok", waiting=3),
                 CalendarStatus("c@x.test", "ok")]
    next_run = dt.datetime(2025, 3, 4, 10, 42, tzinfo=dt.timezone.utc)
    assert status_line(calendars, next_run) == (
        "3 calendars, 3 ok, 4 records waiting for retry (b@x.test, a@x.test), next run 10:42:00 UTC"
    )


def test_status_line_leads_with_a_failed_reload():
    line = status_line([CalendarStatus("a@x.test", "ok")], None, reload_error="x.toml: sync.users: " + "y" * 300)
    assert line.startswith("reload FAILED, running the previous configuration (x.toml: sync.users: yyy")
    assert line.endswith("…); 1 calendar, 1 ok, no run scheduled") and len(line) < 260


def test_status_line_limits_the_names_shown():
    calendars = [CalendarStatus(f"u{i}@x.test", "failing", 1) for i in range(5)]
    line = status_line(calendars, None)
    assert "5 failing (u0@x.test ×1, u1@x.test ×1, u2@x.test ×1, +2 more)" in line
    assert line.endswith("no run scheduled")
    assert "\n" not in line


def test_a_new_interval_retimes_the_calendars_and_never_a_one_off_request():
    """A reload that changes the interval gives every calendar's job the new trigger; a one-off
    job (an admin request handed to the daemon, not yet run) keeps its single run: given an
    interval trigger it would run the request again every interval."""
    from apscheduler.triggers.date import DateTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    from calsync.service.scheduling import Jobs, job_id

    jobs = Jobs(random.Random(1))
    jobs.create(1, lambda user: None)
    jobs.scheduler.start(paused=True)  # nothing runs: the jobs stay as added
    try:
        jobs.add(["alice@acme.test"], Schedule.for_interval(40 * MIN))
        jobs.add_once(lambda request: None, ("request",), "request:7")
        jobs.retime(Schedule.for_interval(10 * MIN), backing_off=lambda user: False)
        calendar = jobs.scheduler.get_job(job_id("alice@acme.test"))
        request = jobs.scheduler.get_job("request:7")
        assert isinstance(calendar.trigger, IntervalTrigger)
        assert calendar.trigger.interval <= 10 * MIN
        assert isinstance(request.trigger, DateTrigger)
    finally:
        jobs.scheduler.shutdown(wait=False)
