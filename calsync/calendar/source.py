"""The calendar-source port: what the engine asks of a calendar provider, whoever implements it.

The engine (cycle, changes, sweep, resync, explain --live) reads one user's calendar through a
`CalendarSource` made by a `CalendarFactory` (`user → source`) that the wiring passes in
(service/runtime.py): it never names a provider. Google implements it (calendar/google/api.py
`GoogleCalendar`, made by `calendar_factory`); a second provider (Microsoft 365) is one more
adapter with the same methods.

What a source gives:
- `list_changes(cursor, time_min)`: every change since `cursor` (Google's sync token), or, with
  no cursor, a full listing of what ends after `time_min`; the `Listing` carries the cursor to
  continue from (`next_sync_token`, only stored once everything of the listing is applied);
- `list_series(ical_uid)`: every item of one meeting (a series master and all its exceptions),
  whenever it is;
- `get_event(event_id)`: the item as the provider holds it now (cancelled ones too), None when
  it no longer has it (the evidence that the event is gone);
- `calls`: requests made so far, failed ones included (a cycle's summary counts them).
A `WatchableSource` also opens and stops notification channels (the daemon's push, service/push.py).

Items are plain JSON objects in calsync's calendar item format (items.py): the mirror stores
them as they come and `items.to_google_event` reads them. Google's events are already in it;
another provider's adapter translates its events into it before they leave the adapter.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Listing:
    """Every item of one listing (all pages), the token of its last page and the calls made.

    `time_zone` is the calendar's zone as the listing gives it (`timeZone`, reference A1).
    """

    items: tuple[dict[str, Any], ...]
    next_sync_token: str | None
    full: bool
    calls: int
    time_zone: str | None = None


@dataclass(frozen=True)
class Watched:
    """What opening a notification channel answered: the channel, the watched resource, the
    granted expiration (None: none given; the caller renews after the ttl it asked for)."""

    channel_id: str
    resource_id: str
    expires_at: dt.datetime | None


class CalendarSource(Protocol):
    """One user's calendar, as the engine reads it (see the module docstring)."""

    calls: int  # requests made so far, failed ones included

    def list_changes(self, sync_token: str | None, time_min: dt.datetime) -> Listing: ...

    def list_series(self, ical_uid: str) -> Listing: ...

    def get_event(self, event_id: str) -> dict[str, Any] | None: ...


class WatchableSource(CalendarSource, Protocol):
    """A calendar whose changes can be pushed to calsync (notification channels)."""

    def watch(self, channel_id: str, address: str, token: str, ttl: dt.timedelta) -> Watched: ...

    def stop_channel(self, channel_id: str, resource_id: str | None) -> bool: ...


# `user → CalendarSource`: made once per configuration by the wiring, called once per poll.
CalendarFactory = Callable[[str], CalendarSource]

__all__ = ["CalendarFactory", "CalendarSource", "Listing", "WatchableSource", "Watched"]
