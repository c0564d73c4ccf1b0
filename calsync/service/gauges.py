"""The metrics' per-calendar gauges: what the state says of each calendar, read without touching it.

Three small queries on the state opened read-only (`StateStore.reader`), whatever its size: one
row per calendar, the parked records counted by owner and statusCode, and the user mapping.
`calsync status` shows the same next-run estimate (`estimated_next_run`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from calsync.core.config import Config
from calsync.service.scheduling import backoff_delay
from calsync.state.store import StateStore


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def estimated_next_run(state: Any, interval: dt.timedelta, now: dt.datetime) -> dt.datetime | None:
    """The last attempt plus the interval, stretched by the daemon's backoff after failures
    (without jitter); None: now (never ran, or overdue)."""
    if state.last_attempt_at is None:
        return None
    planned: dt.datetime = state.last_attempt_at + backoff_delay(
        interval, state.consecutive_failures, jitter=0.0)
    return planned if planned > now else None


@dataclass(frozen=True)
class CalendarGauge:
    """One configured calendar as the metrics show it (`gauges`)."""

    user: str
    last_success_at: dt.datetime | None
    consecutive_failures: int
    next_run_at: dt.datetime  # the estimate (`status`), now when overdue or never run


@dataclass(frozen=True)
class Gauges:
    calendars: tuple[CalendarGauge, ...]
    parked: Mapping[tuple[str, str], int]  # (owner, statusCode) → records waiting for a retry
    unmapped: int = 0  # configured users the last mapping found no active Salesforce User for


def gauges(config: Config, *, now: dt.datetime | None = None) -> Gauges:
    """What the per-calendar metrics show, in three small queries whatever the size of the
    state: one row per calendar, the parked records counted by owner and statusCode, and the
    user mapping (for the users without a Salesforce User)."""
    now = now or _utcnow()
    interval = dt.timedelta(minutes=config.sync.interval_minutes)
    configured = list(config.sync.users)
    if not StateStore.exists(config.state):
        return Gauges(tuple(CalendarGauge(u, None, 0, now) for u in configured), {})
    store = StateStore.reader(config.state)
    try:
        saved = {c.user: c for c in store.calendars()}
        parked = store.parked_counts()
        mapping = store.sf_users(configured)
    finally:
        store.close()
    found = []
    for user in configured:
        state = saved.get(user)
        if state is None:
            found.append(CalendarGauge(user, None, 0, now))
            continue
        found.append(CalendarGauge(user, state.last_success_at, state.consecutive_failures,
                                   estimated_next_run(state, interval, now) or now))
    wanted = set(configured)
    unmapped = sum(1 for u in configured if u in mapping and mapping[u][0] is None)
    return Gauges(tuple(found), {key: n for key, n in parked.items() if key[0] in wanted}, unmapped)
