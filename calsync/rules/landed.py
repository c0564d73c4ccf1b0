"""Creates whose answer was lost: which Event that landed is whose.

A create is recorded as an intent before the call (`state.record_create_intents`). When its
answer never comes (a crash, a timeout, a connection cut after Salesforce committed), the next
run looks for the Event among those created since the intent, and adopts it rather than create a
second one (`cycle.reconcile_creates`). Without an External ID field, this module decides:

- where to look: `CreatedDate` from the intent's time in Salesforce's own clock (its Date
  header, `SalesforceOrg.server_now`) less `MARGIN`, so no skew between calsync's clock and
  Salesforce's can put the Event before the window (reference B10, "Clocks"). An intent
  recorded without that time (before migration m009, or before any answer) is looked for from
  calsync's time less `MAX_SKEW` and the margin;
- which Event: one of the intent's owner, start and end (all-day: its day and duration),
  created by calsync's own user (when Salesforce told which user that is), that the state does
  not already record for another meeting.
  Those are what calsync alone decides; the Subject and the Name only break ties, since a
  trigger or a Flow may rewrite either on insert (reference B10, "Triggers, Flows").

Pure: pending intents, listed rows and claims in, the adoptions out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from calsync.rules.ownership import instant, same


class PendingCreate(Protocol):
    """A create whose intent was recorded but whose answer never was: what these rules read of
    it (the state's record, `calsync.state`, has this shape)."""

    @property
    def key(self) -> str: ...
    @property
    def intent(self) -> Mapping[str, Any]: ...
    @property
    def intent_at(self) -> dt.datetime: ...  # calsync's clock
    @property
    def intent_sf_at(self) -> dt.datetime | None: ...  # Salesforce's clock, when it was known

MARGIN = dt.timedelta(minutes=2)  # the Date header's whole seconds, a slow answer, rounding
MAX_SKEW = dt.timedelta(minutes=15)  # how far calsync's clock may be from Salesforce's


def window_start(pending: Sequence[PendingCreate]) -> dt.datetime:
    """The earliest CreatedDate (Salesforce's clock) an Event of these intents can have."""
    return min(
        p.intent_sf_at - MARGIN if p.intent_sf_at is not None else p.intent_at - MAX_SKEW - MARGIN
        for p in pending
    )


def slot(record: Mapping[str, Any]) -> tuple[Any, ...]:
    """Owner and time of an Event, as listed or as calsync sends it (ids on 15 characters,
    reference B2; instants compared as instants, whatever their wire form)."""
    owner = str(record.get("OwnerId") or "")[:15]
    if record.get("IsAllDayEvent"):
        duration = record.get("DurationInMinutes")
        return (owner, "day", str(record.get("ActivityDate") or "")[:10],
                int(duration) if duration is not None else None)
    return (owner, "at", instant(record.get("StartDateTime")), instant(record.get("EndDateTime")))


def _likeness(row: Mapping[str, Any], intent: Mapping[str, Any]) -> int:
    """2 for each of Subject and Name as sent: among Events of one slot, the closest first."""
    return sum(2 for name in ("Subject", "WhoId") if same(name, row.get(name), intent.get(name)))


def match(
    pending: Sequence[PendingCreate],
    rows: Sequence[Mapping[str, Any]],
    claims: Mapping[str, str],
    own_user: str | None,
) -> dict[str, Mapping[str, Any]]:
    """Intent key → the Event row it landed as. `claims`: 15-character Event Id → key, for the
    Events the state records. Each Event goes to one intent at most: the closest pairs first
    (same Subject and Name), then the oldest Event, then the earliest intent."""
    mine = [
        row for row in rows
        if row.get("Id") and str(row["Id"])[:15] not in claims
        and (own_user is None or str(row.get("CreatedById") or "")[:15] == own_user[:15])
    ]
    by_slot: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for row in mine:
        by_slot.setdefault(slot(row), []).append(row)
    pairs = []
    for order, p in enumerate(pending):
        for row in by_slot.get(slot(p.intent), []):
            pairs.append((-_likeness(row, p.intent), str(row.get("CreatedDate") or ""), str(row["Id"]), order, p, row))
    pairs.sort(key=lambda pair: pair[:4])
    found: dict[str, Mapping[str, Any]] = {}
    taken: set[str] = set()
    for *_, p, row in pairs:
        if p.key in found or str(row["Id"])[:15] in taken:
            continue
        found[p.key] = row
        taken.add(str(row["Id"])[:15])
    return found
