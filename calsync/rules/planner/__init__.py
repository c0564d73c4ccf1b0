"""The pure sync planner: what to write to Salesforce for the meetings that changed.

`plan()` turns each changed (owner, iCalUID) copy, what was written for it before, and the
Salesforce directory's answers into exactly one operation: Create, Update, Delete or Skip. It
reads no clock (`now` is given), does no I/O and returns its warnings. `addresses_to_look_up()`
says which addresses the directory must be asked about first.

The rules live one per module: selection.py (which meetings count, first occurrence of a
series), name.py (Name/WhoId), related_to.py (Related To/WhatId), fields.py (Event values).
The one rule that needs both the directory and the owner's answer, an invitation from a
stranger, is `invited_as_wanted` here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from calsync.core.model import (
    Create,
    Delete,
    Directory,
    MeetingCopy,
    Operation,
    PlanSettings,
    Skip,
    Update,
    Written,
)
from calsync.rules.planner.fields import event_fields
from calsync.rules.planner.name import choose_name, on_file, shared_contacts
from calsync.rules.planner.related_to import related_to
from calsync.rules.planner.selection import (
    NOT_ACCEPTED,
    Meeting,
    Rejected,
    accepted_by_owner,
    before_lookback,
    candidates,
    first_occurrence,
    is_candidate,
    is_external,
    organizer_of,
    outside_organizer,
    select,
)

__all__ = [
    "NOT_ACCEPTED",
    "NameCandidates",
    "Plan",
    "addresses_to_look_up",
    "contacts_to_relate",
    "first_occurrence",
    "keeps_event",
    "name_candidates",
    "plan",
]

UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Plan:
    """One operation per planned key (in the order of the copies) and the warnings to log."""

    operations: tuple[Operation, ...]
    warnings: tuple[str, ...]


def addresses_to_look_up(copies: Iterable[MeetingCopy], settings: PlanSettings) -> frozenset[str]:
    """Lowercased addresses the directory must answer for before `plan()` can decide.

    Only the synced occurrence's external, non-excluded, non-resource people, and only for
    copies that the directory-free rules (cancelled, declined, private, eventType, 14 days) keep.
    """
    found: set[str] = set()
    for copy in copies:
        chosen = select(copy, settings)
        if isinstance(chosen, Meeting):
            found.update(candidates(chosen.occurrence, copy.owner, settings))
    return frozenset(found)


@dataclass(frozen=True)
class NameCandidates:
    """Who could be a meeting's Name, in the order the Name rule looks at them."""

    organizer: str | None  # the organizer, when external (checked as Contact, then Lead)
    attendees: tuple[str, ...]  # candidate attendees in Google's order
    # An outside organizer who cannot be the Name (they declined) of an invitation the owner has
    # not accepted: whether they are a Contact or Lead decides if it is logged (`plan`).
    host: str | None = None

    @property
    def first(self) -> str | None:
        return self.organizer or (self.attendees[0] if self.attendees else None)


def name_candidates(copies: Iterable[MeetingCopy], settings: PlanSettings) -> list[NameCandidates]:
    """Per synced meeting, its Name candidates: lets the lookups go one rank at a time.

    If the first candidate is a Contact the Name is settled whoever the others are, so most
    meetings never need their other attendees looked up.
    """
    found = []
    for copy in copies:
        chosen = select(copy, settings)
        if not isinstance(chosen, Meeting):
            continue
        people = candidates(chosen.occurrence, copy.owner, settings)
        organizer = organizer_of(chosen.occurrence)
        external = (
            organizer.address
            if organizer is not None and organizer.address and is_candidate(organizer, copy.owner, settings)
            else None
        )
        attendees = {p.address: None for p in chosen.occurrence.attendees if p.address in people}
        host = outside_organizer(chosen.occurrence, copy.owner, settings)
        unsure = (
            host is not None and host.address != external and is_external(host, copy.owner, settings)
            and not accepted_by_owner(chosen.occurrence, copy.owner)
        )
        if people:
            found.append(NameCandidates(
                external, tuple(a for a in attendees if a is not None),
                host.address if unsure and host is not None else None,
            ))
    return found


def contacts_to_relate(
    copies: Iterable[MeetingCopy], directory: Directory, settings: PlanSettings
) -> frozenset[str]:
    """Ids of the Contacts that become a Name: only theirs need Opportunity lookups.

    `directory` needs contacts and leads; its opportunities are not read. A meeting with five
    Contacts names one, so this keeps the Opportunity query to one id per meeting.
    """
    found: set[str] = set()
    for copy in copies:
        chosen = select(copy, settings)
        if isinstance(chosen, Meeting):
            name, _ = choose_name(chosen.occurrence, copy.owner, directory, settings)
            if name is not None and name.is_contact:
                found.add(name.who_id)
    return frozenset(found)


def plan(
    copies: Sequence[MeetingCopy],
    previous: Mapping[str, Written],
    directory: Directory,
    settings: PlanSettings,
    now: dt.datetime,
) -> Plan:
    """One operation for each distinct key among `copies`.

    A key repeated by one owner's copies: the last copy counts. Copies of several owners share a
    key when they are addresses of one Salesforce User (identity.py): their one Event stays
    while any of them wants it, so the first copy whose operation keeps the Event (in the order
    of the copies) decides, else the last one.
    """
    latest: dict[tuple[str, str], MeetingCopy] = {}
    for copy in copies:
        latest.pop((copy.key, copy.owner), None)  # keep the order of the last appearance
        latest[(copy.key, copy.owner)] = copy
    by_key: dict[str, list[MeetingCopy]] = {}
    for (key, _), copy in latest.items():
        by_key.setdefault(key, []).append(copy)
    operations: list[Operation] = []
    warnings: dict[str, None] = {}
    for key, group in by_key.items():
        planned = [_plan_one(copy, previous.get(key), directory, settings, now) for copy in group]
        operation, found = next((p for p in planned if keeps_event(p[0])), planned[-1])
        operations.append(operation)
        for warning in found:
            warnings.setdefault(warning, None)
    return Plan(operations=tuple(operations), warnings=tuple(warnings))


def keeps_event(operation: Operation) -> bool:
    """Whether the operation wants the meeting's Event to exist (created, updated or as it is)."""
    return isinstance(operation, (Create, Update)) or (
        isinstance(operation, Skip) and operation.reason == UNCHANGED
    )


DELETED_IN_SALESFORCE = "deleted in Salesforce"
CANCELED_KEPT = "canceled, kept for a person's changes"


def _not_wanted(copy: MeetingCopy, before: Written | None, reason: str) -> Operation:
    """Delete what was written before (even a create that never answered), else Skip.

    An Event a person deleted is gone already; one kept with `Canceled: ` for a person's changes
    (ownership.py) stays as it is.
    """
    if before is not None and before.removed:
        return Skip(key=copy.key, owner=copy.owner, reason=DELETED_IN_SALESFORCE)
    if before is not None and before.canceled:
        return Skip(key=copy.key, owner=copy.owner, reason=CANCELED_KEPT)
    if before is not None:
        return Delete(key=copy.key, sf_id=before.sf_id, owner=copy.owner, reason=reason)
    return Skip(key=copy.key, owner=copy.owner, reason=reason)


def invited_as_wanted(chosen: Meeting, owner: str, directory: Directory, settings: PlanSettings) -> bool:
    """A meeting organised by someone who is neither internal nor a Contact or Lead (a stranger
    inviting the owner and a customer) counts only once its owner accepted it or answered maybe;
    one organised by an internal user, a Contact or a Lead counts answered or not."""
    host = outside_organizer(chosen.occurrence, owner, settings)
    if host is None or accepted_by_owner(chosen.occurrence, owner):
        return True
    return is_external(host, owner, settings) and on_file(host.address or "", directory)


def _plan_one(
    copy: MeetingCopy,
    before: Written | None,
    directory: Directory,
    settings: PlanSettings,
    now: dt.datetime,
) -> tuple[Operation, tuple[str, ...]]:
    if before is not None and before.removed:
        # Deleted in Salesforce by a person: it stays deleted, whatever Google says later.
        return Skip(key=copy.key, owner=copy.owner, reason=DELETED_IN_SALESFORCE), ()
    chosen = select(copy, settings)
    if isinstance(chosen, Rejected):
        return _not_wanted(copy, before, chosen.reason), ()
    name, warnings = choose_name(chosen.occurrence, copy.owner, directory, settings)
    if name is None:
        return _not_wanted(copy, before, "no Contact or Lead"), warnings
    if not invited_as_wanted(chosen, copy.owner, directory, settings):
        return _not_wanted(copy, before, NOT_ACCEPTED), warnings
    owner_id = directory.users.get(copy.owner)
    if not owner_id:
        # A configuration problem, not a reason to delete what was written: leave it alone.
        return Skip(key=copy.key, owner=copy.owner, reason="owner has no Salesforce User"), (
            *warnings,
            f"no active Salesforce User for {copy.owner}",
        )
    who_ids: tuple[str, ...] = ()
    if settings.shared_activities:
        who_ids, left_out = shared_contacts(chosen.occurrence, copy.owner, name, directory, settings)
        warnings = (*warnings, *left_out)
    fields = event_fields(
        chosen.occurrence,
        chosen.timing,
        owner_id=owner_id,
        who_id=name.who_id,
        what_id=related_to(name, directory),
        private=chosen.private,
        settings=settings,
        who_ids=who_ids,
        time_zone=copy.time_zone,
    )
    if before is None:
        if before_lookback(chosen.timing, settings, now):
            return Skip(key=copy.key, owner=copy.owner, reason="before lookback window"), warnings
        return Create(key=copy.key, copy=copy, fields=fields), warnings
    if before.sf_id is None:
        # A create whose answer never came back: plan it again (the write is an upsert on the
        # key, reference C5), even once the meeting has slipped out of the lookback window,
        # so an Event that did land is not left behind untracked.
        return Create(key=copy.key, copy=copy, fields=fields), warnings
    if before.fingerprint == fields.fingerprint(omit=before.kept) and not before.deleting:
        return Skip(key=copy.key, owner=copy.owner, reason=UNCHANGED), warnings
    # A delete of this Event was sent and never confirmed (a crash, a lost answer) and the
    # meeting is wanted again: only reading the Event back (an update does, ownership.settle)
    # tells whether that delete landed.
    return Update(key=copy.key, sf_id=before.sf_id, copy=copy, fields=fields, kept=before.kept), warnings
