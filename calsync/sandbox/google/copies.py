"""How one meeting lives in several calendars (reference A6): placing its copies.

A `Meeting` holds the organizer's truth (the Google-shaped body, its exceptions, its sequence).
After every change `Copies.place()` renders the meeting for every participant who is a user of the
domain (same `id` and `iCalUID` in every copy, per-copy `self` flags) and compares each rendering
with what that calendar stores: a changed copy gets a new `updated`/`etag` and a new change number
(`seq`), a copy that is no longer rendered (attendee removed, meeting deleted) becomes a deleted
stub. Incremental sync is then "every item of this calendar whose `seq` is above the token's"
(reference A2), deletions included (reference A3); see listing.py.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from calsync.sandbox.google.bodies import apply_changes, normalise
from calsync.sandbox.google.domain import Domain, Meeting, Occurrence, StoredItem
from calsync.sandbox.google.eventtime import duration, render_time, shifted, to_event_time
from calsync.sandbox.google.resources import render_copy, render_item


class Copies:
    """Renders meetings into their participants' calendars and records what changed."""

    def __init__(self, domain: Domain, on_changed: Callable[[set[str]], None]) -> None:
        self.domain = domain
        self.on_changed = on_changed  # told which calendars changed (push.py's PushHub.changed)

    def place(self, meeting: Meeting) -> None:
        """Re-render the meeting in every participant's calendar; record what changed, and
        notify the channels watching a calendar that changed (push.py)."""
        wanted = {} if meeting.deleted else self._materialise(meeting)
        changed: set[str] = set()
        for owner, items in wanted.items():
            calendar = self.domain.calendars[owner]
            for item_id, content in items.items():
                stored = calendar.items.get(item_id)
                if stored is not None and not stored.deleted and stored.content == content:
                    continue
                seq, now = self.domain.next_seq(), self.domain.now()
                changed.add(owner)
                if stored is None:
                    calendar.items[item_id] = StoredItem(
                        item_id, meeting.id, meeting.ical_uid, content, seq, now
                    )
                else:
                    stored.content, stored.seq, stored.updated = content, seq, now
                    stored.deleted = False
        for owner, item_ids in meeting.placed.items():
            for item_id in item_ids - set(wanted.get(owner, {})):
                stored = self.domain.calendars[owner].items.get(item_id)
                if stored is not None and not stored.deleted:
                    stored.deleted = True
                    stored.seq, stored.updated = self.domain.next_seq(), self.domain.now()
                    changed.add(owner)
        for owner, items in wanted.items():
            meeting.placed.setdefault(owner, set()).update(items)
        self.on_changed(changed)

    def _participants(self, body: dict[str, Any]) -> list[str]:
        """Users whose calendar holds a copy: the organizer and attending users (reference A6)."""
        out: list[str] = []
        emails = [body["organizer"]["email"]] + [a["email"] for a in body.get("attendees") or []]
        for email in emails:
            address = email.lower()
            if address in self.domain.users and address not in out:
                out.append(address)
        return out

    def _materialise(self, meeting: Meeting) -> dict[str, dict[str, dict[str, Any]]]:
        out: dict[str, dict[str, dict[str, Any]]] = {}
        master_owners = self._participants(meeting.body)
        for owner in master_owners:
            out.setdefault(owner, {})[meeting.id] = render_copy(
                meeting, owner, meeting.body, meeting.id, None
            )
        for instance_id, occurrence in meeting.exceptions.items():
            cancelled = {
                "kind": "calendar#event",
                "id": instance_id,
                "status": "cancelled",
                "recurringEventId": meeting.id,
                "originalStartTime": render_time(occurrence.original_start),
            }
            if occurrence.cancelled:
                for owner in master_owners:
                    out[owner][instance_id] = dict(cancelled)
                continue
            body = self.occurrence_body(meeting, occurrence)
            owners = self._participants(body)
            for owner in owners:
                out.setdefault(owner, {})[instance_id] = render_copy(
                    meeting, owner, body, instance_id, occurrence.original_start
                )
            for owner in master_owners:
                if owner not in owners:  # dropped from this occurrence only
                    out[owner][instance_id] = dict(cancelled)
        return out

    def occurrence_body(self, meeting: Meeting, occurrence: Occurrence) -> dict[str, Any]:
        """One occurrence's body: the master's at the occurrence's slot, with its changes."""
        start = occurrence.original_start
        end = shifted(start, duration(to_event_time(meeting.body["start"]),
                                      to_event_time(meeting.body["end"])))
        body = copy.deepcopy(meeting.body)
        body.pop("recurrence", None)
        body.update(start=render_time(start), end=render_time(end))
        body = apply_changes(body, occurrence.changes)
        return normalise(self.domain.users, body["organizer"], body, meeting.body)

    def view(self, meeting: Meeting, item_id: str) -> dict[str, Any]:
        """The stored copy the caller most likely wants: the organizer's, else the first."""
        owners = [meeting.body["organizer"]["email"].lower()] + sorted(meeting.placed)
        for owner in owners:
            calendar = self.domain.calendars.get(owner)
            item = calendar.items.get(item_id) if calendar else None
            if item is not None and not item.deleted:
                return render_item(item, None)
        if item_id == meeting.id:
            return render_copy(meeting, None, meeting.body, meeting.id, None)
        occurrence = meeting.exceptions[item_id]
        body = self.occurrence_body(meeting, occurrence)
        return render_copy(meeting, None, body, item_id, occurrence.original_start)
