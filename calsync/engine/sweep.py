"""The sweep: Events calsync wrote whose meeting the mirror no longer knows, settled on evidence.

A cycle learns what happens to a meeting from its listing, and ties a listed item to its meeting
through the mirror: a deleted event comes back as a bare cancelled stub holding only its id
(reference A3). An Event whose meeting never reached the mirror (a crash or a failed write
between the Salesforce write and the mirror, before issue 16's fix; a state database restored
from a backup; anything not foreseen) can therefore outlive its meeting for good: no listing
names it again. The sweep finds such Events (`StateStore.orphans`) and asks Google about each:

- `events.get` by the Google id its meeting had when it was last planned (the `decisions`
  table): a single event still there settles it in one call; otherwise (404/410 or cancelled,
  a series, no id known, the id now naming another meeting) `events.list` with its `iCalUID`
  (`list_series`) has the last word, since a meeting moved to a new organizer lives on under
  another id (reference A3);
- gone (nothing listed, or only cancelled items): the meeting is planned as deleted,
  through the planner and `ownership.settle` like any deletion, so an Event a person changed is
  kept with `Canceled: `, never deleted;
- there: its items go into the mirror (a series with all its exceptions, which decide its
  first slot) and the meeting is planned like any other.

Each answer is evidence; an error leaves the Event as it is until the next sweep. It costs no
call when nothing is orphaned, and runs only when due (`due`): on full listings, after a crash
was detected at the start of the cycle (interrupted creates), and at most once a day per
calendar otherwise; at most `MAX_CALLS` Google calls per calendar and cycle, the rest in the
next cycles. An idle poll never sweeps more than once a day and reads nothing extra for it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from calsync.calendar.source import Listing
from calsync.core.errors import CalsyncError, TransientError
from calsync.core.logs import event as log_event
from calsync.state.store import CalendarState, Orphan, StateStore

log = logging.getLogger("calsync.sweep")  # names predate the layers (ARCHITECTURE.md)

# Google calls per calendar and cycle (like changes.MAX_CHECKS); the rest wait for the next.
MAX_CALLS = 50
EVERY = dt.timedelta(days=1)


class Source(Protocol):
    """The part of `source.CalendarSource` (calendar/source.py) the sweep asks."""

    def get_event(self, event_id: str) -> dict[str, Any] | None: ...

    def list_series(self, ical_uid: str) -> Listing: ...


@dataclass(frozen=True)
class Swept:
    """What a sweep found on one calendar."""

    items: tuple[dict[str, Any], ...] = ()  # Google's items of the meetings still there
    gone: frozenset[str] = frozenset()  # iCalUIDs of meetings gone from Google
    found: int = 0  # orphaned Events looked at
    left: int = 0  # orphaned Events not settled this time (budget spent, Google unreachable; the
    # sweep reads one Event past its budget, so with the budget spent this is "at least")

    @property
    def complete(self) -> bool:
        return self.left == 0


def due(state: CalendarState | None, now: dt.datetime, *, full: bool, interrupted: bool) -> bool:
    """Whether this cycle sweeps the calendar: on a full listing, after a crash, else daily."""
    if full or interrupted or state is None or state.swept_at is None:
        return True
    return now - state.swept_at >= EVERY


def sweep(
    store: StateStore,
    source: Source,
    user: str,
    *,
    listed: Iterable[str] = (),
    max_calls: int | None = None,
) -> Swept:
    """Settle `user`'s orphaned Events on evidence, within `max_calls` Google calls.

    `listed`: iCalUIDs this cycle's listing carries anyway (their items reach the mirror
    without asking). `max_calls`: default MAX_CALLS."""
    max_calls = MAX_CALLS if max_calls is None else max_calls
    skip = set(listed)
    orphans = [o for o in store.orphans(user, max_calls + 1 + len(skip)) if o.ical_uid not in skip]
    if not orphans:
        return Swept()
    items: list[dict[str, Any]] = []
    gone: set[str] = set()
    calls = settled = kept = 0
    for orphan in orphans:
        if calls >= max_calls:
            break
        try:
            found, spent = _evidence(source, orphan)
        except TransientError as exc:
            # Google is busy or out of reach: the rest wait, untouched, for the next cycle.
            log_event(log, "cannot sweep an Event now", level=logging.WARNING, user=user,
                      sf_id=orphan.sf_id, event_id=orphan.event_id, error=str(exc))
            break
        except CalsyncError as exc:
            # An answer that is no evidence (refused, malformed): the Event stays as it is and
            # the next sweep asks again; the calendar's sync goes on.
            log_event(log, "cannot sweep an Event", level=logging.WARNING, user=user,
                      sf_id=orphan.sf_id, event_id=orphan.event_id, error=str(exc))
            calls += 1
            settled += 1
            kept += 1
            continue
        calls += spent
        settled += 1
        if found:
            items.extend(found)
        else:
            gone.add(orphan.ical_uid)
        log_event(log, "swept an Event whose meeting the mirror did not know", user=user,
                  sf_id=orphan.sf_id, event_id=orphan.event_id, ical_uid=orphan.ical_uid,
                  found="gone" if not found else "there", key=orphan.key)
    left = len(orphans) - settled
    log_event(log, "swept Events whose meeting the mirror did not know", user=user,
              orphans=len(orphans), gone=len(gone), there=settled - len(gone) - kept, unsettled=kept,
              left_for_later=left)
    return Swept(tuple(items), frozenset(gone), len(orphans), left)


def _evidence(source: Source, orphan: Orphan) -> tuple[list[dict[str, Any]], int]:
    """(Google's items of the meeting, empty when it is gone; calls made).

    events.get by the id its meeting had says whether that event stands. Gone by that id is
    confirmed by iCalUID (a move to a new organizer leaves an id-only cancelled stub behind and
    the meeting lives on under another id, reference A3); so is a series (its exceptions decide
    the first slot) and an id that now names another meeting.
    """
    calls = 0
    if orphan.event_id:
        item = source.get_event(orphan.event_id)
        calls += 1
        if (item is not None and item.get("status") != "cancelled"
                and item.get("iCalUID") == orphan.ical_uid and not item.get("recurrence")):
            return [item], calls
    listing = source.list_series(orphan.ical_uid)
    calls += 1
    listed = [i for i in listing.items if isinstance(i, Mapping)]
    # Gone: nothing listed, or only cancelled items (a deleted event's stub, cancelled
    # occurrences of a deleted series), reference A3.
    live = [i for i in listed if i.get("status") != "cancelled" and i.get("iCalUID") == orphan.ical_uid]
    return (list(listed) if live else []), calls
