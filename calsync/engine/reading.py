"""Reading one calendar for a cycle: its listing, the sweep, the changes, into the mirror.

`fetch` lists the changes since the calendar's sync token (a full listing from the lookback
window on the first run or after a 410), sweeps it when due (sweep.py), works out the meetings
to plan (changes.py: the listing, the meetings due for a retry or queued by Salesforce-side
changes, the evidence of the sweep) and applies the listing to the mirror together with the
durable queue of those meetings, before any write. The sync token is not stored here: the
cycle commits it once the writes are done (cycle.py).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from calsync.calendar.source import CalendarSource, Listing
from calsync.core.errors import SyncTokenExpired, TransientError
from calsync.core.model import PlanSettings
from calsync.engine import changes, mirror, sweep
from calsync.engine.outcome import CalendarOutcome
from calsync.state.store import StateStore

log = logging.getLogger("calsync.cycle")  # names predate the layers (ARCHITECTURE.md)


@dataclass
class Pending:
    """A calendar whose listing is fetched and planned but not yet committed."""

    user: str
    outcome: CalendarOutcome
    listing: Listing
    found: changes.Changes  # the listing's changes and the meetings to plan
    started: float
    time_min: dt.datetime
    swept: bool | None = None  # the sweep ran: settled everything (True) or left some (False)

    @property
    def queued(self) -> frozenset[str]:
        """The meetings queued with the mirror: taken off the queue at the commit."""
        return self.found.delta.affected


def fetch(
    store: StateStore,
    source: CalendarSource,
    user: str,
    outcome: CalendarOutcome,
    now: dt.datetime,
    started: float,
    *,
    lookback_days: int,
    settings: PlanSettings,
    interrupted: bool,
    key_owner: str | None,
) -> Pending:
    """List, sweep and collect `user`'s calendar, and apply the listing to its mirror.

    `interrupted`: a crash left creates of this user unanswered (its calendar is swept);
    `key_owner`: the address its keys are hashed from when not `user` (identity.py)."""
    state = store.calendar(user)
    token = state.sync_token if state else None
    time_min = now - dt.timedelta(days=lookback_days)
    outcome.full_sync = not token  # also when the listing fails: the summary says "full"
    try:
        try:
            listing = source.list_changes(token, time_min)
        except SyncTokenExpired as exc:
            # 410 (or 400 to the token): the token is dead; list the window again (reference
            # A2, C3). What the window does not show is not gone: `changes.collect` keeps it
            # or checks it by id.
            log.warning("sync token expired, full sync",
                        extra={"fields": {"user": user, "error": str(exc)}})
            store.drop_sync_token(user)
            outcome.full_sync = True
            listing = source.list_changes(None, time_min)
    finally:
        outcome.google_calls = source.calls  # failed requests count too
    outcome.items = len(listing.items)
    if listing.next_sync_token is None:
        raise TransientError("Google's last page carried no nextSyncToken")
    again = {retry.ical_uid for retry in store.due_retries(user, now)}
    replans = store.replans(user)  # Salesforce-side changes, and work a crash left
    if store.meta(indexed(user)) is None and not listing.full:
        # A calendar synced before the meeting index existed: plan its meetings of the
        # window once, so that Salesforce-side changes can find them from now on.
        replans |= {row.ical_uid for row in store.mirror_rows(user) if mirror.covered(row, time_min)}
    swept: sweep.Swept | None = None
    try:
        if sweep.due(state, now, full=listing.full, interrupted=interrupted):
            swept = sweep.sweep(store, source, user, listed=_uids(listing.items))
        found = changes.collect(
            store, source, user, listing, time_min, settings,
            also=again | replans | (swept.gone if swept else frozenset()),
            evidence=swept.items if swept else (), key_owner=key_owner,
        )
    finally:
        outcome.google_calls = source.calls  # with the checks by id and series fetched
    # The mirror learns the listing now, with every meeting it touches queued, before any
    # write: a crash or a failed write from here on leaves the work queued (re-planned by
    # the next cycle), never a Salesforce Event whose meeting the mirror does not know.
    store.apply_listing(
        user, upserts=found.delta.upserts, deletes=found.delta.deletes,
        suspects=found.suspects, queued=found.delta.affected, at=now,
    )
    return Pending(user, outcome, listing, found, started, time_min,
                   swept=swept.complete if swept is not None else None)


def indexed(user: str) -> str:
    """The meta row saying `user`'s meetings are in the meeting index (set at each commit)."""
    return f"indexed:{user}"


def _uids(items: Iterable[Mapping[str, Any]]) -> set[str]:
    return {str(i["iCalUID"]) for i in items if isinstance(i.get("iCalUID"), str)}
