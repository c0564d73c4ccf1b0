"""Who owns each field of an Event calsync wrote: calsync, or the person who changed it since.

Sales reps work on the Events calsync logs: they write notes into the Description, re-relate an
Event to the Opportunity it belongs to, fix a title. calsync keeps, per Event, a hash of each
field as it last wrote it (`hashes`). Before an update or a delete it reads the Events' current
values (batched: `salesforce.SalesforceOrg.events_by_ids`) and `settle` compares:

- a field whose current value is neither what calsync last wrote nor what it writes now was
  changed by someone else: it is theirs from then on (`Written.kept`), left out of every later
  update. Start and end (`TIME_FIELDS`) always follow Google: the meeting happens when the
  calendar says;
- an Event someone changed is not deleted when its meeting goes (cancelled, declined, private,
  gone from the calendar, no Contact left): its Subject gets the prefix `Canceled: ` once
  (`Retire`), and the rest stays as the person left it;
- an Event deleted in Salesforce stays deleted: the update becomes nothing, and the key is
  recorded as removed, so a later change in Google does not re-create it. One that calsync's
  own delete removed (sent, then its answer lost to a crash or a fault: the key is `deleting`)
  is not a person's: when the meeting is wanted again, the Event is created anew.

`settle` is pure: plain operations, state rows and Salesforce rows in, operations out. `resync`
calls it with `overwrite_edits` (Google's values over people's edits) and `restore_deleted`.

A value equal to what calsync writes now is never taken for an edit: after a crash between an
update and its record, the Event holds calsync's new values, not a person's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from calsync.model import Create, Delete, Operation, Retire, Skip, Update, Written

# Fields that always follow Google (reference B3: how an Event is placed in time).
TIME_FIELDS = frozenset({"StartDateTime", "EndDateTime", "IsAllDayEvent", "ActivityDate", "DurationInMinutes"})
CANCELED = "Canceled: "
DELETED_IN_SALESFORCE = "deleted in Salesforce"
# How late Salesforce's LastModifiedDate may be after calsync's own write and still be that write
# (clock skew, a slow answer): used only for Events written before per-field hashes existed.
SKEW = dt.timedelta(minutes=2)
NOT_FIELDS = frozenset({"Id", "attributes", "LastModifiedDate"})  # read back, never written


def canonical(name: str, value: Any) -> str:
    """One field's value in a form that compares equal however Salesforce echoes it back:
    ids as their 15 characters (reference B2), instants as UTC, text without CR or trailing
    space, empty and null alike, a list of ids (EventWhoIds) as a sorted set."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(float(value))
    if isinstance(value, (list, tuple, set, frozenset)):
        return ",".join(sorted({canonical("Id", v) for v in value} - {""}))
    text = str(value)
    if name.endswith("Id"):
        return text[:15]
    moment = instant(text)
    if moment is not None:
        return moment.isoformat()
    return text.replace("\r\n", "\n").replace("\r", "\n").rstrip()


def instant(value: Any) -> dt.datetime | None:
    """A Salesforce date or dateTime string as an aware UTC datetime, else None."""
    if not isinstance(value, str) or len(value) < 10 or not value[:4].isdigit() or value[4:5] != "-":
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("+0000", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)).astimezone(dt.timezone.utc)


def digest(name: str, value: Any) -> str:
    return hashlib.sha256(canonical(name, value).encode()).hexdigest()[:16]


def hashes(record: Mapping[str, Any]) -> dict[str, str]:
    """Per-field hashes of a record body calsync sends (times included: harmless, never kept)."""
    return {name: digest(name, value) for name, value in record.items() if name not in ("Id", "attributes")}


def same(name: str, a: Any, b: Any) -> bool:
    return canonical(name, a) == canonical(name, b)


@dataclass(frozen=True)
class Settled:
    """What `settle` decided: the operations to write, and what it learnt of Salesforce."""

    operations: tuple[Operation, ...]
    kept: dict[str, frozenset[str]] = field(default_factory=dict)  # key -> fields now a person's
    newly_kept: dict[str, frozenset[str]] = field(default_factory=dict)  # key -> first seen now
    removed: frozenset[str] = frozenset()  # keys whose Event was deleted in Salesforce
    unchanged: dict[str, Update] = field(default_factory=dict)  # key -> update with nothing to send
    # Keys whose Event calsync's own unconfirmed delete removed while the meeting is wanted
    # again: their state rows go, and a Create makes the Event anew.
    gone: frozenset[str] = frozenset()


def edited(
    before: Written,
    current: Mapping[str, Any],
    desired: Mapping[str, Any],
    activity_field: str | None = None,
) -> frozenset[str]:
    """The fields of `current` a person changed since calsync wrote `before`.

    With per-field hashes: a field whose value is neither the one last written nor the one
    wanted now. Without (an Event written by an older calsync): if Salesforce says it was
    modified after calsync's last write, every field that differs from what calsync wants now
    is taken as the person's; else none is.
    """
    names = [n for n in (*desired, *(before.hashes or {})) if n not in TIME_FIELDS and n in current]
    found: set[str] = set()
    if before.hashes is None:
        modified = instant(current.get("LastModifiedDate"))
        if modified is None or before.written_at is None or modified <= before.written_at + SKEW:
            return frozenset()
        if not desired:  # a delete: which field they changed is unknown, that they did is enough
            return frozenset(n for n in current if n not in TIME_FIELDS | NOT_FIELDS)
        return frozenset(n for n in names if n in desired and not same(n, desired[n], current[n]))
    for name in dict.fromkeys(names):
        if name == activity_field and name not in before.hashes:
            continue  # written on this Event from now on only: never retroactively (seed)
        last = before.hashes.get(name)
        now = digest(name, current[name])
        if last is None or now == last or now in (before.pending or {}).get(name, ()):
            continue  # what calsync wrote, or sent just before a crash (state.record_update_intents)
        if name in desired and same(name, desired[name], current[name]):
            continue  # already what calsync writes now (a crash after the write, or by chance)
        found.add(name)
    return frozenset(found)


def settle(
    operations: Sequence[Operation],
    written: Mapping[str, Written],
    current: Mapping[str, Mapping[str, Any]],
    *,
    overwrite_edits: bool = False,
    restore_deleted: bool = False,
    activity_field: str | None = None,
) -> Settled:
    """Turn planned operations into what may be written, given Salesforce's `current` rows
    (by 15-character Event id; an Event absent from it was deleted in Salesforce)."""
    out: list[Operation] = []
    kept_now: dict[str, frozenset[str]] = {}
    newly: dict[str, frozenset[str]] = {}
    removed: set[str] = set()
    gone: set[str] = set()
    unchanged: dict[str, Update] = {}
    for op in operations:
        if isinstance(op, Update):
            before = written.get(op.key)
            row = current.get(op.sf_id[:15])
            if row is None:
                if before is not None and before.deleting:
                    # calsync's own delete landed (its answer lost to a crash or a fault), not
                    # a person's: the meeting is wanted again, so its Event is made anew.
                    gone.add(op.key)
                    out.append(Create(key=op.key, copy=op.copy, fields=op.fields))
                elif restore_deleted:
                    out.append(Create(key=op.key, copy=op.copy, fields=op.fields))
                else:
                    removed.add(op.key)
                    out.append(Skip(key=op.key, owner=op.copy.owner, reason=DELETED_IN_SALESFORCE))
                continue
            desired = op.fields.to_salesforce()
            previous = before.kept if before is not None else frozenset()
            found = edited(before, row, desired, activity_field) if before is not None else frozenset()
            kept = frozenset() if overwrite_edits else previous | found
            if found - previous and not overwrite_edits:
                newly[op.key] = found - previous
            if kept != previous:
                kept_now[op.key] = kept
            omit = kept | _conflicts(kept, row, desired)
            body = {k: v for k, v in desired.items() if k not in omit}
            if before is not None and before.canceled and "Subject" in kept:
                # Un-cancelled meeting with a person's own title: only calsync's prefix goes.
                subject = str(row.get("Subject") or "")
                if subject.startswith(CANCELED):
                    body["Subject"] = subject[len(CANCELED):]
            settled = replace(op, omit=frozenset(omit - set(body)), kept=kept)
            # The activity Date/Time field alone never makes an update: it is written from the
            # moment it is configured on Events changed from then on, never retroactively (seed).
            if all(k in row and same(k, v, row[k]) for k, v in body.items() if k != activity_field):
                unchanged[op.key] = settled
                out.append(Skip(key=op.key, owner=op.copy.owner, reason="unchanged"))
            else:
                out.append(settled)
        elif isinstance(op, Delete) and op.sf_id is not None:
            before = written.get(op.key)
            row = current.get(op.sf_id[:15])
            if row is None and before is not None and not before.deleting:
                # Gone, and not by calsync's own delete: a person deleted it. It stays deleted
                # even if the meeting is wanted again later.
                removed.add(op.key)
                out.append(Skip(key=op.key, owner=op.owner, reason=DELETED_IN_SALESFORCE))
                continue
            if row is None or before is None or overwrite_edits:
                out.append(op)  # calsync's own delete landed, or the person's edits are overwritten
                continue
            kept = before.kept | edited(before, row, {}, activity_field)
            if not kept:
                out.append(op)
                continue
            if kept != before.kept:
                kept_now[op.key] = kept
                newly[op.key] = kept - before.kept
            subject = str(row.get("Subject") or "")
            out.append(Retire(
                key=op.key, sf_id=op.sf_id, owner=op.owner, reason=op.reason, kept=kept,
                subject=None if subject.startswith(CANCELED) else (CANCELED + subject)[:255],
            ))
        else:
            out.append(op)
    return Settled(tuple(out), kept_now, newly, frozenset(removed), unchanged, frozenset(gone))


def _conflicts(kept: frozenset[str], row: Mapping[str, Any], desired: Mapping[str, Any]) -> set[str]:
    """Fields calsync must also leave out so that a person's kept links stay valid: Salesforce
    refuses a Lead Name beside a Related To (reference B3), and a kept Name keeps its relations."""
    extra: set[str] = set()
    if "WhatId" in kept and row.get("WhatId") and str(desired.get("WhoId") or "").startswith("00Q"):
        extra.update(("WhoId", "EventWhoIds"))
    if "WhoId" in kept:
        extra.add("EventWhoIds")
        if str(row.get("WhoId") or "").startswith("00Q"):
            extra.add("WhatId")
    if "EventWhoIds" in kept:
        extra.add("WhoId")
    return extra


def query_fields(operations: Iterable[Operation], activity_field: str | None) -> list[str]:
    """The Event fields `settle` needs read back for these operations (EventWhoIds is not
    queryable: its value comes from EventRelation)."""
    names = {"Subject", "LastModifiedDate"}
    for op in operations:
        if isinstance(op, Update):
            names.update(op.fields.to_salesforce())
    names.update(("WhoId", "WhatId", "Location", "Description", "Type", "ShowAs", "OwnerId", "IsPrivate"))
    if activity_field:
        names.add(activity_field)
    names.discard("EventWhoIds")
    names.discard("Id")
    return sorted(names)
