"""The world of the sync machine (test_sync_machine_e2e.py) and the rules it expects of calsync.

Everything here is written from the README ("Which meetings", "Who owns which field", "What
calsync writes on each Event") and reference B10, never from calsync's code: the text as
Salesforce stores it, which meetings count and who is their Name, what Related To is, and which
fields of an Event a person owns. The machine drives the emulators and keeps one `Meeting` per
Google meeting; `plan()` says what calsync must write for it on one owner's behalf, and `Logged`
holds what Salesforce must hold for one (meeting, owner) Event.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

DOMAIN = "acme.test"  # internal (the config's internal_domains)
CONTACTS = ["c1@cust.test", "c2@cust.test"]  # Contacts from the start
LATE_CONTACT = "c3@cust.test"  # a Contact only later
LEADS = ["l1@cust.test", "l2@cust.test"]  # Leads, converted later perhaps
CUSTOMERS = [*CONTACTS, LATE_CONTACT, *LEADS]
STRANGERS = ["x1@outside.test"]  # neither internal nor a Contact or Lead
CANCELED = "Canceled: "
TRIGGER_PREFIX = "[Logged] "
SUBJECT_MAX, LOCATION_MAX, DESCRIPTION_MAX = 255, 255, 32_000
HOUR = dt.timedelta(hours=1)
TOKEN = re.compile(r"Meeting (\d+)")  # every summary carries its meeting's number

# -- text as Salesforce stores it (README "What calsync writes on each Event", reference B10) ------

_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f]")  # control characters but tab and newline
_JAVA_TRIM = "".join(chr(c) for c in range(0x21))  # String.trim(): everything up to U+0020


def _utf16_cut(text: str, limit: int) -> str:
    """At most `limit` UTF-16 code units, never half a surrogate pair."""
    out, units = [], 0
    for ch in text:
        width = 2 if ord(ch) > 0xFFFF else 1
        if units + width > limit:
            break
        out.append(ch)
        units += width
    return "".join(out)


def subject_as_stored(summary: str) -> str:
    """The summary without control characters (a newline becomes a space) and surrounding
    whitespace, "(No title)" when empty, cut to 255 UTF-16 code units."""
    text = _CONTROLS.sub("", summary).replace("\n", " ").strip()
    return _utf16_cut(text, SUBJECT_MAX).strip() or "(No title)"


def text_as_stored(text: str | None, limit: int) -> str | None:
    """Location or Description: without control characters, trimmed as Java trims (a
    non-breaking space stays), within `limit` UTF-16 code units, null when empty."""
    if text is None:
        return None
    value = _utf16_cut(_CONTROLS.sub("", text).strip(_JAVA_TRIM), limit).strip(_JAVA_TRIM)
    return value or None


def units(text: str) -> int:
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


# Surrounding whitespace Google keeps and Salesforce (or calsync, for a Subject) does not; the
# non-breaking and em spaces survive Java's trim. Astral characters count two UTF-16 units.
_PAD = st.text(alphabet=[" ", "\t", "\n", "\u00a0", "\u2003"], max_size=3)
_WORDS = st.sampled_from(["", " déjà vu", " \U0001F600", " \U0001D11E notes", "\tQ3 plan", " ✓ \U0001F680"])


@st.composite
def summaries(draw, number: int) -> str:
    return f"{draw(_PAD)}Meeting {number}{draw(_WORDS)}{draw(_PAD)}"


@st.composite
def locations(draw) -> str | None:
    kind = draw(st.sampled_from(["none", "blank", "short", "long"]))
    if kind == "none":
        return None
    if kind == "blank":
        return draw(st.text(alphabet=[" ", "\t", "\n"], max_size=3))
    if kind == "short":
        return f"{draw(_PAD)}Room{draw(_WORDS)}{draw(_PAD)}"
    # Around the 255-unit limit, an emoji across it: cut by code points it would not fit.
    return f"Room {'x' * draw(st.integers(245, 252))}\U0001F600 annex{draw(_PAD)}"


@st.composite
def descriptions(draw) -> str | None:
    kind = draw(st.sampled_from(["none", "blank", "text"]))
    if kind == "none":
        return None
    if kind == "blank":
        return draw(st.text(alphabet=[" ", "\t", "\n"], max_size=3))
    return f"{draw(_PAD)}Agenda:\n1. pricing{draw(_WORDS)}\n2. next steps{draw(_PAD)}"


# -- the org's people -------------------------------------------------------------------------


@dataclass
class Directory:
    """Who each customer address is in Salesforce, and what a Contact's Event relates to."""

    contacts: dict[str, str] = field(default_factory=dict)  # address -> Contact id (its Email)
    leads: dict[str, str] = field(default_factory=dict)  # address -> unconverted Lead id
    converted: dict[str, str] = field(default_factory=dict)  # converted Lead's address -> its Contact
    related: dict[str, str] = field(default_factory=dict)  # Contact id -> open primary Opportunity, else Account

    def contact(self, address: str) -> str | None:
        """A Contact by its own address, else the Contact a converted Lead of that address became."""
        return self.contacts.get(address) or self.converted.get(address)

    def lead(self, address: str) -> str | None:
        return None if self.contact(address) else self.leads.get(address)


def internal(address: str) -> bool:
    return address.endswith("@" + DOMAIN)


# -- the meetings ---------------------------------------------------------------------------


@dataclass
class Logged:
    """One Event the model expects in Salesforce for (meeting, owner).

    `fields`: what Salesforce holds (Subject, Start (day, hour), Location, Description, WhoId,
    WhatId); `written`: what calsync last wrote; `mine`: the fields a person owns;
    `unread_trigger`: its Subject is still what the org's trigger made of calsync's insert, and
    calsync has not read the Event back since (README: a person's later edit makes that value
    theirs)."""

    fields: dict[str, Any]
    written: dict[str, Any]
    mine: set[str] = field(default_factory=set)
    canceled: bool = False
    unread_trigger: bool = False


@dataclass
class Meeting:
    number: int
    summary: str
    location: str | None
    description: str | None
    attendees: list[str]  # the organizer first, in Google's order
    responses: dict[str, str]
    day: int  # days from TODAY
    hour: int
    deleted: bool = False
    pending: set[int] = field(default_factory=set)  # owners whose calendar changed since a sync
    events: dict[int, Logged] = field(default_factory=dict)  # owner -> its Event
    indexed: list[str] = field(default_factory=list)  # attendees as calsync last planned them
    indexed_owners: set[int] = field(default_factory=set)  # owners whose copy it planned
    known: dict[int, tuple[int, int]] = field(default_factory=dict)  # owner -> (day, hour) its mirror holds
    removed: set[int] = field(default_factory=set)  # owners whose Event a rep deleted
    # owner -> (what calsync sent, whether the trigger ran) of a create whose answer was lost
    lost: dict[int, tuple[dict[str, Any], bool]] = field(default_factory=dict)

    def start(self, today: dt.datetime) -> dt.datetime:
        return today + dt.timedelta(days=self.day, hours=self.hour)


def respond_default(attendee: str, organizer: str) -> str:
    return "accepted" if attendee == organizer else "needsAction"


def plan(meeting: Meeting, owner: str, directory: Directory) -> dict[str, Any] | None:
    """What calsync writes for `owner`'s copy of the meeting, or None when it is not logged
    (README "Which meetings"): a live meeting the owner did not decline, with a Contact or Lead
    among the outside people who did not decline; a stranger's invitation only once accepted
    or answered maybe. The Name: the outside organizer when they are a Contact or Lead, else the
    first Contact, else the first Lead. Related To: the Contact's open primary Opportunity, else
    its Account; nothing for a Lead."""
    if meeting.deleted or owner not in meeting.attendees:
        return None
    answer = meeting.responses.get(owner)
    if answer == "declined":
        return None
    organizer = meeting.attendees[0]
    outside = [a for a in meeting.attendees if not internal(a) and meeting.responses.get(a) != "declined"]
    on_file = lambda a: directory.contact(a) or directory.lead(a)  # noqa: E731
    if not internal(organizer) and not on_file(organizer) and answer not in ("accepted", "tentative"):
        return None
    if not internal(organizer) and organizer in outside and on_file(organizer):
        name = organizer
    else:
        name = next((a for a in outside if directory.contact(a)), None)
        name = name or next((a for a in outside if directory.lead(a)), None)
    if name is None:
        return None
    contact = directory.contact(name)
    who = contact or directory.lead(name)
    what = directory.related.get(contact) if contact else None
    return {
        "Subject": subject_as_stored(meeting.summary),
        "Start": (meeting.day, meeting.hour),
        "Location": text_as_stored(meeting.location, LOCATION_MAX),
        "Description": text_as_stored(meeting.description, DESCRIPTION_MAX),
        "WhoId": who[:15],
        "WhatId": what[:15] if what else None,
    }


def created(want: dict[str, Any], trigger: bool, answer_lost: bool) -> Logged:
    """A new Event: what calsync sent, the Subject as the org's insert trigger left it."""
    fields = dict(want)
    if trigger:
        fields["Subject"] = TRIGGER_PREFIX + fields["Subject"]
    # A create whose answer was lost is found by reading the Event back: what the trigger made
    # of it is then known as calsync's own write.
    return Logged(fields, dict(want), unread_trigger=trigger and not answer_lost)


def follow(event: Logged, want: dict[str, Any]) -> None:
    """An update (also of a canceled Event whose meeting came back): every field a person does
    not own follows the plan; the Canceled: calsync added goes, also from a person's Subject."""
    for name, value in want.items():
        if name not in event.mine:
            event.fields[name] = value
    if event.canceled and "Subject" in event.mine:
        event.fields["Subject"] = event.fields["Subject"].removeprefix(CANCELED)
    event.written = dict(want)
    event.canceled = False
    event.unread_trigger = False


def needs_update(event: Logged, want: dict[str, Any]) -> bool:
    """calsync writes an Event again when what it would write differs from what it wrote (the
    fields a person owns left out), or when its meeting comes back."""
    return event.canceled or any(want[k] != event.written[k] for k in want if k not in event.mine)


def person_edits(event: Logged) -> None:
    """Someone other than calsync changed the Event: a Subject the trigger rewrote before calsync
    ever read the Event back is theirs from then on (README "Who owns which field")."""
    if event.unread_trigger:
        event.mine.add("Subject")
        event.unread_trigger = False


def row_values(row: dict[str, Any], today: dt.datetime) -> tuple[int, dict[str, Any]]:
    """(meeting number, the fields the model checks) of a Salesforce Event."""
    found = TOKEN.search(row["Subject"] or "")
    assert found, row["Subject"]
    start = dt.datetime.fromisoformat(row["StartDateTime"].replace("+0000", "+00:00"))
    end = dt.datetime.fromisoformat(row["EndDateTime"].replace("+0000", "+00:00"))
    assert end - start == HOUR, row
    return int(found.group(1)), {
        "Subject": row["Subject"],
        "Start": ((start - today).days, start.hour),
        "Location": row["Location"],
        "Description": row["Description"],
        "WhoId": (row["WhoId"] or "")[:15] or None,
        "WhatId": (row["WhatId"] or "")[:15] or None,
    }
