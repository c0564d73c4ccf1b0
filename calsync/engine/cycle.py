"""One sync cycle: Google changes → directory lookups → plan → Salesforce writes → commit.

For each calendar: list the changes since its sync token (a full listing on first run or after a
410), work out which meetings changed (`mirror`), apply the listing to the mirror together with
a durable queue of those meetings, ask Salesforce about their people in batches, let the planner
decide, write through Collections and only then store the token and empty the queue.

Crash safety (a SIGKILL at any instant, a write that fails): creates are recorded as intents
before the call and reconciled at the start of the next run (by External ID when the org has
one, else by owner, start and end among the Events calsync's user created since the intent, in
Salesforce's own clock: landed.py); updates and deletes are idempotent; the mirror never moves
past a meeting whose writes are neither done nor queued (the queue is `replans`, committed with
the mirror), and the sync token only moves once they are done, so a crash or a failed write
re-plans the same meetings and the fingerprints make the replay a no-op. The sweep (`sweep.py`)
settles, on evidence, any Event whose meeting the mirror does not know. A cycle where nothing
changed and nothing waits for a retry makes no Salesforce call and no extra state write: the
user mapping and the Event describe are cached in the state store, and an empty listing queues
nothing.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from calsync.engine import changes, directory, explain, identity, mirror, sweep

from calsync.rules import duplicates, landed, ownership
from calsync.core.config import Config
from calsync.core.errors import (
    AuthError,
    CalsyncError,
    PermanentError,
    QuotaExhausted,
    StateError,
    SyncTokenExpired,
    TransientError,
)
from calsync.calendar.google.api import Listing
from calsync.core.logs import event as log_event
from calsync.core.model import (
    Contact,
    Create,
    Delete,
    Directory,
    Lead,
    MeetingCopy,
    Operation,
    Retire,
    Skip,
    Update,
    Written,
    fingerprint_of,
)
from calsync.rules.planner import (
    addresses_to_look_up,
    contacts_to_relate,
    name_candidates,
    plan,
)
from calsync.salesforce.org import LeadsFound, SalesforceOrg, WriteResult
from calsync.state.store import MirrorRow, Record, StateStore

log = logging.getLogger("calsync.cycle")  # names predate the layers (ARCHITECTURE.md)

USER_CACHE_TTL = dt.timedelta(hours=24)
MISSING_USER_TTL = dt.timedelta(hours=1)
DESCRIBE_TTL = dt.timedelta(hours=24)
OWN_USER_TTL = dt.timedelta(hours=24)  # calsync's own Salesforce user, for auth = "access_token"
GONE = ("ENTITY_IS_DELETED", "NOT_FOUND", "INVALID_ID_FIELD")
EMAIL_MAX = 80
# Calendars are fetched, planned and written in chunks of about this many meetings (a calendar
# is never split): peak memory stays that of one chunk, whatever the number of calendars
# (issue 12: ~8 KB a meeting held, 227 MB for a 20,000-meeting first sync in one batch). Each
# chunk costs at most a few Salesforce calls more than one batch would (a partly filled
# lookup query and Collections call per kind, and a duplicates query on full listings).
CHUNK_MEETINGS = 2_500


@dataclass
class CalendarOutcome:
    user: str
    ok: bool = False
    error: str | None = None
    full_sync: bool = False
    items: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    skipped: int = 0
    failed: int = 0
    canceled: int = 0  # meetings gone whose Events a person changed: kept with "Canceled: "
    google_calls: int = 0
    seconds: float = 0.0

    def counts(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "created": self.created,
            "updated": self.updated,
            "deleted": self.deleted,
            "skipped": self.skipped,
            "failed": self.failed,
            "canceled": self.canceled,
            "full_sync": self.full_sync,
            "google_calls": self.google_calls,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class CycleResult:
    calendars: dict[str, CalendarOutcome] = field(default_factory=dict)
    salesforce_calls: int = 0

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.calendars.values())


@dataclass
class _WritePass:
    """What one pass of writes carries around: its time, the copies by key, the counts, and the
    items each calendar's listing brought (not yet in its mirror)."""

    now: dt.datetime
    by_key: dict[str, MeetingCopy]
    outcomes: Mapping[str, CalendarOutcome]
    failed: dict[str, str] = field(default_factory=dict)
    listed: Mapping[str, Sequence[MirrorRow]] = field(default_factory=dict)


@dataclass
class _Pending:
    """A calendar whose listing is fetched and planned but not yet committed."""

    user: str
    outcome: CalendarOutcome
    listing: Listing
    found: changes.Changes  # the listing's changes and the meetings to plan
    started: float
    time_min: dt.datetime
    swept: bool | None = None  # the sweep ran: settled everything (True) or left some (False)

    @property
    def queued(self) -> frozenset[str]:
        """The meetings queued with the mirror: taken off the queue at the commit."""
        return self.found.delta.affected


class Cycle:
    """Runs cycles for a configuration. `calendar_for(user)` and `org()` build the adapters."""

    def __init__(
        self,
        config: Config,
        store: StateStore,
        calendar_for: Callable[[str], changes.CalendarSource],
        org_factory: Callable[[], SalesforceOrg],
        *,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
    ) -> None:
        self.config = config
        self.store = store
        self.calendar_for = calendar_for
        self._org_factory = org_factory
        self._org: SalesforceOrg | None = None
        self.clock = clock
        self.settings = config.plan_settings()
        self._settings_checked = False
        self._upsert_field: str | None = None
        self._quota_spent: QuotaExhausted | None = None
        self._warned: set[str] = set()  # warnings logged this run: each once per cycle
        self.identities: dict[str, identity.Identity] = {}  # resolved users (identity.py)
        self._own_user: str | None = None
        self._interrupted: set[str] = set()  # users with creates a crash left unanswered

    # -- Salesforce, lazily: an idle cycle must not even log in ---------------------------------

    @property
    def org(self) -> SalesforceOrg:
        if self._org is None:
            self._org = self._org_factory()
        return self._org

    @property
    def salesforce_calls(self) -> int:
        return self._org.calls if self._org is not None else 0

    def own_user(self, now: dt.datetime) -> str | None:
        """The Id of the Salesforce User calsync writes as: its changes are never a person's
        (ownership.py), and the Events of lost creates are among those it created.

        Asked only when Events are read back or reconciled, never on an idle cycle. JWT and
        password logins name it in the token answer; an access token costs one call, cached in
        the state store for a day.
        """
        if self._own_user is not None:
            return self._own_user
        org = self.org
        if org.auth != "access_token":
            self._own_user = org.own_user_id()
            return self._own_user
        name = f"salesforce_user:{self.config.salesforce.instance_url}"
        cached = self.store.meta(name)
        if cached is not None and cached[0] and now - cached[1] < OWN_USER_TTL:
            self._own_user = str(cached[0])
            return self._own_user
        self._own_user = org.own_user_id()
        if self._own_user:
            self.store.save_meta(name, self._own_user, now)
        return self._own_user

    def check_event_fields(self, now: dt.datetime) -> None:
        """Read Event's describe (cached a day) to vet the activity and External ID fields.

        A missing or read-only activity Date/Time field is reported once and then left out of
        every write; a missing External ID field falls back to recorded intents.
        """
        if self._settings_checked:
            return
        wanted_activity = self.config.sync.activity_datetime_field
        wanted_key = self.config.salesforce.external_id_field
        if not wanted_activity and not wanted_key:
            self._settings_checked = True
            return
        cached = self.store.meta("describe:Event")
        if cached is None or now - cached[1] > DESCRIBE_TTL:
            try:
                describe = self.org.describe("Event")
            except QuotaExhausted:
                raise
            except (PermanentError, TransientError) as exc:
                # Without a describe the configured fields are taken on trust; a wrong one then
                # shows as per-record INVALID_FIELD failures, parked for retry.
                log.warning("cannot describe Event", extra={"fields": {"error": str(exc)}})
                self._upsert_field = wanted_key
                self._settings_checked = True
                return
            fields = {
                f["name"].lower(): {
                    "name": f["name"],
                    "type": f.get("type"),
                    "createable": bool(f.get("createable")),
                    "updateable": bool(f.get("updateable")),
                    "externalId": bool(f.get("externalId")),
                }
                for f in describe.get("fields", [])
            }
            self.store.save_meta("describe:Event", fields, now)
        else:
            fields = cached[0]
        if wanted_activity:
            problem = activity_field_problem(fields.get(wanted_activity.lower()))
            if problem:
                _report_once(
                    "activity field unusable", field=wanted_activity, problem=problem,
                    action="Events are written without it",
                )
                self.settings = replace(self.settings, activity_datetime_field=None)
        if wanted_key:
            info = fields.get(wanted_key.lower())
            problem = external_id_problem(info)
            if problem or info is None:
                _report_once(
                    "external id field unusable", field=wanted_key, problem=problem,
                    action="creates use recorded intents instead of upserts",
                )
            else:
                self._upsert_field = info["name"]
        self._settings_checked = True

    # -- users -----------------------------------------------------------------------------------

    def resolve_users(self, users: Sequence[str], now: dt.datetime) -> dict[str, str | None]:
        """Configured user → active Salesforce User Id (None: no match), cached in the store."""
        cache = self.store.sf_users(users)
        user_map = dict(self.config.sync.user_map)

        def fresh(user: str) -> bool:
            if user not in cache:
                return False
            user_id, checked = cache[user]
            return now - checked < (USER_CACHE_TTL if user_id else MISSING_USER_TTL)

        if all(fresh(u) for u in users):
            return {u: cache[u][0] for u in users}
        targets = {u: user_map.get(u, u).lower() for u in users}
        ids = [t for t in targets.values() if t.startswith("005") and "@" not in t]
        try:
            found = self.org.find_users([t for t in targets.values() if "@" in t], ids)
        except (TransientError, AuthError):
            if all(u in cache for u in users):
                # Salesforce is out of reach: a day-old mapping beats skipping every calendar.
                return {u: cache[u][0] for u in users}
            raise
        resolved: dict[str, str | None] = {}
        for user, target in targets.items():
            matches = [
                u
                for u in found
                if u.active
                and (target in (u.email, u.username) or u.id.lower()[:15] == target[:15].lower())
            ]
            # An explicit map to a username wins over an email match; several users sharing an
            # email: the lowest Id, so the choice is stable.
            matches.sort(key=lambda u: (u.username != target, u.id))
            resolved[user] = matches[0].id if matches else None
        self.store.save_sf_users(resolved, now)
        return resolved

    def identify(self, owners: Mapping[str, str], now: dt.datetime) -> None:
        """Key addresses and renames of the resolved users (identity.py), before any listing."""
        self.identities = identity.settle(
            self.store, owners, self.settings.configured_users, now, same_calendar=self._same_calendar
        )

    def _same_calendar(self, old: str, new: str) -> bool | None:
        """Whether `new`'s calendar holds the items calsync knows of `old`'s (a rename keeps the
        calendar and its event ids): up to 3 of the latest, each asked by id (events.get, which
        also answers for cancelled items, reference A3). None: Google could not say now."""
        rows = [r for r in self.store.mirror_rows(old) if r.payload.get("status") != "cancelled"]
        if not rows:
            return True  # nothing of the old calendar could be lost
        rows.sort(key=lambda r: (str(r.payload.get("updated") or ""), r.event_id), reverse=True)
        try:
            source = self.calendar_for(new)
            for row in rows[:3]:
                found = source.get_event(row.event_id)
                # A deleted item answers as a stub without its iCalUID (reference A3).
                if found is None or found.get("iCalUID", row.ical_uid) != row.ical_uid:
                    return False
        except CalsyncError as exc:
            log_event(log, "cannot check a rename now", level=logging.WARNING, old=old, new=new,
                      error=str(exc))
            return None
        return True

    def key_owner(self, user: str) -> str | None:
        """The address `user`'s keys are hashed from when it is not `user` (`identify` first)."""
        found = self.identities.get(user)
        return found.key_owner if found is not None else None

    # -- the cycle -------------------------------------------------------------------------------

    def run(self, users: Sequence[str] | None = None) -> CycleResult:
        users = list(users if users is not None else self.config.sync.users)
        now = self.clock()
        self._warned.clear()
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

        pending: list[_Pending] = []
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
            self._quota_spent = exc  # the writes of this cycle stop too (reference C11)
            log.warning("directory refresh skipped", extra={"fields": {"error": str(exc)}})

    def _fail(self, result: CycleResult, user: str, error: str, now: dt.datetime) -> None:
        outcome = result.calendars.setdefault(user, CalendarOutcome(user))
        outcome.ok = False
        outcome.error = error
        self.store.record_failure_of_calendar(user, error, now)
        log.error("calendar failed", extra={"fields": {"user": user, "error": error}})

    def _fetch(self, user: str, outcome: CalendarOutcome, now: dt.datetime, started: float) -> _Pending:
        state = self.store.calendar(user)
        token = state.sync_token if state else None
        time_min = now - dt.timedelta(days=self.config.sync.lookback_days)
        source = self.calendar_for(user)
        outcome.full_sync = not token  # also when the listing fails: the summary says "full"
        try:
            try:
                listing = source.list_changes(token, time_min)
            except SyncTokenExpired as exc:
                # 410 (or 400 to the token): the token is dead; list the window again (reference
                # A2, C3). What the window does not show is not gone: `changes.collect` keeps it
                # or checks it by id.
                log.warning("sync token expired, full sync",
                            extra={"fields": {"user": user, "error": str(exc)}})
                self.store.drop_sync_token(user)
                outcome.full_sync = True
                listing = source.list_changes(None, time_min)
        finally:
            outcome.google_calls = source.calls  # failed requests count too
        outcome.items = len(listing.items)
        if listing.next_sync_token is None:
            raise TransientError("Google's last page carried no nextSyncToken")
        again = {retry.ical_uid for retry in self.store.due_retries(user, now)}
        replans = self.store.replans(user)  # Salesforce-side changes, and work a crash left
        if self.store.meta(_indexed(user)) is None and not listing.full:
            # A calendar synced before the meeting index existed: plan its meetings of the
            # window once, so that Salesforce-side changes can find them from now on.
            replans |= {row.ical_uid for row in self.store.mirror_rows(user) if mirror.covered(row, time_min)}
        swept: sweep.Swept | None = None
        try:
            if sweep.due(state, now, full=listing.full, interrupted=user in self._interrupted):
                swept = sweep.sweep(self.store, source, user, listed=_uids(listing.items))
            found = changes.collect(
                self.store, source, user, listing, time_min, self.settings,
                also=again | replans | (swept.gone if swept else frozenset()),
                evidence=swept.items if swept else (), key_owner=self.key_owner(user),
            )
        finally:
            outcome.google_calls = source.calls  # with the checks by id and series fetched
        # The mirror learns the listing now, with every meeting it touches queued, before any
        # write: a crash or a failed write from here on leaves the work queued (re-planned by
        # the next cycle), never a Salesforce Event whose meeting the mirror does not know.
        self.store.apply_listing(
            user, upserts=found.delta.upserts, deletes=found.delta.deletes,
            suspects=found.suspects, queued=found.delta.affected, at=now,
        )
        return _Pending(user, outcome, listing, found, started, time_min,
                        swept=swept.complete if swept is not None else None)

    def _plan_and_write(
        self,
        pending: list[_Pending],
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
            if any(isinstance(op, (Create, Update)) for op in operations) and not self._settings_checked:
                self.check_event_fields(now)
                operations = self.plan_operations(copies, previous, answers, now)
            full = {p.user: p.time_min for p in pending if p.listing.full}
            doubles: tuple[duplicates.Duplicate, ...] = ()
            if full:
                self.check_event_fields(now)  # which rule ties Events to a meeting: key or adoption
                operations, doubles = self.find_duplicates(operations, previous, users, full)
                doubles = (*doubles, *self.find_superseded(operations, previous, full).duplicates)
            operations = list(self.settle(operations, previous, now, conversions=answers.conversions()).operations)
            # Each meeting's decision and why, for `calsync explain` (explain.py).
            explain.record(self.store, copies, operations, answers, self.settings, now)
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
                self.store.save_meta(_indexed(p.user), True, now)
            # A poll that found nothing logs at debug: 10,000 calendars every 5 minutes would be
            # 120,000 INFO lines an hour. The daemon's summary line counts them (daemon.py).
            quiet = p.outcome.items == 0 and not p.outcome.full_sync and not _wrote(p.outcome)
            log_event(log, "calendar synced", level=logging.DEBUG if quiet else logging.INFO,
                      user=p.user, **p.outcome.counts())

    def plan_operations(
        self,
        copies: Sequence[MeetingCopy],
        previous: Mapping[str, Written],
        directory: Directory,
        now: dt.datetime,
    ) -> list[Operation]:
        planned = plan(copies, previous, directory, self.settings, now)
        for warning in planned.warnings:
            if warning not in self._warned:  # a cycle may plan twice (fields vetted at first write)
                self._warned.add(warning)
                log.warning(warning)
        operations = list(planned.operations)
        if any(isinstance(op, Delete) and op.owner in self.identities
               and self.identities[op.owner].siblings for op in operations):
            operations = self._keep_shared(operations, copies, previous, directory, now)
        return operations

    def _keep_shared(
        self,
        operations: list[Operation],
        copies: Sequence[MeetingCopy],
        previous: Mapping[str, Written],
        answers: Directory,
        now: dt.datetime,
    ) -> list[Operation]:
        """Deletes of meetings another configured address of the same Salesforce User still
        has become Skips (identity.keep_shared_events): its copy is this plan's, else the one
        its calendar's mirror holds; its people are looked up if need be (a rare case: a
        meeting that two addresses of one User had, dropped by one)."""
        batch = {(c.owner, c.ical_uid): c for c in copies}

        def sibling_copy(address: str, uid: str, key_owner: str | None) -> MeetingCopy | None:
            if (address, uid) in batch:
                return batch[(address, uid)]
            rows = self.store.mirror_by_uids(address, [uid]).get(uid)
            if not rows:
                return None
            calendar = self.store.calendar(address)
            return mirror.meeting_copy(address, uid, rows, calendar.time_zone if calendar else None,
                                       key_owner=key_owner)

        found = identity.shared_copies(
            operations, self.identities, {c.key: c.ical_uid for c in copies}, sibling_copy
        )
        if not found:
            return operations
        theirs = [copy for copy, _ in found]
        users = {**answers.users, **{copy.owner: sf_user for copy, sf_user in found}}
        people = (self.look_up(theirs, users) if addresses_to_look_up(theirs, self.settings)
                  else Directory(users=users))
        planned = plan(theirs, previous, people, self.settings, now).operations
        return identity.keep_shared_events(operations, planned)

    def look_up(self, copies: Sequence[MeetingCopy], users: Mapping[str, str]) -> Directory:
        """Contacts by rank of candidate, Leads for the rest, Opportunities of the Names.

        Batched queries (reference C8). Most meetings' first candidate is a Contact, which
        settles their Name: only the meetings it does not settle get their other attendees
        looked up. Leads are asked for an external organizer who is not a Contact and for the
        attendees before a meeting's first Contact: a converted Lead counts as the Contact it
        became, and only a Lead lookup finds it.
        """
        ranks = name_candidates(copies, self.settings)
        contacts: dict[str, tuple[Contact, ...]] = {}
        asked: set[str] = set()

        def ask(addresses: Iterable[str]) -> None:
            # Salesforce Email fields hold at most 80 characters: a longer or unprintable
            # "address" cannot match and must not make a statement Salesforce refuses.
            wanted = {a for a in addresses if len(a) <= EMAIL_MAX and a.isprintable()} - asked
            asked.update(wanted)
            if wanted:
                contacts.update(self.org.find_contacts(sorted(wanted)))

        ask(r.first for r in ranks if r.first)
        # Shared Activities relate every Contact, so then every candidate is looked up.
        unsettled = [r for r in ranks if self.settings.shared_activities or r.first not in contacts]
        # An outside organizer who declined is no candidate, but whether they are a Contact or
        # Lead decides if their unanswered invitation is logged (planner.invited_as_wanted).
        hosts = {r.host for r in ranks if r.host}
        ask([*(a for r in unsettled for a in r.attendees), *hosts])
        lead_wanted = {r.organizer for r in unsettled if r.organizer and r.organizer not in contacts}
        for r in unsettled:
            # A converted Lead counts as the Contact it became (planner.name.contact_for), and
            # only a Lead lookup finds it: every attendee before the first Contact may be one
            # (with Shared Activities, which relates every Contact, every attendee may).
            if self.settings.shared_activities:
                lead_wanted.update(a for a in r.attendees if a not in contacts)
            else:
                lead_wanted.update(itertools.takewhile(lambda a: a not in contacts, r.attendees))
        lead_wanted = {a for a in lead_wanted | hosts if a in asked and a not in contacts}
        found = self.org.find_leads(sorted(lead_wanted)) if lead_wanted else LeadsFound()
        people = Directory(contacts=contacts, leads=found.leads, converted=found.converted, users=dict(users))
        names = sorted(contacts_to_relate(copies, people, self.settings))
        opportunities = self.org.find_primary_opportunities(names) if names else {}
        return replace(people, primary_opportunities=opportunities)

    # -- writes ----------------------------------------------------------------------------------

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
        extra = (self._upsert_field,) if self._upsert_field else ()
        try:
            rows = self.org.events_starting_since([users[o] for o in owners], start, extra)
        except PermanentError as exc:
            log.warning("cannot list existing Events to adopt", extra={"fields": {"error": str(exc)}})
            return list(operations), ()
        if until is not None:
            rows = [r for r in rows if (duplicates.instant(r.get("StartDateTime")) or until) < until]
        found = duplicates.find(
            rows, duplicates.anchors(mine, previous), self.store.claims(r["Id"] for r in rows),
            key_field=self._upsert_field, users={users[o][:15]: o for o in owners},
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
        older = identity.alias_anchors(mine, self.identities, uids)
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
        activity = self.settings.activity_datetime_field
        fields = {*ownership.query_fields((), activity), "StartDateTime", "IsAllDayEvent", "ActivityDate"}
        try:
            current = self.org.events_by_ids(ids, sorted(fields))
        except PermanentError as exc:
            log.warning("cannot read Events recorded under older keys", extra={"fields": {"error": str(exc)}})
            return duplicates.Superseded()
        found = duplicates.superseded(
            ((key, duplicates.user_of(op), keep.get(key), older[key])
             for op in mine if (key := op.key) in older),
            rows, current, activity, own_user=self.own_user(self.clock()),
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
        fields = ownership.query_fields(operations, self.settings.activity_datetime_field)
        current = self.org.events_by_ids(ids, fields)
        if self.settings.shared_activities and current:
            relations = self.org.who_relations(row["Id"] for row in current.values())
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
            known.update(self.org.leads_converted_into(moved))
        settled = ownership.settle(
            operations, previous, current, overwrite_edits=overwrite_edits,
            restore_deleted=restore_deleted, activity_field=self.settings.activity_datetime_field,
            conversions=known, own_user=self.own_user(now) if current else None,
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
            (_record(op) for op in settled.unchanged.values()), now
        )
        return settled

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
                          event_id=_google_id(copy), key=op.key, **self._named(op.owner, copy))
        creates = [op for op in operations if isinstance(op, Create)]
        updates = [op for op in operations if isinstance(op, Update)]
        self._delete([op for op in operations if isinstance(op, Delete)], run)
        retires = [op for op in operations if isinstance(op, Retire)]
        if retires and not self._quota_spent:
            self._retire(retires, run)
        if updates and not self._quota_spent:
            self._update(updates, run)
        if creates and not self._quota_spent:
            self._create(creates, run)
        if self._quota_spent:
            owners = {op.copy.owner for op in creates} | {op.copy.owner for op in updates}
            self._abort(run, owners | {op.owner for op in retires}, self._quota_spent)
        return run.failed

    def _abort(self, run: "_WritePass", users: Iterable[str], exc: CalsyncError) -> None:
        """A whole call failed: these calendars do not commit, so the next cycle replays them."""
        if isinstance(exc, QuotaExhausted):
            self._quota_spent = exc  # the allowance is spent: no further write (reference C11)
        for user in users:
            run.failed.setdefault(user, f"Salesforce write stopped: {exc}")

    def _delete(self, deletes: list[Delete], run: "_WritePass") -> None:
        for op in deletes:
            if op.sf_id is None:  # a create that never landed: nothing to delete
                self.store.forget_written(op.key)
        with_id = [op for op in deletes if op.sf_id is not None]
        if not with_id:
            return
        self.store.record_delete_intents(op.key for op in with_id)
        try:
            results = self.org.delete([op.sf_id for op in with_id if op.sf_id])
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
                          event_id=_google_id(copy), key=op.key, **self._named(op.owner, copy))
            else:
                self._refused(run, op.key, op.owner, "delete", res)

    def _delete_duplicates(self, doubles: Sequence[duplicates.Duplicate], run: "_WritePass") -> None:
        """Delete the extra Events of meetings; one that fails is found again next time (not
        parked: its meeting's own state is not touched)."""
        try:
            results = self.org.delete([d.sf_id for d in doubles])
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

    def _retire(self, retires: list[Retire], run: "_WritePass") -> None:
        """Meetings gone whose Events a person changed: `Canceled: ` on the Subject, the rest
        left as the person made it (ownership.py)."""
        sending = [op for op in retires if op.subject is not None]
        results: list[WriteResult] = []
        if sending:
            self.store.record_update_intents(
                {op.key: {"Subject": ownership.digest("Subject", op.subject)} for op in sending}
            )
            try:
                results = self.org.update([{"Id": op.sf_id, "Subject": op.subject} for op in sending])
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
                      event_id=_google_id(copy), key=op.key, **self._named(op.owner, copy))

    def _update(self, updates: list[Update], run: "_WritePass") -> None:
        records = [{"Id": op.sf_id, **op.body()} for op in updates]
        self.store.record_update_intents({op.key: ownership.hashes(op.body()) for op in updates})
        try:
            results = self.org.update(records)
        except (TransientError, AuthError) as exc:
            self._abort(run, {op.copy.owner for op in updates}, exc)
            return
        except PermanentError as exc:
            results = [WriteResult(False, None, exc.status_code, str(exc))] * len(updates)
        self.store.record_written_many(
            (_record(op) for op, res in zip(updates, results) if res.ok), run.now
        )
        for op, res in zip(updates, results):
            owner = op.copy.owner
            if res.ok:
                run.outcomes[owner].updated += 1
                log_event(log, "updated", user=owner, sf_id=op.sf_id,
                          event_id=_google_id(op.copy), key=op.key, **explain.named(op.copy))
            elif res.status_code in GONE:
                # Deleted in Salesforce by someone since it was read: it stays deleted.
                self.store.mark_removed([op.key], run.now)
                log_event(log, "deleted in Salesforce, not re-created", user=owner,
                          sf_id=op.sf_id, event_id=_google_id(op.copy), key=op.key,
                          **explain.named(op.copy))
            else:
                self._refused(run, op.key, owner, "update", res)

    def _create(self, creates: list[Create], run: "_WritePass") -> None:
        bodies = []
        for op in creates:
            body = op.fields.to_salesforce()
            if self._upsert_field:
                body[self._upsert_field] = op.key
            bodies.append(body)
        new = {(op.copy.owner, op.copy.ical_uid) for op in creates}
        # Salesforce's clock: where the Event is looked for if the answer is lost (landed.py).
        sf_now = self.org.server_now()
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
            if self._upsert_field:
                results = self.org.upsert(self._upsert_field, bodies)
            else:
                results = self.org.create(bodies)
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
                verb = "adopted" if self._upsert_field and res.created is False else "created"
                log_event(log, verb, user=owner, sf_id=res.id,
                          event_id=_google_id(op.copy), key=op.key, **explain.named(op.copy))
            else:
                self.store.abandon_create(op.key)
                self._refused(run, op.key, owner, "create", res)

    def _named(self, owner: str, copy: MeetingCopy | None) -> dict[str, str | None]:
        """Subject and start for a log line; for a meeting gone from the calendar (nothing left
        to read them from), the ones its decision kept (explain.record)."""
        found = explain.named(copy)
        if found.get("subject") is None and found.get("start") is None and copy is not None:
            known = next(iter(self.store.decisions(owner, ical_uids=[copy.ical_uid])), None)
            if known is not None:
                found = {"subject": known.subject,
                         "start": known.start.isoformat(timespec="minutes") if known.start else None}
        return found

    def _refused(
        self,
        run: "_WritePass",
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
            status_code=res.status_code, error=res.message, event_id=_google_id(copy), key=key,
            **explain.named(copy),  # subject, start: which meeting it is
            attempts=retry.attempts, next_attempt=retry.next_attempt_at.isoformat(timespec="seconds"),
        )

    # -- crash recovery ------------------------------------------------------------------------

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
        self._interrupted = {p.owner for p in pending}  # their calendars are swept this cycle
        if not pending:
            return {}
        self.check_event_fields(now)
        adopted = 0
        if self._upsert_field:
            try:
                found = self.org.events_by_key(self._upsert_field, [p.key for p in pending])
            except PermanentError as exc:
                self._cannot_reconcile(exc)
                found = {}
            for p in pending:
                if p.key in found:
                    intent = _without(p.intent, self._upsert_field)
                    self.store.record_written(p.key, p.owner, p.ical_uid, found[p.key],
                                              fingerprint_of(intent, self.settings.activity_datetime_field), now,
                                              hashes=ownership.hashes(intent))
                    adopted += 1
                else:
                    self.store.abandon_create(p.key)
            log_event(log, "reconciled interrupted creates", pending=len(pending), adopted=adopted)
            return {}
        ids = sorted({owner_ids[p.owner] for p in pending if p.owner in owner_ids})
        since = landed.window_start(pending)
        try:
            own = self.own_user(now)
            fields = ownership.query_fields((), self.settings.activity_datetime_field)
            rows = self.org.events_created_since(ids, since, own, fields) if ids else []
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
                                      fingerprint_of(p.intent, self.settings.activity_datetime_field), now,
                                      hashes=ownership.as_stored(p.intent, row, own))
            adopted += 1
        log_event(log, "reconciled interrupted creates", pending=len(pending), adopted=adopted,
                  since=since.isoformat(timespec="seconds"))
        return {}


def activity_field_problem(info: Mapping[str, Any] | None) -> str | None:
    """What makes a described field unusable as the activity Date/Time field (None: usable)."""
    if info is None:
        return "does not exist on Event"
    if info.get("type") != "datetime":
        return f"is a {info.get('type')} field, not Date/Time"
    if not (info.get("createable") and info.get("updateable")):
        return "is not writable by this user"
    return None


def external_id_problem(info: Mapping[str, Any] | None) -> str | None:
    """What makes a described field unusable as the Event External ID (None: usable)."""
    if info is None:
        return "does not exist on Event"
    if not info.get("externalId"):
        return "is not marked External ID"
    if not (info.get("createable") and info.get("updateable")):
        return "is not writable by this user"
    return None


_reported: set[tuple[str, str]] = set()
_reported_lock = threading.Lock()


def _report_once(msg: str, **fields: Any) -> None:
    """A configuration problem is logged once per process (the daemon runs many cycles)."""
    with _reported_lock:
        key = (msg, str(fields.get("field")))
        if key in _reported:
            return
        _reported.add(key)
    log_event(log, msg, level=logging.ERROR, **fields)


def _without(record: Mapping[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != name}


def _record(op: Update) -> Record:
    """The state row of an update as written: only the fields sent are calsync's."""
    body = op.body()
    return Record(op.key, op.copy.owner, op.copy.ical_uid, op.sf_id, op.fields.fingerprint(omit=op.kept),
                  ownership.hashes(body), op.kept)


def _wrote(outcome: CalendarOutcome) -> bool:
    return bool(outcome.created or outcome.updated or outcome.deleted or outcome.failed
                or outcome.canceled)


def _uids(items: Iterable[Mapping[str, Any]]) -> set[str]:
    return {str(i["iCalUID"]) for i in items if isinstance(i.get("iCalUID"), str)}


def _indexed(user: str) -> str:
    """The meta row saying `user`'s meetings are in the meeting index (set at each commit)."""
    return f"indexed:{user}"


def _google_id(copy: MeetingCopy | None) -> str | None:
    if copy is None:
        return None
    return copy.items[0].id if copy.items else copy.event_id
