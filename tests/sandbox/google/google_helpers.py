"""Shared helpers of the Google emulator tests (a module, not conftest, so tests import it)."""

from __future__ import annotations

import datetime as dt
from typing import Any

UTC = dt.timezone.utc
READONLY = ["https://www.googleapis.com/auth/calendar.readonly"]
ALICE = "alice@acme.test"
BOB = "bob@acme.test"
CAROL = "carol@acme.test"


class FakeClock:
    """The emulator's clock; tests move it instead of sleeping."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


def timed(start: str, minutes: int = 60, zone: str | None = None) -> dict[str, Any]:
    """start/end fields of a body for a meeting starting at `start` (ISO with offset)."""
    begin = dt.datetime.fromisoformat(start)
    end = begin + dt.timedelta(minutes=minutes)
    out: dict[str, Any] = {
        "start": {"dateTime": begin.isoformat()},
        "end": {"dateTime": end.isoformat()},
    }
    if zone:
        out["start"]["timeZone"] = zone
        out["end"]["timeZone"] = zone
    return out


def list_all(service: Any, calendar: str = "primary", **params: Any) -> tuple[list[dict], str]:
    """Follow nextPageToken to the end; return (items, nextSyncToken)."""
    items: list[dict] = []
    token = None
    while True:
        page = service.events().list(calendarId=calendar, pageToken=token, **params).execute()
        items += page["items"]
        token = page.get("nextPageToken")
        if token is None:
            return items, page["nextSyncToken"]
