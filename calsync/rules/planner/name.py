"""The Name (WhoId) rule: which one Contact or Lead a synced meeting's Event names.

External meeting: the organizer is outside the company and is a Contact or Lead → the organizer.
Otherwise the first attendee, in Google's order, who is a Contact; failing that the first who is
a Lead. An address that is both a Contact and a Lead names the Contact. Several Contacts (or
Leads) sharing an address: the oldest (CreatedDate, then lowest Id), with a warning.

A converted Lead's address stands for the Contact it became when no Contact has that address
itself: Salesforce moved the Lead's activities to that Contact (reference B10), which may be an
existing one with another address, so it is found through ConvertedContactId, not by email.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from calsync.core.model import Contact, Directory, GoogleEvent, Lead, PlanSettings
from calsync.rules.planner.selection import candidates, is_candidate, organizer_of


@dataclass(frozen=True)
class Name:
    """The Contact or Lead an Event names, and the address that matched it."""

    address: str
    record: Contact | Lead

    @property
    def who_id(self) -> str:
        return self.record.id

    @property
    def is_contact(self) -> bool:
        return isinstance(self.record, Contact)


Record = TypeVar("Record", Contact, Lead)


def oldest(records: Sequence[Record]) -> Record:
    """The oldest record by CreatedDate (ISO strings order correctly), then the lowest Id."""
    return min(records, key=lambda record: (record.created_date or "", record.id or ""))


def _pick(
    address: str, records: Sequence[Record], kinds: str, warnings: list[str]
) -> Record | None:
    if not records:
        return None
    chosen = oldest(records)
    if len({record.id for record in records}) > 1:
        warnings.append(
            f"{len(records)} {kinds} share the address {address}; using the oldest, {chosen.id}"
        )
    return chosen


def contact_for(address: str, directory: Directory, warnings: list[str]) -> Contact | None:
    """The Contact with this address, else the Contact a converted Lead with it became."""
    found = _pick(address, directory.contacts.get(address, ()), "Contacts", warnings)
    if found is None:
        became = {c.contact.id: c.contact for c in directory.converted.get(address, ())}
        found = _pick(address, list(became.values()), "Contacts of converted Leads", warnings)
    return found


def on_file(address: str, directory: Directory) -> bool:
    """Whether the address is a Contact or a Lead (a converted one counts as its Contact)."""
    return bool(
        directory.contacts.get(address) or directory.leads.get(address) or directory.converted.get(address)
    )


def lead_for(address: str, directory: Directory, warnings: list[str]) -> Lead | None:
    return _pick(address, directory.leads.get(address, ()), "Leads", warnings)


def choose_name(
    occurrence: GoogleEvent, owner: str, directory: Directory, settings: PlanSettings
) -> tuple[Name | None, tuple[str, ...]]:
    """The Name of the meeting (None: no Contact or Lead among its people) and any warnings."""
    warnings: list[str] = []
    organizer = organizer_of(occurrence)
    if organizer is not None and organizer.address and is_candidate(organizer, owner, settings):
        # External meeting: organized by a Contact or Lead outside the company.
        address = organizer.address
        record: Contact | Lead | None = contact_for(address, directory, warnings)
        if record is None:
            record = lead_for(address, directory, warnings)
        if record is not None:
            return Name(address, record), tuple(warnings)
    external = set(candidates(occurrence, owner, settings))
    ordered: dict[str, None] = {}  # Google's attendee order, without repeats
    for person in occurrence.attendees:
        if person.address is not None and person.address in external:
            ordered.setdefault(person.address, None)
    attendees = list(ordered)
    for address in attendees:
        contact = contact_for(address, directory, warnings)
        if contact is not None:
            return Name(address, contact), tuple(warnings)
    for address in attendees:
        lead = lead_for(address, directory, warnings)
        if lead is not None:
            return Name(address, lead), tuple(warnings)
    return None, tuple(warnings)


SHARED_ACTIVITY_MAX = 50  # Contacts one Event may relate to (reference B3, seed 004)


def shared_contacts(
    occurrence: GoogleEvent, owner: str, name: Name, directory: Directory, settings: PlanSettings
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """With Shared Activities: the EventWhoIds to write, and a warning when some are left out.

    A Contact Name: that Contact first, then every other candidate who is a Contact, in Google's
    order, at most 50. A Lead Name: the Lead alone. EventWhoIds replaces the Event's Who
    relations, and Salesforce takes "up to 50 Contacts or one Lead", never both (reference B3):
    so switching the Name between Contacts and a Lead must send the whole new list, or the old
    relations stay and the update is refused.
    """
    if not name.is_contact:
        return (name.who_id,), ()
    ids: dict[str, None] = {name.who_id: None}
    warnings: list[str] = []  # several Contacts per address were already reported for the Name
    for address in candidates(occurrence, owner, settings):
        contact = contact_for(address, directory, warnings)
        if contact is not None:
            ids.setdefault(contact.id, None)
    left_out = len(ids) - SHARED_ACTIVITY_MAX
    if left_out > 0:
        meeting = f"{occurrence.summary or '(No title)'!r} (Google event {occurrence.id})"
        return tuple(ids)[:SHARED_ACTIVITY_MAX], (
            f"{meeting} has {len(ids)} Contacts; Salesforce relates at most "
            f"{SHARED_ACTIVITY_MAX} to an Event, so {left_out} were left out",
        )
    return tuple(ids), ()
