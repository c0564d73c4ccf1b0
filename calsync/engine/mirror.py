"""How a calendar listing changes calsync's mirror of a calendar (pure; the store persists it).

Incremental answers hold only what changed, and a cancelled item may be a bare id (a deleted
event) or ids plus originalStartTime (a cancelled occurrence), reference A3. `merge` works out,
from the listing and the rows already known for those ids, which rows to write, which to drop and
which meetings (iCalUIDs) changed; `view` gives the items of each changed meeting after the
listing, which is what the planner sees.

A full listing is windowed (`timeMin` bounds the event's end, reference A1): `covered` says
whether a known item lies where such a listing would have shown it, and `absent` which covered
items it left out. Only those may have gone; the rest of the mirror is history and stays.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from calsync.calendar.items import to_google_event
from calsync.core.model import EventTime, GoogleEvent, MeetingCopy
from calsync.rules.planner.fields import instant
from calsync.rules.recurrence import MAX_SLOTS, RecurrenceError, slots
from calsync.state.store import MirrorRow


@dataclass(frozen=True)
class MirrorDelta:
    upserts: tuple[MirrorRow, ...]
    deletes: tuple[str, ...]  # event ids; a deleted master takes its exceptions with it
    affected: frozenset[str]  # iCalUIDs whose meeting may have changed


def ids_to_look_up(items: Iterable[Mapping[str, Any]]) -> set[str]:
    """Event ids whose known rows `merge` needs: the items and the masters they point at."""
    ids: set[str] = set()
    for item in items:
        if isinstance(item.get("id"), str):
            ids.add(item["id"])
        if isinstance(item.get("recurringEventId"), str):
            ids.add(item["recurringEventId"])
    return ids


def merge(items: Iterable[Mapping[str, Any]], known: Mapping[str, MirrorRow]) -> MirrorDelta:
    """Apply a listing (in its order; a later copy of an id wins) to the known rows."""
    latest: dict[str, Mapping[str, Any]] = {}
    for item in items:
        event_id = item.get("id")
        if isinstance(event_id, str) and event_id:
            latest.pop(event_id, None)
            latest[event_id] = item

    upserts: dict[str, MirrorRow] = {}
    deletes: list[str] = []
    affected: set[str] = set()

    def uid_of(event_id: str) -> str | None:
        if event_id in upserts:
            return upserts[event_id].ical_uid
        if event_id in known:
            return known[event_id].ical_uid
        item = latest.get(event_id)
        if item is not None and isinstance(item.get("iCalUID"), str):
            return str(item["iCalUID"])
        return None

    # Masters and single events first, so exceptions listed before their master find its UID.
    ordered = sorted(latest.values(), key=lambda i: isinstance(i.get("recurringEventId"), str))
    for item in ordered:
        event_id = str(item["id"])
        master = item.get("recurringEventId") if isinstance(item.get("recurringEventId"), str) else None
        cancelled = item.get("status") == "cancelled"
        if cancelled and master is None:
            uid = uid_of(event_id)
            if uid is not None:
                affected.add(uid)
            deletes.append(event_id)
            upserts.pop(event_id, None)
            continue
        if master is not None:
            uid = item.get("iCalUID") if isinstance(item.get("iCalUID"), str) else uid_of(master)
        else:
            uid = item.get("iCalUID") if isinstance(item.get("iCalUID"), str) else None
            uid = uid or (known[event_id].ical_uid if event_id in known else event_id)
        if uid is None:
            continue  # an occurrence of a series this calendar never listed: nothing to attach to
        upserts[event_id] = MirrorRow(event_id, str(uid), master, dict(item))
        affected.add(str(uid))
        if event_id in known and known[event_id].ical_uid != uid:
            affected.add(known[event_id].ical_uid)
    return MirrorDelta(tuple(upserts.values()), tuple(deletes), frozenset(affected))


def view(old: Mapping[str, list[MirrorRow]], delta: MirrorDelta) -> dict[str, list[MirrorRow]]:
    """The rows of every affected meeting once the delta applies to the `old` rows."""
    rows: dict[str, dict[str, MirrorRow]] = {}
    for uid in delta.affected:
        rows[uid] = {r.event_id: r for r in old.get(uid, [])}
    dropped = set(delta.deletes)
    for by_id in rows.values():
        for event_id in list(by_id):
            row = by_id[event_id]
            if event_id in dropped or (row.recurring_event_id or "") in dropped:
                del by_id[event_id]
    where = {event_id: uid for uid, by_id in rows.items() for event_id in by_id}
    for row in delta.upserts:
        previous_uid = where.get(row.event_id)
        if previous_uid is not None:
            rows[previous_uid].pop(row.event_id, None)  # the id may have moved to another UID
        rows.setdefault(row.ical_uid, {})[row.event_id] = row
        where[row.event_id] = row.ical_uid
    return {uid: list(by_id.values()) for uid, by_id in rows.items()}


def meeting_copy(
    owner: str,
    ical_uid: str,
    rows: Iterable[MirrorRow],
    time_zone: str | None = None,
    before: Iterable[MirrorRow] = (),
    key_owner: str | None = None,
) -> MeetingCopy:
    """The planner's view of one meeting: master or single first, then its exceptions.

    `before`: the rows known before the listing, so a meeting that is gone still says which
    Google event it was (every log line about its Event carries the id). `key_owner`: the
    address the owner's keys are hashed from, when not `owner` (identity.py)."""
    ordered = sorted(rows, key=lambda r: (r.recurring_event_id is not None, r.event_id))
    earlier = sorted(before, key=lambda r: (r.recurring_event_id is not None, r.event_id))
    main = next(iter(ordered or earlier), None)
    return MeetingCopy(
        owner=owner,
        ical_uid=ical_uid,
        items=tuple(to_google_event(r.payload) for r in ordered),
        time_zone=time_zone,
        event_id=main.event_id if main is not None else None,
        key_owner=key_owner if key_owner and key_owner != owner else None,
    )


# A windowed listing compares timeMin with the end in the calendar's zone; all-day dates are read
# here at midnight UTC, so an item within a day of the bound counts as covered: checking it costs
# one events.get, while taking it as uncovered would hide a deletion.
MARGIN = dt.timedelta(days=1)


def covered(row: MirrorRow, time_min: dt.datetime) -> bool:
    """Whether a full listing from `time_min` would have shown this item (reference A1).

    Single events and modified occurrences: ending after `time_min`. A series master: any of its
    occurrences ends after it. Anything that cannot be placed in time counts as covered.
    """
    item = to_google_event(row.payload)
    if item.start is None:
        return True
    bound = time_min - MARGIN
    if item.recurrence and item.recurring_event_id is None:
        last = _last_start(item)
        return last is None or last + _length(item.start, item.end) > bound
    end = instant(item.end if item.end is not None and not item.end_time_unspecified else item.start)
    return end is None or end > bound


def _last_start(master: GoogleEvent) -> dt.datetime | None:
    """When a series' last occurrence starts, if it provably has one (None: open-ended/unsure).

    Only rules bounded by UNTIL or COUNT end; RDATE lines may add any date, and an expansion cut
    by its limit proves nothing, so those count as still running.
    """
    rules = [line for line in master.recurrence if line.upper().startswith("RRULE")]
    if not rules or any(line.upper().startswith("RDATE") for line in master.recurrence):
        return None
    if all("UNTIL=" in line.upper() for line in rules):
        untils = [_until(line) for line in rules]
        return None if any(u is None for u in untils) else max(u for u in untils if u)
    if not all("COUNT=" in line.upper() for line in rules) or master.start is None:
        return None
    try:
        found = [start for start, _ in slots(master.start, master.end, master.recurrence, limit=MAX_SLOTS)]
    except RecurrenceError:
        return None
    if not found or len(found) >= MAX_SLOTS:
        return None
    return instant(found[-1])


def _until(line: str) -> dt.datetime | None:
    for part in line.split(":", 1)[-1].split(";"):
        name, _, value = part.partition("=")
        if name.strip().upper() != "UNTIL":
            continue
        value = value.strip().rstrip("Zz")
        for fmt, size in (("%Y%m%dT%H%M%S", 15), ("%Y%m%d", 8)):
            try:
                moment = dt.datetime.strptime(value[:size], fmt)
            except ValueError:
                continue
            # UNTIL is UTC or floating; a day's slack covers a local reading (MARGIN does too).
            return moment.replace(tzinfo=dt.timezone.utc) + dt.timedelta(days=1)
    return None


def absent(
    rows: Iterable[MirrorRow], listed: Iterable[str], time_min: dt.datetime
) -> list[MirrorRow]:
    """Known items a full listing from `time_min` covered but did not show.

    Cancelled occurrences are left out: they only remove a slot, and the listing that shows
    their series would show them (reference A4) whether they still stand or not.
    """
    shown = set(listed)
    return [
        row
        for row in rows
        if row.event_id not in shown
        and row.payload.get("status") != "cancelled"
        and covered(row, time_min)
    ]


def gone(row: MirrorRow) -> dict[str, Any]:
    """The item standing for a known one that events.get no longer finds (404).

    A bare cancelled id, as Google lists a deleted event (reference A3): `merge` drops the row
    (a master with its exceptions; a modified occurrence alone, its slot back to the series').
    """
    return {"id": row.event_id, "status": "cancelled"}


def _length(start: EventTime, end: EventTime | None) -> dt.timedelta:
    a, b = instant(start), instant(end)
    if a is None or b is None or b < a:
        return dt.timedelta(0)
    return b - a
