"""What the daemon knows of its calendars, shared by its threads under one lock.

The scheduler's pool threads (calendar runs, admin requests), the push listener's threads
(notifications) and the main thread (STATUS=, reload, stop) all read and change it: each
calendar's status, which calendars run now, which wait for an admin command or for a run a
notification asked for, the counts of the interval. One lock (and its condition, `done`,
notified whenever a run or a request ends) because several of them change together: a run that
starts checks the admin command's claim, marks itself running and takes the push request in one
step.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from calsync.core.config import Config
from calsync.state.store import StateStore

CalendarState = Literal["pending", "ok", "failing"]


@dataclass(frozen=True)
class CalendarStatus:
    """What the daemon knows of one calendar, for STATUS= and the logs."""

    user: str
    state: CalendarState = "pending"
    consecutive_failures: int = 0
    last_error: str | None = None
    waiting: int = 0  # records Salesforce refused, parked for a retry


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


class Board:
    """The calendars' shared state; every field is read and changed under `lock`."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done = threading.Condition(self.lock)  # a run or a request ended, a claim released
        self.stopping = threading.Event()
        self.status: dict[str, CalendarStatus] = {}
        self.running: set[str] = set()
        self.runs = 0  # calendar runs finished since start (the "daemon load" line)
        # Push notifications (push.py): calendars whose notified run is scheduled, whose run must
        # be redone (a notification came while it ran), and when each was last notified and
        # last started (wall clock).
        self.push_due: set[str] = set()
        self.rerun: set[str] = set()
        self.notified: dict[str, dt.datetime] = {}
        self.last_start: dict[str, dt.datetime] = {}
        # Admin commands handed over by the CLI (handoff.py): the calendars a running command
        # holds (their polls wait for it), polls skipped meanwhile (run right after), and the
        # requests running.
        self.claimed: set[str] = set()
        self.after_claim: set[str] = set()
        self.requests_running: set[int] = set()
        # The summary of each interval (one INFO line): calendar runs, runs that found changes,
        # failures, Salesforce calls.
        self.interval_counts = IntervalCounts()

    def backing_off(self, user: str) -> bool:
        """`user` failed more than once in a row: its next run is put off (backoff)."""
        with self.lock:
            return self.status.get(user, CalendarStatus(user)).consecutive_failures > 1

    def busy(self) -> list[str]:
        """What still runs: calendars, then "request <id>"s. Call with `lock` held."""
        return sorted(self.running) + [f"request {r}" for r in sorted(self.requests_running)]

    def update(self, known: dict[str, CalendarStatus]) -> None:
        """Statuses read again from the state, for the calendars still configured."""
        with self.lock:
            for user, status in known.items():
                if user in self.status:
                    self.status[user] = status


def known_status(config: Config, users: Sequence[str]) -> dict[str, CalendarStatus]:
    """Seed the status from the store, so a restart still shows a calendar's failures."""
    store = StateStore(config.state)
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


__all__ = ["Board", "CalendarRun", "CalendarState", "CalendarStatus", "IntervalCounts", "SyncOne",
           "known_status"]
