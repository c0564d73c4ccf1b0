"""When each calendar runs: the daemon's APScheduler jobs, their timing, backoff and budget.

One APScheduler 3.x interval job per configured calendar (id ``calendar:<user>``) on a
`BackgroundScheduler` whose `ThreadPoolExecutor` has `sync.concurrency` workers, so a slow or
failing calendar holds one worker and never delays the others (`Jobs`). Each job is added with
`max_instances=1` (never two syncs of one calendar at once), `coalesce=True` (a backlog of
missed runs is one run) and an explicit `misfire_grace_time`.

Timing (`Schedule`): first runs are spread over a short window after start (`first_run_offsets`),
then each calendar runs at most `interval` after its previous run, up to 10 % (at most 5 minutes)
sooner, so the calendars drift apart instead of firing together: jitter only ever shortens the
wait, so "changes reach Salesforce within interval_minutes" holds for every healthy calendar. A
failing calendar backs off: its next run is put off by interval × 2^(failures-1), capped at 6 h,
minus up to 10 % jitter (`backoff_delay`; `calsync status` estimates next runs with it too).

`CALSYNC_INTERVAL_SECONDS` (or the hidden `calsync run --interval-seconds`) overrides
`sync.interval_minutes` without touching the configuration (`interval_of`): a testing aid, not
for production.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from calsync.core.config import Config
from calsync.core.logs import event as log_event

log = logging.getLogger("calsync.daemon")  # names predate the layers (ARCHITECTURE.md)

INTERVAL_ENV = "CALSYNC_INTERVAL_SECONDS"
MAX_BACKOFF = dt.timedelta(hours=6)
BACKOFF_JITTER = 0.1  # the backoff delay is shortened by up to this fraction
INTERVAL_JITTER = 0.1  # each run lands up to this fraction of the interval late...
MAX_INTERVAL_JITTER = dt.timedelta(minutes=5)  # ...but never more than this
MAX_STAGGER = dt.timedelta(seconds=60)  # first runs: all within this window of the start
# A push notification runs its calendar's job this soon: notifications of one burst (a meeting
# edited twice, a script moving ten) that arrive meanwhile give one sync, not many.
PUSH_DEBOUNCE = 0.5


# ---------------------------------------------------------------------------------------------
# Pure timing helpers


@dataclass(frozen=True)
class Schedule:
    """How one interval becomes APScheduler settings."""

    interval: dt.timedelta  # the longest time between the starts of two runs of one calendar
    jitter: dt.timedelta  # each run starts up to this much before `interval` is over
    misfire_grace: dt.timedelta  # a run that starts later than this is skipped
    stagger_window: dt.timedelta  # first runs are spread over this window after start

    @classmethod
    def for_interval(cls, interval: dt.timedelta) -> Schedule:
        if interval <= dt.timedelta(0):
            raise ValueError(f"interval must be positive, got {interval}")
        return cls(
            interval=interval,
            jitter=min(interval * INTERVAL_JITTER, MAX_INTERVAL_JITTER),
            # A run late by less than an interval still happens (the machine was suspended, the
            # pool was busy); later than that, the next run is due anyway. With coalesce=True a
            # backlog of missed runs is one run.
            misfire_grace=interval,
            stagger_window=min(interval / 2, MAX_STAGGER),
        )

    @property
    def trigger_interval(self) -> dt.timedelta:
        # APScheduler 3 adds uniform(0, jitter) to each fire time and counts the next interval
        # from that jittered time: with interval - jitter here, every period lies within
        # [interval - jitter, interval], never longer than the interval promised.
        return self.interval - self.jitter

    @property
    def misfire_grace_seconds(self) -> int:
        return max(1, int(self.misfire_grace.total_seconds()))

    def trigger(self) -> IntervalTrigger:
        return IntervalTrigger(
            seconds=self.trigger_interval.total_seconds(),
            jitter=self.jitter.total_seconds() or None,
            timezone=dt.timezone.utc,
        )


def backoff_delay(
    interval: dt.timedelta,
    failures: int,
    *,
    cap: dt.timedelta = MAX_BACKOFF,
    jitter: float = BACKOFF_JITTER,
    rng: random.Random | None = None,
) -> dt.timedelta:
    """Delay before the next run of a calendar that failed `failures` times in a row.

    interval × 2^(failures-1), at most `cap` (or the interval itself if that is longer), then
    shortened by a random fraction up to `jitter` so calendars failing together (an outage)
    do not come back together. `failures` ≤ 0: the plain interval.
    """
    if failures <= 0:
        return interval
    ceiling = max(cap, interval)
    # Exponent clamped: 2^30 intervals is far past any cap and keeps timedelta from overflowing.
    base = min(interval * (2 ** min(failures - 1, 30)), ceiling)
    fraction = (rng or random).uniform(0.0, jitter) if jitter > 0 else 0.0
    return base * (1 - fraction)


def first_run_offsets(
    count: int, window: dt.timedelta, rng: random.Random | None = None
) -> list[dt.timedelta]:
    """When, after start, each of `count` calendars first runs: one random instant per equal slot
    of `window`, in order, so the first runs come soon but never all at once."""
    if count <= 0:
        return []
    slot = window / count
    pick = (rng or random).uniform
    return [slot * index + slot * pick(0.0, 1.0) for index in range(count)]


def interval_of(config: Config, override: dt.timedelta | None) -> dt.timedelta:
    return override if override is not None else dt.timedelta(minutes=config.sync.interval_minutes)


def polls_per_minute(calendars: int, interval: dt.timedelta) -> float:
    """Calendar requests a minute the polls need at least (one events.list each)."""
    return calendars / max(interval.total_seconds() / 60.0, 1e-9)


def warn_if_over_budget(config: Config, interval: dt.timedelta) -> None:
    """Log when the calendars cannot all be polled every interval within the request budget
    (quota.py): the budget holds anyway, so polls then come later than interval_minutes."""
    from calsync.calendar.google.clients import budget_limits

    needed = polls_per_minute(len(config.sync.users), interval)
    allowed = budget_limits(config.google).per_minute
    if needed > allowed:
        log_event(log, "the calendars need more Google requests a minute than the budget allows;"
                  " polls will come later than interval_minutes", level=logging.WARNING,
                  needed_per_minute=round(needed), budget_per_minute=allowed,
                  hint="raise [google] request_share or requests_per_minute (if Google granted"
                  " more), or interval_minutes")


def job_id(user: str) -> str:
    return f"calendar:{user}"


def iso(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="seconds") if moment else None


# ---------------------------------------------------------------------------------------------
# The scheduler


class Jobs:
    """The `BackgroundScheduler`, its job store and pool: one interval job per calendar (each
    runs `run_calendar(user)` on a pool thread) and one-off jobs (admin requests).

    Made at the daemon's start (`create`), since the configuration says how many workers;
    until then `started` is False and `scheduler` raises.
    """

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._run_calendar: Callable[[str], None] | None = None
        self._scheduler: BackgroundScheduler | None = None
        self._store: MemoryJobStore | None = None

    @property
    def started(self) -> bool:
        """Created (perhaps shut down since): the daemon has started."""
        return self._scheduler is not None

    @property
    def scheduler(self) -> BackgroundScheduler:
        if self._scheduler is None:
            raise RuntimeError("the daemon is not started")
        return self._scheduler

    @property
    def healthy(self) -> bool:
        """The scheduler runs and its thread is alive (what WATCHDOG=1 vouches for)."""
        scheduler = self._scheduler
        if scheduler is None or not scheduler.running:
            return False
        thread = getattr(scheduler, "_thread", None)  # BackgroundScheduler's loop thread
        return thread is not None and thread.is_alive()

    def create(self, concurrency: int, run_calendar: Callable[[str], None]) -> None:
        """The scheduler and its pool of `concurrency` workers, not started yet; each calendar's
        job will run `run_calendar(user)`."""
        self._run_calendar = run_calendar
        logging.getLogger("apscheduler").setLevel(logging.ERROR)  # its events are logged below
        # Our own job store: its next run time is kept sorted, so STATUS= (worked out every
        # second while calendars finish) need not walk every job.
        self._store = MemoryJobStore()
        scheduler = BackgroundScheduler(
            jobstores={"default": self._store},
            executors={"default": ThreadPoolExecutor(concurrency)},
            timezone=dt.timezone.utc,
        )
        scheduler.add_listener(
            _on_scheduler_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES
        )
        self._scheduler = scheduler

    def start(self) -> None:
        self.scheduler.start()

    def shutdown(self) -> None:
        if self._scheduler is not None and self._scheduler.running:
            # wait=False: queued runs find the daemon stopping and return at once; running ones
            # get the daemon's grace period.
            self._scheduler.shutdown(wait=False)

    def add(self, users: Sequence[str], schedule: Schedule) -> None:
        scheduler, run = self.scheduler, self._run_calendar
        assert run is not None  # set with the scheduler
        start = dt.datetime.now(dt.timezone.utc)
        for user, offset in zip(users, first_run_offsets(len(users), schedule.stagger_window, self._rng)):
            scheduler.add_job(
                run,
                trigger=schedule.trigger(),
                args=(user,),
                id=job_id(user),
                name=user,
                next_run_time=start + offset,
                max_instances=1,  # never two syncs of one calendar at once
                coalesce=True,  # runs missed while busy or suspended collapse into one
                misfire_grace_time=schedule.misfire_grace_seconds,
                replace_existing=True,
            )

    def add_once(self, func: Callable[..., Any], args: tuple[Any, ...], name: str) -> None:
        """A one-off job on the pool, run as soon as a worker is free, however late."""
        self.scheduler.add_job(func, args=args, id=name, name=name, misfire_grace_time=None)

    def remove(self, user: str) -> None:
        try:
            self.scheduler.remove_job(job_id(user))
        except JobLookupError:
            pass

    def retime(self, schedule: Schedule, backing_off: Callable[[str], bool]) -> None:
        """A new interval: new triggers; a run further away than one new interval comes sooner,
        unless the calendar is backing off."""
        now = dt.datetime.now(dt.timezone.utc)
        soonest = now + schedule.interval
        for job in self.scheduler.get_jobs():
            if job.id != job_id(job.name):
                continue  # a one-off job (an admin request): it runs once, whatever the interval
            user = job.name
            failing = backing_off(user)
            changes: dict[str, Any] = {"trigger": schedule.trigger()}
            if not failing and (job.next_run_time is None or job.next_run_time > soonest):
                changes["next_run_time"] = now + schedule.jitter * self._rng.random()
            try:
                self.scheduler.modify_job(job.id, **changes)
            except JobLookupError:
                pass

    def run_at(self, user: str, when: dt.datetime) -> bool:
        """`user`'s next run at `when`; False when its job is gone (removed by a reload).

        Safe against the scheduler's own update of this job from a pool thread: it computes the
        next run and stores it under the job-store lock before a pool thread can take that lock.
        """
        try:
            self.scheduler.modify_job(job_id(user), next_run_time=when)
        except JobLookupError:
            return False
        return True

    def next_run(self) -> dt.datetime | None:
        """The soonest next run of any job."""
        try:
            return self._store.get_next_run_time() if self._store is not None else None
        except IndexError:  # the last job removed while we looked
            return None

    def next_runs(self) -> dict[str, dt.datetime | None]:
        """Each job's next run, by name (the metrics)."""
        scheduler = self._scheduler
        return {job.name: job.next_run_time for job in scheduler.get_jobs()} if scheduler else {}


def _on_scheduler_event(event: JobEvent) -> None:
    user = event.job_id.removeprefix("calendar:")
    if event.code == EVENT_JOB_MISSED:
        log_event(log, "run missed, skipped", level=logging.WARNING, user=user,
                  scheduled=iso(getattr(event, "scheduled_run_time", None)))
    elif event.code == EVENT_JOB_MAX_INSTANCES:
        log_event(log, "previous run still going, run skipped", user=user)
    elif event.code == EVENT_JOB_ERROR:  # the runner catches everything; kept for safety
        log_event(log, "calendar job error", level=logging.ERROR, user=user,
                  error=repr(getattr(event, "exception", None)))


__all__ = [
    "INTERVAL_ENV",
    "Jobs",
    "MAX_BACKOFF",
    "PUSH_DEBOUNCE",
    "Schedule",
    "backoff_delay",
    "first_run_offsets",
    "interval_of",
    "job_id",
    "polls_per_minute",
    "warn_if_over_budget",
]
