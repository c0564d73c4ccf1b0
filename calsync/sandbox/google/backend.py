"""The Google Calendar emulator's state: users, meetings, each user's calendar, sync tokens.

Plain Python objects, no HTTP (the moto layout): tests and the sandbox seed through these methods,
`routes.py` turns events.list requests into `list_events()` calls.

How one meeting lives in several calendars (reference A6): a `Meeting` holds the organizer's truth
(the Google-shaped body, its exceptions, its sequence). After every change `_place()` renders the
meeting for every participant who is a user of the domain (same `id` and `iCalUID` in every copy,
per-copy `self` flags) and compares each rendering with what that calendar stores: a changed copy
gets a new `updated`/`etag` and a new change number (`seq`), a copy that is no longer rendered
(attendee removed, meeting deleted) becomes a deleted stub. Incremental sync is then "every item of
this calendar whose `seq` is above the token's" (reference A2), deletions included (reference A3).
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import logging
import re
import secrets
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from calsync.core.model import EventTime
from calsync.sandbox.google.errors import GoogleError, invalid_value
from calsync.sandbox.google.oauth import READONLY_SCOPES, AccessToken, GoogleAuth
from calsync.sandbox.google.push import PushHub
from calsync.sandbox.google.rrule import RuleError, instance_suffix, slots

log = logging.getLogger(__name__)

UTC = dt.timezone.utc
ID_ALPHABET = "0123456789abcdefghijklmnopqrstuv"  # base32hex, reference A5
_ID_RE = re.compile(r"[0-9a-v]{5,1024}\Z")
RESPONSE_STATUSES = frozenset({"needsAction", "declined", "tentative", "accepted"})
DEFAULT_MAX_RESULTS = 250  # reference A1
MAX_MAX_RESULTS = 2500
# singleEvents=true without timeMax: how far an endless series is expanded.
EXPANSION_HORIZON = dt.timedelta(days=730)
# Body keys the renderer places itself; anything else in a body is passed through as is.
_KNOWN_KEYS = frozenset(
    {
        "kind", "id", "iCalUID", "status", "htmlLink", "created", "updated", "etag", "summary",
        "description", "location", "colorId", "creator", "organizer", "start", "end",
        "endTimeUnspecified", "recurrence", "recurringEventId", "originalStartTime",
        "transparency", "visibility", "sequence", "attendees", "attendeesOmitted", "reminders",
        "eventType",
    }
)


# -- time helpers ---------------------------------------------------------------------------


def rfc3339(value: dt.datetime) -> str:
    """Google's timestamp form: UTC with milliseconds, e.g. 2026-01-05T15:00:00.000Z."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_instant(text: str) -> dt.datetime:
    """An RFC 3339 timestamp that must carry an offset (reference A1); ValueError otherwise."""
    value = dt.datetime.fromisoformat(text.strip().replace("z", "Z"))
    if value.tzinfo is None:
        raise ValueError(f"timestamp without offset: {text!r}")
    return value


def to_event_time(value: Any) -> EventTime:
    """Accept a Google start/end dict, an EventTime, a datetime, a date or an ISO string."""
    if isinstance(value, EventTime):
        return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime: give an offset or a zone")
        return EventTime(date_time=value)
    if isinstance(value, dt.date):
        return EventTime(date=value)
    if isinstance(value, str):
        if len(value.strip()) == 10:
            return EventTime(date=dt.date.fromisoformat(value.strip()))
        return EventTime(date_time=parse_instant(value))
    if isinstance(value, dict):
        zone_name = value.get("timeZone")
        if value.get("date"):
            return EventTime(date=dt.date.fromisoformat(str(value["date"])), time_zone=zone_name)
        if value.get("dateTime"):
            moment = dt.datetime.fromisoformat(str(value["dateTime"]).replace("z", "Z"))
            if moment.tzinfo is None:
                if not zone_name:
                    raise ValueError("dateTime needs an offset or a timeZone (reference A5)")
                moment = moment.replace(tzinfo=ZoneInfo(zone_name))
            elif zone_name:
                ZoneInfo(zone_name)  # refuse unknown zones early
            return EventTime(date_time=moment, time_zone=zone_name)
    raise ValueError(f"not a start/end: {value!r}")


def render_time(value: EventTime) -> dict[str, str]:
    """The Google dict for a start/end: `date`, or `dateTime` (in its zone) + `timeZone`."""
    if value.date is not None:
        return {"date": value.date.isoformat()}
    assert value.date_time is not None
    moment = value.date_time
    if value.time_zone:
        moment = moment.astimezone(ZoneInfo(value.time_zone))
    text = moment.isoformat(timespec="seconds")
    if text.endswith("+00:00"):
        text = text[:-6] + "Z"
    out = {"dateTime": text}
    if value.time_zone:
        out["timeZone"] = value.time_zone
    return out


def instant(value: EventTime, zone: dt.tzinfo) -> dt.datetime:
    """When a start/end happens; all-day dates start at midnight in the calendar's zone."""
    if value.date is not None:
        return dt.datetime.combine(value.date, dt.time(), zone)
    assert value.date_time is not None
    return value.date_time


def _shift(value: EventTime, delta: dt.timedelta) -> EventTime:
    if value.date is not None:
        return EventTime(date=value.date + delta, time_zone=value.time_zone)
    assert value.date_time is not None
    return EventTime(date_time=value.date_time + delta, time_zone=value.time_zone)


def _length(start: EventTime, end: EventTime) -> dt.timedelta:
    if start.date is not None and end.date is not None:
        return dt.timedelta(days=(end.date - start.date).days)
    if start.date_time is not None and end.date_time is not None:
        return end.date_time - start.date_time
    raise ValueError("start and end must both be dates or both be dateTimes")


def new_event_id() -> str:
    """A Google-like event id: 26 base32hex characters (reference A5)."""
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(26))


def _html_link(event_id: str, calendar: str | None) -> str:
    eid = base64.urlsafe_b64encode(f"{event_id} {calendar or ''}".strip().encode()).decode()
    return "https://www.google.com/calendar/event?eid=" + eid.rstrip("=")


# -- data -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class User:
    """A user of the emulated Workspace domain; owns the calendar named by `email`."""

    email: str
    display_name: str | None = None
    time_zone: str = "UTC"


@dataclass
class Occurrence:
    """An exception of a series: a modified (`changes`) or cancelled occurrence (reference A4)."""

    original_start: EventTime
    changes: dict[str, Any]
    cancelled: bool = False


@dataclass
class Meeting:
    """The organizer's truth for one event or series; copies are rendered from it."""

    id: str
    ical_uid: str
    body: dict[str, Any]  # normalised Google-shaped fields of the event / series master
    created: dt.datetime
    sequence: int = 0
    exceptions: dict[str, Occurrence] = field(default_factory=dict)  # by instance id
    copy_fields: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-copy overrides
    deleted: bool = False
    placed: dict[str, set[str]] = field(default_factory=dict)  # calendar -> item ids


@dataclass
class StoredItem:
    """One item of one calendar as events.list sees it."""

    id: str
    meeting_id: str
    ical_uid: str
    content: dict[str, Any]  # the rendered resource without etag/updated
    seq: int  # change number; incremental sync returns items above the token's
    updated: dt.datetime
    deleted: bool = False

    @property
    def etag(self) -> str:
        return f'"{int(self.updated.timestamp() * 1000)}{self.seq % 1000000:06d}"'


@dataclass
class Calendar:
    owner: str
    created: dt.datetime
    items: dict[str, StoredItem] = field(default_factory=dict)


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


def _is_master(content: dict[str, Any]) -> bool:
    return bool(content.get("recurrence"))


def _is_cancelled_exception(content: dict[str, Any]) -> bool:
    return content.get("status") == "cancelled" and "recurringEventId" in content


# -- the backend ----------------------------------------------------------------------------


class GoogleBackend:
    """Users, meetings and calendars of one emulated Workspace domain."""

    def __init__(self, clock: Callable[[], dt.datetime] | None = None) -> None:
        self.clock: Callable[[], dt.datetime] = clock or (lambda: dt.datetime.now(UTC))
        self.base_url = "http://127.0.0.1"  # set by GoogleEmulator.start(); used in key files
        self.sync_token_max_age = dt.timedelta(days=7)
        self.list_calls: dict[str, int] = defaultdict(int)  # events.list calls per calendar
        self.users: dict[str, User] = {}
        self.meetings: dict[str, Meeting] = {}
        self.calendars: dict[str, Calendar] = {}
        self.auth = GoogleAuth(
            clock=self._now, is_user=self.is_user, token_url=lambda: f"{self.base_url}/token"
        )
        self.push = PushHub(clock=self._now, base_url=lambda: self.base_url)
        self._lock = threading.RLock()
        self._seq = 0
        self._epoch = secrets.token_hex(4)  # tokens of an earlier run are stale, not garbage
        self._serial = 0
        self._sync_tokens: dict[str, SyncToken] = {}
        self._pages: dict[str, tuple[_Snapshot, int]] = {}

    def _now(self) -> dt.datetime:
        return self.clock()

    # -- users --------------------------------------------------------------------------

    def add_user(
        self, email: str, display_name: str | None = None, time_zone: str = "UTC"
    ) -> User:
        """Add a domain user (with an empty calendar); meetings naming them get a copy."""
        ZoneInfo(time_zone)
        user = User(email.strip().lower(), display_name, time_zone)
        with self._lock:
            self.users[user.email] = user
            self.calendars.setdefault(user.email, Calendar(user.email, self.clock()))
            for meeting in self.meetings.values():
                self._place(meeting)
        return user

    def rename_user(self, old: str, new: str) -> User:
        """A Workspace rename: the user's primary address becomes `new`.

        Google's "Impact on Google apps when changing a user's email address"
        (https://support.google.com/a/answer/2622985, Calendar): the user keeps their data, and
        "existing events and events that you create after you change the user's email, display
        the new email"; the old address stays as an alias. So the calendar is the same one, with
        the same items, ids and iCalUIDs, now named by the new address, and every organizer,
        creator and attendee entry carrying the old address carries the new one (the copies
        that change get new change numbers, as any edit). Not documented, and assumed here: a
        sync token issued before the rename is refused (400 Invalid Value, as the token of
        another calendar; calsync lists a renamed calendar in full anyway), and the old address
        no longer names a calendar or an account to impersonate.
        """
        old, new = old.strip().lower(), new.strip().lower()
        with self._lock:
            if old not in self.users:
                raise KeyError(f"no user {old!r}")
            if new in self.users or new in self.calendars:
                raise ValueError(f"{new!r} is taken")
            user = self.users.pop(old)
            renamed = User(new, user.display_name, user.time_zone)
            self.users[new] = renamed
            calendar = self.calendars.pop(old)
            calendar.owner = new
            self.calendars[new] = calendar
            for meeting in self.meetings.values():
                meeting.body = _readdressed(meeting.body, old, new)
                for occurrence in meeting.exceptions.values():
                    occurrence.changes = _readdressed(occurrence.changes, old, new)
                if old in meeting.copy_fields:
                    meeting.copy_fields[new] = meeting.copy_fields.pop(old)
                if old in meeting.placed:
                    meeting.placed[new] = meeting.placed.pop(old)
                if not meeting.deleted:
                    self._place(meeting)
        return renamed

    def is_user(self, email: str) -> bool:
        return email.strip().lower() in self.users

    # -- credentials (delegated to oauth.GoogleAuth) -------------------------------------

    @property
    def access_token_lifetime(self) -> dt.timedelta:
        return self.auth.access_token_lifetime

    @access_token_lifetime.setter
    def access_token_lifetime(self, value: dt.timedelta) -> None:
        self.auth.access_token_lifetime = value

    def create_service_account(
        self,
        client_email: str = "calsync@acme-sandbox.iam.gserviceaccount.com",
        delegated_scopes: list[str] | tuple[str, ...] | None = None,
        private_key_pem: str | None = None,
    ) -> dict[str, str]:
        """A service account with domain-wide delegation; returns its key-file dict."""
        return self.auth.create_service_account(client_email, delegated_scopes, private_key_pem)

    def create_oauth_client(self) -> dict[str, dict[str, Any]]:
        """An installed-app OAuth client; returns its client-secrets dict."""
        return self.auth.create_oauth_client()

    def consent_as(self, email: str | None) -> None:
        """Who the auth endpoint consents as when the request has no login_hint."""
        self.auth.consent_user = email.lower() if email else None

    def issue_access_token(
        self, user: str, scopes: tuple[str, ...] | list[str] = READONLY_SCOPES
    ) -> str:
        """A bearer token for `user` without any OAuth dance (for tests and scripts)."""
        return self.auth.issue_access_token(user, scopes).token

    def revoke_refresh_tokens(self, user: str | None = None) -> int:
        return self.auth.revoke_refresh_tokens(user)

    # -- meetings -----------------------------------------------------------------------

    def create_event(self, organizer: str | dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        """Create a meeting organised by `organizer` (a user or an external address).

        `body` is Google-shaped (summary, start, end, attendees, recurrence, visibility,
        eventType, ...; attendees may be plain addresses); `id`/`iCalUID` may be given. Returns
        the organizer's copy (or the first copy when the organizer is external).
        """
        with self._lock:
            body = copy.deepcopy(body)
            event_id = body.pop("id", None) or new_event_id()
            if not _ID_RE.match(event_id) or event_id in self.meetings:
                raise ValueError(f"bad or duplicate event id {event_id!r} (reference A5)")
            ical_uid = body.pop("iCalUID", None) or f"{event_id}@google.com"
            meeting = Meeting(
                id=event_id,
                ical_uid=ical_uid,
                body=self._normalise(organizer, body, None),
                created=self.clock(),
            )
            self.meetings[event_id] = meeting
            self._place(meeting)
            return self._view(meeting, event_id)

    def update_event(self, event_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """The organizer edits the event (or series): every copy changes (reference A6).

        A key set to None removes the field; `attendees` replaces the list (responses of kept
        attendees survive). An instance id (`<master>_<suffix>`) edits that occurrence.
        """
        with self._lock:
            if event_id not in self.meetings:
                master_id, original = self._split_instance_id(event_id)
                return self.modify_occurrence(master_id, original, changes)
            if self.meetings[event_id].deleted and changes.get("status") == "confirmed":
                # events.update on a deleted event with status "confirmed" undeletes it.
                self.restore_event(event_id)
                changes = {k: v for k, v in changes.items() if k != "status"}
                if not changes:
                    return self._view(self.meetings[event_id], event_id)
            meeting = self._live_meeting(event_id)
            body = _apply(meeting.body, changes)
            meeting.body = self._normalise(body.get("organizer"), body, meeting.body)
            meeting.sequence += 1
            self._place(meeting)
            return self._view(meeting, event_id)

    def delete_event(self, event_id: str) -> None:
        """Delete the meeting: every copy becomes a cancelled stub (an instance id cancels it)."""
        with self._lock:
            if event_id not in self.meetings:
                master_id, original = self._split_instance_id(event_id)
                self.cancel_occurrence(master_id, original)
                return
            meeting = self._live_meeting(event_id)
            meeting.deleted = True
            self._place(meeting)

    def restore_event(self, event_id: str) -> dict[str, Any]:
        """Undelete a deleted meeting (restored from the trash): every copy comes back, live,
        with its id, iCalUID and details, as a change that incremental sync lists.

        Google keeps a deleted event's details on the organizer's calendar "so that they can be
        restored (undeleted)" (Event `status`, https://developers.google.com/calendar/api/v3/
        reference/events); the Calendar UI restores from its trash, the API by an events.update
        with `status: "confirmed"` (`update_event` takes that too). Once Google has forgotten the
        deleted items (`purge_deleted`), there is nothing left to restore: KeyError.
        """
        with self._lock:
            meeting = self.meetings.get(event_id)
            if meeting is None:
                raise KeyError(f"no event {event_id!r}")
            if not meeting.deleted:
                return self._view(meeting, event_id)
            if not any(
                event_id in self.calendars[owner].items for owner in meeting.placed if owner in self.calendars
            ):
                raise KeyError(f"event {event_id!r} was deleted and purged: nothing to restore")
            meeting.deleted = False
            meeting.sequence += 1
            self._place(meeting)
            return self._view(meeting, event_id)

    def respond(self, user: str, event_id: str, status: str) -> None:
        """`user` answers the invitation; their responseStatus changes in every copy."""
        if status not in RESPONSE_STATUSES:
            raise ValueError(f"responseStatus must be one of {sorted(RESPONSE_STATUSES)}")
        address = user.strip().lower()
        with self._lock:
            if event_id not in self.meetings:
                # An instance id: the answer holds for that occurrence only.
                master_id, original = self._split_instance_id(event_id)
                meeting = self._live_meeting(master_id)
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
            meeting = self._live_meeting(event_id)
            found = False
            bodies = [meeting.body] + [o.changes for o in meeting.exceptions.values()]
            for body in bodies:
                for attendee in body.get("attendees") or []:
                    if attendee["email"].lower() == address:
                        attendee["responseStatus"] = status
                        found = True
            if not found:
                raise ValueError(f"{user} is not an attendee of {event_id}")
            self._place(meeting)

    def modify_occurrence(
        self, master_id: str, original_start: Any, changes: dict[str, Any]
    ) -> dict[str, Any]:
        """Edit one occurrence of a series: an exception item `<master>_<suffix>` (reference A4)."""
        with self._lock:
            meeting = self._live_meeting(master_id)
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
                length = _length(slot_start, slot_end)
                merged["end"] = render_time(_shift(to_event_time(changes["start"]), length))
            meeting.exceptions[instance_id] = Occurrence(slot_start, merged)
            self._occurrence_body(meeting, meeting.exceptions[instance_id])  # validate now
            self._place(meeting)
            return self._view(meeting, instance_id)

    def cancel_occurrence(self, master_id: str, original_start: Any) -> str:
        """Remove one occurrence: a cancelled exception in every copy; returns its id."""
        with self._lock:
            meeting = self._live_meeting(master_id)
            slot_start, _ = self._slot(meeting, original_start)
            instance_id = f"{meeting.id}_{instance_suffix(slot_start)}"
            meeting.exceptions[instance_id] = Occurrence(slot_start, {}, cancelled=True)
            self._place(meeting)
            return instance_id

    def split_series(
        self, master_id: str, at_original_start: Any, changes: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """"This and following events": the old rule ends just before the slot, a new series
        (new id, new iCalUID) starts there with `changes` applied. Returns the new series."""
        with self._lock:
            meeting = self._live_meeting(master_id)
            if not meeting.body.get("recurrence"):
                raise ValueError(f"{master_id} is not a recurring series")
            slot_start, slot_end = self._slot(meeting, at_original_start)
            start = to_event_time(meeting.body["start"])
            zone = _series_zone(start)
            cut = instant(slot_start, zone)
            before = [
                s for s, _ in _expand(start, to_event_time(meeting.body["end"]),
                                      meeting.body["recurrence"], before=cut)
            ]
            if not before:
                raise ValueError("split at the first occurrence: use update_event")
            old_lines, new_lines = _split_rules(meeting.body["recurrence"], slot_start, len(before))
            for instance_id, occurrence in list(meeting.exceptions.items()):
                if instant(occurrence.original_start, zone) >= cut:
                    del meeting.exceptions[instance_id]
            new_body = copy.deepcopy(meeting.body)
            meeting.body["recurrence"] = old_lines
            meeting.sequence += 1
            self._place(meeting)
            new_body.update(
                start=render_time(slot_start), end=render_time(slot_end), recurrence=new_lines
            )
            new_body = _apply(new_body, changes or {})
            return self.create_event(new_body["organizer"], new_body)

    def set_copy_fields(self, user: str, event_id: str, fields: dict[str, Any]) -> None:
        """Override fields on one user's copy only (None removes), e.g. visibility."""
        with self._lock:
            meeting = self._live_meeting(event_id)
            current = meeting.copy_fields.setdefault(user.strip().lower(), {})
            current.update(copy.deepcopy(fields))
            self._place(meeting)

    # -- views --------------------------------------------------------------------------

    def calendar_events(self, user: str, include_deleted: bool = True) -> list[dict[str, Any]]:
        """A calendar's items as the backend holds them (deleted ones: status cancelled)."""
        with self._lock:
            calendar = self._calendar(user)
            out = []
            for item in calendar.items.values():
                if item.deleted and not include_deleted:
                    continue
                rendered = _with_meta(item, item.content)
                if item.deleted:
                    rendered["status"] = "cancelled"
                out.append(rendered)
            return out

    def get_event(self, user: str, event_id: str) -> dict[str, Any] | None:
        """events.get: one item of `user`'s calendar (cancelled ones too, reference A3)."""
        with self._lock:
            item = self._calendar(user).items.get(event_id)
            if item is None:
                return None
            return _stub(item) if item.deleted else _render_item(item, None)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "events_list_calls": dict(self.list_calls),
                "token_requests": self.auth.token_requests,
                "users": len(self.users),
                "meetings": len(self.meetings),
                "sync_tokens": len(self._sync_tokens),
                "push_channels": len(self.push.live()),
                "push_channels_opened": self.push.opened,
            }

    # -- sync tokens ----------------------------------------------------------------------

    def invalidate_sync_tokens(self, user: str | None = None) -> int:
        """Make every sync token (of one calendar, or all) answer 410 (reference A2)."""
        address = user.strip().lower() if user else None
        count = 0
        with self._lock:
            for record in self._sync_tokens.values():
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
        with self._lock:
            calendar = self._calendar(user)
            self._sync_tokens[token] = SyncToken(token, calendar.owner, self._seq, self.clock())

    def purge_deleted(self, user: str | None = None) -> int:
        """Forget deleted items (of one calendar, or all), as Google eventually does (reference
        A3): listings no longer show their stubs and events.get answers 404. Sync tokens issued
        before are invalidated, since they can no longer report those deletions."""
        address = user.strip().lower() if user else None
        purged = 0
        with self._lock:
            for calendar in self.calendars.values():
                if address is not None and calendar.owner != address:
                    continue
                gone = [item_id for item_id, item in calendar.items.items() if item.deleted]
                for item_id in gone:
                    del calendar.items[item_id]
                purged += len(gone)
        if purged:
            self.invalidate_sync_tokens(user)
        return purged

    # -- events.list ----------------------------------------------------------------------

    def authenticate(self, bearer: str | None) -> AccessToken:
        token = self.auth.authenticate(bearer)
        if token is None:
            raise GoogleError(401, "authError")
        return token

    def resolve_calendar(self, token: AccessToken, calendar_id: str) -> str:
        """The calendar a token may read: `primary` or its own address; else 404 notFound."""
        wanted = token.user if calendar_id == "primary" else calendar_id.strip().lower()
        if wanted is None or wanted != token.user or wanted not in self.calendars:
            raise GoogleError(404, "notFound")
        return wanted

    def list_events(self, calendar_id: str, query: ListQuery) -> EventsPage:
        """One page of events.list for a resolved calendar (reference A1-A4)."""
        with self._lock:
            calendar = self._calendar(calendar_id)
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
                snapshot, offset = _Snapshot(calendar.owner, items, self._seq), 0
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
            self._sync_tokens[next_sync] = SyncToken(
                next_sync, calendar.owner, snapshot.seq, self.clock()
            )
        updated = max(
            (item.updated for item in calendar.items.values()), default=calendar.created
        )
        return EventsPage(
            calendar=calendar.owner,
            time_zone=self.users[calendar.owner].time_zone,
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
        record = self._sync_tokens.get(token)
        if record is None:
            raise GoogleError(410, "fullSyncRequired")  # issued by an earlier run (not adopted)
        if record.calendar != calendar.owner:
            raise invalid_value("syncToken")
        if record.invalidated or self.clock() - record.issued_at > self.sync_token_max_age:
            raise GoogleError(410, "fullSyncRequired")
        return record

    def _select(
        self, calendar: Calendar, query: ListQuery, since: int | None
    ) -> list[dict[str, Any]]:
        zone = ZoneInfo(self.users[calendar.owner].time_zone)
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
                if query.single_events and _is_master(content) and not incremental:
                    continue  # singleEvents: deleted instances, not masters (reference A4)
                if not self._in_window(content, zone, query):
                    continue
                keep(item, _stub(item), self._start_of(content, zone))
                continue
            if _is_cancelled_exception(content):
                # singleEvents=false returns cancelled exceptions even without showDeleted
                # (reference A4).
                if query.single_events and not deletions_wanted:
                    continue
                if not self._in_window(content, zone, query):
                    continue
                keep(item, _render_item(item, None), self._start_of(content, zone))
                continue
            if content.get("status") == "cancelled" and not deletions_wanted:
                continue
            if query.q is not None and not _matches(content, query.q):
                continue
            if _is_master(content) and query.single_events:
                for instance in self._instances(calendar, item, zone, query):
                    keep(item, instance, self._start_of(instance, zone))
                continue
            if not self._in_window(content, zone, query):
                continue
            keep(item, _render_item(item, query.max_attendees), self._start_of(content, zone))

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
        before = query.time_max or (self.clock() + EXPANSION_HORIZON)
        for slot_start, slot_end in _expand(start, end, content["recurrence"], after, before):
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
                    value = _html_link(instance_id, calendar.owner)
                elif key == "start":
                    value = render_time(slot_start)
                elif key == "end":
                    instance["end"] = render_time(slot_end)
                    instance["recurringEventId"] = master.id
                    instance["originalStartTime"] = render_time(slot_start)
                    continue
                instance[key] = copy.deepcopy(value)
            yield _with_meta(master, instance, query.max_attendees)

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
            master = self.meetings.get(content.get("recurringEventId", ""))
            length = (
                _length(to_event_time(master.body["start"]), to_event_time(master.body["end"]))
                if master is not None
                else dt.timedelta(0)
            )
            end = _shift(start, length)
        else:
            return True
        if _is_master(content):
            length = instant(end, zone) - instant(start, zone)
            after = tmin - length - dt.timedelta(days=1) if tmin else None
            for slot_start, slot_end in _expand(start, end, content["recurrence"], after, tmax):
                s, e = instant(slot_start, zone), instant(slot_end, zone)
                if (tmax is None or s < tmax) and (tmin is None or e > tmin):
                    return True
            return False
        s, e = instant(start, zone), instant(end, zone)
        if content.get("endTimeUnspecified"):
            e = s
        return (tmax is None or s < tmax) and (tmin is None or e > tmin)

    # -- placing copies ---------------------------------------------------------------------

    def _place(self, meeting: Meeting) -> None:
        """Re-render the meeting in every participant's calendar; record what changed, and
        notify the channels watching a calendar that changed (push.py)."""
        wanted = {} if meeting.deleted else self._materialise(meeting)
        changed: set[str] = set()
        for owner, items in wanted.items():
            calendar = self.calendars[owner]
            for item_id, content in items.items():
                stored = calendar.items.get(item_id)
                if stored is not None and not stored.deleted and stored.content == content:
                    continue
                seq, now = self._next_seq(), self.clock()
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
                stored = self.calendars[owner].items.get(item_id)
                if stored is not None and not stored.deleted:
                    stored.deleted = True
                    stored.seq, stored.updated = self._next_seq(), self.clock()
                    changed.add(owner)
        for owner, items in wanted.items():
            meeting.placed.setdefault(owner, set()).update(items)
        self.push.changed(changed)

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _participants(self, body: dict[str, Any]) -> list[str]:
        """Users whose calendar holds a copy: the organizer and attending users (reference A6)."""
        out: list[str] = []
        emails = [body["organizer"]["email"]] + [a["email"] for a in body.get("attendees") or []]
        for email in emails:
            address = email.lower()
            if address in self.users and address not in out:
                out.append(address)
        return out

    def _materialise(self, meeting: Meeting) -> dict[str, dict[str, dict[str, Any]]]:
        out: dict[str, dict[str, dict[str, Any]]] = {}
        master_owners = self._participants(meeting.body)
        for owner in master_owners:
            out.setdefault(owner, {})[meeting.id] = self._render(
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
            body = self._occurrence_body(meeting, occurrence)
            owners = self._participants(body)
            for owner in owners:
                out.setdefault(owner, {})[instance_id] = self._render(
                    meeting, owner, body, instance_id, occurrence.original_start
                )
            for owner in master_owners:
                if owner not in owners:  # dropped from this occurrence only
                    out[owner][instance_id] = dict(cancelled)
        return out

    def _occurrence_body(self, meeting: Meeting, occurrence: Occurrence) -> dict[str, Any]:
        start = occurrence.original_start
        end = _shift(start, _length(to_event_time(meeting.body["start"]),
                                    to_event_time(meeting.body["end"])))
        body = copy.deepcopy(meeting.body)
        body.pop("recurrence", None)
        body.update(start=render_time(start), end=render_time(end))
        body = _apply(body, occurrence.changes)
        return self._normalise(body["organizer"], body, meeting.body)

    def _render(
        self,
        meeting: Meeting,
        owner: str | None,
        body: dict[str, Any],
        item_id: str,
        original_start: EventTime | None,
    ) -> dict[str, Any]:
        """One copy of an event in Google's field order (reference A5); no etag/updated."""
        content: dict[str, Any] = {
            "kind": "calendar#event",
            "id": item_id,
            "status": body.get("status") or "confirmed",
            "htmlLink": _html_link(item_id, owner),
            "created": rfc3339(meeting.created),
        }
        for key in ("summary", "description", "location", "colorId"):
            if body.get(key) is not None:
                content[key] = body[key]
        content["creator"] = self._person(body.get("creator") or body["organizer"], owner)
        content["organizer"] = self._person(body["organizer"], owner)
        content["start"] = copy.deepcopy(body["start"])
        content["end"] = copy.deepcopy(body["end"])
        if body.get("endTimeUnspecified"):
            content["endTimeUnspecified"] = True
        if original_start is None and body.get("recurrence"):
            content["recurrence"] = list(body["recurrence"])
        if original_start is not None:
            content["recurringEventId"] = meeting.id
            content["originalStartTime"] = render_time(original_start)
        # Google omits the defaults `opaque` and `default` (reference A5).
        if body.get("transparency") not in (None, "opaque"):
            content["transparency"] = body["transparency"]
        if body.get("visibility") not in (None, "default"):
            content["visibility"] = body["visibility"]
        content["iCalUID"] = meeting.ical_uid
        content["sequence"] = meeting.sequence
        attendees = self._attendees(body, owner)
        if attendees:
            content["attendees"] = attendees
        for key, value in body.items():
            if key not in _KNOWN_KEYS:
                content[key] = copy.deepcopy(value)
        content["reminders"] = copy.deepcopy(body.get("reminders") or {"useDefault": True})
        content["eventType"] = body.get("eventType") or "default"
        if owner is not None:
            for key, value in meeting.copy_fields.get(owner, {}).items():
                if value is None:
                    content.pop(key, None)
                else:
                    content[key] = copy.deepcopy(value)
        return content

    def _person(self, person: dict[str, Any], owner: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {"email": person["email"]}
        name = person.get("displayName")
        if name:
            out["displayName"] = name
        if owner is not None and person["email"].lower() == owner:
            out["self"] = True
        return out

    def _attendees(self, body: dict[str, Any], owner: str | None) -> list[dict[str, Any]]:
        organizer = body["organizer"]["email"].lower()
        out = []
        for attendee in body.get("attendees") or []:
            email = attendee["email"]
            item: dict[str, Any] = {"email": email}
            if attendee.get("displayName"):
                item["displayName"] = attendee["displayName"]
            # False booleans are omitted, as Google does (reference A5).
            if email.lower() == organizer:
                item["organizer"] = True
            if owner is not None and email.lower() == owner:
                item["self"] = True
            if attendee.get("resource"):
                item["resource"] = True
            if attendee.get("optional"):
                item["optional"] = True
            item["responseStatus"] = attendee.get("responseStatus") or "needsAction"
            if attendee.get("comment"):
                item["comment"] = attendee["comment"]
            if attendee.get("additionalGuests"):
                item["additionalGuests"] = attendee["additionalGuests"]
            out.append(item)
        return out

    def _normalise(
        self,
        organizer: str | dict[str, Any] | None,
        body: dict[str, Any],
        previous: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """Check and complete a Google-shaped body; raises ValueError on bad input."""
        body = copy.deepcopy(body)
        if organizer is None:
            raise ValueError("an event needs an organizer")
        person = dict(organizer) if isinstance(organizer, dict) else {"email": organizer}
        if not person.get("email") or "@" not in person["email"]:
            raise ValueError(f"bad organizer {organizer!r}")
        person["email"] = person["email"].strip()
        given = body.get("organizer") if isinstance(body.get("organizer"), dict) else {}
        if not person.get("displayName") and given.get("email", "").lower() == person[
            "email"
        ].lower() and given.get("displayName"):
            person["displayName"] = given["displayName"]
        self._fill_name(person)
        body["organizer"] = {k: v for k, v in person.items() if k in ("email", "displayName")}
        if "creator" in body:
            creator = body["creator"]
            body["creator"] = {"email": creator} if isinstance(creator, str) else dict(creator)

        if "start" not in body:
            raise ValueError("an event needs a start")
        zone_default = self.users.get(person["email"].lower(), User("x", None, "UTC")).time_zone
        start = to_event_time(body["start"])
        if body.get("recurrence") and start.date_time is not None and not start.time_zone:
            # Recurring events need start.timeZone, the zone the rule expands in (reference A4).
            start = EventTime(date_time=start.date_time, time_zone=zone_default)
        if body.get("end") is None:
            end = _shift(start, dt.timedelta(days=1) if start.date else dt.timedelta(hours=1))
        else:
            end = to_event_time(body["end"])
            if end.date_time is not None and start.time_zone and not end.time_zone:
                end = EventTime(date_time=end.date_time, time_zone=start.time_zone)
        if _length(start, end) < dt.timedelta(0):
            raise ValueError("end before start")
        body["start"], body["end"] = render_time(start), render_time(end)

        if body.get("recurrence"):
            if isinstance(body["recurrence"], str):
                body["recurrence"] = [body["recurrence"]]
            body["recurrence"] = [str(line) for line in body["recurrence"]]
            try:
                # Reads every line and the zone; the first slot is the start itself, so cheap.
                next(iter(slots(start, end, body["recurrence"], limit=1)), None)
            except RuleError as exc:
                raise ValueError(str(exc)) from exc

        old = {
            a["email"].lower(): a for a in (previous or {}).get("attendees") or []
        }
        attendees = []
        for raw in body.get("attendees") or []:
            attendee = {"email": raw} if isinstance(raw, str) else dict(raw)
            if not attendee.get("email") or "@" not in attendee["email"]:
                raise ValueError(f"bad attendee {raw!r}")
            attendee.pop("self", None)
            attendee.pop("organizer", None)
            if attendee["email"].lower().endswith("@resource.calendar.google.com"):
                attendee.setdefault("resource", True)  # rooms are resources (reference A5)
            status = attendee.get("responseStatus") or old.get(
                attendee["email"].lower(), {}
            ).get("responseStatus")
            if status is None:
                is_organizer = attendee["email"].lower() == person["email"].lower()
                status = "accepted" if is_organizer else "needsAction"
            if status not in RESPONSE_STATUSES:
                raise ValueError(f"bad responseStatus {status!r}")
            attendee["responseStatus"] = status
            self._fill_name(attendee)
            attendees.append(attendee)
        if attendees and person["email"].lower() not in {a["email"].lower() for a in attendees}:
            # Google lists the organizer among the guests, accepted (reference A5).
            organizer_attendee = {"email": person["email"], "responseStatus": "accepted"}
            if person.get("displayName"):
                organizer_attendee["displayName"] = person["displayName"]
            attendees.insert(0, organizer_attendee)
        if attendees:
            body["attendees"] = attendees
        else:
            body.pop("attendees", None)
        return body

    def _fill_name(self, person: dict[str, Any]) -> None:
        user = self.users.get(person["email"].lower())
        if not person.get("displayName") and user is not None and user.display_name:
            person["displayName"] = user.display_name

    def _view(self, meeting: Meeting, item_id: str) -> dict[str, Any]:
        """The stored copy the caller most likely wants: the organizer's, else the first."""
        owners = [meeting.body["organizer"]["email"].lower()] + sorted(meeting.placed)
        for owner in owners:
            calendar = self.calendars.get(owner)
            item = calendar.items.get(item_id) if calendar else None
            if item is not None and not item.deleted:
                return _render_item(item, None)
        if item_id == meeting.id:
            return self._render(meeting, None, meeting.body, meeting.id, None)
        occurrence = meeting.exceptions[item_id]
        body = self._occurrence_body(meeting, occurrence)
        return self._render(meeting, None, body, item_id, occurrence.original_start)

    def _live_meeting(self, event_id: str) -> Meeting:
        meeting = self.meetings.get(event_id)
        if meeting is None:
            raise KeyError(f"no event {event_id!r}")
        if meeting.deleted:
            raise ValueError(f"event {event_id!r} is deleted")
        return meeting

    def _calendar(self, user: str) -> Calendar:
        calendar = self.calendars.get(user.strip().lower())
        if calendar is None:
            raise KeyError(f"no calendar {user!r}")
        return calendar

    def _split_instance_id(self, event_id: str) -> tuple[str, EventTime]:
        master_id, _, suffix = event_id.rpartition("_")
        if master_id not in self.meetings:
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
        for slot_start, slot_end in _expand(
            start,
            to_event_time(meeting.body["end"]),
            meeting.body["recurrence"],
            around - dt.timedelta(days=2),
            around + dt.timedelta(days=2),
        ):
            if instance_suffix(slot_start) == key:
                return slot_start, slot_end
        raise ValueError(f"{meeting.id} has no occurrence at {key}")


# -- module helpers -------------------------------------------------------------------------


def _readdressed(body: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """`body` with every person entry (organizer, creator, attendees) of `old` carrying `new`."""
    def person(value: Any) -> Any:
        if isinstance(value, dict) and str(value.get("email") or "").strip().lower() == old:
            return {**value, "email": new}
        if isinstance(value, str) and value.strip().lower() == old:
            return new
        return value

    out = dict(body)
    for key in ("organizer", "creator"):
        if key in out:
            out[key] = person(out[key])
    if isinstance(out.get("attendees"), list):
        out["attendees"] = [person(a) for a in out["attendees"]]
    return out


def _apply(body: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(body)
    for key, value in changes.items():
        if key in ("id", "iCalUID", "recurringEventId", "originalStartTime"):
            raise ValueError(f"{key} cannot change")
        if value is None:
            out.pop(key, None)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _series_zone(start: EventTime) -> dt.tzinfo:
    if start.time_zone:
        return ZoneInfo(start.time_zone)
    if start.date_time is not None and start.date_time.tzinfo is not None:
        return start.date_time.tzinfo
    return UTC


def _expand(
    start: EventTime,
    end: EventTime,
    recurrence: list[str],
    after: dt.datetime | None = None,
    before: dt.datetime | None = None,
) -> Iterator[tuple[EventTime, EventTime]]:
    """The series' slots by the emulator's own expander (rrule.py); none if it cannot read them."""
    try:
        yield from slots(start, end, recurrence, after=after, before=before)
    except RuleError:
        log.warning("cannot expand recurrence %r", recurrence)


def _split_rules(
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


def _matches(content: dict[str, Any], text: str) -> bool:
    """`q`: a simple case-insensitive substring over the searchable fields (reference A1)."""
    parts = [content.get(k) or "" for k in ("summary", "description", "location")]
    for person in [content.get("organizer") or {}] + list(content.get("attendees") or []):
        parts += [person.get("email") or "", person.get("displayName") or ""]
    return text.lower() in "\n".join(parts).lower()


def _with_meta(
    item: StoredItem, content: dict[str, Any], max_attendees: int | None = None
) -> dict[str, Any]:
    """Insert etag and updated where Google puts them; apply maxAttendees (reference A1)."""
    out: dict[str, Any] = {"kind": "calendar#event", "etag": item.etag}
    for key, value in content.items():
        if key == "kind":
            continue
        if key == "attendees" and max_attendees is not None and len(value) > max_attendees:
            out["attendees"] = [copy.deepcopy(a) for a in value if a.get("self")]
            out["attendeesOmitted"] = True
            continue
        out[key] = copy.deepcopy(value)
        if key == "created":
            out["updated"] = rfc3339(item.updated)
    return out


def _render_item(item: StoredItem, max_attendees: int | None) -> dict[str, Any]:
    if _is_cancelled_exception(item.content):
        # Cancelled occurrence: kind, etag, id, status, recurringEventId, originalStartTime (A3).
        return {"kind": "calendar#event", "etag": item.etag, **{
            k: copy.deepcopy(v) for k, v in item.content.items() if k != "kind"
        }}
    return _with_meta(item, item.content, max_attendees)


def _stub(item: StoredItem) -> dict[str, Any]:
    """A deleted event: only kind, etag, id, status (reference A3)."""
    return {"kind": "calendar#event", "etag": item.etag, "id": item.id, "status": "cancelled"}
