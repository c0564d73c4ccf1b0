"""One sync cycle: calendar changes → directory lookups → plan → Salesforce writes → commit.

For each calendar: list the changes since its sync token (a full listing on first run or after a
410), work out which meetings changed (`mirror`), apply the listing to the mirror together with
a durable queue of those meetings (reading.py), ask Salesforce about their people in batches
(lookup.py), let the planner decide (planning.py), read back what people changed (readback.py),
write through Collections (writes.py) and only then store the token and empty the queue.

Crash safety (a SIGKILL at any instant, a write that fails): creates are recorded as intents
before the call and reconciled at the start of the next run (by External ID when the org has
one, else by owner, start and end among the Events calsync's user created since the intent, in
Salesforce's own clock: landed.py, reconcile.py); updates and deletes are idempotent; the
mirror never moves past a meeting whose writes are neither done nor queued (the queue is
`replans`, committed with the mirror), and the sync token only moves once they are done, so a
crash or a failed write re-plans the same meetings and the fingerprints make the replay a no-op.
The sweep (`sweep.py`) settles, on evidence, any Event whose meeting the mirror does not know. A
cycle where nothing changed and nothing waits for a retry makes no Salesforce call and no extra
state write: the user mapping and the Event describe are cached in the state store, and an empty
listing queues nothing.

`Cycle` composes the parts, each an object of its own sharing the cycle's Salesforce session
(salesforce_session.py: the lazily made client, the plan settings the Event describe vets, the
External ID field, calsync's own User, the spent allowance): `Owners` (owners.py), `Planning`,
`ReadBack`, `Writer` and `Reconciler`; its methods of old delegate to them, so resync and
`explain --live` drive the same parts.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from calsync.calendar.source import CalendarFactory
from calsync.core.config import Config
from calsync.core.errors import (
    AuthError,
    CalsyncError,
    PermanentError,
    QuotaExhausted,
    StateError,
    TransientError,
)
from calsync.core.logs import event as log_event
from calsync.core.model import (
    Create,
    Directory,
    Lead,
    MeetingCopy,
    Operation,
    PlanSettings,
    Update,
    Written,
)
from calsync.engine import decisions, directory, identity
from calsync.engine.outcome import CalendarOutcome, CycleResult
from calsync.engine.owners import Owners
from calsync.engine.planning import Planning
from calsync.engine.readback import ReadBack
from calsync.engine.reading import Pending, fetch, indexed
from calsync.engine.reconcile import Reconciler
from calsync.engine.salesforce_session import SalesforceSession
from calsync.engine.writes import Writer
from calsync.rules import duplicates, ownership
from calsync.rules.planner import addresses_to_look_up
from calsync.salesforce.org import SalesforceOrg
from calsync.state.store import MirrorRow, StateStore

log = logging.getLogger("calsync.cycle")  # names predate the layers (ARCHITECTURE.md)

# Calendars are fetched, planned and written in chunks of about this many meetings (a calendar
# is never split): peak memory stays that of one chunk, whatever the number of calendars
# (issue 12: ~8 KB a meeting held, 227 MB for a 20,000-meeting first sync in one batch). Each
# chunk costs at most a few Salesforce calls more than one batch would (a partly filled
# lookup query and Collections call per kind, and a duplicates query on full listings).
CHUNK_MEETINGS = 2_500

__all__ = ["CHUNK_MEETINGS", "CalendarOutcome", "Cycle", "CycleResult"]


class Cycle:
    """Runs cycles for a configuration. `calendar_for(user)` and `org()` build the adapters."""

    def __init__(
        self,
        config: Config,
        store: StateStore,
        calendar_for: CalendarFactory,
        org_factory: Callable[[], SalesforceOrg],
        *,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
    ) -> None:
        self.config = config
        self.store = store
        self.calendar_for = calendar_for
        self.clock = clock
        self.session = SalesforceSession(config, store, org_factory)
        self.owners = Owners(config, store, self.session, calendar_for)
        self.planning = Planning(store, self.session, self.owners)
        self.readback = ReadBack(store, self.session, self.owners, clock)
        self.writer = Writer(config, store, self.session)
        self.reconciler = Reconciler(store, self.session)

    # -- the shared session (salesforce_session.py) -----------------------------------------------

    @property
    def settings(self) -> PlanSettings:
        """The plan settings, as the Event describe left them (resync widens its window)."""
        return self.session.settings

    @settings.setter
    def settings(self, value: PlanSettings) -> None:
        self.session.settings = value

    @property
    def org(self) -> SalesforceOrg:
        return self.session.org

    @property
    def salesforce_calls(self) -> int:
        return self.session.salesforce_calls

    def own_user(self, now: dt.datetime) -> str | None:
        return self.session.own_user(now)

    def check_event_fields(self, now: dt.datetime) -> None:
        self.session.check_event_fields(now)

    # -- users (owners.py) ------------------------------------------------------------------------

    @property
    def identities(self) -> dict[str, identity.Identity]:
        return self.owners.identities

    def resolve_users(self, users: Sequence[str], now: dt.datetime) -> dict[str, str | None]:
        return self.owners.resolve_users(users, now)

    def identify(self, owners: Mapping[str, str], now: dt.datetime) -> None:
        self.owners.identify(owners, now)

    def key_owner(self, user: str) -> str | None:
        return self.owners.key_owner(user)

    # -- planning, reading back, writing, reconciling ---------------------------------------------

    def look_up(self, copies: Sequence[MeetingCopy], users: Mapping[str, str]) -> Directory:
        return self.planning.look_up(copies, users)

    def plan_operations(
        self, copies: Sequence[MeetingCopy], previous: Mapping[str, Written],
        directory: Directory, now: dt.datetime,
    ) -> list[Operation]:
        return self.planning.plan_operations(copies, previous, directory, now)

    def find_duplicates(
        self, operations: Sequence[Operation], previous: Mapping[str, Written],
        users: Mapping[str, str], since: Mapping[str, dt.datetime], until: dt.datetime | None = None,
    ) -> tuple[list[Operation], tuple[duplicates.Duplicate, ...]]:
        return self.readback.find_duplicates(operations, previous, users, since, until)

    def find_superseded(
        self, operations: Sequence[Operation], previous: Mapping[str, Written], owners: Iterable[str],
    ) -> duplicates.Superseded:
        return self.readback.find_superseded(operations, previous, owners)

    def read_events(self, operations: Sequence[Operation]) -> dict[str, dict[str, Any]]:
        return self.readback.read_events(operations)

    def settle(
        self, operations: Sequence[Operation], previous: Mapping[str, Written], now: dt.datetime,
        *, current: Mapping[str, Mapping[str, Any]] | None = None, overwrite_edits: bool = False,
        restore_deleted: bool = False, conversions: Mapping[str, Lead] | None = None,
    ) -> ownership.Settled:
        return self.readback.settle(
            operations, previous, now, current=current, overwrite_edits=overwrite_edits,
            restore_deleted=restore_deleted, conversions=conversions,
        )

    def write(
        self, operations: Sequence[Operation], copies: Sequence[MeetingCopy], now: dt.datetime,
        outcomes: Mapping[str, CalendarOutcome], doubles: Sequence[duplicates.Duplicate] = (),
        listed: Mapping[str, Sequence[MirrorRow]] | None = None,
    ) -> dict[str, str]:
        return self.writer.write(operations, copies, now, outcomes, doubles, listed)

    def reconcile_creates(
        self, users: Sequence[str], owner_ids: Mapping[str, str], now: dt.datetime
    ) -> dict[str, str]:
        return self.reconciler.reconcile_creates(users, owner_ids, now)

    # -- the cycle -------------------------------------------------------------------------------

    def run(self, users: Sequence[str] | None = None) -> CycleResult:
        users = list(users if users is not None else self.config.sync.users)
        now = self.clock()
        self.planning.warned.clear()
        result = CycleResult()
        calls_before = self.salesforce_calls
        try:
            owners = self.resolve_users(users, now)
        except CalsyncError as exc:
            for user in users:
                self._fail(result, user, f"cannot map users to Salesforce: {exc}", now)
            result.salesforce_calls = self.salesforce_calls - calls_before
            return result
        directory_users: dict[str, str] = {}
        active: list[str] = []
        for user in users:
            owner_id = owners.get(user)
            if owner_id:
                directory_users[user] = owner_id
                active.append(user)
            else:
                self._fail(
                    result, user,
                    "no active Salesforce User with this email (add it to [sync] user_map)", now,
                )
        self.identify(directory_users, now)
        try:
            unreconciled = self.reconcile_creates(active, directory_users, now)
        except CalsyncError as exc:
            for user in active:
                self._fail(result, user, f"cannot reconcile earlier creates: {exc}", now)
            result.salesforce_calls = self.salesforce_calls - calls_before
            return result
        for user, error in unreconciled.items():
            # Its intents stay for the next run: creating them again could double an Event.
            self._fail(result, user, f"cannot reconcile earlier creates: {error}", now)
        active = [u for u in active if u not in unreconciled]
        if active:
            self.refresh_directory(now)

        pending: list[Pending] = []
        held = 0  # meetings fetched and not yet written
        for user in active:
            if held >= CHUNK_MEETINGS:
                self._plan_and_write(pending, directory_users, now, result)
                pending, held = [], 0
            started = time.monotonic()
            outcome = CalendarOutcome(user)
            result.calendars[user] = outcome
            try:
                pending.append(self._fetch(user, outcome, now, started))
                held += max(len(pending[-1].listing.items), len(pending[-1].found.copies))
            except StateError:
                raise  # the state database is unusable: no calendar can go on (exit 74)
            except CalsyncError as exc:
                outcome.seconds = time.monotonic() - started
                self._fail(result, user, str(exc), now)
            except Exception as exc:  # a bug must cost one calendar this cycle, not all of them
                log.exception("unexpected error listing calendar", extra={"fields": {"user": user}})
                outcome.seconds = time.monotonic() - started
                self._fail(result, user, f"unexpected {type(exc).__name__}: {exc}", now)

        if pending:
            self._plan_and_write(pending, directory_users, now, result)
        result.salesforce_calls = self.salesforce_calls - calls_before
        return result

    def refresh_directory(self, now: dt.datetime) -> None:
        """Queue the meetings that Salesforce-side changes may affect (`directory.refresh`):
        every `directory_refresh_minutes`, 3 queries; otherwise nothing, and no call."""
        every = dt.timedelta(minutes=self.config.sync.directory_refresh_minutes)
        if not directory.due(self.store, now, every):
            return  # before self.org: making the Salesforce client costs more than the poll
        try:
            directory.refresh(
                self.store, self.org, now, every=every,
                lookback=dt.timedelta(days=self.config.sync.lookback_days),
            )
        except QuotaExhausted as exc:
            self.session.quota_spent = exc  # the writes of this cycle stop too (reference C11)
            log.warning("directory refresh skipped", extra={"fields": {"error": str(exc)}})

    def _fail(self, result: CycleResult, user: str, error: str, now: dt.datetime) -> None:
        outcome = result.calendars.setdefault(user, CalendarOutcome(user))
        outcome.ok = False
        outcome.error = error
        self.store.record_failure_of_calendar(user, error, now)
        log.error("calendar failed", extra={"fields": {"user": user, "error": error}})

    def _fetch(self, user: str, outcome: CalendarOutcome, now: dt.datetime, started: float) -> Pending:
        """List, sweep and collect one calendar into its mirror (reading.py)."""
        return fetch(
            self.store, self.calendar_for(user), user, outcome, now, started,
            lookback_days=self.config.sync.lookback_days, settings=self.settings,
            interrupted=user in self.reconciler.interrupted, key_owner=self.key_owner(user),
        )

    def _plan_and_write(
        self,
        pending: list[Pending],
        users: Mapping[str, str],
        now: dt.datetime,
        result: CycleResult,
    ) -> None:
        copies = [c for p in pending for c in p.found.copies]
        previous = self.store.written(c.key for c in copies)
        failed: dict[str, str] = {}
        answers = Directory(users=dict(users))
        try:
            if addresses_to_look_up(copies, self.settings):
                answers = self.look_up(copies, users)
            operations = self.plan_operations(copies, previous, answers, now)
            if any(isinstance(op, (Create, Update)) for op in operations) and not self.session.settings_checked:
                self.check_event_fields(now)
                operations = self.plan_operations(copies, previous, answers, now)
            full = {p.user: p.time_min for p in pending if p.listing.full}
            doubles: tuple[duplicates.Duplicate, ...] = ()
            if full:
                self.check_event_fields(now)  # which rule ties Events to a meeting: key or adoption
                operations, doubles = self.find_duplicates(operations, previous, users, full)
                doubles = (*doubles, *self.find_superseded(operations, previous, full).duplicates)
            operations = list(self.settle(operations, previous, now, conversions=answers.conversions()).operations)
            # Each meeting's decision and why, for `calsync explain` (decisions.py).
            decisions.record(self.store, copies, operations, answers, self.settings, now)
            outcomes = {p.user: p.outcome for p in pending}
            # The listings are in the mirror already (apply_listing): nothing to keep early.
            failed = self.write(operations, copies, now, outcomes, doubles)
        except (TransientError, AuthError, PermanentError) as exc:
            failed = {p.user: str(exc) for p in pending}
        except StateError:
            raise
        except Exception as exc:  # nothing is committed: the next cycle lists the same changes
            log.exception("unexpected error planning or writing")
            failed = {p.user: f"unexpected {type(exc).__name__}: {exc}" for p in pending}
        for p in pending:
            p.outcome.seconds = time.monotonic() - p.started
            if p.user in failed:
                self._fail(result, p.user, failed[p.user], now)
                continue
            p.outcome.ok = True
            entries = [directory.index_entry(c, answers, self.settings) for c in p.found.copies]
            with self.store.transaction():
                # The writes are done (or parked for retry): the token moves on and the
                # listing's meetings leave the queue (the mirror already holds the listing).
                self.store.commit_listing(
                    p.user,
                    sync_token=p.listing.next_sync_token,
                    time_zone=p.found.time_zone,
                    result=p.outcome.counts(),
                    at=now,
                    done=p.queued,
                    swept=p.swept,
                )
                # Who each planned meeting could name, so a Contact, Lead or role that changes
                # in Salesforce later finds the meetings it affects (directory.py).
                self.store.index_meetings(entries)
                self.store.save_meta(indexed(p.user), True, now)
            # A poll that found nothing logs at debug: 10,000 calendars every 5 minutes would be
            # 120,000 INFO lines an hour. The daemon's summary line counts them (daemon.py).
            quiet = p.outcome.items == 0 and not p.outcome.full_sync and not _wrote(p.outcome)
            log_event(log, "calendar synced", level=logging.DEBUG if quiet else logging.INFO,
                      user=p.user, **p.outcome.counts())


def _wrote(outcome: CalendarOutcome) -> bool:
    return bool(outcome.created or outcome.updated or outcome.deleted or outcome.failed
                or outcome.canceled)
