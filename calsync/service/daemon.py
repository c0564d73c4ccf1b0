"""`calsync run`: the long-running daemon. APScheduler jobs, signals, systemd notify, backoff.

One APScheduler 3.x interval job per configured calendar (id ``calendar:<user>``) on a
`BackgroundScheduler` whose `ThreadPoolExecutor` has `sync.concurrency` workers, so a slow or
failing calendar holds one worker and never delays the others. Every job runs
`cycle.run([user])` on a `Cycle` of its own over its worker thread's state connection, which
stays open across runs (`runtime.reused_cycle`; the store is one connection per thread). Each job is added with `max_instances=1` (never two syncs of one calendar at
once), `coalesce=True` (a backlog of missed runs is one run) and an explicit `misfire_grace_time`.

Timing (`Schedule`): first runs are spread over a short window after start (`first_run_offsets`),
then each calendar runs at most `interval` after its previous run, up to 10 % (at most 5 minutes)
sooner, so the calendars drift apart instead of firing together: jitter only ever shortens the
wait, so "changes reach Salesforce within interval_minutes" holds for every healthy calendar. A failing calendar backs off: its next run is put off by
interval × 2^(failures-1), capped at 6 h, minus up to 10 % jitter (`backoff_delay`).

The main thread owns the signals and systemd. It sleeps in select() on a self-pipe that the
signal machinery (`signal.set_wakeup_fd`) and finished jobs write to, so handlers run no logic:
- SIGTERM / SIGINT: STOPPING=1, stop scheduling, wait up to `stop_grace` (8 s) for the running
  jobs, return 0. Every state write is one SQLite transaction, so a job cut short loses nothing:
  the next run lists the same Google changes again (see cycle.py). A second signal stops waiting.
- SIGHUP: RELOADING=1, reload the configuration: calendars added or removed become jobs added or
  removed, a new interval re-times the jobs; a configuration that does not load (or whose state
  database does not open, or is being written by another calsync) is logged and the running one
  kept, and STATUS= says so ("reload FAILED ...") until a reload succeeds. Then READY=1 again.
  (The unit's ExecReload= runs `calsync check-config` before signalling, so `systemctl reload`
  itself fails on a configuration that does not load.)
- READY=1 once the first schedule is set up; WATCHDOG=1 every half $WATCHDOG_USEC while the
  scheduler thread is alive; STATUS= one line ("3 calendars, 3 ok, 1 record waiting for retry
  (bob@acme.test), next run 10:42:00 UTC").
- Metrics (metrics.py): after calendar runs, at most once per tenth of the interval (1-300 s),
  the gauges are refreshed from the state (one row per calendar) and the `[metrics] textfile`
  rewritten; `[metrics] listen` serves /metrics for the daemon's life (listener.py).
- Listeners (push, metrics) that cannot bind never stop the daemon: they retry, and STATUS=,
  the state (`meta` "listeners", for `calsync status`) and `calsync_listener_up` say so.

The daemon is the writer of its state database: it holds the single-writer lock (lock.py) from
start to stop, so a hand-run `calsync sync` is refused while it runs (and the daemon does not
start, exit 75, while another calsync writes the database). The admin's writing commands
(`retry`, `retry --drop`, `resync`) are handed to it instead (handoff.py): the main loop looks
for requests every second and runs each as a one-off job on the pool, holding the calendars it
touches (their polls wait and run right after), then writes back the answer.

Logs: a poll that found nothing logs at debug (cycle.py); one "daemon summary" line per interval
counts the runs, those that changed something, failures and Salesforce calls.

`CALSYNC_INTERVAL_SECONDS` (or the hidden `calsync run --interval-seconds`) overrides
`sync.interval_minutes` without touching the configuration: a testing aid, not for production.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import select
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

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
from calsync.core.errors import EXIT_FAILURE, EXIT_OK, CalsyncError
from calsync.state.lock import WriterLock
from calsync.core.logs import event as log_event
from calsync.service.notify import Notifier, watchdog_interval
from calsync.state.store import StateStore
from calsync.service.backoff import BACKOFF_JITTER, MAX_BACKOFF, backoff_delay  # noqa: F401 (tests import them here)

log = logging.getLogger("calsync.daemon")  # names predate the layers (ARCHITECTURE.md)

INTERVAL_ENV = "CALSYNC_INTERVAL_SECONDS"
INTERVAL_JITTER = 0.1  # each run lands up to this fraction of the interval late...
MAX_INTERVAL_JITTER = dt.timedelta(minutes=5)  # ...but never more than this
MAX_STAGGER = dt.timedelta(seconds=60)  # first runs: all within this window of the start
STOP_GRACE = 8.0  # seconds running jobs get to finish after SIGTERM
PUSH_STOP_GRACE = 10.0  # then seconds to stop the push channels (TimeoutStopSec is 30 s)
# A push notification runs its calendar's job this soon: notifications of one burst (a meeting
# edited twice, a script moving ten) that arrive meanwhile give one sync, not many.
PUSH_DEBOUNCE = 0.5
STATUS_REFRESH = 30.0  # seconds; the main loop wakes at least this often
# STATUS= is worked out over every calendar and job (10,000 at scale): at most this often, not
# after each of the dozens of runs a second that end.
STATUS_MIN_GAP = 1.0
# The gauges and the textfile are worked out over every calendar (a read of one row each, and
# the exposition of all of them): after runs end, at most once per tenth of the interval,
# between 1 s and 5 minutes, so that publishing costs a small share of the polls it reports
# (issue 17: with [metrics] the daemon must stay within 1.2 x the CPU it uses without).
METRICS_MIN_GAP = 1.0
METRICS_MAX_GAP = 300.0
LOAD_EVERY = 600.0  # seconds between two "daemon load" lines (runs, CPU per run)

CalendarState = Literal["pending", "ok", "failing"]


# ---------------------------------------------------------------------------------------------
# Pure timing and status helpers


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


@dataclass(frozen=True)
class CalendarStatus:
    """What the daemon knows of one calendar, for STATUS= and the logs."""

    user: str
    state: CalendarState = "pending"
    consecutive_failures: int = 0
    last_error: str | None = None
    waiting: int = 0  # records Salesforce refused, parked for a retry


def status_line(
    calendars: Sequence[CalendarStatus],
    next_run: dt.datetime | None,
    *,
    shown: int = 3,
    reload_error: str | None = None,
    listeners_down: Sequence[tuple[str, str | None]] = (),
) -> str:
    """One line for systemd's STATUS=, e.g. "3 calendars, 2 ok, 1 failing (bob@acme.test ×4),
    2 records waiting for retry (bob@acme.test), next run 10:42:00 UTC". At most `shown`
    calendars are named per part. A failed reload comes first, until a reload succeeds; a
    listener that cannot listen ((name, why) in `listeners_down`) next, until it listens."""
    total = len(calendars)
    parts = [f"{total} calendar{'s' if total != 1 else ''}"]
    ok = sum(1 for c in calendars if c.state == "ok")
    parts.append(f"{ok} ok")
    failing = sorted(
        (c for c in calendars if c.state == "failing"),
        key=lambda c: (-c.consecutive_failures, c.user),
    )
    if failing:
        named = ", ".join(f"{c.user} ×{c.consecutive_failures}" for c in failing[:shown])
        more = f", +{len(failing) - shown} more" if len(failing) > shown else ""
        parts.append(f"{len(failing)} failing ({named}{more})")
    pending = sum(1 for c in calendars if c.state == "pending")
    if pending:
        parts.append(f"{pending} pending")
    waiting = sorted((c for c in calendars if c.waiting), key=lambda c: (-c.waiting, c.user))
    if waiting:
        count = sum(c.waiting for c in waiting)
        named = ", ".join(c.user for c in waiting[:shown])
        more = f", +{len(waiting) - shown} more" if len(waiting) > shown else ""
        parts.append(f"{count} record{'s' if count != 1 else ''} waiting for retry ({named}{more})")
    if next_run is not None:
        moment = next_run.astimezone(dt.timezone.utc)
        parts.append(f"next run {moment:%H:%M:%S} UTC")
    else:
        parts.append("no run scheduled")
    line = ", ".join(parts)
    for name, why in reversed(listeners_down):
        line = f"{name} listener DOWN ({why or 'not listening'}; retrying), polling goes on; {line}"
    if reload_error:
        error = reload_error if len(reload_error) <= 160 else reload_error[:160] + "…"
        line = f"reload FAILED, running the previous configuration ({error}); {line}"
    return line


# ---------------------------------------------------------------------------------------------
# One calendar's run


@dataclass(frozen=True)
class CalendarRun:
    """The outcome of one job: did the calendar sync, and how many failures in a row now."""

    user: str
    ok: bool
    error: str | None
    consecutive_failures: int
    waiting: int = 0  # records of this calendar parked for a retry after the run
    items: int = 0  # items Google listed (changes found)
    full: bool = False  # a full listing (first sync, after a 410)
    salesforce_calls: int = 0
    writes: int = 0  # Events created, updated, deleted or refused

    @property
    def changed(self) -> bool:
        return self.items > 0 or self.writes > 0 or self.full


SyncOne = Callable[[Config, str], CalendarRun]


@dataclass(frozen=True)
class IntervalCounts:
    """What the calendar runs of one interval did, for the "daemon summary" line."""

    runs: int = 0
    changed: int = 0  # runs that found changes in Google or wrote to Salesforce
    failed: int = 0
    salesforce_calls: int = 0

    def add(self, run: CalendarRun) -> IntervalCounts:
        return IntervalCounts(self.runs + 1, self.changed + (1 if run.changed else 0),
                              self.failed + (0 if run.ok else 1),
                              self.salesforce_calls + run.salesforce_calls)


def handoff_poll_seconds() -> float:
    from calsync.service.handoff import POLL_SECONDS

    return POLL_SECONDS


def _field(value: Any) -> Any:
    """A request argument in a log line: lists joined."""
    return ",".join(map(str, value)) if isinstance(value, list) else value


def sync_calendar(config: Config, user: str) -> CalendarRun:
    """Run one cycle for `user` on this worker thread's state connection (kept open across
    runs, `runtime.reused_cycle`; the store is one connection per thread)."""
    from calsync.service import metrics
    from calsync.service.runtime import reused_cycle  # the adapters' imports stay out of `calsync --help`

    with reused_cycle(config) as cycle:
        started = time.monotonic()
        result = cycle.run([user])
        metrics.observe_cycle(result, time.monotonic() - started)
        saved = cycle.store.calendar(user)
        waiting = len(cycle.store.retries(user))
    outcome = result.calendars.get(user)
    ok = outcome is not None and outcome.ok
    error = None if ok else (outcome.error if outcome is not None else "the cycle reported nothing")
    failures = saved.consecutive_failures if saved is not None else (0 if ok else 1)
    items = outcome.items if outcome is not None else 0
    full = outcome.full_sync if outcome is not None else False
    writes = (outcome.created + outcome.updated + outcome.deleted + outcome.failed
              + outcome.canceled) if outcome is not None else 0
    return CalendarRun(user, ok, error, failures, waiting, items, full, result.salesforce_calls, writes)


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


def _job_id(user: str) -> str:
    return f"calendar:{user}"


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="seconds") if moment else None


# ---------------------------------------------------------------------------------------------
# The daemon


class Daemon:
    """The scheduler, its jobs and the main-thread loop. `run()` is the whole life of `calsync run`.

    `load_config` reads the configuration (and sets up logging); it is called at start and on
    every SIGHUP. `sync_one` runs one calendar (tests pass their own). `watchdog_seconds` is the
    ping period; None reads it from $WATCHDOG_USEC/$WATCHDOG_PID (no watchdog when unset).
    `start()`, `reload()`, `stop()` and `status()` are public so tests can drive the daemon
    without signals.
    """

    def __init__(
        self,
        load_config: Callable[[], Config],
        *,
        interval_override: dt.timedelta | None = None,
        notifier: Notifier | None = None,
        sync_one: SyncOne = sync_calendar,
        stop_grace: float = STOP_GRACE,
        rng: random.Random | None = None,
        watchdog_seconds: float | None = None,
        lock_wait: float = 0.0,
    ) -> None:
        self._load_config = load_config
        self.lock_wait = lock_wait  # seconds to wait at start for another writer of the state
        # The single-writer locks held: the state database's, and after a reload to another
        # state path that one's too (a job may still be finishing on the old one); all until stop.
        self._writers: list[WriterLock] = []
        self.interval_override = interval_override
        self.notifier = notifier if notifier is not None else Notifier.from_environ()
        self._sync_one = sync_one
        self.stop_grace = stop_grace
        self._rng = rng or random.Random()
        self.watchdog_seconds = watchdog_seconds if watchdog_seconds is not None else watchdog_interval()
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._running: set[str] = set()
        self._status: dict[str, CalendarStatus] = {}
        self._stopping = threading.Event()
        self._scheduler: BackgroundScheduler | None = None
        self._jobs: MemoryJobStore | None = None
        self._config: Config | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self.abandoned: tuple[str, ...] = ()  # calendars still running when stop() gave up
        self._last_status = ""
        self._reload_error: str | None = None  # the last reload failed: STATUS= says so
        self._metrics_server: Any = None  # [metrics] listen (a listener.Server)
        self._recorded_listeners: dict[str, Any] | None = None  # as last saved for `status`
        self._status_dirty = False  # a job ended since STATUS= was last worked out
        self._metrics_dirty = False  # a job ended since the metrics were last published
        self._published = float("-inf")  # time.monotonic() of the last publish
        # Push notifications (push.py): the service when [google] push_url is set; calendars
        # whose notified run is scheduled, whose run must be redone (a notification came while
        # it ran), and when each was last notified and last started (wall clock).
        self.push: Any = None
        self._push_due: set[str] = set()
        self._rerun: set[str] = set()
        self._notified: dict[str, dt.datetime] = {}
        self._last_start: dict[str, dt.datetime] = {}
        self.runs = 0  # calendar runs finished since start (the "daemon load" line)
        # Admin commands handed over by the CLI (handoff.py): the calendars a running command
        # holds (their polls wait for it), polls skipped meanwhile (run right after), the
        # requests running, and the main thread's own connection to look for new ones.
        self._claimed: set[str] = set()
        self._after_claim: set[str] = set()
        self._requests_running: set[int] = set()
        self._request_store: StateStore | None = None
        # The summary of each interval (one INFO line): calendar runs, runs that found changes,
        # failures, Salesforce calls.
        self._interval_counts = IntervalCounts()

    # -- properties ------------------------------------------------------------------------------

    @property
    def config(self) -> Config:
        if self._config is None:
            raise RuntimeError("the daemon is not started")
        return self._config

    @property
    def schedule(self) -> Schedule:
        return Schedule.for_interval(interval_of(self.config, self.interval_override))

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

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Load the configuration, schedule every calendar, start, then READY=1."""
        config = self._load_config()
        self._writers.append(self._take_lock(config, self.lock_wait))
        self._open_state(config)  # migrations run here, once, before any worker opens it
        self._config = config
        self._open_requests(config)
        self._status = self._known_status(config, config.sync.users)
        schedule = self.schedule
        logging.getLogger("apscheduler").setLevel(logging.ERROR)  # its events are logged below
        # Our own job store: its next run time is kept sorted, so STATUS= (worked out every
        # second while calendars finish) need not walk every job.
        self._jobs = MemoryJobStore()
        scheduler = BackgroundScheduler(
            jobstores={"default": self._jobs},
            executors={"default": ThreadPoolExecutor(config.sync.concurrency)},
            timezone=dt.timezone.utc,
        )
        scheduler.add_listener(
            self._on_scheduler_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES
        )
        self._scheduler = scheduler
        self._add_jobs(config.sync.users, schedule)
        scheduler.start()
        self._serve_metrics(config)
        if config.google.push:
            self._start_push(config)
        log_event(
            log,
            "daemon started",
            calendars=len(config.sync.users),
            interval_seconds=round(schedule.interval.total_seconds(), 3),
            concurrency=config.sync.concurrency,
            watchdog_seconds=self.watchdog_seconds,
            push=config.google.push_url,
        )
        warn_if_over_budget(config, schedule.interval)
        status = self.status()
        self._last_status = status
        self.notifier.ready(status)
        self._record_listeners()
        self._publish_metrics()

    def reload(self) -> bool:
        """SIGHUP: apply a new configuration, or keep the running one if the new one is bad."""
        self.notifier.reloading()
        log_event(log, "reloading configuration")
        old = self.config
        writer = None
        try:
            new = self._load_config()
            if new.state.path != old.state.path:
                writer = self._take_lock(new, 0.0)
                self._open_state(new)
            added = [u for u in new.sync.users if u not in old.sync.users]
            removed = [u for u in old.sync.users if u not in new.sync.users]
            known = self._known_status(new, added)
        except CalsyncError as exc:
            if writer is not None:
                writer.release()
            log_event(log, "configuration reload failed, keeping the running configuration",
                      level=logging.ERROR, error=str(exc))
            self._reload_error = str(exc)
            status = self.status()
            self._last_status = status
            self.notifier.ready(status)
            return False
        self._reload_error = None
        if writer is not None:
            self._writers.append(writer)
            self._open_requests(new)
        old_schedule = self.schedule
        self._config = new
        schedule = self.schedule
        for user in removed:
            try:
                self.scheduler.remove_job(_job_id(user))
            except JobLookupError:
                pass
            with self._lock:
                self._status.pop(user, None)
        if schedule != old_schedule:
            self._retime(schedule)
        with self._lock:
            self._status.update(known)
        self._add_jobs(added, schedule)
        if new.sync.concurrency != old.sync.concurrency:
            log_event(log, "sync.concurrency changes apply after a restart", level=logging.WARNING,
                      running=old.sync.concurrency, configured=new.sync.concurrency)
        if new.metrics.listen != old.metrics.listen:
            log_event(log, "metrics.listen changes apply after a restart", level=logging.WARNING,
                      running=_address(old.metrics.listen), configured=_address(new.metrics.listen))
        self._reload_push(old, new)
        log_event(log, "configuration reloaded", calendars=len(new.sync.users),
                  added=",".join(added) or None, removed=",".join(removed) or None,
                  interval_seconds=round(schedule.interval.total_seconds(), 3))
        status = self.status()
        self._last_status = status
        self.notifier.ready(status)
        self._publish_metrics()
        return True

    def stop(self) -> bool:
        """Stop scheduling, wait up to `stop_grace` for running jobs; True if none was left."""
        if self._stopping.is_set():
            return not self.abandoned
        self._stopping.set()
        with self._lock:
            running = sorted(self._running)
        log_event(log, "stopping", running=",".join(running) or "none")
        self.notifier.stopping("stopping")
        if self.push is not None:
            self.push.listener.stop()  # no notification starts anything any more
        if self._scheduler is not None and self._scheduler.running:
            # wait=False: queued runs find `_stopping` set and return at once; running ones get
            # the grace period below.
            self._scheduler.shutdown(wait=False)
        if self._metrics_server is not None:
            self._metrics_server.stop()
            self._metrics_server = None
        left = self._wait_for_jobs(time.monotonic() + self.stop_grace)
        self.abandoned = tuple(left)
        if self.push is not None:
            self.push.stop(time.monotonic() + PUSH_STOP_GRACE)
        if left:
            # The lock stays held: the process exits at once and the kernel releases it then.
            log_event(log, "stopped with calendars still syncing; their uncommitted work is"
                      " redone next run", level=logging.WARNING, running=",".join(left))
        else:
            self._close_stores()
            self._close_requests()
            self._release_locks()
            log_event(log, "daemon stopped")
        return not left

    def run(self) -> int:
        """The whole daemon in the main thread: signals, start, loop, stop. Returns an exit code."""
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        # The handlers do nothing: the C-level handler writes the signal number to the wakeup fd,
        # which the loop below reads. Nothing runs inside a signal handler that could deadlock.
        old_fd = signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        previous = {sig: signal.signal(sig, _ignore_signal) for sig in handled}
        code = EXIT_OK
        try:
            self.start()
            code = self._loop()
        finally:
            if self._scheduler is not None:  # started (a start that failed has nothing to stop)
                self.stop()
            else:  # perhaps locked, then the start failed
                self._close_requests()
                self._release_locks()
            signal.set_wakeup_fd(old_fd)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.notifier.close()
            self._wake_r.close()
            self._wake_w.close()
        return code

    # -- the main loop ---------------------------------------------------------------------------

    def _loop(self) -> int:
        next_ping = time.monotonic()
        refreshed = 0.0
        load = (time.monotonic(), time.process_time(), self.runs)
        next_requests = time.monotonic()
        summary_at = time.monotonic()
        while True:
            now = time.monotonic()
            if now - load[0] >= LOAD_EVERY:
                load = self._log_load(load)
            if now - summary_at >= self.schedule.interval.total_seconds():
                summary_at = now
                self._log_summary()
            if now >= next_requests:
                next_requests = now + handoff_poll_seconds()
                self._take_requests()
            if self.watchdog_seconds is not None and now >= next_ping:
                if not self.healthy:
                    log_event(log, "scheduler thread died, exiting", level=logging.ERROR)
                    return EXIT_FAILURE
                self.notifier.watchdog()
                next_ping = now + self.watchdog_seconds
            timeout = min(STATUS_REFRESH, max(0.0, next_requests - now))
            if self.watchdog_seconds is not None:
                timeout = min(timeout, max(0.0, next_ping - now))
            if self._status_dirty:
                timeout = min(timeout, max(0.0, refreshed + STATUS_MIN_GAP - now))
            if self._metrics_dirty:
                timeout = min(timeout, max(0.0, self._published + self._metrics_gap() - now))
            for signum in self._wait_for_wakeup(timeout):
                if signum in (signal.SIGTERM, signal.SIGINT):
                    log_event(log, "signal received", signal=signal.Signals(signum).name)
                    return EXIT_OK
                if signum == signal.SIGHUP:
                    self.reload()
            if not self.healthy:
                log_event(log, "scheduler thread died, exiting", level=logging.ERROR)
                return EXIT_FAILURE
            now = time.monotonic()
            # STATUS= after runs ended (at most every STATUS_MIN_GAP), else every STATUS_REFRESH:
            # not on each wake-up to look for requests, which would walk every calendar a second.
            if (self._status_dirty and now - refreshed >= STATUS_MIN_GAP) or now - refreshed >= STATUS_REFRESH:
                self._metrics_dirty |= self._status_dirty
                self._status_dirty = False
                refreshed = now
                status = self.status()  # taken first: the metrics published next show it all
                if self._metrics_dirty and now - self._published >= self._metrics_gap():
                    # Not after every run: the gauges read every calendar's row, which with
                    # thousands of calendars polled every few minutes would cost more than the
                    # polls (METRICS_MIN_GAP).
                    self._publish_metrics()
                self._refresh_status(status)
                self._record_listeners()
            elif self._metrics_dirty and now - self._published >= self._metrics_gap():
                self._publish_metrics()  # runs ended before the gap: their gauges, now it is over

    def _log_load(self, since: tuple[float, float, int]) -> tuple[float, float, int]:
        """One line every LOAD_EVERY: runs finished and this process's CPU per run (an idle
        run is one poll), so the cost of polling shows in the journal, not only in a benchmark."""
        now = (time.monotonic(), time.process_time(), self.runs)
        runs = now[2] - since[2]
        cpu = now[1] - since[1]
        log_event(log, "daemon load", runs=runs, minutes=round((now[0] - since[0]) / 60, 1),
                  cpu_seconds=round(cpu, 2),
                  cpu_ms_per_run=round(cpu * 1000 / runs, 2) if runs else None,
                  cpu_share=round(cpu / max(now[0] - since[0], 1e-9), 3))
        return now

    def _wait_for_wakeup(self, timeout: float) -> list[int]:
        """Sleep until a signal, a finished job or `timeout`; the signal numbers received."""
        assert self._wake_r is not None
        try:
            readable, _, _ = select.select([self._wake_r], [], [], timeout)
        except InterruptedError:  # pragma: no cover - PEP 475 retries select() itself
            readable = []
        if not readable:
            return []
        try:
            data = self._wake_r.recv(4096)
        except (BlockingIOError, InterruptedError):
            return []
        if 0 in data:
            self._status_dirty = True
        return [byte for byte in data if byte]  # 0 is a job's "status changed"

    def _wake(self) -> None:
        if self._wake_w is None:
            return
        try:
            self._wake_w.send(b"\0")
        except OSError:  # full (the loop is behind anyway) or closed (we are stopping)
            pass

    def _refresh_status(self, status: str) -> None:
        if status != self._last_status:
            self._last_status = status
            self.notifier.status(status)

    def _wait_for_jobs(self, deadline: float) -> list[str]:
        """Until no job runs or `deadline`; a second SIGTERM/SIGINT stops waiting."""
        while True:
            with self._lock:
                if not self._running and not self._requests_running:
                    return []
                left = sorted(self._running) + [f"request {r}" for r in sorted(self._requests_running)]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return left
                if self._wake_r is None:
                    self._done.wait(min(remaining, 0.5))
                    continue
            for signum in self._wait_for_wakeup(min(remaining, 0.1)):
                if signum in (signal.SIGTERM, signal.SIGINT):
                    with self._lock:
                        return sorted(self._running) + [f"request {r}" for r in sorted(self._requests_running)]

    # -- status ----------------------------------------------------------------------------------

    def calendars(self) -> list[CalendarStatus]:
        with self._lock:
            return [self._status[u] for u in self.config.sync.users if u in self._status]

    def next_run(self) -> dt.datetime | None:
        if self._scheduler is None or self._stopping.is_set():
            return None
        try:
            return self._jobs.get_next_run_time() if self._jobs is not None else None
        except IndexError:  # the last job removed while we looked
            return None

    def listeners(self) -> dict[str, tuple[bool, str | None]]:
        """Each listener the daemon runs: (listening, why not)."""
        found: dict[str, tuple[bool, str | None]] = {}
        push = self.push
        if push is not None:
            found["push"] = (push.listener.up, push.listener.error)
        served = self._metrics_server
        if served is not None:
            found["metrics"] = (served.up, served.error)
        return found

    def status(self) -> str:
        down = [(name, why) for name, (up, why) in self.listeners().items() if not up]
        return status_line(self.calendars(), self.next_run(), reload_error=self._reload_error,
                           listeners_down=down)

    def _listener_changed(self, up: bool, error: str | None) -> None:
        """A listener came up or went down (its own thread): STATUS= and the record follow."""
        self._wake()

    def _record_listeners(self) -> None:
        """The listeners' state in the state database (`meta`, "listeners"), when it changed,
        so that `calsync status` (another process) can say that push is down."""
        import os

        from calsync.service.runtime import thread_store

        found = {name: {"up": up, "error": error} for name, (up, error) in self.listeners().items()}
        if found == self._recorded_listeners:
            return
        now = dt.datetime.now(dt.timezone.utc)
        value = {"pid": os.getpid(), "at": now.isoformat(timespec="seconds"), "listeners": found}
        try:
            thread_store(self.config).save_meta("listeners", value, now)
        except CalsyncError as exc:
            log_event(log, "cannot record the listeners' state", level=logging.WARNING,
                      error=str(exc))
            return
        self._recorded_listeners = found

    # -- metrics ---------------------------------------------------------------------------------

    def _serve_metrics(self, config: Config) -> None:
        """`[metrics] listen`: /metrics for the daemon's life. A port that cannot be bound is
        logged and retried (listener.py); the daemon syncs without it meanwhile (the textfile,
        if any, still works) and STATUS= says so."""
        if config.metrics.listen is None:
            return
        from calsync.service import metrics

        host, port = config.metrics.listen
        self._metrics_server = metrics.serve(host, port, on_state=self._listener_changed)
        if self._metrics_server.up:
            log_event(log, "serving metrics", listen=f"{host}:{port}", path="/metrics")

    def _metrics_gap(self) -> float:
        """Seconds between two publishes: a tenth of the interval, within the bounds."""
        tenth = self.schedule.interval.total_seconds() / 10
        return min(max(tenth, METRICS_MIN_GAP), METRICS_MAX_GAP)

    def _publish_metrics(self) -> None:
        """Gauges from the state, the daemon's own next runs, the textfile (metrics.py)."""
        from calsync.service import metrics

        self._metrics_dirty = False
        self._published = time.monotonic()
        if self.config.metrics.textfile is None and self._metrics_server is None:
            return  # nothing to publish to: skip walking 10,000 jobs
        scheduler = self._scheduler
        runs = {job.name: job.next_run_time for job in scheduler.get_jobs()} if scheduler else {}
        metrics.publish(self.config, runs)

    # -- jobs ------------------------------------------------------------------------------------

    def _add_jobs(self, users: Sequence[str], schedule: Schedule) -> None:
        start = dt.datetime.now(dt.timezone.utc)
        for user, offset in zip(users, first_run_offsets(len(users), schedule.stagger_window, self._rng)):
            self.scheduler.add_job(
                self._run_job,
                trigger=schedule.trigger(),
                args=(user,),
                id=_job_id(user),
                name=user,
                next_run_time=start + offset,
                max_instances=1,  # never two syncs of one calendar at once
                coalesce=True,  # runs missed while busy or suspended collapse into one
                misfire_grace_time=schedule.misfire_grace_seconds,
                replace_existing=True,
            )

    def _retime(self, schedule: Schedule) -> None:
        """A new interval: new triggers; a run further away than one new interval comes sooner,
        unless the calendar is backing off."""
        now = dt.datetime.now(dt.timezone.utc)
        soonest = now + schedule.interval
        for job in self.scheduler.get_jobs():
            user = job.name
            with self._lock:
                failing = self._status.get(user, CalendarStatus(user)).consecutive_failures > 1
            changes: dict[str, Any] = {"trigger": schedule.trigger()}
            if not failing and (job.next_run_time is None or job.next_run_time > soonest):
                changes["next_run_time"] = now + schedule.jitter * self._rng.random()
            try:
                self.scheduler.modify_job(job.id, **changes)
            except JobLookupError:
                pass

    def _run_job(self, user: str) -> None:
        """One scheduled run of one calendar, in a pool thread."""
        if self._stopping.is_set():
            return  # queued before the stop: do not start new work
        config = self.config
        started = dt.datetime.now(dt.timezone.utc)
        with self._lock:
            if user in self._claimed:  # an admin command works on this calendar: run after it
                self._after_claim.add(user)
                return
            self._running.add(user)
            previous = self._status.get(user, CalendarStatus(user))
            notified_run = user in self._push_due
            self._push_due.discard(user)
            previous_start = self._last_start.get(user)
            self._last_start[user] = started
        try:
            try:
                outcome = self._sync_one(config, user)
            except CalsyncError as exc:  # e.g. the state database filled up: one line, no trace
                log_event(log, "calendar run failed", level=logging.ERROR, user=user, error=str(exc))
                outcome = CalendarRun(user, False, str(exc), previous.consecutive_failures + 1)
            except Exception as exc:  # noqa: BLE001 - a bug in one calendar must not stop the rest
                log_event(log, "calendar run crashed", level=logging.ERROR, exc_info=True,
                          user=user, error=f"{type(exc).__name__}: {exc}")
                outcome = CalendarRun(user, False, f"{type(exc).__name__}: {exc}",
                                      previous.consecutive_failures + 1)
            self._record(user, previous, outcome)
            if not notified_run:
                self._check_channel(user, outcome, previous_start)
        finally:
            with self._lock:
                self.runs += 1
                self._running.discard(user)
                again = user in self._rerun
                self._rerun.discard(user)
                self._done.notify_all()
            if again:
                self._schedule_push_run(user)
            self._wake()

    def _record(self, user: str, previous: CalendarStatus, outcome: CalendarRun) -> None:
        with self._lock:
            self._interval_counts = self._interval_counts.add(outcome)
        if outcome.ok:
            status = CalendarStatus(user, "ok", 0, None, outcome.waiting)
            if previous.state == "failing":
                log_event(log, "calendar recovered", user=user,
                          after_failures=previous.consecutive_failures)
        else:
            failures = max(outcome.consecutive_failures, 1)
            status = CalendarStatus(user, "failing", failures, outcome.error,
                                    outcome.waiting or previous.waiting)
        with self._lock:
            if user in self._status:  # not removed by a reload meanwhile
                self._status[user] = status
        if outcome.ok or self._stopping.is_set():
            return
        schedule = self.schedule
        delay = backoff_delay(schedule.interval, status.consecutive_failures, rng=self._rng)
        next_run = dt.datetime.now(dt.timezone.utc) + delay
        try:
            # Safe against the scheduler's own update of this job: it computes the next run and
            # stores it under the job-store lock before our pool thread can take that lock.
            self.scheduler.modify_job(_job_id(user), next_run_time=next_run)
        except JobLookupError:
            return  # removed by a reload
        if status.consecutive_failures > 1:
            log_event(log, "calendar backing off", level=logging.WARNING, user=user,
                      consecutive_failures=status.consecutive_failures,
                      delay_seconds=round(delay.total_seconds()), next_run=_iso(next_run),
                      error=outcome.error)

    def _on_scheduler_event(self, event: JobEvent) -> None:
        user = event.job_id.removeprefix("calendar:")
        if event.code == EVENT_JOB_MISSED:
            log_event(log, "run missed, skipped", level=logging.WARNING, user=user,
                      scheduled=_iso(getattr(event, "scheduled_run_time", None)))
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            log_event(log, "previous run still going, run skipped", user=user)
        elif event.code == EVENT_JOB_ERROR:  # _run_job catches everything; kept for safety
            log_event(log, "calendar job error", level=logging.ERROR, user=user,
                      error=repr(getattr(event, "exception", None)))

    # -- push notifications ----------------------------------------------------------------------

    def notify_change(self, user: str) -> bool:
        """A push notification says `user`'s calendar changed: sync it soon, once.

        Coalesced: while its notified run is scheduled, more notifications change nothing;
        while it runs, they ask for one more run after it (the change may have come after its
        listing). A calendar backing off after failures keeps its backoff. Returns whether a
        run was scheduled or queued.
        """
        if self._stopping.is_set() or self._scheduler is None:
            return False
        with self._lock:
            if user not in self._status:
                return False
            self._notified[user] = dt.datetime.now(dt.timezone.utc)
            if self._status[user].consecutive_failures > 1:
                return False
            if user in self._running:
                self._rerun.add(user)
                return True
            if user in self._push_due:
                return True
        return self._schedule_push_run(user)

    def _schedule_push_run(self, user: str) -> bool:
        if self._stopping.is_set():
            return False
        with self._lock:
            self._push_due.add(user)
        when = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=PUSH_DEBOUNCE)
        try:
            self.scheduler.modify_job(_job_id(user), next_run_time=when)
        except JobLookupError:
            with self._lock:
                self._push_due.discard(user)
            return False
        return True

    def _check_channel(self, user: str, outcome: CalendarRun,
                       previous_start: dt.datetime | None) -> None:
        """A poll found changes that no notification announced since the run before it: the
        channel is lost (Google dropped it, or notifications do not arrive): replace it."""
        push = self.push
        if push is None or not outcome.ok or outcome.full or outcome.items == 0:
            return
        if previous_start is None or not push.opened_before(user, previous_start):
            return
        with self._lock:
            notified = self._notified.get(user)
        if notified is not None and notified >= previous_start:
            return
        log_event(log, "changes found that no push notification announced; channel replaced",
                  level=logging.WARNING, user=user, items=outcome.items)
        push.suspect(user)

    def _start_push(self, config: Config) -> None:
        from calsync.service.push import PushService  # the adapters' imports stay out of `calsync --help`

        service = PushService(config, self.notify_change, on_state=self._listener_changed)
        self.push = service
        service.start()  # a listener that cannot listen is down and retried, never fatal

    def _reload_push(self, old: Config, new: Config) -> None:
        before, after = old.google, new.google
        if self.push is not None and (not after.push or after.push_listen != before.push_listen):
            self.push.stop(time.monotonic() + PUSH_STOP_GRACE)  # off, or moved: start afresh
            self.push = None
        if after.push and self.push is None:
            self._start_push(new)
        elif self.push is not None:
            self.push.reload(new)

    # -- admin commands handed over by the CLI (handoff.py) ---------------------------------------

    def _open_requests(self, config: Config) -> None:
        """The main thread's connection to look for requests; requests a previous daemon took
        but never finished are marked abandoned (their CLI, if still waiting, exits 75)."""
        from calsync.service import handoff

        self._close_requests()
        store = StateStore(config.state.path)
        self._request_store = store
        left = handoff.abandon_unfinished(store)
        if left:
            log_event(log, "admin requests of a previous daemon abandoned", level=logging.WARNING,
                      requests=left)

    def _close_requests(self) -> None:
        store, self._request_store = self._request_store, None
        if store is not None:
            store.close()

    def _take_requests(self) -> None:
        """Every POLL_SECONDS: requests pending in the state database become one-off jobs."""
        from calsync.service import handoff

        store = self._request_store
        if store is None or self._stopping.is_set() or self._scheduler is None:
            return
        try:
            if not handoff.any_pending(store):
                return
            taken = handoff.take(store, os.getpid())
        except CalsyncError as exc:  # the state database is busy or failing: the runs say so
            log_event(log, "cannot read admin requests", level=logging.WARNING, error=str(exc))
            return
        for request in taken:
            log_event(log, "admin request taken", request=request.id, command=request.command,
                      by=request.requested_by, **{k: _field(v) for k, v in request.arguments.items()})
            with self._lock:
                self._requests_running.add(request.id)
            self.scheduler.add_job(self._run_request, args=(request,), id=f"request:{request.id}",
                                   name=f"request:{request.id}", misfire_grace_time=None)

    def _run_request(self, request: Any) -> None:
        """One admin command on a pool thread, once the calendars it touches are free."""
        from calsync.service import admin, handoff
        from calsync.service.runtime import reused_cycle, thread_store

        config = self.config
        users = admin.users_of(request.arguments) or list(config.sync.users)
        started = time.monotonic()
        try:
            store = thread_store(config)
            if not self._claim(users):
                handoff.abandon(store, request.id, "the daemon is stopping")
                return
            try:
                answer = admin.run(
                    config, request.command, request.arguments, by=request.requested_by,
                    progress=lambda line: handoff.note_progress(store, request.id, line),
                    cycle_factory=reused_cycle,
                )
            except CalsyncError as exc:
                answer = admin.Answer(exc.exit_code, (f"calsync: {exc}",))
            except Exception as exc:  # noqa: BLE001 - a bug in one request must not stop the daemon
                log_event(log, "admin request crashed", level=logging.ERROR, exc_info=True,
                          request=request.id, error=f"{type(exc).__name__}: {exc}")
                answer = admin.Answer(EXIT_FAILURE, (f"calsync: {type(exc).__name__}: {exc}",))
            finally:
                self._release(users)
            handoff.finish(store, request.id, answer)
            log_event(log, "admin request done", request=request.id, command=request.command,
                      exit_code=answer.exit_code, seconds=round(time.monotonic() - started, 3))
        except CalsyncError as exc:  # the state database failed under the request itself
            log_event(log, "admin request failed", level=logging.ERROR, request=request.id,
                      error=str(exc))
        finally:
            with self._lock:
                self._requests_running.discard(request.id)
                self._done.notify_all()
            self._refresh_calendars(users)
            self._wake()

    def _claim(self, users: Sequence[str]) -> bool:
        """Wait until none of `users` is syncing, then hold them; False when stopping."""
        wanted = set(users)
        with self._lock:
            while (wanted & (self._running | self._claimed)) and not self._stopping.is_set():
                self._done.wait(0.5)
            if self._stopping.is_set():
                return False
            self._claimed |= wanted
            return True

    def _release(self, users: Sequence[str]) -> None:
        with self._lock:
            self._claimed -= set(users)
            skipped = sorted(self._after_claim & set(users))
            self._after_claim -= set(skipped)
            self._done.notify_all()
        for user in skipped:  # polls that came due meanwhile run now
            self._run_soon(user)

    def _run_soon(self, user: str) -> None:
        if self._stopping.is_set():
            return
        when = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=PUSH_DEBOUNCE)
        try:
            self.scheduler.modify_job(_job_id(user), next_run_time=when)
        except JobLookupError:
            pass

    def _refresh_calendars(self, users: Sequence[str]) -> None:
        """After an admin command: each calendar's status as the state now says (records it
        wrote or dropped, a failure it met)."""
        try:
            known = self._known_status(self.config, users)
        except CalsyncError:
            return
        with self._lock:
            for user, status in known.items():
                if user in self._status:
                    self._status[user] = status

    # -- the summary of each interval ----------------------------------------------------------

    def _log_summary(self) -> None:
        """One INFO line per interval: what the calendars' runs did (idle polls log at debug)."""
        with self._lock:
            counts, self._interval_counts = self._interval_counts, IntervalCounts()
            failing = sorted(u for u, c in self._status.items() if c.state == "failing")
        log_event(log, "daemon summary", calendars=len(self.config.sync.users), polled=counts.runs,
                  changed=counts.changed, failed_runs=counts.failed, failing=len(failing),
                  failing_users=",".join(failing[:5]) + (f",+{len(failing) - 5}" if len(failing) > 5 else "") or None,
                  salesforce_calls=counts.salesforce_calls,
                  minutes=round(self.schedule.interval.total_seconds() / 60, 1))

    # -- state -----------------------------------------------------------------------------------

    @staticmethod
    def _take_lock(config: Config, wait: float) -> WriterLock:
        """The single-writer lock of the configuration's state database (LockBusy: exit 75)."""
        writer = WriterLock(config.state.path, "run")
        writer.acquire(wait)
        return writer

    @staticmethod
    def _close_stores() -> None:
        from calsync.service.runtime import close_thread_stores

        close_thread_stores()

    def _release_locks(self) -> None:
        while self._writers:
            self._writers.pop().release()

    @staticmethod
    def _open_state(config: Config) -> None:
        """Open (and migrate) the state database once in this thread and check it can be read
        and written; StateError (exit 74, which systemd does not restart) if not."""
        store = StateStore(config.state.path)
        try:
            store.check_usable()
        finally:
            store.close()

    @staticmethod
    def _known_status(config: Config, users: Sequence[str]) -> dict[str, CalendarStatus]:
        """Seed the status from the store, so a restart still shows a calendar's failures."""
        store = StateStore(config.state.path)
        try:
            saved = {c.user: c for c in store.calendars()}
            waiting: dict[str, int] = {}
            for retry in store.retries():
                waiting[retry.owner] = waiting.get(retry.owner, 0) + 1
        finally:
            store.close()
        status: dict[str, CalendarStatus] = {}
        for user in users:
            known = saved.get(user)
            parked = waiting.get(user, 0)
            if known is None:
                status[user] = CalendarStatus(user, waiting=parked)
            elif known.consecutive_failures > 0:
                status[user] = CalendarStatus(user, "failing", known.consecutive_failures,
                                              known.last_error, parked)
            elif known.last_success_at is not None:
                status[user] = CalendarStatus(user, "ok", waiting=parked)
            else:
                status[user] = CalendarStatus(user, waiting=parked)
        return status


def _address(listen: tuple[str, int] | None) -> str | None:
    return f"{listen[0]}:{listen[1]}" if listen else None


def _ignore_signal(signum: int, frame: Any) -> None:
    """Installed for SIGTERM/SIGINT/SIGHUP so the wakeup fd gets them; the loop acts on them."""


__all__ = [
    "CalendarRun",
    "CalendarStatus",
    "Daemon",
    "INTERVAL_ENV",
    "Schedule",
    "backoff_delay",
    "first_run_offsets",
    "interval_of",
    "status_line",
    "sync_calendar",
]
