"""`calsync status`: what the state database says about each calendar.

`status` reads only the state database, opened read-only (`StateStore.reader`: no copy, only the
queries of what it shows), so it needs no network, changes nothing on disk and never creates a
missing database. Per calendar it reports the last successful sync, the age of the stored sync
token, the counts of the last cycle, the records parked for retry, its push channel's
expiration and an estimate of the next run: the daemon records nothing of its schedule, so the
estimate is the last attempt plus the interval, stretched by the daemon's own backoff after
failures (`scheduling.backoff_delay` without jitter), or "now" when it never ran or is overdue.
`status --check` (monitoring.py) reads the same report.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from calsync.core import display, logs
from calsync.core.config import Config
from calsync.core.config_model import StateConfig
from calsync.core.model import Written
from calsync.engine.history import Fate, fates
from calsync.engine.parked import Parked, named
from calsync.service.gauges import estimated_next_run
from calsync.state.store import StateStore


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# ---------------------------------------------------------------------------------------------
# The state database, read without touching it


# ---------------------------------------------------------------------------------------------
# status


@dataclass(frozen=True)
class CalendarStatus:
    user: str
    configured: bool  # False: in the state database but no longer in [sync] users
    last_attempt_at: dt.datetime | None
    last_success_at: dt.datetime | None
    last_error: str | None  # set when the last attempt failed
    consecutive_failures: int
    has_sync_token: bool
    token_saved_at: dt.datetime | None
    last_result: Mapping[str, Any]  # the counts of the last successful cycle
    events_written: int
    retries: tuple[Parked, ...]  # records refused, waiting for a retry, with their meeting
    next_run_at: dt.datetime | None  # None: now (never ran, or overdue)
    deleted_in_salesforce: tuple[Written, ...] = ()  # Events people deleted: not re-created
    push_expires_at: dt.datetime | None = None  # the latest live push channel's expiration
    # Records refused in the last 30 days that left the retry queue: dropped, written since, or
    # no longer needing a write (history.py).
    record_history: tuple[Fate, ...] = ()

    @property
    def needs_attention(self) -> bool:
        """`status --failing`: its last attempt failed, or records wait for a retry."""
        return self.consecutive_failures > 0 or self.last_attempt_failed or bool(self.retries)

    @property
    def last_attempt_failed(self) -> bool:
        return self.last_attempt_at is not None and self.last_error is not None

    def next_at(self, now: dt.datetime) -> dt.datetime:
        return self.next_run_at or now


@dataclass(frozen=True)
class StatusReport:
    state_path: str
    state_exists: bool
    now: dt.datetime
    interval: dt.timedelta
    calendars: tuple[CalendarStatus, ...]
    unmapped: tuple[str, ...] = ()  # configured users the last mapping found no active User for
    # The running daemon's listeners (push, metrics) that cannot listen: name → why (the
    # daemon records them in the state, `Daemon._record_listeners`).
    listeners_down: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def never_synced(self) -> bool:
        return all(c.last_attempt_at is None for c in self.calendars)

    def only(self, users: Sequence[str] = (), failing: bool = False) -> StatusReport:
        """The report of some calendars: these users, and/or those that need attention
        (`status --user U`, `status --failing`)."""
        chosen = [
            c for c in self.calendars
            if (not users or c.user in users)
            and (not failing or c.needs_attention or c.user in self.unmapped)
        ]
        return replace(self, calendars=tuple(chosen))

    def to_json(self) -> dict[str, Any]:
        def iso(value: dt.datetime | None) -> str | None:
            return value.isoformat(timespec="seconds") if value else None

        def age(value: dt.datetime | None) -> int | None:
            return int((self.now - value).total_seconds()) if value else None

        return {
            "state_path": self.state_path,
            "state_exists": self.state_exists,
            "now": iso(self.now),
            "interval_minutes": int(self.interval.total_seconds() // 60),
            "never_synced": self.never_synced,
            "users_without_salesforce_user": list(self.unmapped),
            "listeners_down": dict(self.listeners_down),
            "calendars": [
                {
                    "user": c.user,
                    "configured": c.configured,
                    "last_attempt_at": iso(c.last_attempt_at),
                    "last_attempt_ok": None if c.last_attempt_at is None else not c.last_attempt_failed,
                    "last_success_at": iso(c.last_success_at),
                    "last_error": c.last_error,
                    "consecutive_failures": c.consecutive_failures,
                    "sync_token": c.has_sync_token,
                    "token_saved_at": iso(c.token_saved_at),
                    "token_age_seconds": age(c.token_saved_at),
                    "last_result": dict(c.last_result),
                    "events_written": c.events_written,
                    "retries": [
                        {
                            "key": p.retry.key,
                            "ical_uid": p.retry.ical_uid,
                            "event_id": p.event_id,
                            "subject": p.subject,
                            "start": iso(p.start),
                            "operation": p.retry.operation,
                            "status_code": p.retry.status_code,
                            "message": p.retry.message,
                            "attempts": p.retry.attempts,
                            "next_attempt_at": iso(p.retry.next_attempt_at),
                        }
                        for p in c.retries
                    ],
                    "next_run": iso(c.next_run_at) if c.next_run_at else "now",
                    "deleted_in_salesforce": [
                        {"key": w.key, "ical_uid": w.ical_uid, "sf_id": w.sf_id}
                        for w in c.deleted_in_salesforce
                    ],
                    "push_channel_expires_at": iso(c.push_expires_at),
                    "record_history": [fate.to_json() for fate in c.record_history],
                }
                for c in self.calendars
            ],
        }


def status(config: Config, *, now: dt.datetime | None = None, details: bool = True) -> StatusReport:
    """What the state database says about each calendar. Raises StateError if it is unreadable.

    `details=False` (`status --check`, the metrics) leaves out what only the full report shows:
    the counts of Events written, the Events people deleted and the push channels, whose
    queries read every `written` row of each calendar. What is left reads one row per
    calendar, the parked records and the user mapping."""
    now = now or _utcnow()
    interval = dt.timedelta(minutes=config.sync.interval_minutes)
    configured = list(config.sync.users)
    if not StateStore.exists(config.state):
        calendars = tuple(_never(user) for user in configured)
        return StatusReport(config.state.shown, False, now, interval, calendars)
    store = StateStore.reader(config.state)
    try:
        saved = {c.user: c for c in store.calendars()}
        channels = _channel_expiry(store) if details else {}

        def written(user: str) -> int:
            return store.count_written(user) if details else 0

        def removed(user: str) -> tuple[Written, ...]:
            return tuple(store.removed_in_salesforce(user)) if details else ()

        found: list[CalendarStatus] = []
        for user in configured + sorted(set(saved) - set(configured)):
            state = saved.get(user)
            if state is None:
                found.append(_never(user, written=written(user),
                                    retries=tuple(named(store, store.retries(user)))))
                continue
            next_run = estimated_next_run(state, interval, now)
            found.append(
                CalendarStatus(
                    user=user,
                    configured=user in configured,
                    last_attempt_at=state.last_attempt_at,
                    last_success_at=state.last_success_at,
                    last_error=state.last_error,
                    consecutive_failures=state.consecutive_failures,
                    has_sync_token=bool(state.sync_token),
                    token_saved_at=state.token_saved_at,
                    last_result=dict(state.last_result),
                    events_written=written(user),
                    retries=tuple(named(store, store.retries(user))),
                    next_run_at=next_run,
                    deleted_in_salesforce=removed(user),
                    push_expires_at=channels.get(user),
                    record_history=tuple(f for f in fates(store, now, owner=user)
                                         if f.outcome != "waiting"),
                )
            )
        mapping = store.sf_users()
        unmapped = tuple(u for u in configured if u in mapping and mapping[u][0] is None)
        down = _listeners_down(store, config.state)
    finally:
        store.close()
    return StatusReport(config.state.shown, True, now, interval, tuple(found), unmapped, down)


def _listeners_down(store: StateStore, path: Path | StateConfig) -> dict[str, str]:
    """The listeners the running daemon recorded as down (none when no daemon runs)."""
    from calsync.state.lock import daemon_holder

    saved = store.meta("listeners")
    if saved is None or not isinstance(saved[0], dict):
        return {}
    record = saved[0]
    if record.get("pid") is None or daemon_holder(path) != record.get("pid"):
        return {}  # written by a daemon that no longer runs
    listeners = record.get("listeners") or {}
    return {name: str(state.get("error") or "not listening")
            for name, state in sorted(listeners.items())
            if isinstance(state, dict) and not state.get("up")}


def _channel_expiry(store: StateStore) -> dict[str, dt.datetime]:
    """Per user, the expiration of its latest push channel Google confirmed (push.py)."""
    from calsync.state.store import push_channels

    found: dict[str, dt.datetime] = {}
    for channel in push_channels(store):
        if channel.resource_id and channel.expires_at:
            found[channel.user] = max(channel.expires_at, found.get(channel.user, channel.expires_at))
    return found


def _never(user: str, written: int = 0, retries: tuple[Parked, ...] = ()) -> CalendarStatus:
    return CalendarStatus(
        user=user, configured=True, last_attempt_at=None, last_success_at=None, last_error=None,
        consecutive_failures=0, has_sync_token=False, token_saved_at=None, last_result={},
        events_written=written, retries=retries, next_run_at=None,
    )


def _ago(now: dt.datetime, then: dt.datetime) -> str:
    seconds = int((now - then).total_seconds())
    if seconds < 0:
        return "in the future"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def _when(value: dt.datetime) -> str:
    return display.moment(value)


def summary(report: StatusReport, total: StatusReport | None = None) -> str:
    """One line over every calendar: `3 calendars: 2 ok, 1 failing, 0 never synced; 1 record
    waiting for a retry; 1 user without a Salesforce User`."""
    whole = total or report
    calendars = [c for c in whole.calendars if c.configured]
    failing = sum(1 for c in calendars if c.consecutive_failures > 0)
    never = sum(1 for c in calendars if c.last_attempt_at is None)
    ok = len(calendars) - failing - never
    waiting = sum(len(c.retries) for c in calendars)
    line = (f"{len(calendars)} calendar{'s' if len(calendars) != 1 else ''}: {ok} ok, {failing} failing,"
            f" {never} never synced; {waiting} record{'s' if waiting != 1 else ''} waiting for a retry")
    if whole.unmapped:
        line += f"; {len(whole.unmapped)} without a Salesforce User"
    if total is not None and len(report.calendars) != len(total.calendars):
        line += f" (showing {len(report.calendars)})"
    return line


def render_status(report: StatusReport, total: StatusReport | None = None) -> list[str]:
    """The text form of `status`: a summary line, then one block per calendar (`total`: the
    whole report when `report` is a part of it)."""
    lines = [f"state: {report.state_path}" + ("" if report.state_exists else " (not created yet)"),
             summary(report, total)]
    for name, why in report.listeners_down.items():
        lines.append(f"{name} listener: DOWN ({why}); the daemon retries it and polls every"
                     " calendar meanwhile")
    if report.never_synced and report.calendars:
        lines.append("never synced: no calendar has been synced yet (run `calsync sync` or start the daemon)")
    for c in report.calendars:
        head = c.user + ("" if c.configured else " (no longer configured)")
        lines.append(head)
        if c.last_success_at:
            lines.append(f"  last successful sync: {_when(c.last_success_at)} ({_ago(report.now, c.last_success_at)})")
        else:
            lines.append("  last successful sync: never")
        if c.last_attempt_failed:
            assert c.last_attempt_at is not None
            lines.append(
                f"  last attempt FAILED {_when(c.last_attempt_at)} "
                f"({c.consecutive_failures} in a row): {logs.redact(c.last_error or '')}"
            )
        if c.user in report.unmapped:
            lines.append("  no active Salesforce User for this address: add it to [sync] user_map "
                         "or activate the User (calsync doctor names it)")
        if c.token_saved_at:
            lines.append(f"  sync token: saved {_ago(report.now, c.token_saved_at)}")
        elif c.last_attempt_at is not None:
            lines.append("  sync token: none (the next sync lists the whole lookback window)")
        if c.last_result:
            r = c.last_result
            kind = "full" if r.get("full_sync") else "incremental"
            lines.append(
                f"  last cycle: {r.get('items', 0)} items ({kind}), created {r.get('created', 0)}, "
                f"updated {r.get('updated', 0)}, deleted {r.get('deleted', 0)}, "
                f"skipped {r.get('skipped', 0)}, failed {r.get('failed', 0)}"
            )
        lines.append(f"  Events written: {c.events_written}")
        if c.deleted_in_salesforce:
            lines.append(f"  deleted in Salesforce by people, not re-created: {len(c.deleted_in_salesforce)}"
                         " (`calsync resync --restore-deleted` brings them back)")
        if c.retries:
            lines.append(f"  waiting for retry: {len(c.retries)} (calsync retry, or calsync retry --drop)")
            for parked in c.retries:
                retry = parked.retry
                lines.append(
                    f"    {parked.describe()}: {retry.operation} refused, {retry.status_code or '?'}: "
                    f"{logs.redact((retry.message or '')[:200])}; attempt {retry.attempts}, next "
                    f"{_when(retry.next_attempt_at)}"
                )
        else:
            lines.append("  waiting for retry: none")
        if c.record_history:
            lines.append(f"  refused in the last 30 days, no longer waiting: {len(c.record_history)}")
            for fate in c.record_history:
                lines.append(f"    {fate.describe()}")
        lines.append(
            "  next run: " + ("now" if c.next_run_at is None else f"{_when(c.next_run_at)} (estimated)")
        )
        if c.push_expires_at is not None:
            left = c.push_expires_at - report.now
            lines.append(f"  push channel: expires {_when(c.push_expires_at)}"
                         + (" (expired)" if left.total_seconds() <= 0 else f" (in {_span(left)})"))
    return lines


def _span(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"
