"""Google Calendar v3 + Google OAuth emulator (moto layout).

`backend.py` holds the state (users, meetings, calendars, tokens) as plain objects behind the
`GoogleBackend` facade, one module per concern: `domain.py` the shared data, `users.py` the users,
`events.py` the organizer's edits, `copies.py` each participant's copy, `resources.py` the Event
resource, `listing.py` events.list and sync tokens, `oauth.py` the credentials, `push.py` the watch
channels; `routes.py` the HTTP handlers and `GoogleEmulator`, `errors.py` Google's error bodies.
"""

from __future__ import annotations

from calsync.sandbox.google.backend import GoogleBackend
from calsync.sandbox.google.domain import User
from calsync.sandbox.google.errors import GoogleError, google_error, google_error_body
from calsync.sandbox.google.listing import ListQuery
from calsync.sandbox.google.routes import GoogleEmulator

__all__ = [
    "GoogleBackend",
    "GoogleEmulator",
    "GoogleError",
    "ListQuery",
    "User",
    "google_error",
    "google_error_body",
]
