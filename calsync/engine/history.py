"""What became of records Salesforce refused: visible for 30 days after they left the retry queue.

The retry queue (`retries`, parked.py) forgets a record once it is written, no longer needs a
write, or an admin gives up on it (`calsync retry --drop`). The state keeps the story apart
(`record_history`, m010): each refusal, with its statusCode, message and attempt, and each drop
with who asked. `fates()` puts it together per record for `status` and `explain`:

- `waiting`: still parked (the retry queue names it; `status` lists it there);
- `dropped`: an admin stopped retrying it (when, by whom): nothing is written until the meeting
  changes in Google, or `calsync resync --event-id` is run for it;
- `written`: calsync wrote its Event after the last refusal (recorded with the write, or
  after a drop, a `written` row newer than the drop);
- `no longer needed`: neither: the meeting changed or went so that no write was due any more.

Who dropped a record is the login of the person behind `sudo` (`$SUDO_USER`), else the user the
command ran as: a note for the next admin, not an authentication.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from calsync.core import display, logs
from calsync.engine.parked import meeting_of
from calsync.state.store import HISTORY_DAYS, HistoryEntry, StateStore, history

Outcome = Literal["waiting", "dropped", "written", "no longer needed"]


def who() -> str:
    """The person running this command: `alice (sudo -u calsync)` or the login name."""
    try:
        me = getpass.getuser()
    except Exception:  # noqa: BLE001 - no name for this uid (a container): the uid will do
        me = f"uid {os.getuid()}"
    sudo = os.environ.get("SUDO_USER")
    return f"{sudo} (sudo -u {me})" if sudo and sudo != me else me


@dataclass(frozen=True)
class Fate:
    """One record's refusals in the last HISTORY_DAYS and what became of it."""

    key: str
    owner: str
    ical_uid: str
    subject: str | None
    start: dt.datetime | None
    event_id: str | None
    refusals: tuple[HistoryEntry, ...]  # oldest first
    outcome: Outcome
    outcome_at: dt.datetime | None = None
    dropped_by: str | None = None

    @property
    def last(self) -> HistoryEntry:
        return self.refusals[-1]

    def describe(self) -> str:
        """`'Intro call' 2026-12-02 17:00 UTC (Google event 3ab): update refused 2×, last
        2026-12-01 10:00 UTC, FIELD_CUSTOM_VALIDATION_EXCEPTION: <message>; dropped ... by alice`."""
        last = self.last
        times = f" {len(self.refusals)}×" if len(self.refusals) > 1 else ""
        reason = f"{last.status_code or '?'}" + (
            f": {logs.redact((last.message or '')[:200])}" if last.message else "")
        head = (f"{display.meeting(self.subject, self.start)} (Google event {self.event_id or '?'}):"
                f" {last.operation or 'write'} refused{times}, last {display.moment(last.at)}, {reason}")
        return f"{head}; {self.verdict()}"

    def verdict(self) -> str:
        when = display.moment(self.outcome_at) if self.outcome_at else ""
        if self.outcome == "dropped":
            return (f"retrying stopped {when} by {self.dropped_by or 'an admin'} (calsync retry"
                    " --drop): written again only when the meeting changes in Google, or by"
                    " `calsync resync --user U --event-id ID`")
        if self.outcome == "written":
            return f"written {when}"
        if self.outcome == "waiting":
            return "waiting for a retry"
        return "no longer needs a write (the meeting changed or went)"

    def to_json(self) -> dict[str, Any]:
        def iso(value: dt.datetime | None) -> str | None:
            return value.isoformat(timespec="seconds") if value else None

        last = self.last
        return {
            "key": self.key, "ical_uid": self.ical_uid, "event_id": self.event_id,
            "subject": self.subject, "start": iso(self.start),
            "operation": last.operation, "status_code": last.status_code,
            "message": last.message, "refusals": len(self.refusals),
            "first_refused_at": iso(self.refusals[0].at), "last_refused_at": iso(last.at),
            "outcome": self.outcome, "outcome_at": iso(self.outcome_at),
            "dropped_by": self.dropped_by,
        }


def fates(
    store: StateStore, now: dt.datetime, *, owner: str | None = None,
    keys: Iterable[str] | None = None,
) -> list[Fate]:
    """The records refused in the last HISTORY_DAYS (of one owner, or these keys), each with
    what became of it; by the last refusal, newest first."""
    since = now - dt.timedelta(days=HISTORY_DAYS)
    entries = history(store, since, owner=owner, keys=keys)
    if not entries:  # the usual case: one indexed query per calendar (`status`, the metrics)
        return []
    by_key: dict[str, list[HistoryEntry]] = {}
    for entry in entries:
        by_key.setdefault(entry.key, []).append(entry)
    parked = {r.key for r in (store.retries(owner) if owner else store.retries())}
    written = store.written(by_key)
    found = []
    for key, story in by_key.items():
        refusals = tuple(e for e in story if e.kind == "refused")
        if not refusals:
            continue
        last = refusals[-1]
        after = [e for e in story[story.index(last) + 1:] if e.kind in ("written", "dropped")]
        end = after[-1] if after else None
        row = written.get(key)
        outcome: Outcome
        at: dt.datetime | None = None
        if key in parked:
            outcome = "waiting"
        elif end is not None and end.kind == "written":
            outcome, at = "written", end.at
        elif end is not None and end.kind == "dropped":
            outcome, at = "dropped", end.at
            if row is not None and row.sf_id and row.written_at and row.written_at > end.at:
                outcome, at = "written", row.written_at  # the meeting changed since, and was written
        else:
            outcome = "no longer needed"
        subject, start, event_id = meeting_of(store, last.owner, last.ical_uid)
        found.append(Fate(key, last.owner, last.ical_uid, subject, start, event_id, refusals,
                          outcome, at, end.by if end is not None and end.kind == "dropped" else None))
    found.sort(key=lambda f: (f.last.at, f.key), reverse=True)
    return found


__all__ = ["Fate", "fates", "who"]
