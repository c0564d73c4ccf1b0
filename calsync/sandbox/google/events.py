"""The organizer's edits of meetings: insert, update, delete, restore, responses, series.

`EventStore` changes the organizer's truth (domain.py's `Meeting`) and has copies.py re-place the
meeting in every participant's calendar after each change (reference A6). A recurring series keeps
its exceptions by instance id `<master>_<suffix>` (reference A4): a modified or cancelled
occurrence, or a split ("this and following events") into two series.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import secrets
from typing import Any

from calsync.core.model import EventTime
from calsync.sandbox.google.bodies import RESPONSE_STATUSES, apply_changes, normalise
from calsync.sandbox.google.copies import Copies
from calsync.sandbox.google.domain import Domain, Meeting, Occurrence
from calsync.sandbox.google.eventtime import (
    UTC,
    duration,
    expand,
    instant,
    render_time,
    series_zone,
    shifted,
    to_event_time,
)
from calsync.sandbox.google.rrule import instance_suffix

ID_ALPHABET = "0123456789abcdefghijklmnopqrstuv"  # base32hex, reference A5
_ID_RE = re.compile(r"[0-9a-v]{5,1024}\Z")


def new_event_id() -> str:
    """A Google-like event id: 26 base32hex characters (reference A5)."""
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(26))


class EventStore:
    """Meetings and their series, changed as their organizer (or an attendee answering) would."""

    def __init__(self, domain: Domain, copies: Copies) -> None:
        self.domain = domain
        self.copies = copies

    def create_event(self, organizer: str | dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        """Create a meeting organised by `organizer` (a user or an external address).

        `body` is Google-shaped (summary, start, end, attendees, recurrence, visibility,
        eventType, ...; attendees may be plain addresses); `id`/`iCalUID` may be given. Returns
        the organizer's copy (or the first copy when the organizer is external).
        """
        with self.domain.lock:
            body = copy.deepcopy(body)
            event_id = body.pop("id", None) or new_event_id()
            if not _ID_RE.match(event_id) or event_id in self.domain.meetings:
                raise ValueError(f"bad or duplicate event id {event_id!r} (reference A5)")
            ical_uid = body.pop("iCalUID", None) or f"{event_id}@google.com"
            meeting = Meeting(
                id=event_id,
                ical_uid=ical_uid,
                body=normalise(self.domain.users, organizer, body, None),
                created=self.domain.now(),
            )
            self.domain.meetings[event_id] = meeting
            self.copies.place(meeting)
            return self.copies.view(meeting, event_id)

    def update_event(self, event_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """The organizer edits the event (or series): every copy changes (reference A6).

        A key set to None removes the field; `attendees` replaces the list (responses of kept
        attendees survive). An instance id (`<master>_<suffix>`) edits that occurrence.
        """
        with self.domain.lock:
            if event_id not in self.domain.meetings:
                master_id, original = self._split_instance_id(event_id)
                return self.modify_occurrence(master_id, original, changes)
            if self.domain.meetings[event_id].deleted and changes.get("status") == "confirmed":
                # events.update on a deleted event with status "confirmed" undeletes it.
                self.restore_event(event_id)
                changes = {k: v for k, v in changes.items() if k != "status"}
                if not changes:
                    return self.copies.view(self.domain.meetings[event_id], event_id)
            meeting = self.domain.live_meeting(event_id)
            body = apply_changes(meeting.body, changes)
            meeting.body = normalise(
                self.domain.users, body.get("organizer"), body, meeting.body
            )
            meeting.sequence += 1
            self.copies.place(meeting)
            return self.copies.view(meeting, event_id)

    def delete_event(self, event_id: str) -> None:
        """Delete the meeting: every copy becomes a cancelled stub (an instance id cancels it)."""
        with self.domain.lock:
            if event_id not in self.domain.meetings:
                master_id, original = self._split_instance_id(event_id)
                self.cancel_occurrence(master_id, original)
                return
            meeting = self.domain.live_meeting(event_id)
            meeting.deleted = True
            self.copies.place(meeting)

    def restore_event(self, event_id: str) -> dict[str, Any]:
        """Undelete a deleted meeting (restored from the trash): every copy comes back, live,
        with its id, iCalUID and details, as a change that incremental sync lists.

        Google keeps a deleted event's details on the organizer's calendar "so that they can be
        restored (undeleted)" (Event `status`, https://developers.google.com/calendar/api/v3/
        reference/events); the Calendar UI restores from its trash, the API by an events.update
        with `status: "confirmed"` (`update_event` takes that too). Once Google has forgotten the
        deleted items (`purge_deleted`), there is nothing left to restore: KeyError.
        """
        with self.domain.lock:
            meeting = self.domain.meetings.get(event_id)
            if meeting is None:
                raise KeyError(f"no event {event_id!r}")
            if not meeting.deleted:
                return self.copies.view(meeting, event_id)
            calendars = self.domain.calendars
            if not any(
                event_id in calendars[owner].items for owner in meeting.placed if owner in calendars
            ):
                raise KeyError(f"event {event_id!r} was deleted and purged: nothing to restore")
            meeting.deleted = False
            meeting.sequence += 1
            self.copies.place(meeting)
            return self.copies.view(meeting, event_id)

    def respond(self, user: str, event_id: str, status: str) -> None:
        """`user` answers the invitation; their responseStatus changes in every copy."""
        if status not in RESPONSE_STATUSES:
            raise ValueError(f"responseStatus must be one of {sorted(RESPONSE_STATUSES)}")
        address = user.strip().lower()
        with self.domain.lock:
            if event_id not in self.domain.meetings:
                # An instance id: the answer holds for that occurrence only.
                master_id, original = self._split_instance_id(event_id)
                meeting = self.domain.live_meeting(master_id)
                slot_start, _ = self._slot(meeting, original)
                occurrence = meeting.exceptions.get(f"{master_id}_{instance_suffix(slot_start)}")
                base = occurrence.changes if occurrence and not occurrence.cancelled else {}
                attendees = copy.deepcopy(base.get("attendees") or meeting.body.get("attendees"))
                for attendee in attendees or []:
                    if attendee["email"].lower() == address:
                        attendee["responseStatus"] = status
                        self.modify_occurrence(master_id, original, {"attendees": attendees})
                        return
                raise ValueError(f"{user} is not an attendee of {event_id}")
            meeting = self.domain.live_meeting(event_id)
            found = False
            bodies = [meeting.body] + [o.changes for o in meeting.exceptions.values()]
            for body in bodies:
                for attendee in body.get("attendees") or []:
                    if attendee["email"].lower() == address:
                        attendee["responseStatus"] = status
                        found = True
            if not found:
                raise ValueError(f"{user} is not an attendee of {event_id}")
            self.copies.place(meeting)

    def modify_occurrence(
        self, master_id: str, original_start: Any, changes: dict[str, Any]
    ) -> dict[str, Any]:
        """Edit one occurrence of a series: an exception item `<master>_<suffix>` (reference A4)."""
        with self.domain.lock:
            meeting = self.domain.live_meeting(master_id)
            slot_start, slot_end = self._slot(meeting, original_start)
            instance_id = f"{meeting.id}_{instance_suffix(slot_start)}"
            occurrence = meeting.exceptions.get(instance_id)
            previous = occurrence.changes if occurrence and not occurrence.cancelled else {}
            merged = dict(previous)
            merged.update(copy.deepcopy(changes))
            if merged.get("attendees"):
                merged["attendees"] = [
                    {"email": a} if isinstance(a, str) else a for a in merged["attendees"]
                ]
            if "start" in changes and "end" not in changes:
                length = duration(slot_start, slot_end)
                merged["end"] = render_time(shifted(to_event_time(changes["start"]), length))
            meeting.exceptions[instance_id] = Occurrence(slot_start, merged)
            self.copies.occurrence_body(meeting, meeting.exceptions[instance_id])  # validate now
            self.copies.place(meeting)
            return self.copies.view(meeting, instance_id)

    def cancel_occurrence(self, master_id: str, original_start: Any) -> str:
        """Remove one occurrence: a cancelled exception in every copy; returns its id."""
        with self.domain.lock:
            meeting = self.domain.live_meeting(master_id)
            slot_start, _ = self._slot(meeting, original_start)
            instance_id = f"{meeting.id}_{instance_suffix(slot_start)}"
            meeting.exceptions[instance_id] = Occurrence(slot_start, {}, cancelled=True)
            self.copies.place(meeting)
            return instance_id

    def split_series(
        self, master_id: str, at_original_start: Any, changes: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """"This and following events": the old rule ends just before the slot, a new series
        (new id, new iCalUID) starts there with `changes` applied. Returns the new series."""
        with self.domain.lock:
            meeting = self.domain.live_meeting(master_id)
            if not meeting.body.get("recurrence"):
                raise ValueError(f"{master_id} is not a recurring series")
            slot_start, slot_end = self._slot(meeting, at_original_start)
            start = to_event_time(meeting.body["start"])
            zone = series_zone(start)
            cut = instant(slot_start, zone)
            before = [
                s for s, _ in expand(start, to_event_time(meeting.body["end"]),
                                     meeting.body["recurrence"], before=cut)
            ]
            if not before:
                raise ValueError("split at the first occurrence: use update_event")
            old_lines, new_lines = split_rules(meeting.body["recurrence"], slot_start, len(before))
            for instance_id, occurrence in list(meeting.exceptions.items()):
                if instant(occurrence.original_start, zone) >= cut:
                    del meeting.exceptions[instance_id]
            new_body = copy.deepcopy(meeting.body)
            meeting.body["recurrence"] = old_lines
            meeting.sequence += 1
            self.copies.place(meeting)
            new_body.update(
                start=render_time(slot_start), end=render_time(slot_end), recurrence=new_lines
            )
            new_body = apply_changes(new_body, changes or {})
            return self.create_event(new_body["organizer"], new_body)

    def set_copy_fields(self, user: str, event_id: str, fields: dict[str, Any]) -> None:
        """Override fields on one user's copy only (None removes), e.g. visibility."""
        with self.domain.lock:
            meeting = self.domain.live_meeting(event_id)
            current = meeting.copy_fields.setdefault(user.strip().lower(), {})
            current.update(copy.deepcopy(fields))
            self.copies.place(meeting)

    def _split_instance_id(self, event_id: str) -> tuple[str, EventTime]:
        master_id, _, suffix = event_id.rpartition("_")
        if master_id not in self.domain.meetings:
            raise KeyError(f"no event {event_id!r}")
        try:
            if "T" in suffix:
                moment = dt.datetime.strptime(suffix, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
                return master_id, EventTime(date_time=moment)
            return master_id, EventTime(date=dt.datetime.strptime(suffix, "%Y%m%d").date())
        except ValueError:
            raise KeyError(f"no event {event_id!r}") from None

    def _slot(self, meeting: Meeting, original_start: Any) -> tuple[EventTime, EventTime]:
        """The series slot named by `original_start` (as the rule renders it), or ValueError."""
        if not meeting.body.get("recurrence"):
            raise ValueError(f"{meeting.id} is not a recurring series")
        wanted = to_event_time(original_start)
        if wanted.date is None and meeting.body["start"].get("date"):
            raise ValueError("an all-day series' occurrences are dates")
        key = instance_suffix(wanted)
        start = to_event_time(meeting.body["start"])
        around = (
            dt.datetime.combine(wanted.date, dt.time(), UTC)
            if wanted.date is not None
            else wanted.date_time
        )
        assert around is not None
        for slot_start, slot_end in expand(
            start,
            to_event_time(meeting.body["end"]),
            meeting.body["recurrence"],
            around - dt.timedelta(days=2),
            around + dt.timedelta(days=2),
        ):
            if instance_suffix(slot_start) == key:
                return slot_start, slot_end
        raise ValueError(f"{meeting.id} has no occurrence at {key}")

    def forget_deleted(self, user: str | None = None) -> int:
        """Drop deleted items (of one calendar, or all) from the calendars; returns how many."""
        address = user.strip().lower() if user else None
        purged = 0
        with self.domain.lock:
            for calendar in self.domain.calendars.values():
                if address is not None and calendar.owner != address:
                    continue
                gone = [item_id for item_id, item in calendar.items.items() if item.deleted]
                for item_id in gone:
                    del calendar.items[item_id]
                purged += len(gone)
        return purged


def split_rules(
    lines: list[str], at: EventTime, slots_before: int
) -> tuple[list[str], list[str]]:
    """RRULE lines for the old series (UNTIL just before `at`) and the new one (rest of COUNT)."""
    if at.date is not None:
        until = (at.date - dt.timedelta(days=1)).strftime("%Y%m%d")
    else:
        assert at.date_time is not None
        moment = at.date_time.astimezone(UTC) - dt.timedelta(seconds=1)
        until = moment.strftime("%Y%m%dT%H%M%SZ")
    old, new = [], []
    for line in lines:
        if not line.upper().startswith("RRULE"):
            old.append(line)
            new.append(line)
            continue
        head, _, rule = line.partition(":")
        parts = [p for p in rule.split(";") if p]
        kept = [p for p in parts if p.split("=")[0].upper() not in ("COUNT", "UNTIL")]
        old.append(f"{head}:" + ";".join(kept + [f"UNTIL={until}"]))
        count = next((p for p in parts if p.upper().startswith("COUNT=")), None)
        if count is not None:
            remaining = max(int(count.split("=")[1]) - slots_before, 1)
            new.append(f"{head}:" + ";".join(kept + [f"COUNT={remaining}"]))
        else:
            new.append(line)
    return old, new

