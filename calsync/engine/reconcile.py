"""Creates whose answer was lost: found in Salesforce and adopted at the start of the next run.

A create is recorded as an intent before its call (writes.py). An intent still there when a
run starts means the answer never came back (a crash, a lost connection): the Event may or may
not have landed. By External ID when the org has one (the key is on the Event), else by owner,
start and end among the Events calsync's own User created since the intent, in Salesforce's own
clock (landed.py): what landed is recorded as written, the rest is planned and created again.
When Salesforce cannot be asked, the intents stay and their calendars wait: creating again
could give a meeting two Events.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from calsync.core.errors import AuthError, PermanentError, TransientError
from calsync.core.logs import event as log_event
from calsync.core.model import fingerprint_of
from calsync.engine.salesforce_session import SalesforceSession
from calsync.rules import landed, ownership
from calsync.state.store import StateStore

log = logging.getLogger("calsync.cycle")  # names predate the layers (ARCHITECTURE.md)


class Reconciler:
    """Adopts the Events of unanswered creates; `interrupted`: the users a crash left such
    creates for (their calendars are swept this cycle, sweep.py)."""

    def __init__(self, store: StateStore, session: SalesforceSession) -> None:
        self.store = store
        self.session = session
        self.interrupted: set[str] = set()  # users with creates a crash left unanswered

    @staticmethod
    def _cannot_reconcile(exc: PermanentError) -> None:
        """Salesforce refuses the reconciling query itself: better to go on than to stay stuck
        (an upsert on the External ID cannot double an Event)."""
        log.error(
            "cannot reconcile interrupted creates",
            extra={"fields": {"error": str(exc), "action": "upserting them again by External ID"}},
        )

    def reconcile_creates(
        self, users: Sequence[str], owner_ids: Mapping[str, str], now: dt.datetime
    ) -> dict[str, str]:
        """Adopt Events whose create landed but whose answer was never recorded.

        Returns the users whose intents could not be looked for (→ why): their intents stay and
        their calendars fail this cycle, since creating again could give a meeting two Events.
        """
        pending = self.store.pending_creates(users)
        self.interrupted = {p.owner for p in pending}  # their calendars are swept this cycle
        if not pending:
            return {}
        session = self.session
        session.check_event_fields(now)
        activity = session.settings.activity_datetime_field
        adopted = 0
        upsert_field = session.upsert_field
        if upsert_field:
            try:
                found = session.org.events_by_key(upsert_field, [p.key for p in pending])
            except PermanentError as exc:
                self._cannot_reconcile(exc)
                found = {}
            for p in pending:
                if p.key in found:
                    intent = _without(p.intent, upsert_field)
                    self.store.record_written(p.key, p.owner, p.ical_uid, found[p.key],
                                              fingerprint_of(intent, activity), now,
                                              hashes=ownership.hashes(intent))
                    adopted += 1
                else:
                    self.store.abandon_create(p.key)
            log_event(log, "reconciled interrupted creates", pending=len(pending), adopted=adopted)
            return {}
        ids = sorted({owner_ids[p.owner] for p in pending if p.owner in owner_ids})
        since = landed.window_start(pending)
        try:
            own = session.own_user(now)
            fields = ownership.query_fields((), activity)
            rows = session.org.events_created_since(ids, since, own, fields) if ids else []
        except (PermanentError, TransientError, AuthError) as exc:
            log_event(log, "cannot reconcile interrupted creates", level=logging.ERROR, error=str(exc),
                      pending=len(pending), action="kept for the next run; their calendars wait")
            return {p.owner: str(exc) for p in pending}
        found = landed.match(pending, rows, self.store.claims(r["Id"] for r in rows), own)
        for p in pending:
            row = found.get(p.key)
            if row is None:
                self.store.abandon_create(p.key)  # it never landed: planned and created again
                continue
            # What the org's automation made of calsync's insert is calsync's write too.
            self.store.record_written(p.key, p.owner, p.ical_uid, str(row["Id"]),
                                      fingerprint_of(p.intent, activity), now,
                                      hashes=ownership.as_stored(p.intent, row, own))
            adopted += 1
        log_event(log, "reconciled interrupted creates", pending=len(pending), adopted=adopted,
                  since=since.isoformat(timespec="seconds"))
        return {}


def _without(record: Mapping[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != name}
