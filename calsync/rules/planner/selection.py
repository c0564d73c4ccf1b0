"""Which meetings count, and which occurrence of a series is the one calsync syncs.

A recurring series becomes one Salesforce Event: its first occurrence (moved with it when that
occurrence was modified, the next one when it was cancelled or when the owner declined only that
one). An occurrence is then dropped when it is cancelled, not a meeting (eventType), declined by
the owner, private (unless private events are synced), longer than 14 days or without a start.
Which addresses can make it a Salesforce meeting (external, not excluded, not a room, not
declined) is decided here too; the Name rule (name.py) only picks among them. So is who
organised it (`outside_organizer`) and whether the owner accepted (`accepted_by_owner`): an
invitation from outside the company that is neither a Contact nor a Lead counts only once
accepted (planner.invited_as_wanted, which asks the directory).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

from calsync.core.model import GoogleEvent, MeetingCopy, Person, PlanSettings
from calsync.rules.planner.fields import Timing, UnreadableTime, instant, timing, utc
from calsync.rules.recurrence import same_slot, slots

# "Multiday events can't exceed 14 days" (reference B3, C6).
MAX_LENGTH = dt.timedelta(days=14)
PRIVATE_VISIBILITIES = frozenset({"private", "confidential"})  # confidential = private (A5)


@dataclass(frozen=True)
class Meeting:
    """The occurrence calsync would sync for a copy, with its place in time."""

    occurrence: GoogleEvent
    timing: Timing
    private: bool  # private/confidential, synced with its content withheld (reference C7)


@dataclass(frozen=True)
class Rejected:
    """No Event is wanted for the copy, whatever Salesforce holds; `reason` says why."""

    reason: str


def first_occurrence(copy: MeetingCopy) -> GoogleEvent | None:
    """The occurrence calsync syncs for this copy, or None if nothing is left of it.

    Single event: itself. Series master (items = master + exceptions, singleEvents=false,
    reference A4): the first slot that is neither cancelled (EXDATE removes slots too) nor
    declined by the owner in an exception of its own, as the master with that slot's start/end,
    or the exception's own item when that slot was modified. A series the owner declined as a
    whole leaves only the exceptions they did not decline. No live master (the owner was invited
    to single occurrences only): the earliest such exception.

    What is left may still be declined (a single event, or a series declined throughout):
    `select` rejects it then.
    """
    masters = [item for item in copy.items if item.recurring_event_id is None]
    # Every exception on one calendar with this iCalUID belongs to the series; Google's ids
    # are opaque (A4), so they are not matched against the master's id.
    exceptions = [item for item in copy.items if item.recurring_event_id is not None]
    master = next((item for item in masters if not item.is_cancelled), None)
    live = [item for item in exceptions if not item.is_cancelled]
    if master is None:
        return _earliest(_attended(live, copy.owner)) or _earliest(iter(live))
    if not master.recurrence:
        return master
    if declined_by_owner(master, copy.owner):
        # The whole series was declined: an occurrence the owner accepted on its own is what
        # is left of it; failing that the master stands, and `select` rejects it as declined.
        return _earliest(_attended(live, copy.owner)) or master
    try:
        return _first_slot(master, exceptions, copy.owner)
    except Exception:
        # Unreadable recurrence (RecurrenceError) and anything dateutil or the time arithmetic
        # throws on hostile input: the master's own start/end is the first instance (A4).
        return master


def _attended(items: list[GoogleEvent], owner: str) -> Iterator[GoogleEvent]:
    return (item for item in items if not declined_by_owner(item, owner))


def _first_slot(master: GoogleEvent, exceptions: list[GoogleEvent], owner: str) -> GoogleEvent | None:
    if master.start is None:
        return master
    cancelled = [e.original_start for e in exceptions if e.is_cancelled and e.original_start]
    modified = [e for e in exceptions if not e.is_cancelled and e.original_start is not None]
    declined = [e for e in modified if declined_by_owner(e, owner)]
    # k cancelled or declined exceptions remove at most k slots, so slot k+1 is the answer if it
    # exists; the bound keeps a hostile FREQ=SECONDLY rule from being walked for long.
    for slot_start, slot_end in slots(
        master.start, master.end, master.recurrence, limit=len(cancelled) + len(declined) + 1
    ):
        if any(same_slot(original, slot_start) for original in cancelled):
            continue
        moved = next(
            (e for e in modified if e.original_start and same_slot(e.original_start, slot_start)),
            None,
        )
        if moved is not None and moved in declined:
            continue  # the owner declined this occurrence only: the series goes on without them
        if moved is not None:
            return moved
        return replace(master, start=slot_start, end=slot_end, recurrence=())
    return None


def _earliest(items: Iterator[GoogleEvent]) -> GoogleEvent | None:
    best: tuple[dt.datetime, GoogleEvent] | None = None
    for item in items:
        at = instant(item.start) or instant(item.original_start)
        if at is None:
            at = dt.datetime.max.replace(tzinfo=dt.timezone.utc)  # undated ones last
        if best is None or at < best[0]:
            best = (at, item)
    return best[1] if best else None


def select(copy: MeetingCopy, settings: PlanSettings) -> Meeting | Rejected:
    """The meeting to sync for this copy, or why none is, by the rules that need no directory."""
    if not copy.items:
        return Rejected("deleted")  # gone from the calendar
    occurrence = first_occurrence(copy)
    if occurrence is None:
        # Every item, or every occurrence of the series, is cancelled; or the rule has none.
        return Rejected(NO_OCCURRENCE if _rule_without_slots(copy) else "cancelled")
    try:
        when = timing(occurrence)
    except UnreadableTime as exc:
        return Rejected(str(exc))
    if occurrence.event_type != "default":
        return Rejected(f"not a meeting (eventType={occurrence.event_type})")
    if declined_by_owner(occurrence, copy.owner):
        return Rejected("declined")
    private = occurrence.visibility in PRIVATE_VISIBILITIES
    if private and settings.private_events != "sync":
        return Rejected("private")
    if when.length > MAX_LENGTH:
        return Rejected("longer than 14 days")
    return Meeting(occurrence=occurrence, timing=when, private=private)


NO_OCCURRENCE = "recurrence has no occurrence"


def _rule_without_slots(copy: MeetingCopy) -> bool:
    """The live master's rule yields no slot at all (within recurrence.HORIZON): nothing was
    cancelled, the rule never matches (FREQ=DAILY;BYYEARDAY=366;BYMONTH=1)."""
    master = next(
        (i for i in copy.items if i.recurring_event_id is None and not i.is_cancelled), None
    )
    if master is None or not master.recurrence or master.start is None:
        return False
    try:
        return next(slots(master.start, master.end, master.recurrence, limit=1), None) is None
    except Exception:  # unreadable: first_occurrence took the master itself
        return False


def declined_by_owner(occurrence: GoogleEvent, owner: str) -> bool:
    """The owner's own attendee entry (self, or their address) says declined (reference A6)."""
    owner = owner.strip().lower()
    return any(
        person.response_status == "declined"
        for person in occurrence.attendees
        if person.self or person.address == owner
    )


def organizer_of(occurrence: GoogleEvent) -> Person | None:
    """The organizer; failing `organizer`, the attendee flagged `organizer: true` (A5).

    `organizer` carries no responseStatus; an attending organizer's own attendee entry does,
    so theirs is taken from there (an organizer can decline their own meeting).
    """
    if occurrence.organizer is not None and occurrence.organizer.address:
        entry = next(
            (p for p in occurrence.attendees if p.address == occurrence.organizer.address), None
        )
        if entry is not None:
            return replace(occurrence.organizer, response_status=entry.response_status)
        return occurrence.organizer
    return next((p for p in occurrence.attendees if p.organizer and p.address), None)


def is_candidate(person: Person, owner: str, settings: PlanSettings) -> bool:
    """Whether this person could be a Salesforce Contact or Lead of the meeting.

    Not internal (domain in internal_domains, case-insensitive), not a configured user nor the
    owner, not matched by an `exclude` glob, not a room or other resource, and did not decline
    the invitation: a meeting is logged with the people who took part in it.
    """
    return person.response_status != "declined" and is_external(person, owner, settings)


def is_external(person: Person, owner: str, settings: PlanSettings) -> bool:
    """`is_candidate` whatever the person answered: an address outside the company that may be
    on file in Salesforce (not internal, not a calsync user, not excluded, not a room)."""
    address = person.address
    if not address or "@" not in address or person.resource:
        return False
    if is_internal(address, owner, settings):
        return False
    return not any(_glob_matches(address, pattern) for pattern in settings.exclude)


def is_internal(address: str, owner: str, settings: PlanSettings) -> bool:
    """A lowercased address inside the company: the owner, a configured user, or an address at
    one of the internal domains."""
    if address == owner.strip().lower() or address in _lowered(settings.configured_users):
        return True
    return address.rsplit("@", 1)[-1] in _lowered(settings.internal_domains)


# The owner's answers that accept an invitation (reference A5, `responseStatus`): "maybe" counts.
ANSWERED = frozenset({"accepted", "tentative"})
NOT_ACCEPTED = "invitation from outside the company not accepted"


def outside_organizer(occurrence: GoogleEvent, owner: str, settings: PlanSettings) -> Person | None:
    """The organizer when they are outside the company (neither internal nor a configured
    user), None for an internal organizer or none known. Whether they are a Contact or Lead is
    the directory's to say (`planner.name.on_file`): a meeting organised by an outsider who is
    neither is logged only once its owner accepted it (`accepted_by_owner`)."""
    organizer = organizer_of(occurrence)
    if organizer is None or not organizer.address or is_internal(organizer.address, owner, settings):
        return None
    return organizer


def accepted_by_owner(occurrence: GoogleEvent, owner: str) -> bool:
    """The owner's own attendee entry (self, or their address; reference A6) says accepted or
    maybe. No answer yet (needsAction), or no entry of theirs at all, is not accepting."""
    owner = owner.strip().lower()
    return any(
        person.response_status in ANSWERED
        for person in occurrence.attendees
        if person.self or person.address == owner
    )


@functools.lru_cache(maxsize=32)
def _lowered(values: frozenset[str]) -> frozenset[str]:
    return frozenset(value.strip().lower() for value in values)


def _glob_matches(address: str, pattern: str) -> bool:
    try:
        return fnmatch.fnmatchcase(address, pattern.strip().lower())
    except re.error:  # a pattern fnmatch cannot translate matches nothing
        return False


def candidates(occurrence: GoogleEvent, owner: str, settings: PlanSettings) -> tuple[str, ...]:
    """Candidate addresses of the organizer and attendees, in Google's order, without repeats."""
    people: list[Person] = []
    organizer = organizer_of(occurrence)
    if organizer is not None:
        people.append(organizer)
    people.extend(occurrence.attendees)
    seen: dict[str, None] = {}
    for person in people:
        if person.address and is_candidate(person, owner, settings):
            seen.setdefault(person.address, None)
    return tuple(seen)


def before_lookback(when: Timing, settings: PlanSettings, now: dt.datetime) -> bool:
    """Whether the occurrence starts before the lookback window (now - lookback_days)."""
    try:
        window_start = utc(now) - dt.timedelta(days=settings.lookback_days)
    except OverflowError:
        return False  # a window reaching before year 1 excludes nothing
    return when.start < window_start
