"""What changed on one calendar, as the planner needs it: the listing, and the evidence for it.

An incremental listing says exactly what changed since the sync token. A full listing (first
sync, after a 410, a resync) is windowed: `timeMin` bounds the event's end (reference A1), so it
is authoritative only for what its window covers. `collect` therefore

- keeps every known item the window does not cover (it ended before `timeMin`): the mirror is
  the calendar's whole history, across any number of 410s and resyncs;
- takes a known item the window covers but the listing left out as *suspect*, not as gone: it is
  fetched by id (events.get, which returns cancelled events too, reference A3), at most
  `MAX_CHECKS` per calendar and cycle; a 404 or a cancelled answer is the evidence that removes
  it, anything else keeps it (and a later cycle checks the rest);
- fetches, once, all items of a series new to the mirror whose master starts before `timeMin`
  and that involves someone outside the company (events.list with `iCalUID`, no window): the
  listing leaves out its earlier exceptions, and a moved, cancelled or declined first slot
  decides where its Event goes.

Nothing here writes. The cycle applies `upserts`, `deletes` and the still unchecked `suspects`
to the mirror, and queues every affected meeting, before it writes to Salesforce; it stores the
sync token and takes the meetings off the queue after the writes (reference C1; `StateStore.
apply_listing`, `commit_listing`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from calsync.engine import mirror
from calsync.core.errors import TransientError
from calsync.calendar.items import to_google_event
from calsync.calendar.source import CalendarSource, Listing
from calsync.core.logs import event as log_event
from calsync.core.model import MeetingCopy, PlanSettings
from calsync.rules.planner.fields import instant
from calsync.rules.planner.selection import candidates
from calsync.state.store import MirrorRow, StateStore

log = logging.getLogger("calsync.changes")  # names predate the layers (ARCHITECTURE.md)

# events.get calls per calendar and cycle for items a full listing left out; the rest wait for
# the next cycles (they stay as they were meanwhile, which is the safe side).
MAX_CHECKS = 50


@dataclass(frozen=True)
class Changes:
    """One calendar's changes: how its mirror changes and the meetings to plan."""

    delta: mirror.MirrorDelta
    copies: list[MeetingCopy]
    suspects: tuple[str, ...]  # event ids left unchecked: kept, marked, checked later
    time_zone: str | None


def collect(
    store: StateStore,
    source: CalendarSource,
    user: str,
    listing: Listing,
    time_min: dt.datetime,
    settings: PlanSettings,
    *,
    also: Iterable[str] = (),
    evidence: Iterable[dict[str, Any]] = (),
    max_checks: int = MAX_CHECKS,
    key_owner: str | None = None,
) -> Changes:
    """The changes of `user`'s calendar from `listing` (full ones from `time_min`).

    `also`: iCalUIDs to plan again whatever the listing says (records waiting for a retry,
    meetings a Salesforce-side change may affect, queued work a crash or failure left, meetings
    the sweep found gone). `evidence`: items fetched apart from the listing (the sweep's), merged
    as if listed. `key_owner`: the address `user`'s Event keys are hashed from, when it is not
    `user` (identity.py: a renamed user keeps their keys).
    """
    items = list(listing.items)
    new_suspects: list[MirrorRow] = []
    if listing.full:
        stored = store.mirror_rows(user)
        new_suspects = mirror.absent(stored, _ids(items), time_min)
        known_uids = {row.ical_uid for row in stored}
        for uid in _old_series(items, known_uids, time_min, user, settings):
            items.extend(source.list_series(uid).items)
    items.extend(evidence)
    queue = _unique([*new_suspects, *store.suspects(user)])
    checked = _check(source, user, queue[:max_checks], items)
    unchecked = tuple(row.event_id for row in queue if row.event_id not in checked)
    if queue:
        log_event(log, "checked meetings missing from a full listing", user=user,
                  checked=len(checked), left_for_later=len(unchecked))

    known = store.mirror_by_ids(user, mirror.ids_to_look_up(items))
    delta = mirror.merge(items, known)
    affected = set(delta.affected) | set(also)
    delta = mirror.MirrorDelta(delta.upserts, delta.deletes, frozenset(affected))
    old = store.mirror_by_uids(user, affected)
    rows = mirror.view(old, delta)
    state = store.calendar(user)
    zone = listing.time_zone or (state.time_zone if state else None)
    copies = [
        mirror.meeting_copy(user, uid, rows.get(uid, []), zone, before=old.get(uid, []),
                            key_owner=key_owner)
        for uid in sorted(affected)
    ]
    return Changes(delta, _with_event_ids(store, user, copies), unchecked, zone)


def _with_event_ids(store: StateStore, user: str, copies: list[MeetingCopy]) -> list[MeetingCopy]:
    """A meeting gone from the mirror before it was planned (queued work a crash left, one the
    sweep found gone) still names its Google event: the id of its last decision, so every log
    line about its Event carries it."""
    unnamed = [c.ical_uid for c in copies if c.event_id is None]
    if not unnamed:
        return copies
    ids = {d.ical_uid: d.event_id for d in store.decisions(user, ical_uids=unnamed) if d.event_id}
    return [replace(c, event_id=ids[c.ical_uid]) if c.event_id is None and c.ical_uid in ids else c
            for c in copies]


def _check(
    source: CalendarSource, user: str, rows: Sequence[MirrorRow], items: list[dict[str, Any]]
) -> set[str]:
    """Fetch each row's item by id and add what Google says of it to `items`."""
    checked: set[str] = set()
    for row in rows:
        try:
            found = source.get_event(row.event_id)
        except TransientError as exc:
            # Google is busy or out of reach: the rest stay as they are until the next cycle.
            log_event(log, "cannot check a missing meeting now", level=logging.WARNING,
                      user=user, event_id=row.event_id, error=str(exc))
            break
        if found is not None and found.get("id") != row.event_id:
            log_event(log, "events.get answered another event; kept as it was",
                      level=logging.WARNING, user=user, event_id=row.event_id)
            continue
        checked.add(row.event_id)
        if found is None:
            log_event(log, "missing meeting is gone from Google", user=user, event_id=row.event_id)
            items.append(mirror.gone(row))
        else:
            items.append(found)
    return checked


def _old_series(
    items: Sequence[dict[str, Any]],
    known_uids: set[str],
    time_min: dt.datetime,
    user: str,
    settings: PlanSettings,
) -> list[str]:
    """iCalUIDs of listed series masters new to the mirror that began before the window and
    have someone outside the company (only those can become an Event)."""
    found: dict[str, None] = {}
    for item in items:
        if not item.get("recurrence") or item.get("recurringEventId") or item.get("status") == "cancelled":
            continue
        uid = item.get("iCalUID")
        if not isinstance(uid, str) or uid in known_uids:
            continue
        master = to_google_event(item)
        start = instant(master.start)
        if start is None or start >= time_min:
            continue
        if candidates(master, user, settings):
            found.setdefault(uid, None)
    return list(found)


def _ids(items: Iterable[dict[str, Any]]) -> set[str]:
    return {str(item["id"]) for item in items if isinstance(item.get("id"), str)}


def _unique(rows: Iterable[MirrorRow]) -> list[MirrorRow]:
    seen: dict[str, MirrorRow] = {}
    for row in rows:
        seen.setdefault(row.event_id, row)
    return list(seen.values())
