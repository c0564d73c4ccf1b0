"""The decision record: what the planner decided about each meeting, and why, as plain data.

Each time the planner decides about a meeting, `record()` keeps that decision in the state
database (table `decisions`, one row per (user, iCalUID), replaced each time): the occurrence
calsync looked at, every organizer and attendee with why they could or could not be the Event's
Name (internal, excluded, a room, declined, no Contact or Lead with that address, ...), the
Contact or Lead chosen as Name and why, the Related To and why, and the action (create, update,
delete, unchanged) or the rule that skipped it. It is rebuilt from the planner's own rules
(planner/selection.py, name.py, related_to.py) on the same data the planner had, so it cannot
disagree with what was written.

The cycle and resync record here; `calsync explain` (explain.py) reads and shows the records.
`named` gives a meeting's subject and start for log lines, `uids_of_event` the meeting(s) a
Google event id names.

What the directory answers tell: the lookups go one rank at a time (lookup.py `look_up`), so a
candidate listed after the Name may never have been asked about; it is then described as coming
after the Name, not as "no Contact".
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import logging
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from calsync.core.model import (
    Contact,
    Create,
    Delete,
    Directory,
    MeetingCopy,
    Operation,
    PlanSettings,
    Retire,
    Skip,
)
from calsync.rules.planner.name import Name, choose_name
from calsync.rules.planner.related_to import best_opportunity
from calsync.rules.planner.selection import (
    Meeting,
    first_occurrence,
    is_candidate,
    organizer_of,
    select,
)
from calsync.state.store import StateStore, StoredDecision

UTC = dt.timezone.utc
log = logging.getLogger("calsync.explain")  # names predate the layers (ARCHITECTURE.md)


# -- building a decision -------------------------------------------------------------------------


def decide(
    copy: MeetingCopy,
    operation: Operation | None,
    directory: Directory,
    settings: PlanSettings,
    now: dt.datetime,
) -> StoredDecision:
    """The decision about `copy`: what the planner did (`operation`; None: nothing to write,
    the Event already holds these values) and why, as plain data."""
    chosen = select(copy, settings)
    occurrence = chosen.occurrence if isinstance(chosen, Meeting) else first_occurrence(copy)
    if occurrence is None and copy.items:
        occurrence = copy.items[0]
    detail: dict[str, Any] = {"people": [], "name": None, "related_to": None}
    if occurrence is not None:
        detail["occurrence_id"] = occurrence.id
        detail["series"] = any(i.recurrence for i in copy.items)
    if isinstance(chosen, Meeting):
        detail["private"] = chosen.private
        name, _ = choose_name(chosen.occurrence, copy.owner, directory, settings)
        detail["people"] = _people(chosen.occurrence, copy.owner, directory, settings, name)
        detail["name"] = _name(chosen.occurrence, copy.owner, directory, settings, name)
        detail["related_to"] = _related_to(name, directory) if name is not None else None
    elif occurrence is not None:
        detail["people"] = _people(occurrence, copy.owner, directory, settings, None, looked_up=False)
    action, reason = _action(operation)
    start = _start(chosen, occurrence)
    return StoredDecision(
        user=copy.owner, ical_uid=copy.ical_uid,
        event_id=copy.items[0].id if copy.items else copy.event_id,
        subject=occurrence.summary if occurrence is not None else None,
        start=start, action=action, reason=reason, decided_at=now, detail=detail,
    )


def record(
    store: StateStore,
    copies: Sequence[MeetingCopy],
    operations: Iterable[Operation],
    directory: Directory,
    settings: PlanSettings,
    now: dt.datetime,
) -> None:
    """Keep the decision about each planned copy (the last copy of a meeting on a calendar
    wins, as in `plan`; two addresses of one Salesforce User each keep theirs, with the
    operation their shared key got)."""
    by_key = {op.key: op for op in operations}
    latest = {(copy.owner, copy.ical_uid): copy for copy in copies}
    decisions = []
    for copy in latest.values():
        try:
            decisions.append(decide(copy, by_key.get(copy.key), directory, settings, now))
        except Exception:  # noqa: BLE001 - explaining a meeting must never stop its sync
            log.warning("cannot record the decision", exc_info=True,
                        extra={"fields": {"user": copy.owner, "ical_uid": copy.ical_uid}})
    for index, d in enumerate(decisions):
        if d.subject is None and d.start is None:
            # Gone from the calendar: nothing left to read the meeting from, so it keeps the
            # subject and start its last decision knew (what an operator will search for).
            before = next(iter(store.decisions(d.user, ical_uids=[d.ical_uid])), None)
            if before is not None:
                decisions[index] = replace(d, subject=before.subject, start=before.start,
                                           event_id=d.event_id or before.event_id)
    store.record_decisions(decisions)


def _action(operation: Operation | None) -> tuple[str, str | None]:
    if operation is None or (isinstance(operation, Skip) and operation.reason == "unchanged"):
        return "unchanged", None
    if isinstance(operation, Skip):
        return "skip", operation.reason
    if isinstance(operation, Delete):
        return "delete", operation.reason
    if isinstance(operation, Retire):  # ownership.py: a person had changed it, so it is kept
        kept = ", ".join(sorted(operation.kept))
        return "cancel", f"{operation.reason}; kept with 'Canceled: ' for a person's changes ({kept})"
    return ("create" if isinstance(operation, Create) else "update"), None


def _start(chosen: Meeting | Any, occurrence: Any) -> dt.datetime | None:
    if isinstance(chosen, Meeting):
        return chosen.timing.start
    if occurrence is None:
        return None
    value = occurrence.start or occurrence.original_start
    try:
        if value is not None and value.date_time is not None:
            return value.date_time.astimezone(UTC)
        if value is not None and value.date is not None:
            return dt.datetime.combine(value.date, dt.time(), UTC)
    except (OverflowError, ValueError):
        return None
    return None


def _verdict(person: Any, owner: str, settings: PlanSettings) -> str | None:
    """Why this person cannot be the Name, None when they can. The planner's own
    `selection.is_candidate` decides; this only words its conditions, in its order."""
    if is_candidate(person, owner, settings):
        return None
    address = person.address
    if not address or "@" not in address:
        return "no email address"
    if person.resource:
        return "a room or resource"
    if person.response_status == "declined":
        return "declined the invitation"
    if address == owner.strip().lower():
        return "the calendar's owner"
    if address in {u.lower() for u in settings.configured_users}:
        return "a calsync user (colleague)"
    domain = address.rsplit("@", 1)[1]
    if domain in {d.lower() for d in settings.internal_domains}:
        return f"internal ({domain} is in [sync] internal_domains)"
    pattern = next((p for p in settings.exclude if fnmatch.fnmatchcase(address, p.lower())), None)
    if pattern is not None:
        return f"excluded by the pattern {pattern!r} ([sync] exclude)"
    return "not someone who could be a Contact or Lead"


def _people(
    occurrence: Any,
    owner: str,
    directory: Directory,
    settings: PlanSettings,
    name: Name | None,
    *,
    looked_up: bool = True,
) -> list[dict[str, Any]]:
    """Organizer then attendees (Google's order, once each), each with their verdict."""
    people: list[tuple[str, Any]] = []
    organizer = organizer_of(occurrence)
    if organizer is not None:
        people.append(("organizer", organizer))
    people += [("attendee", p) for p in occurrence.attendees]
    found: list[dict[str, Any]] = []
    seen: set[str] = set()
    passed_name = False
    for role, person in people:
        key = person.address or f"#{len(found)}"
        if key in seen:
            continue
        seen.add(key)
        entry: dict[str, Any] = {"address": person.address, "role": role}
        if person.display_name:
            entry["display_name"] = person.display_name
        why_not = _verdict(person, owner, settings)
        if why_not is not None:
            entry["candidate"] = False
            entry["why"] = why_not
        else:
            entry["candidate"] = True
            contacts = directory.contacts.get(person.address or "", ())
            leads = directory.leads.get(person.address or "", ())
            conversions = () if contacts else directory.converted.get(person.address or "", ())
            entry["contacts"] = [c.id for c in contacts] + [c.contact.id for c in conversions]
            entry["leads"] = [lead.id for lead in leads]
            if conversions:
                entry["converted"] = [c.lead.id for c in conversions]
            contacts = (*contacts, *(c.contact for c in conversions))
            kind = "Contact" if contacts else "Lead"
            if name is not None and person.address == name.address:
                entry["why"] = "the Name"
                passed_name = True
            elif (contacts or leads) and name is not None:
                entry["why"] = f"also a {kind}, but the Name goes to another (see below)"
            elif contacts or leads:
                entry["why"] = f"a {kind}"
            elif not looked_up:
                entry["why"] = "not looked up: the rule above skipped the meeting first"
            elif passed_name:
                entry["why"] = "comes after the Name; not needed once the Name was found"
            else:
                entry["why"] = "no Contact or Lead with this address"
        found.append(entry)
    return found


def _name(
    occurrence: Any, owner: str, directory: Directory, settings: PlanSettings, name: Name | None
) -> dict[str, Any] | None:
    if name is None:
        return None
    kind = "Contact" if name.is_contact else "Lead"
    organizer = organizer_of(occurrence)
    external = organizer is not None and is_candidate(organizer, owner, settings)
    if external and organizer is not None and organizer.address == name.address:
        why = f"the organizer is outside the company and is a {kind} (an external meeting)"
    elif name.is_contact:
        why = "the first attendee, in Google's order, who is a Contact"
    else:
        why = "no attendee is a Contact; the first attendee, in Google's order, who is a Lead"
    records: Sequence[Any] = (directory.contacts if name.is_contact else directory.leads).get(name.address, ())
    if name.is_contact and not records:
        conversions = directory.converted.get(name.address, ())
        records = [c.contact for c in conversions]
        leads = ", ".join(sorted({c.lead.id for c in conversions if c.contact.id == name.who_id}))
        why += f"; the Lead with this address ({leads}) was converted into this Contact"
    if len({r.id for r in records}) > 1:
        why += f"; {len(records)} {kind}s share this address, the oldest is taken"
    return {"id": name.who_id, "kind": kind, "address": name.address, "why": why}


def _related_to(name: Name, directory: Directory) -> dict[str, Any]:
    contact = name.record
    if not isinstance(contact, Contact):
        return {"id": None, "why": "none: an Event whose Name is a Lead cannot be related to a record"}
    options = directory.primary_opportunities.get(contact.id, ())
    opportunity = best_opportunity(options)
    if opportunity is not None:
        state = "closed" if opportunity.is_closed else "open"
        why = f"the Opportunity where the Contact has the primary role ({state}"
        why += f", close date {opportunity.close_date})" if opportunity.close_date else ")"
        if len(options) > 1:
            why += f"; of {len(options)}, open ones first, then the latest close date"
        return {"id": opportunity.id, "kind": "Opportunity", "why": why}
    if contact.account_id:
        return {"id": contact.account_id, "kind": "Account",
                "why": "the Contact's Account (the Contact has no primary role on an Opportunity)"}
    return {"id": None, "why": "none: the Contact has no Account and no primary Opportunity role"}


def named(copy: MeetingCopy | None) -> dict[str, str | None]:
    """The meeting's subject and start, for log lines that must say which meeting it is."""
    if copy is None:
        return {}
    try:
        occurrence = first_occurrence(copy) or (copy.items[0] if copy.items else None)
    except Exception:  # noqa: BLE001 - a log line must not fail the write it reports
        return {}
    if occurrence is None:
        return {}
    start = _start(None, occurrence)
    return {"subject": occurrence.summary,
            "start": start.isoformat(timespec="minutes") if start else None}


def uids_of_event(store: StateStore, user: str, event_id: str) -> set[str]:
    """The iCalUID(s) of a Google event id on `user`'s calendar: the item itself, or for an
    unmodified occurrence `<masterId>_<start>` (reference A4) its series master."""
    ids = [event_id]
    if "_" in event_id:
        ids.append(event_id.rsplit("_", 1)[0])
    return {row.ical_uid for row in store.mirror_by_ids(user, ids).values()}
