"""Duplicate Events of one meeting: found among the owners' Events, one kept, the others deleted.

Two writers at once (before the single-writer lock), a state database restored from a backup or
lost, an interrupted create retried by hand: any of these can leave two or more Events in
Salesforce for one (meeting, owner) that calsync wrote. A full listing and `calsync resync` read
the owners' Events of the window once (one batched query, `SalesforceOrg.events_starting_since`)
and give them to `find`, with what calsync knows of each meeting it plans (`Anchor`):

- with an External ID field, Events holding the same key are one meeting's;
- without one, the adoption rule (`signature`: owner, start, subject and Name) ties Events to the
  Event the state records for the meeting, or, for a meeting without one, to the Event calsync
  is about to create. (Creates whose answer was lost are found apart, before any listing, by
  owner and times among the Events calsync's user created: `landed.py`.)

Of each group one Event is kept: the one the state database records, else the oldest
(CreatedDate); a meeting about to be created takes the oldest over instead (`Found.adopt`). The
others are `Duplicate`s, which the write path deletes, each with a log line. An Event the state
records for another meeting is never anyone's duplicate.

An older calsync hashed keys from whatever address was configured, so a renamed user (or two
addresses of one Salesforce User) could get a second Event for a meeting, recorded under a key
hashed from the other address (identity.py). `superseded` finds those: of the Events the state
records for one (Salesforce owner, meeting) under several keys, the one of the key calsync uses
now is kept, the others are duplicates, deleted with their state rows, but only while the kept
Event is still in Salesforce, and never one a person changed: that one stays and is reported
(ownership.py treats a meeting's edited Event the same way: kept, not deleted).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from calsync.rules import ownership
from calsync.core.model import Create, Delete, Operation, Skip, Update, Written


@dataclass(frozen=True)
class Anchor:
    """What calsync knows of one planned (meeting, owner)."""

    key: str
    user: str  # the configured user who owns the Event
    sf_id: str | None  # the Event the state database records, if any
    fields: Mapping[str, Any] | None = None  # the Event about to be created (no recorded one)


@dataclass(frozen=True)
class Duplicate:
    key: str
    user: str
    keep: str  # the Event kept
    extra: Mapping[str, Any]  # the Event to delete, as Salesforce listed it
    forget: str | None = None  # its state row (a key an older calsync used), dropped with it

    @property
    def sf_id(self) -> str:
        return str(self.extra["Id"])


@dataclass(frozen=True)
class Found:
    adopt: dict[str, str] = field(default_factory=dict)  # key about to be created → Event to take
    duplicates: tuple[Duplicate, ...] = ()


@dataclass(frozen=True)
class KeptDuplicate:
    """An extra Event of a meeting that a person changed: not deleted, reported."""

    key: str  # its state row's key
    user: str
    keep: str  # the meeting's own Event
    extra: Mapping[str, Any]  # as Salesforce holds it
    fields: frozenset[str]  # what the person changed

    @property
    def sf_id(self) -> str:
        return str(self.extra["Id"])


@dataclass(frozen=True)
class Superseded:
    duplicates: tuple[Duplicate, ...] = ()
    kept: tuple[KeptDuplicate, ...] = ()
    gone: tuple[str, ...] = ()  # keys of rows whose Event is gone already: only forgotten


def instant(value: Any) -> dt.datetime | None:
    """A Salesforce dateTime (`...+0000` or `...Z`) as an aware datetime, or None."""
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("+0000", "+00:00"))
    except ValueError:
        return None


def signature(record: Mapping[str, Any]) -> tuple[Any, ...]:
    """Owner, subject, Name and start of an Event (as listed, or as calsync writes it): two
    Events with one signature are one meeting's by the adoption rule (reference B2: ids compare
    on their first 15 characters)."""
    if record.get("IsAllDayEvent"):
        start: tuple[Any, ...] = ("day", record.get("ActivityDate"))
    else:
        start = ("at", instant(record.get("StartDateTime")))
    return (
        str(record.get("OwnerId") or "")[:15],
        record.get("Subject") or "",
        str(record.get("WhoId") or "")[:15],
        start,
    )


def _oldest_first(rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(rows, key=lambda r: (str(r.get("CreatedDate") or ""), str(r["Id"])))


def find(
    rows: Sequence[Mapping[str, Any]],
    anchors: Iterable[Anchor],
    claims: Mapping[str, str],
    *,
    key_field: str | None = None,
    users: Mapping[str, str] | None = None,
) -> Found:
    """The Events to take over and the duplicates to delete.

    `rows`: the owners' Events of the window. `claims`: 15-character Event Id → key, for every
    Event the state database records. `users`: 15-character OwnerId → configured user (names
    the owner of a duplicate found by key for a meeting not planned now).
    """
    rows = _oldest_first(r for r in rows if r.get("Id"))
    anchors = list(anchors)
    if key_field:
        return _by_key(rows, anchors, claims, key_field, users or {})
    return _by_signature(rows, anchors, claims)


def _by_key(
    rows: list[Mapping[str, Any]],
    anchors: list[Anchor],
    claims: Mapping[str, str],
    key_field: str,
    users: Mapping[str, str],
) -> Found:
    planned = {a.key: a for a in anchors}
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        if row.get(key_field):
            groups.setdefault(str(row[key_field]), []).append(row)
    found: list[Duplicate] = []
    for key, members in sorted(groups.items()):
        if len(members) < 2:
            continue
        ours = [m for m in members if claims.get(str(m["Id"])[:15]) == key]
        keep = (ours or members)[0]
        anchor = planned.get(key)
        user = anchor.user if anchor else users.get(str(keep.get("OwnerId") or "")[:15])
        if user is None:
            continue
        for extra in members:
            if extra is not keep and str(extra["Id"])[:15] not in claims:
                found.append(Duplicate(key, user, str(keep["Id"]), extra))
    return Found({}, tuple(found))


def _by_signature(
    rows: list[Mapping[str, Any]], anchors: list[Anchor], claims: Mapping[str, str]
) -> Found:
    by_id = {str(r["Id"])[:15]: r for r in rows}
    listed: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}  # oldest first within each
    for row in rows:
        listed.setdefault(signature(row), []).append(row)
    groups: dict[tuple[Any, ...], list[Anchor]] = {}
    for anchor in anchors:
        if anchor.sf_id:
            recorded = by_id.get(anchor.sf_id[:15])
            if recorded is None:
                continue  # its Event is not among those listed: nothing to compare with
            groups.setdefault(signature(recorded), []).append(anchor)
        elif anchor.fields is not None:
            groups.setdefault(signature(anchor.fields), []).append(anchor)
    adopt: dict[str, str] = {}
    found: list[Duplicate] = []
    for sig, members in groups.items():
        keys = {a.key for a in members}
        candidates = [
            r for r in listed.get(sig, []) if claims.get(str(r["Id"])[:15], "") in keys | {""}
        ]
        kept: list[tuple[Anchor, str]] = [(a, a.sf_id) for a in members if a.sf_id]
        taken = {sf_id[:15] for _, sf_id in kept}
        free = [r for r in candidates if str(r["Id"])[:15] not in taken]
        for anchor in (a for a in members if not a.sf_id):
            if not free:
                break
            row = free.pop(0)  # the oldest left
            adopt[anchor.key] = str(row["Id"])
            kept.append((anchor, str(row["Id"])))
        if not kept:
            continue
        anchor, keep = kept[0]
        for extra in free:
            found.append(Duplicate(anchor.key, anchor.user, keep, extra))
    return Found(adopt, tuple(found))


def superseded(
    planned: Iterable[tuple[str, str, str | None, Iterable[str]]],
    rows: Mapping[str, Written],
    current: Mapping[str, Mapping[str, Any]],
    activity_field: str | None = None,
    own_user: str | None = None,
) -> Superseded:
    """The Events recorded under older keys of planned meetings that are extras of their Event.

    `planned`: (key, user, the Event the key records or None, the meeting's older keys).
    `rows`: state rows by key (those of older keys). `current`: Salesforce's Events by
    15-character Id (`SalesforceOrg.events_by_ids`; a deleted Event is absent).
    """
    found: list[Duplicate] = []
    kept: list[KeptDuplicate] = []
    gone: list[str] = []
    for key, user, keep, older in planned:
        extras = [rows[k] for k in sorted(set(older)) if k in rows and k != key]
        if not extras or keep is None or keep[:15] not in current:
            continue  # the meeting's own Event is not there: nothing goes on its strength
        for row in extras:
            if row.sf_id is None:
                continue  # a create in flight: reconciled at the start of a run first
            live = current.get(row.sf_id[:15])
            if live is None or row.removed or row.sf_id[:15] == keep[:15]:
                gone.append(row.key)  # deleted already, or the same Event: only the row goes
                continue
            changed = row.kept | ownership.edited(row, live, {}, activity_field, own_user=own_user)
            if changed:
                kept.append(KeptDuplicate(row.key, user, keep, live, frozenset(changed)))
            else:
                found.append(Duplicate(row.key, user, keep, live, forget=row.key))
    return Superseded(tuple(found), tuple(kept), tuple(gone))


def anchors(operations: Iterable[Operation], previous: Mapping[str, Written]) -> list[Anchor]:
    """What the plan knows of each meeting: its recorded Event, or the one about to be created."""
    found = []
    for op in operations:
        user = user_of(op)
        recorded = previous.get(op.key)
        if isinstance(op, (Update, Delete)) and op.sf_id:
            found.append(Anchor(op.key, user, op.sf_id))
        elif isinstance(op, Skip) and recorded is not None and recorded.sf_id:
            found.append(Anchor(op.key, user, recorded.sf_id))
        elif isinstance(op, Create):
            found.append(Anchor(op.key, user, None, op.fields.to_salesforce()))
    return found


def user_of(op: Operation) -> str:
    """The configured user whose Event an operation is about."""
    return op.copy.owner if isinstance(op, (Create, Update)) else op.owner


def take_over(operations: Sequence[Operation], found: Found) -> list[Operation]:
    """The plan with each create whose Event already exists turned into an update of it."""
    return [
        Update(key=op.key, sf_id=found.adopt[op.key], copy=op.copy, fields=op.fields)
        if isinstance(op, Create) and op.key in found.adopt
        else op
        for op in operations
    ]
