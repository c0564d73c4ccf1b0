"""Google Calendar v3 + Google OAuth emulator (moto layout).

`backend.py` holds the state (users, meetings, calendars, tokens) as plain objects, `oauth.py` the
credentials, `routes.py` the HTTP handlers and `GoogleEmulator`, `errors.py` Google's error bodies.
"""

from __future__ import annotations

from calsync.sandbox.google.backend import GoogleBackend, ListQuery, User
from calsync.sandbox.google.errors import GoogleError, google_error, google_error_body
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
