"""Writing a plan to Salesforce: duplicates, deletes, cancels, updates, then creates with intents.

Each kind goes out in Collections batches. Crash safety: a create is recorded as an intent
(with Salesforce's clock, landed.py) in the same transaction as the listed items of its meeting
the mirror lacks, before the call, and reconciled at the next run when the answer is lost
(reconcile.py); updates and deletes are idempotent (their intents let a replay tell calsync's
own write from a person's, ownership.py). A record Salesforce refuses is parked for a later
cycle with its statusCode (`_refused`); a whole call that fails stops its calendars' commit
(`_abort`), so the next cycle replays them; once the daily allowance is spent
(`SalesforceSession.quota_spent`) nothing more is sent.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from calsync.core.config import Config
from calsync.core.errors import AuthError, CalsyncError, PermanentError, QuotaExhausted, TransientError
from calsync.core.logs import event as log_event
from calsync.core.model import Create, Delete, MeetingCopy, Operation, Retire, Skip, Update
from calsync.engine.decisions import named
from calsync.engine.outcome import CalendarOutcome
from calsync.engine.salesforce_session import SalesforceSession
from calsync.rules import duplicates, ownership
from calsync.salesforce.org import WriteResult
from calsync.state.store import MirrorRow, Record, StateStore

log = logging.getLogger("calsync.cycle")  # names predate the layers (ARCHITECTURE.md)

GONE = ("ENTITY_IS_DELETED", "NOT_FOUND", "INVALID_ID_FIELD")


@dataclass
class _WritePass:
    """What one pass of writes carries around: its time, the copies by key, the counts, and the
    items each calendar's listing brought (not yet in its mirror)."""

    now: dt.datetime
    by_key: dict[str, MeetingCopy]
    outcomes: Mapping[str, CalendarOutcome]
    failed: dict[str, str] = field(default_factory=dict)
    listed: Mapping[str, Sequence[MirrorRow]] = field(default_factory=dict)


class Writer:
    """Carries out a settled plan in Salesforce and records each answer in the state store."""

    def __init__(self, config: Config, store: StateStore, session: SalesforceSession) -> None:
        self.config = config
        self.store = store
        self.session = session

    def write(
        self,
        operations: Sequence[Operation],
        copies: Sequence[MeetingCopy],
        now: dt.datetime,
        outcomes: Mapping[str, CalendarOutcome],
        doubles: Sequence[duplicates.Duplicate] = (),
        listed: Mapping[str, Sequence[MirrorRow]] | None = None,
    ) -> dict[str, str]:
        """Carry out the plan (duplicate Events first); returns the users whose calendars must
        not commit (and why). `listed`: each calendar's listed items the mirror does not hold
        yet; those of meetings about to get an Event go into it first (`StateStore.keep_listed`)."""
        run = _WritePass(now, {c.key: c for c in copies}, outcomes, listed=listed or {})
        if doubles:
            self._delete_duplicates(doubles, run)
        skipped = [op for op in operations if isinstance(op, Skip)]
        self.store.clear_retries(op.key for op in skipped)  # parked, but no longer needs a write
        for op in skipped:
            outcomes[op.owner].skipped += 1
            if op.reason != "unchanged":
                copy = run.by_key.get(op.key)
                log_event(log, "skipped", user=op.owner, reason=op.reason,
                          event_id=google_id(copy), key=op.key, **self._named(op.owner, copy))
        creates = [op for op in operations if isinstance(op, Create)]
        updates = [op for op in operations if isinstance(op, Update)]
        self._delete([op for op in operations if isinstance(op, Delete)], run)
        retires = [op for op in operations if isinstance(op, Retire)]
        if retires and not self.session.quota_spent:
            self._retire(retires, run)
        if updates and not self.session.quota_spent:
            self._update(updates, run)
        if creates and not self.session.quota_spent:
            self._create(creates, run)
        if self.session.quota_spent:
            owners = {op.copy.owner for op in creates} | {op.copy.owner for op in updates}
            self._abort(run, owners | {op.owner for op in retires}, self.session.quota_spent)
        return run.failed

    def _abort(self, run: _WritePass, users: Iterable[str], exc: CalsyncError) -> None:
        """A whole call failed: these calendars do not commit, so the next cycle replays them."""
        if isinstance(exc, QuotaExhausted):
            self.session.quota_spent = exc  # the allowance is spent: no further write (reference C11)
        for user in users:
            run.failed.setdefault(user, f"Salesforce write stopped: {exc}")

    def _delete(self, deletes: list[Delete], run: _WritePass) -> None:
        for op in deletes:
            if op.sf_id is None:  # a create that never landed: nothing to delete
                self.store.forget_written(op.key)
        with_id = [op for op in deletes if op.sf_id is not None]
        if not with_id:
            return
        self.store.record_delete_intents(op.key for op in with_id)
        try:
            results = self.session.org.delete([op.sf_id for op in with_id if op.sf_id])
        except (TransientError, AuthError) as exc:
            self._abort(run, {op.owner for op in with_id}, exc)
            return
        done = [op for op, res in zip(with_id, results) if res.ok or res.status_code in GONE]
        self.store.forget_written_many(op.key for op in done)
        self.store.abandon_deletes(op.key for op, res in zip(with_id, results) if op not in done)
        for op, res in zip(with_id, results):
            # Already gone counts as done: a replay after a crash, or removed by hand.
            if res.ok or res.status_code in GONE:
                run.outcomes[op.owner].deleted += 1
                copy = run.by_key.get(op.key)
                log_event(log, "deleted", user=op.owner, sf_id=op.sf_id, reason=op.reason,
                          event_id=google_id(copy), key=op.key, **self._named(op.owner, copy))
            else:
                self._refused(run, op.key, op.owner, "delete", res)

    def _delete_duplicates(self, doubles: Sequence[duplicates.Duplicate], run: _WritePass) -> None:
        """Delete the extra Events of meetings; one that fails is found again next time (not
        parked: its meeting's own state is not touched)."""
        try:
            results = self.session.org.delete([d.sf_id for d in doubles])
        except (TransientError, AuthError) as exc:
            self._abort(run, {d.user for d in doubles}, exc)
            return
        self.store.forget_written_many(
            d.forget for d, res in zip(doubles, results) if d.forget and (res.ok or res.status_code in GONE)
        )
        for d, res in zip(doubles, results):
            if res.ok or res.status_code in GONE:
                run.outcomes[d.user].deleted += 1
                log_event(log, "deleted duplicate", user=d.user, sf_id=d.sf_id, kept=d.keep,
                          key=d.key, subject=d.extra.get("Subject"),
                          start=d.extra.get("StartDateTime"))
            else:
                log_event(log, "cannot delete duplicate", level=logging.WARNING, user=d.user,
                          sf_id=d.sf_id, kept=d.keep, key=d.key, status_code=res.status_code,
                          error=res.message)

    def _retire(self, retires: list[Retire], run: _WritePass) -> None:
        """Meetings gone whose Events a person changed: `Canceled: ` on the Subject, the rest
        left as the person made it (ownership.py)."""
        sending = [op for op in retires if op.subject is not None]
        results: list[WriteResult] = []
        if sending:
            self.store.record_update_intents(
                {op.key: {"Subject": ownership.digest("Subject", op.subject)} for op in sending}
            )
            try:
                results = self.session.org.update([{"Id": op.sf_id, "Subject": op.subject} for op in sending])
            except (TransientError, AuthError) as exc:
                self._abort(run, {op.owner for op in sending}, exc)
                return
            except PermanentError as exc:
                results = [WriteResult(False, None, exc.status_code, str(exc))] * len(sending)
        answers = dict(zip((op.key for op in sending), results))
        before = self.store.written(op.key for op in retires)
        for op in retires:
            res = answers.get(op.key)
            if res is not None and not res.ok:
                if res.status_code in GONE:
                    self.store.mark_removed([op.key], run.now)
                else:
                    self._refused(run, op.key, op.owner, "cancel", res)
                continue
            hashes = dict(before[op.key].hashes or {}) if op.key in before else {}
            if op.subject is not None:
                hashes["Subject"] = ownership.digest("Subject", op.subject)
            run.outcomes[op.owner].canceled += 1
            self.store.mark_canceled(op.key, hashes, run.now, prefixed=op.subject is not None)
            copy = run.by_key.get(op.key)
            log_event(log, "kept an Event a person changed, marked canceled", user=op.owner,
                      sf_id=op.sf_id, reason=op.reason, kept=",".join(sorted(op.kept)),
                      event_id=google_id(copy), key=op.key, **self._named(op.owner, copy))

    def _update(self, updates: list[Update], run: _WritePass) -> None:
        records = [{"Id": op.sf_id, **op.body()} for op in updates]
        self.store.record_update_intents({op.key: ownership.hashes(op.body()) for op in updates})
        try:
            results = self.session.org.update(records)
        except (TransientError, AuthError) as exc:
            self._abort(run, {op.copy.owner for op in updates}, exc)
            return
        except PermanentError as exc:
            results = [WriteResult(False, None, exc.status_code, str(exc))] * len(updates)
        self.store.record_written_many(
            (record_of(op) for op, res in zip(updates, results) if res.ok), run.now
        )
        for op, res in zip(updates, results):
            owner = op.copy.owner
            if res.ok:
                run.outcomes[owner].updated += 1
                log_event(log, "updated", user=owner, sf_id=op.sf_id,
                          event_id=google_id(op.copy), key=op.key, **named(op.copy))
            elif res.status_code in GONE:
                # Deleted in Salesforce by someone since it was read: it stays deleted.
                self.store.mark_removed([op.key], run.now)
                log_event(log, "deleted in Salesforce, not re-created", user=owner,
                          sf_id=op.sf_id, event_id=google_id(op.copy), key=op.key,
                          **named(op.copy))
            else:
                self._refused(run, op.key, owner, "update", res)

    def _create(self, creates: list[Create], run: _WritePass) -> None:
        upsert_field = self.session.upsert_field
        bodies = []
        for op in creates:
            body = op.fields.to_salesforce()
            if upsert_field:
                body[upsert_field] = op.key
            bodies.append(body)
        new = {(op.copy.owner, op.copy.ical_uid) for op in creates}
        org = self.session.org
        # Salesforce's clock: where the Event is looked for if the answer is lost (landed.py).
        sf_now = org.server_now()
        with self.store.transaction():
            # If the answer is lost and the meeting deleted before the next run, the deletion
            # comes as a bare id: the mirror must know it to find the Event that landed.
            for user, rows in run.listed.items():
                if kept := [r for r in rows if (user, r.ical_uid) in new]:
                    self.store.keep_listed(user, kept)
            self.store.record_create_intents(
                [(op.key, op.copy.owner, op.copy.ical_uid, body) for op, body in zip(creates, bodies)],
                run.now,
                sf_now,
            )
        try:
            if upsert_field:
                results = org.upsert(upsert_field, bodies)
            else:
                results = org.create(bodies)
        except (TransientError, AuthError) as exc:
            # The intents stay: whatever landed is found and adopted at the next run's start.
            self._abort(run, {op.copy.owner for op in creates}, exc)
            return
        except PermanentError as exc:
            results = [WriteResult(False, None, exc.status_code, str(exc))] * len(creates)
        self.store.record_written_many(
            (Record(op.key, op.copy.owner, op.copy.ical_uid, res.id, op.fields.fingerprint(),
                    ownership.hashes(op.fields.to_salesforce()), frozenset())
             for op, res in zip(creates, results) if res.ok and res.id),
            run.now,
        )
        for op, res in zip(creates, results):
            owner = op.copy.owner
            if res.ok and res.id:
                run.outcomes[owner].created += 1
                # An upsert on the External ID that found the Event already there (a lost state,
                # an earlier calsync) took it over: Salesforce says so with created=false (B4).
                verb = "adopted" if upsert_field and res.created is False else "created"
                log_event(log, verb, user=owner, sf_id=res.id,
                          event_id=google_id(op.copy), key=op.key, **named(op.copy))
            else:
                self.store.abandon_create(op.key)
                self._refused(run, op.key, owner, "create", res)

    def _named(self, owner: str, copy: MeetingCopy | None) -> dict[str, str | None]:
        """Subject and start for a log line; for a meeting gone from the calendar (nothing left
        to read them from), the ones its decision kept (decisions.record)."""
        found = named(copy)
        if found.get("subject") is None and found.get("start") is None and copy is not None:
            known = next(iter(self.store.decisions(owner, ical_uids=[copy.ical_uid])), None)
            if known is not None:
                found = {"subject": known.subject,
                         "start": known.start.isoformat(timespec="minutes") if known.start else None}
        return found

    def _refused(
        self,
        run: _WritePass,
        key: str,
        owner: str,
        operation: str,
        res: WriteResult,
        delay: dt.timedelta | None = None,
    ) -> None:
        """Salesforce refused one record: park it with its statusCode for a later cycle."""
        copy = run.by_key.get(key)
        retry = self.store.record_retry(
            key, owner, copy.ical_uid if copy else "", operation, res.status_code, res.message,
            run.now, dt.timedelta(minutes=self.config.sync.interval_minutes) if delay is None else delay,
        )
        run.outcomes[owner].failed += 1
        log_event(
            log, "failed", level=logging.WARNING, user=owner, operation=operation,
            status_code=res.status_code, error=res.message, event_id=google_id(copy), key=key,
            **named(copy),  # subject, start: which meeting it is
            attempts=retry.attempts, next_attempt=retry.next_attempt_at.isoformat(timespec="seconds"),
        )


def record_of(op: Update) -> Record:
    """The state row of an update as written: only the fields sent are calsync's."""
    body = op.body()
    return Record(op.key, op.copy.owner, op.copy.ical_uid, op.sf_id, op.fields.fingerprint(omit=op.kept),
                  ownership.hashes(body), op.kept)


def google_id(copy: MeetingCopy | None) -> str | None:
    """The Google event id a log line about this meeting carries (the listed item, else the
    one the mirror knew)."""
    if copy is None:
        return None
    return copy.items[0].id if copy.items else copy.event_id
