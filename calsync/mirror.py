"""How a Google listing changes calsync's mirror of a calendar (pure; the store persists it).

Incremental answers hold only what changed, and a cancelled item may be a bare id (a deleted
event) or ids plus originalStartTime (a cancelled occurrence), reference A3. `merge` works out,
from the listing and the rows already known for those ids, which rows to write, which to drop and
which meetings (iCalUIDs) changed; `view` gives the items of each changed meeting after the
listing, which is what the planner sees.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from calsync.google import to_google_event
from calsync.model import MeetingCopy
from calsync.state import MirrorRow


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


def view(
    old: Mapping[str, list[MirrorRow]], delta: MirrorDelta, *, full: bool
) -> dict[str, list[MirrorRow]]:
    """The rows of every affected meeting once the delta applies (full: old rows all go)."""
    rows: dict[str, dict[str, MirrorRow]] = {}
    if not full:
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


def meeting_copy(owner: str, ical_uid: str, rows: Iterable[MirrorRow]) -> MeetingCopy:
    """The planner's view of one meeting: master or single first, then its exceptions."""
    ordered = sorted(rows, key=lambda r: (r.recurring_event_id is not None, r.event_id))
    return MeetingCopy(owner=owner, ical_uid=ical_uid, items=tuple(to_google_event(r.payload) for r in ordered))
