"""Records Salesforce refused and calsync parked for a retry: which meeting each is, retry now, drop.

A refused write is parked in the state's `retries` table with its statusCode and re-planned on
a later cycle, the delay doubling up to a day (writes.py `_refused`). The table knows the owner
and the iCalUID; an operator needs the meeting: `named()` adds its subject, start and Google
event id from the meeting's stored decision (decisions.py), else from the mirror of Google items.

`calsync retry` makes the chosen records due now and runs a cycle for their calendars (the
cycle re-plans due records, reading.py `fetch`); `calsync retry --drop` removes them from the
table, so no cycle plans them again until the meeting itself changes in Google, and logs one
line per record dropped. Both are writers: they hold the single-writer lock (lock.py).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from calsync.core import display, logs

from calsync.engine.decisions import named as meeting_named, uids_of_event
from calsync.engine.mirror import meeting_copy
from calsync.core.logs import event as log_event
from calsync.core.model import MeetingCopy
from calsync.state.store import Retry, StateStore, record_history

log = logging.getLogger("calsync.parked")  # names predate the layers (ARCHITECTURE.md)


@dataclass(frozen=True)
class Parked:
    """A parked record and the meeting it is."""

    retry: Retry
    subject: str | None
    start: dt.datetime | None
    event_id: str | None

    @property
    def owner(self) -> str:
        return self.retry.owner

    def describe(self) -> str:
        """`'Intro call' 2026-11-26 15:00 UTC (Google event abc), owner bob@acme.test`."""
        return (f"{display.meeting(self.subject, self.start)} (Google event {self.event_id or '?'}),"
                f" owner {self.owner}")

    def refusal(self) -> str:
        """`update refused, FIELD_CUSTOM_VALIDATION_EXCEPTION: <Salesforce's message>`."""
        r = self.retry
        text = f"{r.operation} refused, {r.status_code or '?'}"
        return text + (f": {logs.redact((r.message or '')[:200])}" if r.message else "")


def meeting_of(store: StateStore, owner: str, ical_uid: str) -> tuple[str | None, dt.datetime | None, str | None]:
    """(subject, start, Google event id) of one meeting of `owner`'s calendar: from its stored
    decision (decisions.py), else from the mirror of Google items."""
    decision = next(iter(store.decisions(owner, ical_uids=[ical_uid])), None)
    if decision is not None:
        return decision.subject, decision.start, decision.event_id
    rows = store.mirror_by_uids(owner, [ical_uid]).get(ical_uid, [])
    copy: MeetingCopy = meeting_copy(owner, ical_uid, rows)
    meeting = meeting_named(copy)
    start = dt.datetime.fromisoformat(meeting["start"]) if meeting.get("start") else None
    event_id = copy.items[0].id if copy.items else None
    return meeting.get("subject"), start, event_id


def named(store: StateStore, retries: Iterable[Retry]) -> list[Parked]:
    """Each retry with the meeting's subject, start and Google event id."""
    return [Parked(retry, *meeting_of(store, retry.owner, retry.ical_uid)) for retry in retries]


def select(
    store: StateStore, users: Sequence[str], event_id: str | None = None
) -> list[Parked]:
    """The parked records of `users` (every user when empty), only the meeting of `event_id`
    when it is given."""
    chosen = [r for r in store.retries() if not users or r.owner in users]
    if event_id is not None:
        owners = sorted({r.owner for r in chosen})
        uids = {(owner, uid) for owner in owners for uid in uids_of_event(store, owner, event_id)}
        by_decision = {(d.user, d.ical_uid) for owner in owners
                       for d in store.decisions(owner, event_id=event_id)}
        chosen = [r for r in chosen if (r.owner, r.ical_uid) in uids | by_decision]
    return named(store, chosen)


def drop(store: StateStore, records: Sequence[Parked], by: str | None = None,
         now: dt.datetime | None = None) -> None:
    """Stop retrying these records: gone from the table, kept in the record history for 30 days
    (with `by`, who asked), one log line each."""
    now = now or dt.datetime.now(dt.timezone.utc)
    with store.transaction():
        store.clear_retries(p.retry.key for p in records)
        for p in records:
            r = p.retry
            record_history(store, r.key, r.owner, r.ical_uid, "dropped", now, operation=r.operation,
                           status_code=r.status_code, message=r.message, attempts=r.attempts, by=by)
    for p in records:
        log_event(log, "stopped retrying", level=logging.WARNING, user=p.owner,
                  event_id=p.event_id, subject=p.subject,
                  start=p.start.isoformat(timespec="minutes") if p.start else None,
                  operation=p.retry.operation, status_code=p.retry.status_code,
                  attempts=p.retry.attempts, key=p.retry.key, by=by)


def make_due(store: StateStore, records: Sequence[Parked], now: dt.datetime) -> None:
    """The next cycle re-plans these records whatever their delay said."""
    store.make_retries_due((p.retry.key for p in records), now)
