"""What readers see of a calendar: events.list with its pages and sync tokens, events.get.

events.list (reference A1-A4): a full listing (timeMin/timeMax windows, iCalUID, q, updatedMin,
showDeleted, singleEvents expanding series, orderBy) or an incremental one from a sync token
("every item of this calendar whose change number is above the token's", deletions included). A
listing is computed at its first page and later pages read from that snapshot; the last page
carries the nextSyncToken. Tokens expire (410 fullSyncRequired) after `sync_token_max_age`, when
invalidated, or when issued by an earlier run of the emulator.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import secrets
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from calsync.sandbox.google.domain import Calendar, Domain, StoredItem
from calsync.sandbox.google.errors import GoogleError, invalid_value
from calsync.sandbox.google.eventtime import (
    UTC,
    duration,
    expand,
    instant,
    render_time,
    shifted,
    to_event_time,
)
from calsync.sandbox.google.resources import (
    html_link,
    is_cancelled_exception,
    is_master,
    render_item,
    stub,
    with_meta,
)
from calsync.sandbox.google.rrule import instance_suffix

DEFAULT_MAX_RESULTS = 250  # reference A1
MAX_MAX_RESULTS = 2500
# singleEvents=true without timeMax: how far an endless series is expanded.
EXPANSION_HORIZON = dt.timedelta(days=730)


@dataclass
class SyncToken:
    token: str
    calendar: str
    seq: int
    issued_at: dt.datetime
    invalidated: bool = False


@dataclass
class _Snapshot:
    """A listing computed at its first page; later pages read from it (stable under edits)."""

    calendar: str
    items: list[dict[str, Any]]
    seq: int  # the change number the listing reflects: the nextSyncToken's


@dataclass(frozen=True)
class ListQuery:
    """events.list parameters after parsing (reference A1)."""

    max_results: int = DEFAULT_MAX_RESULTS
    page_token: str | None = None
    sync_token: str | None = None
    show_deleted: bool = False
    single_events: bool = False
    time_min: dt.datetime | None = None
    time_max: dt.datetime | None = None
    updated_min: dt.datetime | None = None
    order_by: str | None = None
    ical_uid: str | None = None
    q: str | None = None
    max_attendees: int | None = None


@dataclass(frozen=True)
class EventsPage:
    """One events.list answer before rendering: exactly one of the two tokens is set."""

    calendar: str
    time_zone: str
    updated: dt.datetime
    items: list[dict[str, Any]]
    next_page_token: str | None = None
    next_sync_token: str | None = None


class EventListing:
    """events.list and events.get over the domain's calendars; the sync tokens they issue."""

    def __init__(self, domain: Domain) -> None:
        self.domain = domain
        self.sync_token_max_age = dt.timedelta(days=7)
        self.list_calls: dict[str, int] = defaultdict(int)  # events.list calls per calendar
        self.sync_tokens: dict[str, SyncToken] = {}
        self._pages: dict[str, tuple[_Snapshot, int]] = {}
        self._epoch = secrets.token_hex(4)  # tokens of an earlier run are stale, not garbage
        self._serial = 0

    def calendar_events(self, user: str, include_deleted: bool = True) -> list[dict[str, Any]]:
        """A calendar's items as the backend holds them (deleted ones: status cancelled)."""
        with self.domain.lock:
            calendar = self.domain.calendar(user)
            out = []
            for item in calendar.items.values():
                if item.deleted and not include_deleted:
                    continue
                rendered = with_meta(item, item.content)
                if item.deleted:
                    rendered["status"] = "cancelled"
                out.append(rendered)
            return out

    def get_event(self, user: str, event_id: str) -> dict[str, Any] | None:
        """events.get: one item of `user`'s calendar (cancelled ones too, reference A3)."""
        with self.domain.lock:
            item = self.domain.calendar(user).items.get(event_id)
            if item is None:
                return None
            return stub(item) if item.deleted else render_item(item, None)

    def invalidate_sync_tokens(self, user: str | None = None) -> int:
        """Make every sync token (of one calendar, or all) answer 410 (reference A2)."""
        address = user.strip().lower() if user else None
        count = 0
        with self.domain.lock:
            for record in self.sync_tokens.values():
                if not record.invalidated and (address is None or record.calendar == address):
                    record.invalidated = True
                    count += 1
        return count

    def adopt_sync_token(self, user: str, token: str) -> None:
        """Test setup: a sync token another run of the emulator issued to `user`'s calendar
        counts as issued now, so the next incremental listing with it returns what changes from
        here on. Upgrading calsync leaves Google untouched: the tokens an older calsync stored
        stay good (reference A2), and the upgrade tests rebuild the calendars it listed
        (tests/state/fixtures). No API does this."""
        with self.domain.lock:
            calendar = self.domain.calendar(user)
            self.sync_tokens[token] = SyncToken(
                token, calendar.owner, self.domain.seq, self.domain.now()
            )

    def list_events(self, calendar_id: str, query: ListQuery) -> EventsPage:
        """One page of events.list for a resolved calendar (reference A1-A4)."""
        with self.domain.lock:
            calendar = self.domain.calendar(calendar_id)
            self.list_calls[calendar.owner] += 1
            if query.sync_token is not None:
                since = self._check_sync_token(calendar, query.sync_token).seq
            else:
                since = None
            if query.page_token is not None:
                found = self._pages.get(query.page_token)
                if found is None or found[0].calendar != calendar.owner:
                    raise invalid_value("pageToken")
                snapshot, offset = found
            else:
                items = self._select(calendar, query, since)
                snapshot, offset = _Snapshot(calendar.owner, items, self.domain.seq), 0
            return self._page(calendar, snapshot, offset, query.max_results)

    def _page(
        self, calendar: Calendar, snapshot: _Snapshot, offset: int, size: int
    ) -> EventsPage:
        chunk = snapshot.items[offset : offset + size]
        next_page = next_sync = None
        if offset + size < len(snapshot.items):
            next_page = self._new_token("p")
            self._pages[next_page] = (snapshot, offset + size)
        else:
            # nextSyncToken on the last page only (reference A1, A2).
            next_sync = self._new_token("s")
            self.sync_tokens[next_sync] = SyncToken(
                next_sync, calendar.owner, snapshot.seq, self.domain.now()
            )
        updated = max(
            (item.updated for item in calendar.items.values()), default=calendar.created
        )
        return EventsPage(
            calendar=calendar.owner,
            time_zone=self.domain.users[calendar.owner].time_zone,
            updated=updated,
            items=copy.deepcopy(chunk),
            next_page_token=next_page,
            next_sync_token=next_sync,
        )

    def _new_token(self, kind: str) -> str:
        self._serial += 1
        raw = f"{kind}:{self._epoch}:{self._serial}:{secrets.token_hex(4)}".encode()
        return "C" + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _check_sync_token(self, calendar: Calendar, token: str) -> SyncToken:
        try:
            raw = base64.urlsafe_b64decode(token[1:] + "=" * (-len(token[1:]) % 4)).decode()
            kind, _, _, _ = raw.split(":")
        except ValueError:
            raise invalid_value("syncToken") from None
        if not token.startswith("C") or kind != "s":
            raise invalid_value("syncToken")
        record = self.sync_tokens.get(token)
        if record is None:
            raise GoogleError(410, "fullSyncRequired")  # issued by an earlier run (not adopted)
        if record.calendar != calendar.owner:
            raise invalid_value("syncToken")
        if record.invalidated or self.domain.now() - record.issued_at > self.sync_token_max_age:
            raise GoogleError(410, "fullSyncRequired")
        return record

    def _select(
        self, calendar: Calendar, query: ListQuery, since: int | None
    ) -> list[dict[str, Any]]:
        zone = ZoneInfo(self.domain.users[calendar.owner].time_zone)
        incremental = since is not None
        # Deleted items show with showDeleted, and always on incremental/updatedMin listings
        # (reference A1, A3).
        deletions_wanted = incremental or query.show_deleted or query.updated_min is not None
        picked: list[tuple[dt.datetime | None, dt.datetime, int, dict[str, Any]]] = []

        def keep(item: StoredItem, rendered: dict[str, Any], start: dt.datetime | None) -> None:
            picked.append((start, item.updated, len(picked), rendered))

        for item in list(calendar.items.values()):
            content = item.content
            if since is not None and item.seq <= since:
                continue
            if query.ical_uid is not None and item.ical_uid != query.ical_uid:
                continue
            if query.updated_min is not None and item.updated < query.updated_min:
                continue
            if item.deleted:
                if not deletions_wanted:
                    continue
                if query.single_events and is_master(content) and not incremental:
                    continue  # singleEvents: deleted instances, not masters (reference A4)
                if not self._in_window(content, zone, query):
                    continue
                keep(item, stub(item), self._start_of(content, zone))
                continue
            if is_cancelled_exception(content):
                # singleEvents=false returns cancelled exceptions even without showDeleted
                # (reference A4).
                if query.single_events and not deletions_wanted:
                    continue
                if not self._in_window(content, zone, query):
                    continue
                keep(item, render_item(item, None), self._start_of(content, zone))
                continue
            if content.get("status") == "cancelled" and not deletions_wanted:
                continue
            if query.q is not None and not matches(content, query.q):
                continue
            if is_master(content) and query.single_events:
                for instance in self._instances(calendar, item, zone, query):
                    keep(item, instance, self._start_of(instance, zone))
                continue
            if not self._in_window(content, zone, query):
                continue
            keep(item, render_item(item, query.max_attendees), self._start_of(content, zone))

        far = dt.datetime.max.replace(tzinfo=UTC)
        if query.order_by == "updated":
            picked.sort(key=lambda p: (p[1], p[2]))
        elif query.order_by == "startTime" or query.single_events:
            picked.sort(key=lambda p: (p[0] or far, p[2]))
        return [p[3] for p in picked]

    def _instances(
        self, calendar: Calendar, master: StoredItem, zone: dt.tzinfo, query: ListQuery
    ) -> Iterator[dict[str, Any]]:
        """singleEvents=true: the series' slots without an exception item (reference A4)."""
        content = master.content
        start, end = to_event_time(content["start"]), to_event_time(content["end"])
        length = instant(end, zone) - instant(start, zone)
        after = query.time_min - length - dt.timedelta(days=1) if query.time_min else None
        before = query.time_max or (self.domain.now() + EXPANSION_HORIZON)
        for slot_start, slot_end in expand(start, end, content["recurrence"], after, before):
            instance_id = f"{master.id}_{instance_suffix(slot_start)}"
            if instance_id in calendar.items:
                continue  # the exception item (modified, cancelled or deleted) stands for it
            s, e = instant(slot_start, zone), instant(slot_end, zone)
            if query.time_max is not None and s >= query.time_max:
                continue
            if query.time_min is not None and e <= query.time_min:
                continue
            instance: dict[str, Any] = {}
            for key, value in content.items():
                if key == "recurrence":
                    continue
                if key == "id":
                    value = instance_id
                elif key == "htmlLink":
                    value = html_link(instance_id, calendar.owner)
                elif key == "start":
                    value = render_time(slot_start)
                elif key == "end":
                    instance["end"] = render_time(slot_end)
                    instance["recurringEventId"] = master.id
                    instance["originalStartTime"] = render_time(slot_start)
                    continue
                instance[key] = copy.deepcopy(value)
            yield with_meta(master, instance, query.max_attendees)

    def _start_of(self, content: dict[str, Any], zone: dt.tzinfo) -> dt.datetime | None:
        raw = content.get("start") or content.get("originalStartTime")
        return instant(to_event_time(raw), zone) if raw else None

    def _in_window(self, content: dict[str, Any], zone: dt.tzinfo, query: ListQuery) -> bool:
        """timeMin bounds the END (exclusive), timeMax the START (exclusive) (reference A1)."""
        tmin, tmax = query.time_min, query.time_max
        if tmin is None and tmax is None:
            return True
        if "start" in content:
            start, end = to_event_time(content["start"]), to_event_time(content["end"])
        elif "originalStartTime" in content:
            start = to_event_time(content["originalStartTime"])
            master = self.domain.meetings.get(content.get("recurringEventId", ""))
            length = (
                duration(to_event_time(master.body["start"]), to_event_time(master.body["end"]))
                if master is not None
                else dt.timedelta(0)
            )
            end = shifted(start, length)
        else:
            return True
        if is_master(content):
            length = instant(end, zone) - instant(start, zone)
            after = tmin - length - dt.timedelta(days=1) if tmin else None
            for slot_start, slot_end in expand(start, end, content["recurrence"], after, tmax):
                s, e = instant(slot_start, zone), instant(slot_end, zone)
                if (tmax is None or s < tmax) and (tmin is None or e > tmin):
                    return True
            return False
        s, e = instant(start, zone), instant(end, zone)
        if content.get("endTimeUnspecified"):
            e = s
        return (tmax is None or s < tmax) and (tmin is None or e > tmin)


def matches(content: dict[str, Any], text: str) -> bool:
    """`q`: a simple case-insensitive substring over the searchable fields (reference A1)."""
    parts = [content.get(k) or "" for k in ("summary", "description", "location")]
    for person in [content.get("organizer") or {}] + list(content.get("attendees") or []):
        parts += [person.get("email") or "", person.get("displayName") or ""]
    return text.lower() in "\n".join(parts).lower()

