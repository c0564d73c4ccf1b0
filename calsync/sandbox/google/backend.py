"""The Google Calendar emulator's state, behind one facade: `GoogleBackend`.

Plain Python objects, no HTTP (the moto layout): tests and the sandbox seed through these methods,
`routes.py` turns events.list requests into `list_events()` calls. The facade holds one object per
concern, all sharing one `Domain` (domain.py: users, meetings, calendars, the change counter and
the lock) rather than reaching into each other:

- users.py `UserDirectory`: adding and renaming the domain's users;
- events.py `EventStore`: the organizer's edits (insert, update, delete, restore, responses,
  occurrences, series splits), each re-placed by copies.py `Copies` in every participant's
  calendar (reference A6);
- listing.py `EventListing`: events.list with pages and sync tokens, events.get;
- oauth.py `GoogleAuth`: credentials and tokens; push.py `PushHub`: watch channels.

Scripted faults (5xx, 429/403 rate limits) belong to the HTTP side (routes.py, sandbox/server.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from calsync.sandbox.google.copies import Copies
from calsync.sandbox.google.domain import Calendar, Domain, Meeting, User
from calsync.sandbox.google.errors import GoogleError
from calsync.sandbox.google.eventtime import UTC
from calsync.sandbox.google.events import EventStore
from calsync.sandbox.google.listing import EventListing, EventsPage, ListQuery
from calsync.sandbox.google.oauth import READONLY_SCOPES, AccessToken, GoogleAuth
from calsync.sandbox.google.push import PushHub
from calsync.sandbox.google.users import UserDirectory


class GoogleBackend:
    """Users, meetings and calendars of one emulated Workspace domain."""

    def __init__(self, clock: Callable[[], dt.datetime] | None = None) -> None:
        self.domain = Domain(clock or (lambda: dt.datetime.now(UTC)))
        self.base_url = "http://127.0.0.1"  # set by GoogleEmulator.start(); used in key files
        self.auth = GoogleAuth(
            clock=self.domain.now, is_user=self.is_user, token_url=lambda: f"{self.base_url}/token"
        )
        self.push = PushHub(clock=self.domain.now, base_url=lambda: self.base_url)
        copies = Copies(self.domain, on_changed=self.push.changed)
        self.directory = UserDirectory(self.domain, copies)
        self.events = EventStore(self.domain, copies)
        self.listing = EventListing(self.domain)

    # -- the shared data (tests read it; `clock` they also replace) ----------------------

    @property
    def clock(self) -> Callable[[], dt.datetime]:
        return self.domain.clock

    @clock.setter
    def clock(self, value: Callable[[], dt.datetime]) -> None:
        self.domain.clock = value

    @property
    def users(self) -> dict[str, User]:
        return self.domain.users

    @property
    def meetings(self) -> dict[str, Meeting]:
        return self.domain.meetings

    @property
    def calendars(self) -> dict[str, Calendar]:
        return self.domain.calendars

    @property
    def list_calls(self) -> dict[str, int]:
        """events.list calls per calendar."""
        return self.listing.list_calls

    @property
    def sync_token_max_age(self) -> dt.timedelta:
        return self.listing.sync_token_max_age

    @sync_token_max_age.setter
    def sync_token_max_age(self, value: dt.timedelta) -> None:
        self.listing.sync_token_max_age = value

    # -- users (users.UserDirectory) -------------------------------------------------------

    def add_user(
        self, email: str, display_name: str | None = None, time_zone: str = "UTC"
    ) -> User:
        """Add a domain user (with an empty calendar); meetings naming them get a copy."""
        return self.directory.add_user(email, display_name, time_zone)

    def rename_user(self, old: str, new: str) -> User:
        """A Workspace rename: the user's primary address becomes `new` (UserDirectory)."""
        return self.directory.rename_user(old, new)

    def is_user(self, email: str) -> bool:
        return self.directory.is_user(email)

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

    # -- meetings (events.EventStore) ----------------------------------------------------

    def create_event(self, organizer: str | dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        """Create a meeting organised by `organizer`; returns the organizer's copy."""
        return self.events.create_event(organizer, body)

    def update_event(self, event_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """The organizer edits the event, series or (by instance id) one occurrence."""
        return self.events.update_event(event_id, changes)

    def delete_event(self, event_id: str) -> None:
        """Delete the meeting: every copy becomes a cancelled stub (an instance id cancels it)."""
        self.events.delete_event(event_id)

    def restore_event(self, event_id: str) -> dict[str, Any]:
        """Undelete a deleted meeting (restored from the trash); KeyError once purged."""
        return self.events.restore_event(event_id)

    def respond(self, user: str, event_id: str, status: str) -> None:
        """`user` answers the invitation; their responseStatus changes in every copy."""
        self.events.respond(user, event_id, status)

    def modify_occurrence(
        self, master_id: str, original_start: Any, changes: dict[str, Any]
    ) -> dict[str, Any]:
        """Edit one occurrence of a series: an exception item `<master>_<suffix>` (reference A4)."""
        return self.events.modify_occurrence(master_id, original_start, changes)

    def cancel_occurrence(self, master_id: str, original_start: Any) -> str:
        """Remove one occurrence: a cancelled exception in every copy; returns its id."""
        return self.events.cancel_occurrence(master_id, original_start)

    def split_series(
        self, master_id: str, at_original_start: Any, changes: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """"This and following events": returns the new series that starts at the slot."""
        return self.events.split_series(master_id, at_original_start, changes)

    def set_copy_fields(self, user: str, event_id: str, fields: dict[str, Any]) -> None:
        """Override fields on one user's copy only (None removes), e.g. visibility."""
        self.events.set_copy_fields(user, event_id, fields)

    # -- views (listing.EventListing) ----------------------------------------------------

    def calendar_events(self, user: str, include_deleted: bool = True) -> list[dict[str, Any]]:
        """A calendar's items as the backend holds them (deleted ones: status cancelled)."""
        return self.listing.calendar_events(user, include_deleted)

    def get_event(self, user: str, event_id: str) -> dict[str, Any] | None:
        """events.get: one item of `user`'s calendar (cancelled ones too, reference A3)."""
        return self.listing.get_event(user, event_id)

    def stats(self) -> dict[str, Any]:
        with self.domain.lock:
            return {
                "events_list_calls": dict(self.list_calls),
                "token_requests": self.auth.token_requests,
                "users": len(self.users),
                "meetings": len(self.meetings),
                "sync_tokens": len(self.listing.sync_tokens),
                "push_channels": len(self.push.live()),
                "push_channels_opened": self.push.opened,
            }

    # -- sync tokens ----------------------------------------------------------------------

    def invalidate_sync_tokens(self, user: str | None = None) -> int:
        """Make every sync token (of one calendar, or all) answer 410 (reference A2)."""
        return self.listing.invalidate_sync_tokens(user)

    def adopt_sync_token(self, user: str, token: str) -> None:
        """Test setup: a token another emulator run issued to `user` counts as issued now."""
        self.listing.adopt_sync_token(user, token)

    def purge_deleted(self, user: str | None = None) -> int:
        """Forget deleted items (of one calendar, or all), as Google eventually does (reference
        A3): listings no longer show their stubs and events.get answers 404. Sync tokens issued
        before are invalidated, since they can no longer report those deletions."""
        purged = self.events.forget_deleted(user)
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
        return self.listing.list_events(calendar_id, query)
