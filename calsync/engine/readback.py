"""Reading Salesforce's Events back before writing: what is already there, and what people changed.

- `find_duplicates` (full listings): the owners' Events of the window, read once, so that a
  meeting about to be created takes over the Event already there (a lost state database must
  not double it) and the extra Events of a meeting are found (duplicates.py);
- `find_superseded`: Events recorded under keys hashed from another address of the owner's
  Salesforce User (identity.py), the extras to delete, those a person changed (kept);
- `settle`: the current values of the Events about to be updated or deleted (`read_events`),
  so a person's change or deletion is left alone (ownership.py) and a converted Lead is not
  taken for a person's edit.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from calsync.core.errors import PermanentError
from calsync.core.logs import event as log_event
from calsync.core.model import Create, Delete, Lead, Operation, Retire, Update, Written
from calsync.engine import identity
from calsync.engine.owners import Owners
from calsync.engine.salesforce_session import SalesforceSession
from calsync.engine.writes import record_of
from calsync.rules import duplicates, ownership
from calsync.state.store import StateStore

log = logging.getLogger("calsync.cycle")  # names predate the layers (ARCHITECTURE.md)


class ReadBack:
    """The reads of Salesforce's Events a plan needs before its writes go out."""

    def __init__(
        self,
        store: StateStore,
        session: SalesforceSession,
        owners: Owners,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self.store = store
        self.session = session
        self.owners = owners
        self.clock = clock

    def find_duplicates(
        self,
        operations: Sequence[Operation],
        previous: Mapping[str, Written],
        users: Mapping[str, str],
        since: Mapping[str, dt.datetime],
        until: dt.datetime | None = None,
    ) -> tuple[list[Operation], tuple[duplicates.Duplicate, ...]]:
        """Read the Events of the owners in `since` (user → window start) once: take over those
        of meetings about to be created (a lost state database must not double what is already
        in Salesforce; with an External ID the upsert does this itself) and find the duplicate
        Events of every planned meeting (duplicates.py). One batched query.
        """
        owners = sorted(o for o in since if o in users)
        mine = [op for op in operations if duplicates.user_of(op) in owners]
        if not mine:
            return list(operations), ()
        start = min(since[o] for o in owners) - dt.timedelta(seconds=1)
        upsert_field = self.session.upsert_field
        extra = (upsert_field,) if upsert_field else ()
        try:
            rows = self.session.org.events_starting_since([users[o] for o in owners], start, extra)
        except PermanentError as exc:
            log.warning("cannot list existing Events to adopt", extra={"fields": {"error": str(exc)}})
            return list(operations), ()
        if until is not None:
            rows = [r for r in rows if (duplicates.instant(r.get("StartDateTime")) or until) < until]
        found = duplicates.find(
            rows, duplicates.anchors(mine, previous), self.store.claims(r["Id"] for r in rows),
            key_field=upsert_field, users={users[o][:15]: o for o in owners},
        )
        if found.adopt:
            log_event(log, "adopted existing Events", count=len(found.adopt))
        return duplicates.take_over(operations, found), found.duplicates

    def find_superseded(
        self,
        operations: Sequence[Operation],
        previous: Mapping[str, Written],
        owners: Iterable[str],
    ) -> duplicates.Superseded:
        """Events an older calsync recorded for these owners' planned meetings under keys hashed
        from another address of their Salesforce User (identity.py): the extras to delete with
        their rows, those a person changed (kept, logged), rows whose Event is gone (forgotten).
        Nothing to read for users who never had another address; else one query per 200."""
        owners = set(owners)
        uids = {key: w.ical_uid for key, w in previous.items()}
        uids.update((op.key, op.copy.ical_uid) for op in operations if isinstance(op, (Create, Update)))
        mine = [op for op in operations if duplicates.user_of(op) in owners]
        older = identity.alias_anchors(mine, self.owners.identities, uids)
        rows = self.store.written(k for keys in older.values() for k in keys) if older else {}
        if not rows:
            return duplicates.Superseded()
        keep: dict[str, str | None] = {}
        for op in mine:
            if isinstance(op, (Update, Delete, Retire)):
                keep[op.key] = op.sf_id
            elif op.key in previous:
                keep[op.key] = previous[op.key].sf_id
        ids = {w.sf_id for w in rows.values() if w.sf_id} | {i for i in keep.values() if i}
        activity = self.session.settings.activity_datetime_field
        fields = {*ownership.query_fields((), activity), "StartDateTime", "IsAllDayEvent", "ActivityDate"}
        try:
            current = self.session.org.events_by_ids(ids, sorted(fields))
        except PermanentError as exc:
            log.warning("cannot read Events recorded under older keys", extra={"fields": {"error": str(exc)}})
            return duplicates.Superseded()
        found = duplicates.superseded(
            ((key, duplicates.user_of(op), keep.get(key), older[key])
             for op in mine if (key := op.key) in older),
            rows, current, activity, own_user=self.session.own_user(self.clock()),
        )
        self.store.forget_written_many(found.gone)
        for d in found.kept:
            log_event(log, "kept a duplicate a person changed", level=logging.WARNING, user=d.user,
                      sf_id=d.sf_id, kept=d.keep, key=d.key, fields=",".join(sorted(d.fields)),
                      action="not deleted; delete it in Salesforce if it is not wanted")
        return found

    # -- who owns which field (ownership.py) -----------------------------------------------------

    def read_events(self, operations: Sequence[Operation]) -> dict[str, dict[str, Any]]:
        """Salesforce's current values of the fields calsync writes, for the Events these
        updates and deletes touch (at most one query per 200 Events; with Shared Activities one
        more for their Contact relations). An Event deleted in Salesforce is absent."""
        ids = [op.sf_id for op in operations if isinstance(op, (Update, Delete)) and op.sf_id]
        if not ids:
            return {}
        settings = self.session.settings
        fields = ownership.query_fields(operations, settings.activity_datetime_field)
        org = self.session.org
        current = org.events_by_ids(ids, fields)
        if settings.shared_activities and current:
            relations = org.who_relations(row["Id"] for row in current.values())
            for event_id, row in current.items():
                row["EventWhoIds"] = relations.get(event_id, [])
        return current

    def settle(
        self,
        operations: Sequence[Operation],
        previous: Mapping[str, Written],
        now: dt.datetime,
        *,
        current: Mapping[str, Mapping[str, Any]] | None = None,
        overwrite_edits: bool = False,
        restore_deleted: bool = False,
        conversions: Mapping[str, Lead] | None = None,
    ) -> ownership.Settled:
        """Leave people's changes alone (ownership.settle): read the Events about to be updated
        or deleted (unless `current` is given), record what people changed or deleted, and
        return what may be written. Creates need no read: nobody has seen those Events yet.

        `conversions`: the converted Leads the lookups found (`Directory.conversions`). An
        Event whose Name moved to a Contact that none of them explains has that Contact's
        conversions asked for (`ownership.moved_names`, one query), so a Lead converted before
        its meeting changed or went is not taken for a person's edit either."""
        if not any(isinstance(op, (Update, Delete)) and op.sf_id for op in operations):
            return ownership.Settled(tuple(operations))
        if current is None:
            current = self.read_events(operations)
        known = dict(conversions or {})
        moved = ownership.moved_names(operations, previous, current, known)
        if moved:
            known.update(self.session.org.leads_converted_into(moved))
        settled = ownership.settle(
            operations, previous, current, overwrite_edits=overwrite_edits,
            restore_deleted=restore_deleted, activity_field=self.session.settings.activity_datetime_field,
            conversions=known, own_user=self.session.own_user(now) if current else None,
        )
        self.store.keep_fields(settled.kept)
        self.store.mark_removed(settled.removed, now)
        # Events calsync's own unconfirmed delete removed: no Event now, so the state row goes
        # and the Create planned for the meeting starts afresh (an intent, then the answer).
        self.store.forget_written_many(sorted(settled.gone))
        owners = {op.key: getattr(op, "owner", None) or op.copy.owner for op in operations
                  if isinstance(op, (Update, Delete))}
        for key, names in settled.newly_kept.items():
            before = previous.get(key)
            log_event(log, "kept a change made in Salesforce", user=owners.get(key),
                      sf_id=before.sf_id if before else None, fields=",".join(sorted(names)), key=key)
        for key in sorted(settled.removed):
            before = previous.get(key)
            log_event(log, "deleted in Salesforce, not re-created", user=owners.get(key),
                      sf_id=before.sf_id if before else None, key=key)
        self.store.record_written_many(
            (record_of(op) for op in settled.unchanged.values()), now
        )
        return settled
