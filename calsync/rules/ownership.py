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
  (`Retire`), and the rest stays as the person left it. If the meeting comes back (re-accepted,
  restored from the trash), only that prefix goes again, also from a Subject the person owns
  (`uncanceled`);
- an Event deleted in Salesforce stays deleted: the update becomes nothing, and the key is
  recorded as removed, so a later change in Google does not re-create it. One that calsync's
  own delete removed (sent, then its answer lost to a crash or a fault: the key is `deleting`)
  is not a person's: when the meeting is wanted again, the Event is created anew.

`settle` is pure: plain operations, state rows and Salesforce rows in, operations out. `resync`
calls it with `overwrite_edits` (Google's values over people's edits) and `restore_deleted`.

Who made the last change decides first: the Event's `LastModifiedById`, read back with the
fields. When it is calsync's own Salesforce user (`own_user`), nobody else has written the Event
since calsync did, so no field is a person's, whatever differs from calsync's hashes: that
difference is what org automation (a trigger, a Flow, reference B10) did to calsync's own write,
and the hashes are re-based on the values now stored by the write that follows. When it is
anyone else, the fields that differ from what calsync last wrote are that person's. An Event
written before per-field hashes existed (`Written.hashes` None) has no record of what calsync
wrote: once someone else modified it, every field that differs from what calsync writes now is
taken as the person's, however soon after calsync's write they changed it.

The shared Contacts (`EventWhoIds`, and the Name with them) live in EventRelation rows, whose
changes do not touch the Event's own LastModifiedById: they are always judged by their hashes.

A value equal to what calsync writes now is never taken for an edit: after a crash between an
update and its record, the Event holds calsync's new values, not a person's. Nor is Salesforce's
own way of storing text (reference B10: trimmed, "" as null): calsync writes text in that form
(sftext.py) and compares text trimmed the same way; an Event written by a calsync that sent
untrimmed text (its hash is of the untrimmed value) is recognised by `_sent_untrimmed`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from calsync.rules import sftext
from calsync.core.model import Create, Delete, Lead, Operation, Retire, Skip, Update, Written

# Fields that always follow Google (reference B3: how an Event is placed in time).
TIME_FIELDS = frozenset({"StartDateTime", "EndDateTime", "IsAllDayEvent", "ActivityDate", "DurationInMinutes"})
CANCELED = "Canceled: "
DELETED_IN_SALESFORCE = "deleted in Salesforce"
# Read back, never written.
NOT_FIELDS = frozenset({"Id", "attributes", "LastModifiedDate", "LastModifiedById", "CreatedById", "CreatedDate"})
# Kept in EventRelation rows (reference B3): a person changes them without becoming the Event's
# LastModifiedById, so they are judged by their hashes alone.
RELATION_FIELDS = frozenset({"EventWhoIds"})
SUBJECT_MAX = 255  # UTF-16 code units (reference B3, B10)
# The free-text fields calsync writes: Salesforce trims them (reference B10).
TEXT_FIELDS = frozenset({"Subject", "Location", "Description"})
# The whitespace an older calsync left at the start of a Location or Description it sent (Google's
# text without its control characters: only spaces, tabs and newlines remained): every run of up
# to four, which covers the blank lines video-call invitations start with.
_LEGACY_LEADS = tuple("".join(run) for n in range(5) for run in itertools.product(" \n\t", repeat=n))


def canonical(name: str, value: Any) -> str:
    """One field's value in a form that compares equal however Salesforce echoes it back:
    ids as their 15 characters (reference B2), instants as UTC, text without CR and trimmed as
    Salesforce stores it (Java's trim, reference B10), empty and null alike, a list of ids
    (EventWhoIds) as a sorted set."""
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
    return sftext.trim(text.replace("\r\n", "\n").replace("\r", "\n"))


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


def _sent_untrimmed(name: str, value: Any, hashes: Iterable[str | None]) -> bool:
    """Whether one of `hashes` is of text an older calsync sent untrimmed that Salesforce stored
    as `value` (reference B10): its hash is of the text without trailing whitespace, but with
    the whitespace it started with. The value read back is that text trimmed, so the text sent
    was some leading whitespace + `value` (+ trailing whitespace the old hash left out)."""
    wanted = {h for h in hashes if h}
    if name not in TEXT_FIELDS or not isinstance(value, str) or not value or not wanted:
        return False
    body = value.replace("\r\n", "\n").replace("\r", "\n").rstrip().encode()
    for lead in _LEGACY_LEADS:
        if hashlib.sha256(lead.encode() + body).hexdigest()[:16] in wanted:
            return True
    return False


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


def last_modified_by_calsync(current: Mapping[str, Any], own_user: str | None) -> bool | None:
    """Whether calsync's own user made the Event's last change (None: cannot tell)."""
    modifier = current.get("LastModifiedById")
    if not own_user or not modifier:
        return None
    return str(modifier)[:15] == own_user[:15]  # 15 or 18 characters (reference B2)


def edited(
    before: Written,
    current: Mapping[str, Any],
    desired: Mapping[str, Any],
    activity_field: str | None = None,
    conversions: Mapping[str, Lead] | None = None,
    own_user: str | None = None,
) -> frozenset[str]:
    """The fields of `current` a person changed since calsync wrote `before`.

    `own_user` is the Id of calsync's own Salesforce user. If it made the Event's last change
    (`LastModifiedById`), no field is a person's but the shared Contacts, judged by their hash.
    Otherwise, with per-field hashes: a field whose value is neither the one last written nor
    the one wanted now, nor what converting the Lead calsync named did to it (`converted`:
    `conversions` are the converted Leads known, by 15-character Id). Without (an Event written
    by an older calsync): every field that differs from what calsync wants now (for a delete,
    every field: which one they changed is unknown). Unknown who made the last change: the
    same as someone else, the side that loses no edit.
    """
    names = [n for n in (*desired, *(before.hashes or {})) if n not in TIME_FIELDS and n in current]
    ours = last_modified_by_calsync(current, own_user)
    relations = RELATION_FIELDS | ({"WhoId"} if "EventWhoIds" in current else set())
    if before.hashes is None:
        if ours:
            return frozenset()
        if not desired:  # a delete: which field they changed is unknown, that they did is enough
            return frozenset(n for n in current if n not in TIME_FIELDS | NOT_FIELDS)
        return frozenset(n for n in names if n in desired and not same(n, desired[n], current[n]))
    found: set[str] = set()
    for name in dict.fromkeys(names):
        if ours and name not in relations:
            continue  # calsync's own write, with whatever the org's automation made of it
        if name == activity_field and name not in before.hashes:
            continue  # written on this Event from now on only: never retroactively (seed)
        last = before.hashes.get(name)
        now = digest(name, current[name])
        pending = (before.pending or {}).get(name, ())
        if last is None or now == last or now in pending:
            continue  # what calsync wrote, or sent just before a crash (state.record_update_intents)
        if name in desired and same(name, desired[name], current[name]):
            continue  # already what calsync writes now (a crash after the write, or by chance)
        if name not in before.kept and _sent_untrimmed(name, current[name], (last, *pending)):
            continue  # what an older calsync sent, as Salesforce stored it (trimmed)
        if converted(name, before.hashes, current, conversions or {}):
            continue  # Salesforce moved the Lead's Event to what the Lead became
        found.add(name)
    return frozenset(found)


def converted(
    name: str, last: Mapping[str, str], current: Mapping[str, Any], conversions: Mapping[str, Lead]
) -> bool:
    """Whether `current[name]` is what converting the Lead calsync last named made of it.

    Converting a Lead moves its activities (reference B10): the Name (WhoId, and the Who
    relations, EventWhoIds) from the Lead to the Contact it became, and Related To (WhatId)
    from nothing (a Lead Name takes none, B3) to the new Opportunity or Account. Those are
    Salesforce's doing, not a person's edit; the fields stay calsync's. The person who
    converted shows as LastModifiedById, so that is no help here: the Lead calsync last wrote
    (its hash) and the conversion's own ids are.
    """
    lead = next((c for c in conversions.values() if digest("WhoId", c.id) == last.get("WhoId")), None)
    if lead is None or not lead.converted_contact_id:
        return False
    if name == "WhoId":
        return same(name, current.get(name), lead.converted_contact_id)
    if name == "EventWhoIds":
        return last.get(name) == digest(name, [lead.id]) and same(name, current.get(name), [lead.converted_contact_id])
    if name == "WhatId":
        made = {i for i in (lead.converted_opportunity_id, lead.converted_account_id) if i}
        return last.get(name) == digest(name, None) and any(same(name, current.get(name), i) for i in made)
    return False


def as_stored(sent: Mapping[str, Any], row: Mapping[str, Any], own_user: str | None) -> dict[str, str]:
    """The hashes to record for an Event calsync created with `sent`, read back as `row`: where
    calsync's own user made its last change, the values stored (what org automation made of the
    insert is calsync's write too), else the values sent (a person's change stays theirs)."""
    found = hashes(sent)
    if last_modified_by_calsync(row, own_user):
        for name in sent:
            if name in row and name not in NOT_FIELDS | RELATION_FIELDS:
                found[name] = digest(name, row[name])
    return found


def settle(
    operations: Sequence[Operation],
    written: Mapping[str, Written],
    current: Mapping[str, Mapping[str, Any]],
    *,
    overwrite_edits: bool = False,
    restore_deleted: bool = False,
    activity_field: str | None = None,
    conversions: Mapping[str, Lead] | None = None,
    own_user: str | None = None,
) -> Settled:
    """Turn planned operations into what may be written, given Salesforce's `current` rows
    (by 15-character Event id; an Event absent from it was deleted in Salesforce), the
    converted Leads known (`conversions`, by 15-character Lead Id: see `converted`) and the Id
    of calsync's own Salesforce user (`own_user`, None when unknown)."""
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
            found = edited(before, row, desired, activity_field, conversions, own_user) if before is not None else frozenset()
            kept = frozenset() if overwrite_edits else previous | found
            if found - previous and not overwrite_edits:
                newly[op.key] = found - previous
            if kept != previous:
                kept_now[op.key] = kept
            omit = kept | _conflicts(kept, row, desired)
            # A meeting that comes back after its Event was kept with `Canceled: `: a Subject the
            # person owns loses calsync's prefix, and only that; it is sent (and recorded as
            # calsync's write) while the field stays theirs.
            subject = uncanceled(before, row) if before is not None and "Subject" in kept else None
            settled = replace(op, omit=frozenset(omit), kept=kept, subject=subject)
            body = settled.body()
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
            kept = before.kept | edited(before, row, {}, activity_field, conversions, own_user)
            if not kept:
                out.append(op)
                continue
            if kept != before.kept:
                kept_now[op.key] = kept
                newly[op.key] = kept - before.kept
            subject = str(row.get("Subject") or "")
            # Written as Salesforce stores it (B10): within 255 UTF-16 units, trimmed, so that
            # "Canceled: " alone (a Subject the person emptied) is "Canceled:".
            marked = subject.startswith(CANCELED) or subject == sftext.trim(CANCELED)
            out.append(Retire(
                key=op.key, sf_id=op.sf_id, owner=op.owner, reason=op.reason, kept=kept,
                subject=None if marked else sftext.stored(CANCELED + subject, SUBJECT_MAX),
            ))
        else:
            out.append(op)
    return Settled(tuple(out), kept_now, newly, frozenset(removed), unchanged, frozenset(gone))


def moved_names(
    operations: Sequence[Operation],
    previous: Mapping[str, Written],
    current: Mapping[str, Mapping[str, Any]],
    conversions: Mapping[str, Lead],
) -> set[str]:
    """Contacts that became the Name of Events calsync wrote with another Name, without a person
    owning the Name and without a known conversion to explain it: the Contacts whose converted
    Leads `settle` must know (one query for all; none in the usual cycle)."""
    explained = {(digest("WhoId", lead.id), canonical("WhoId", lead.converted_contact_id))
                 for lead in conversions.values() if lead.converted_contact_id}
    found: set[str] = set()
    for op in operations:
        if not isinstance(op, (Update, Delete)) or not op.sf_id:
            continue
        before, row = previous.get(op.key), current.get(op.sf_id[:15])
        last = (before.hashes or {}).get("WhoId") if before is not None else None
        who = str((row or {}).get("WhoId") or "")
        if before is None or last is None or "WhoId" in before.kept or not who.startswith("003"):
            continue
        if digest("WhoId", who) != last and (last, canonical("WhoId", who)) not in explained:
            found.add(who)
    return found


def uncanceled(before: Written, row: Mapping[str, Any]) -> str | None:
    """The Subject of an Event kept with `Canceled: ` (`before.canceled`) without the prefix
    calsync put there, None when there is nothing of calsync's to take off.

    The prefix is calsync's when it recorded adding it (`before.prefixed`); for an Event kept
    before that was recorded, when the Subject is still exactly what calsync last wrote. What
    follows the prefix, edited or not, is the person's and stays. Salesforce trims what it
    stores (reference B10), so a Subject that was empty reads back as `Canceled:`.
    """
    if not before.canceled:
        return None
    subject = str(row.get("Subject") or "")
    if subject != CANCELED.rstrip() and not subject.startswith(CANCELED):
        return None
    if before.prefixed is None:
        ours = (before.hashes or {}).get("Subject") == digest("Subject", subject)
    else:
        ours = before.prefixed
    return subject[len(CANCELED):] if ours else None


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
    names = {"Subject", "LastModifiedById"}  # who made the last change (`edited`)
    for op in operations:
        if isinstance(op, Update):
            names.update(op.fields.to_salesforce())
    names.update(("WhoId", "WhatId", "Location", "Description", "Type", "ShowAs", "OwnerId", "IsPrivate"))
    if activity_field:
        names.add(activity_field)
    names.discard("EventWhoIds")
    names.discard("Id")
    return sorted(names)
