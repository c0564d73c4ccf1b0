"""One calendar's run in the daemon: the sync itself, and what its outcome does to the schedule.

Every calendar job runs `cycle.run([user])` on a `Cycle` of its own over its worker thread's
state connection, which stays open across runs (`runtime.reused_cycle`; the store is one
connection per thread): `sync_calendar`. `CalendarRunner` runs it on a pool thread for the
scheduler and records the outcome: the calendar's status, the counts of the interval, and for a
failing calendar its backoff (`scheduling.backoff_delay`). A run waits for an admin command that
holds its calendar (admin_jobs.py), and tells the push side what it found (push_runs.py).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections.abc import Callable

from calsync.core.config import Config
from calsync.core.errors import CalsyncError
from calsync.core.logs import event as log_event
from calsync.service.board import Board, CalendarRun, CalendarStatus, SyncOne
from calsync.service.push_runs import PushRuns
from calsync.service.scheduling import Jobs, Schedule, backoff_delay, iso

log = logging.getLogger("calsync.daemon")  # names predate the layers (ARCHITECTURE.md)


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


class CalendarRunner:
    """Runs calendars' jobs on the pool threads and records their outcomes on the board.

    `config` and `schedule` give the daemon's current ones (a reload changes them); `wake`
    tells the main thread that a run ended (STATUS= follows).
    """

    def __init__(self, board: Board, jobs: Jobs, push: PushRuns, sync_one: SyncOne,
                 rng: random.Random, *, config: Callable[[], Config],
                 schedule: Callable[[], Schedule], wake: Callable[[], None]) -> None:
        self._board = board
        self._jobs = jobs
        self._push = push
        self._sync_one = sync_one
        self._rng = rng
        self._config = config
        self._schedule = schedule
        self._wake = wake

    def run(self, user: str) -> None:
        """One scheduled run of one calendar, in a pool thread."""
        board = self._board
        if board.stopping.is_set():
            return  # queued before the stop: do not start new work
        config = self._config()
        started = dt.datetime.now(dt.timezone.utc)
        with board.lock:
            if user in board.claimed:  # an admin command works on this calendar: run after it
                board.after_claim.add(user)
                return
            board.running.add(user)
            previous = board.status.get(user, CalendarStatus(user))
            notified_run = user in board.push_due
            board.push_due.discard(user)
            previous_start = board.last_start.get(user)
            board.last_start[user] = started
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
            self.record(user, previous, outcome)
            if not notified_run:
                self._push.check_channel(user, outcome, previous_start)
        finally:
            with board.lock:
                board.runs += 1
                board.running.discard(user)
                again = user in board.rerun
                board.rerun.discard(user)
                board.done.notify_all()
            if again:
                self._push.schedule_run(user)
            self._wake()

    def record(self, user: str, previous: CalendarStatus, outcome: CalendarRun) -> None:
        """The run's outcome on the board; a failing calendar's next run put off (backoff)."""
        board = self._board
        with board.lock:
            board.interval_counts = board.interval_counts.add(outcome)
        if outcome.ok:
            status = CalendarStatus(user, "ok", 0, None, outcome.waiting)
            if previous.state == "failing":
                log_event(log, "calendar recovered", user=user,
                          after_failures=previous.consecutive_failures)
        else:
            failures = max(outcome.consecutive_failures, 1)
            status = CalendarStatus(user, "failing", failures, outcome.error,
                                    outcome.waiting or previous.waiting)
        with board.lock:
            if user in board.status:  # not removed by a reload meanwhile
                board.status[user] = status
        if outcome.ok or board.stopping.is_set():
            return
        schedule = self._schedule()
        delay = backoff_delay(schedule.interval, status.consecutive_failures, rng=self._rng)
        next_run = dt.datetime.now(dt.timezone.utc) + delay
        if not self._jobs.run_at(user, next_run):
            return  # removed by a reload
        if status.consecutive_failures > 1:
            log_event(log, "calendar backing off", level=logging.WARNING, user=user,
                      consecutive_failures=status.consecutive_failures,
                      delay_seconds=round(delay.total_seconds()), next_run=iso(next_run),
                      error=outcome.error)


__all__ = ["CalendarRunner", "sync_calendar"]
