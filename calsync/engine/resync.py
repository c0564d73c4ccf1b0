"""`calsync resync`: re-list a window of Google Calendar and make Salesforce match it again.

A cycle trusts its state store: an Event deleted or edited by hand in Salesforce stays that way
until the meeting changes in Google. A resync does not trust it. For each chosen calendar it

1. lists the window afresh (a full listing from `since`, ``timeMin`` only; meetings whose synced
   occurrence starts at or after `until` are dropped here), combined with what the mirror knows
   as a cycle's full listing is (`changes.collect`: exceptions of a series from before the
   window are kept, meetings the listing left out are checked by id), never reading or storing
   the sync token and never changing the mirror of Google items: the next incremental cycle
   still gets every change since its token and, with the fingerprints written here, finds
   nothing to do;
2. plans every meeting of the window as if each written Event had unknown content, so the
   planner returns the desired fields of each (Update), a Create for meetings without an Event,
   and a Delete for Events whose meeting is gone (on evidence: cancelled, or not found by
   events.get) or no longer wanted; an Event calsync wrote whose meeting the mirror does not
   know is settled on evidence first (the sweep, `sweep.py`: deleted when Google no longer has
   the meeting, planned like the others when it does);
3. reads those Events back (``SELECT Id, <fields calsync writes> FROM Event WHERE Id IN (...)``,
   batched) and keeps only real work: an Event deleted in Salesforce is created again (planned
   as an unanswered create, so the write is an upsert on the key where the org has one); one
   whose fields drifted is updated; one that already holds the desired values is left alone
   (only its stored fingerprint is refreshed when that was stale);
4. writes through the cycle's own write path (`Cycle.write`, writes.py): Collections batches, intents
   before creates, refused records parked for retry.

`dry_run` stops after step 3 and reports the plan. It works on an in-memory copy of the state
(`StateStore.snapshot`), so neither the state database nor Salesforce is written. A second resync
right after a first one finds every Event as desired and writes nothing.

It also finds duplicate Events of one meeting among the owners' Events of the window (one more
batched query, duplicates.py): one is kept, the others are deleted (listed in a dry run), and a
meeting without a recorded Event takes an existing one over instead of creating another. Events
the state records for one (Salesforce owner, meeting) under a key hashed from another address of
the owner (what an older calsync left after a rename, identity.py) are duplicates too: deleted
with their rows, or, when a person changed one, kept and listed. A renamed user's state moves to
the new address first (`Cycle.identify`), as at the start of a cycle.

A resync that writes takes the single-writer lock (lock.py): it is refused (exit 75) while the
daemon or a sync writes the same state database, so the two never create the same meeting.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from calsync.engine import changes, decisions, mirror, sweep

from calsync.calendar.source import CalendarFactory
from calsync.rules import ownership
from calsync.core.config import Config
from calsync.engine.cycle import Cycle
from calsync.engine.outcome import CalendarOutcome
from calsync.engine.parked import meeting_of
from calsync.rules.duplicates import Duplicate, user_of
from calsync.core.errors import CalsyncError
from calsync.core.logs import event as log_event
from calsync.core.model import Create, Delete, Directory, MeetingCopy, Operation, Retire, Skip, Update, Written
from calsync.rules.planner import CANCELED_KEPT, addresses_to_look_up, first_occurrence
from calsync.rules.planner.fields import instant
from calsync.salesforce.org import SalesforceOrg
from calsync.state.store import MirrorRow, StateStore, history

log = logging.getLogger("calsync.resync")  # names predate the layers (ARCHITECTURE.md)

Action = Literal["create", "update", "delete", "cancel", "kept", "removed"]
COUNTED = {"create": "created", "update": "updated", "delete": "deleted", "cancel": "canceled",
           "kept": "kept", "removed": "removed"}
FORCE = "resync"  # a fingerprint no record has: makes the planner return its desired fields
# events.get calls per calendar for meetings the listing left out (a cycle makes at most
# changes.MAX_CHECKS): an operator's resync may spend more to settle them at once.
MAX_CHECKS = 1000


@dataclass(frozen=True)
class Window:
    since: dt.datetime
    until: dt.datetime | None = None  # None: no upper bound


@dataclass(frozen=True)
class Change:
    """One write a resync makes (or, in a dry run, would make)."""

    user: str
    action: Action
    key: str
    subject: str | None
    start: str | None  # ISO date (all-day) or UTC date-time
    owner_id: str | None
    sf_id: str | None
    event_id: str | None  # the Google event id
    reason: str


@dataclass(frozen=True)
class Refusal:
    """A record Salesforce refused during the resync (parked for a retry, like a cycle's)."""

    user: str
    key: str
    subject: str | None
    start: dt.datetime | None
    operation: str | None
    status_code: str | None
    message: str | None


@dataclass
class UserResult:
    user: str
    ok: bool = True
    error: str | None = None
    meetings: int = 0  # meetings of the window considered
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    failed: int = 0
    canceled: int = 0  # meetings gone whose Events a person changed: kept, marked `Canceled: `
    kept: int = 0  # Events with fields a person changed, left as they are
    removed: int = 0  # Events a person deleted in Salesforce, not re-created


@dataclass
class ResyncResult:
    dry_run: bool
    window: Window
    users: dict[str, UserResult] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    salesforce_calls: int = 0
    owners: dict[str, str | None] = field(default_factory=dict)  # address -> User Id (display)
    refused: list[Refusal] = field(default_factory=list)  # records Salesforce refused

    @property
    def ok(self) -> bool:
        return all(u.ok for u in self.users.values())


# ---------------------------------------------------------------------------------------------


def resync(
    config: Config,
    users: Sequence[str] | None = None,
    *,
    calendar_for: CalendarFactory,
    org_factory: Callable[[], SalesforceOrg],
    window: Window | None = None,
    event_id: str | None = None,
    dry_run: bool = False,
    progress: Callable[[str, int], None] | None = None,
    now: dt.datetime | None = None,
    overwrite_edits: bool = False,
    restore_deleted: bool = False,
) -> ResyncResult:
    """Resync `users` (default: every configured one) over `window` (default: the lookback).

    `event_id` limits the resync to the meeting of that Google event (one user only).
    `progress(user, meetings)` is called after each calendar is listed. `overwrite_edits` puts
    Google's values back over fields people changed in Salesforce; `restore_deleted` re-creates
    Events people deleted there (ownership.py). `calendar_for` and `org_factory` make the
    adapters (the wiring's: service/runtime.py `resync` passes the configured ones).
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    window = window or Window(now - dt.timedelta(days=config.sync.lookback_days))
    if dry_run:
        exists = StateStore.exists(config.state)
        store = StateStore.snapshot(config.state) if exists else StateStore(":memory:")
    else:
        store = StateStore(config.state)
    try:
        if not dry_run:
            store.check_usable()
        cycle = Cycle(
            config,
            store,
            calendar_for=calendar_for,
            org_factory=org_factory,
            clock=lambda: now,
        )
        return Resync(
            cycle, window, now, dry_run=dry_run, progress=progress,
            overwrite_edits=overwrite_edits, restore_deleted=restore_deleted,
        ).run(list(users or config.sync.users), event_id)
    finally:
        store.close()


class Resync:
    """One resync on a `Cycle` (its adapters, store and write path)."""

    def __init__(
        self,
        cycle: Cycle,
        window: Window,
        now: dt.datetime,
        *,
        dry_run: bool = False,
        progress: Callable[[str, int], None] | None = None,
        overwrite_edits: bool = False,
        restore_deleted: bool = False,
    ) -> None:
        self.cycle = cycle
        self.store = cycle.store
        self.window = window
        self.now = now
        self.dry_run = dry_run
        self.overwrite_edits = overwrite_edits
        self.restore_deleted = restore_deleted
        self.progress = progress or (lambda user, meetings: None)
        self.result = ResyncResult(dry_run=dry_run, window=window)
        self._listed: dict[str, Sequence[MirrorRow]] = {}  # each calendar's listed items

    def run(self, users: Sequence[str], event_id: str | None = None) -> ResyncResult:
        cycle, result = self.cycle, self.result
        calls_before = cycle.salesforce_calls
        for user in users:
            result.users[user] = UserResult(user)
        try:
            owners = cycle.resolve_users(users, self.now)
        except CalsyncError as exc:
            for user in users:
                self._fail(user, f"cannot map users to Salesforce: {exc}")
            result.salesforce_calls = cycle.salesforce_calls - calls_before
            return result
        result.owners = dict(owners)
        active = [u for u in users if owners.get(u)]
        owner_ids: dict[str, str] = {u: owners[u] for u in active}  # type: ignore[misc]
        for user in users:
            if user not in owner_ids:
                self._fail(user, "no active Salesforce User with this email (add it to [sync] user_map)")
        cycle.identify(owner_ids, self.now)  # a renamed user's state moves first, as in a cycle
        try:
            # Creates a crash left unanswered are adopted first, exactly as a cycle starts.
            unreconciled = cycle.reconcile_creates(active, owner_ids, self.now)
        except CalsyncError as exc:
            unreconciled = {user: str(exc) for user in active}
        for user, error in unreconciled.items():
            self._fail(user, f"cannot reconcile earlier creates: {error}")
        active = [u for u in active if u not in unreconciled]

        copies: list[MeetingCopy] = []
        for user in users:
            found: list[MeetingCopy] = []
            if user in active:
                try:
                    found = self._list(user, event_id)
                except CalsyncError as exc:
                    self._fail(user, str(exc))
            result.users[user].meetings = len(found)
            copies.extend(found)
            self.progress(user, len(found))

        if copies:
            try:
                self._plan_and_write(copies, owner_ids)
            except CalsyncError as exc:
                for user in {c.owner for c in copies}:
                    self._fail(user, str(exc))
        result.salesforce_calls = cycle.salesforce_calls - calls_before
        return result

    def _fail(self, user: str, error: str) -> None:
        outcome = self.result.users.setdefault(user, UserResult(user))
        outcome.ok = False
        outcome.error = error
        log.error("resync failed", extra={"fields": {"user": user, "error": error}})

    # -- Google --------------------------------------------------------------------------------

    def _list(self, user: str, event_id: str | None) -> list[MeetingCopy]:
        """The meetings of the window on `user`'s calendar, fresh from Google.

        The listing is combined with what the mirror knows, as a cycle's full listing is
        (`changes.collect`): a series keeps the exceptions from before the window, and an Event
        whose meeting the listing left out is deleted only once events.get says it is gone.
        """
        source = self.cycle.calendar_for(user)
        listing = source.list_changes(None, self.window.since)
        key_owner = self.cycle.key_owner(user)
        # Events calsync wrote whose meeting the mirror does not know: settled on evidence from
        # Google like a cycle's sweep (sweep.py), with a resync's larger budget.
        swept = (sweep.sweep(self.store, source, user, listed=_listed_uids(listing.items),
                             max_calls=MAX_CHECKS)
                 if event_id is None else sweep.Swept())
        found = changes.collect(
            self.store, source, user, listing, self.window.since, self.cycle.settings,
            also=swept.gone, evidence=swept.items, max_checks=MAX_CHECKS, key_owner=key_owner,
        )
        self._listed[user] = found.delta.upserts
        listed = {copy.ical_uid: copy for copy in found.copies}
        if event_id is not None:
            known = self.store.mirror_by_ids(user, [event_id, event_id.rsplit("_", 1)[0]])
            uid = _uid_of(event_id, found.delta, known)
            if uid is None and "_" in event_id:
                # An unmodified occurrence (`<masterId>_<start>`, reference A4) is not an item
                # of its own: its series is.
                uid = _uid_of(event_id.rsplit("_", 1)[0], found.delta, known)
            if uid is None:
                raise CalsyncError(
                    f"Google event {event_id} is not on {user}'s calendar from "
                    f"{self.window.since:%Y-%m-%d} on (give an earlier --since?)"
                )
            return [listed.get(uid) or MeetingCopy(user, uid, key_owner=key_owner)]
        return [copy for uid, copy in sorted(listed.items()) if self._starts_before_until(copy)]

    def _starts_before_until(self, copy: MeetingCopy) -> bool:
        if self.window.until is None:
            return True
        occurrence = first_occurrence(copy)
        start = instant(occurrence.start) if occurrence is not None else None
        return start is None or start < self.window.until

    # -- plan, compare, write --------------------------------------------------------------------

    def _plan_and_write(self, copies: list[MeetingCopy], owners: Mapping[str, str]) -> None:
        cycle = self.cycle
        # Meetings before the configured lookback are still inside a window the operator chose:
        # they must not be skipped as "before lookback window".
        days = (self.now - self.window.since).days + 1
        if days > cycle.settings.lookback_days:
            cycle.settings = replace(cycle.settings, lookback_days=days)
        addresses = addresses_to_look_up(copies, cycle.settings)
        directory = cycle.look_up(copies, owners) if addresses else None
        cycle.check_event_fields(self.now)
        written = self.store.written(c.key for c in copies)
        # Every written Event is planned with its desired fields; what people changed or deleted
        # stays theirs (ownership.py) unless the operator asked to overwrite or restore it.
        forced = {
            key: replace(
                w, fingerprint=FORCE,
                kept=frozenset() if self.overwrite_edits else w.kept,
                removed=w.removed and not self.restore_deleted,
                canceled=w.canceled and not self.overwrite_edits,
            ) if w.sf_id else w
            for key, w in written.items()
        }
        planned = cycle.plan_operations(copies, forced, directory or Directory(users=dict(owners)), self.now)
        planned, doubles, written = self._duplicates(planned, written, owners)
        current = cycle.read_events(planned)
        settled = cycle.settle(
            planned, written, self.now, current=current,
            overwrite_edits=self.overwrite_edits, restore_deleted=self.restore_deleted,
            conversions=directory.conversions() if directory is not None else None,
        )
        operations = self._decide(settled, written, current)
        if not self.dry_run:  # what `calsync explain` shows (an update found unneeded: unchanged)
            decisions.record(self.store, copies, operations,
                           directory or Directory(users=dict(owners)), cycle.settings, self.now)
        for d in doubles:
            self._note(d.user, "delete", d.key, d.extra, d.sf_id, None, f"duplicate of {d.keep}")

        for change in self.result.changes:
            counts = self.result.users[change.user]
            # What people changed or deleted is counted as found; writes as made (or, in a
            # dry run, as they would be).
            if change.action in ("kept", "removed") or self.dry_run:
                name = COUNTED[change.action]
                setattr(counts, name, getattr(counts, name) + 1)
        if self.dry_run:
            return

        outcomes = {user: CalendarOutcome(user) for user in self.result.users}
        writes = [op for op in operations if not isinstance(op, Skip)]
        failed = cycle.write(writes, copies, self.now, outcomes, doubles, self._listed) if writes or doubles else {}
        self._refusals([op.key for op in writes])
        for user, outcome in outcomes.items():
            counts = self.result.users[user]
            counts.created += outcome.created
            counts.updated += outcome.updated
            counts.deleted += outcome.deleted
            counts.canceled += outcome.canceled
            counts.failed += outcome.failed
            if user in failed:
                self._fail(user, failed[user])
        log_event(log, "resync written", **{
            k: sum(getattr(u, k) for u in self.result.users.values())
            for k in ("created", "updated", "deleted", "unchanged", "failed")
        })

    def _refusals(self, keys: Sequence[str]) -> None:
        """The records Salesforce refused in this resync's writes, with the meeting they are."""
        for entry in history(self.store, self.now, keys=keys):
            if entry.kind != "refused":
                continue
            subject, start, _ = meeting_of(self.store, entry.owner, entry.ical_uid)
            self.result.refused.append(Refusal(entry.owner, entry.key, subject, start,
                                               entry.operation, entry.status_code, entry.message))

    def _duplicates(
        self, planned: list[Operation], written: Mapping[str, Written], owners: Mapping[str, str]
    ) -> tuple[list[Operation], tuple[Duplicate, ...], dict[str, Written]]:
        """The window's duplicate Events (one query, as a full listing does), and the plan with
        the Event of a meeting that has none recorded taken over rather than created again.

        A taken-over Event is recorded with no fingerprint, so it is compared like any other and
        its state row written even when it already holds the desired fields.
        """
        users = {user_of(op) for op in planned}
        planned, doubles = self.cycle.find_duplicates(
            planned, written, owners, {u: self.window.since for u in users}, self.window.until
        )
        # Events an older calsync recorded under a key of another address of the same User.
        older = self.cycle.find_superseded(planned, written, users)
        doubles = (*doubles, *older.duplicates)
        for kept in older.kept:
            self._note(kept.user, "kept", kept.key, kept.extra, kept.sf_id, None,
                       f"duplicate of {kept.keep}, edited in Salesforce ({', '.join(sorted(kept.fields))}),"
                       " not deleted")
        known = dict(written)
        for op in planned:
            if isinstance(op, Update) and op.key not in known:
                known[op.key] = Written(op.key, op.copy.owner, op.copy.ical_uid, op.sf_id, None)
        return planned, doubles, known

    def _decide(
        self,
        settled: ownership.Settled,
        written: Mapping[str, Written],
        current: Mapping[str, Mapping[str, Any]],
    ) -> list[Operation]:
        """Keep the operations that change something and note every Change, people's edits and
        deletions included (reported, not undone)."""
        operations: list[Operation] = []
        activity = self.cycle.settings.activity_datetime_field
        for op in settled.operations:
            if isinstance(op, Skip):
                if op.reason in (ownership.DELETED_IN_SALESFORCE, CANCELED_KEPT):
                    self._report(op.key, op.owner, op.reason, written, current)
                else:
                    self.result.users[op.owner].unchanged += 1
                operations.append(op)
                continue
            if isinstance(op, Delete):
                row = current.get(op.sf_id[:15]) if op.sf_id else None
                if op.sf_id and row is None:
                    # Gone from Salesforce already: only the state row goes (no API call).
                    operations.append(replace(op, sf_id=None))
                    self.result.users[op.owner].unchanged += 1
                    continue
                operations.append(op)
                if op.sf_id:
                    self._note(op.owner, "delete", op.key, row, op.sf_id, None, op.reason)
                else:
                    self.result.users[op.owner].unchanged += 1
                continue
            if isinstance(op, Retire):
                operations.append(op)
                row = current.get(op.sf_id[:15])
                self._note(op.owner, "cancel", op.key, row, op.sf_id, None,
                           f"{op.reason}; edited in Salesforce ({', '.join(sorted(op.kept))}), kept")
                continue
            copy, fields = op.copy, op.fields
            desired = fields.to_salesforce()
            before = written.get(op.key)
            if isinstance(op, Create):
                if before is not None and before.deleting:
                    reason = "deleted by calsync, its answer lost; the meeting is wanted again"
                elif before is not None and before.sf_id and before.sf_id[:15] not in current:
                    reason = "deleted in Salesforce, restored (--restore-deleted)"
                else:
                    reason = "new meeting" if before is None else "earlier create never answered"
                operations.append(op)
                self._note(copy.owner, "create", op.key, desired, before.sf_id if before else None, copy, reason)
                continue
            row = current[op.sf_id[:15]]
            operations.append(op)
            changed = drift(op.body(), row, ignore=activity)
            people = (
                before.kept | ownership.edited(before, row, desired, activity, own_user=self.cycle.own_user(self.now))
            ) if before else frozenset()
            overwritten = [f for f in changed if f in people]
            reason = "changed: " + ", ".join(changed or ["activity field"])
            if self.overwrite_edits and overwritten:
                reason = "edited in Salesforce, overwritten (--overwrite-edits): " + ", ".join(overwritten)
            self._note(copy.owner, "update", op.key, desired, op.sf_id, copy, reason)
        for op in [*settled.operations, *settled.unchanged.values()]:
            if isinstance(op, Update) and op.kept:
                self._note(op.copy.owner, "kept", op.key, current.get(op.sf_id[:15]), op.sf_id, op.copy,
                           "edited in Salesforce, kept: " + ", ".join(sorted(op.kept)))
        return operations

    def _report(
        self, key: str, user: str, reason: str, written: Mapping[str, Written],
        current: Mapping[str, Mapping[str, Any]],
    ) -> None:
        """An Event a person deleted, or kept with `Canceled: `: reported, left alone."""
        before = written.get(key)
        sf_id = before.sf_id if before else None
        if reason == ownership.DELETED_IN_SALESFORCE:
            self._note(user, "removed", key, None, sf_id, None,
                       "deleted in Salesforce; --restore-deleted re-creates it")
        else:
            self._note(user, "kept", key, current.get((sf_id or "")[:15]), sf_id, None,
                       "meeting gone, Event kept for a person's changes (Canceled: )")

    def _note(
        self,
        user: str,
        action: Action,
        key: str,
        record: Mapping[str, Any] | None,
        sf_id: str | None,
        copy: MeetingCopy | None,
        reason: str,
    ) -> None:
        record = record or {}
        start = record.get("StartDateTime") if not record.get("IsAllDayEvent") else record.get("ActivityDate")
        subject = record.get("Subject")
        if subject is None or not start:
            # An Event a person deleted, or one not read back: the meeting as calsync knows it.
            uid = copy.ical_uid if copy is not None else None
            if uid is None:
                known = self.store.written([key]).get(key)
                uid = known.ical_uid if known is not None else None
            if uid is not None:
                known_subject, known_start, _ = meeting_of(self.store, user, uid)
                subject = subject if subject is not None else known_subject
                start = start or known_start
        self.result.changes.append(
            Change(
                user=user,
                action=action,
                key=key,
                subject=subject,
                start=start.isoformat() if isinstance(start, dt.datetime) else (str(start) if start else None),
                owner_id=record.get("OwnerId"),
                sf_id=sf_id,
                event_id=copy.items[0].id if copy is not None and copy.items else None,
                reason=reason,
            )
        )


# ---------------------------------------------------------------------------------------------
# Comparing what calsync wants with what Salesforce holds


def drift(desired: Mapping[str, Any], actual: Mapping[str, Any], ignore: str | None = None) -> list[str]:
    """Names of the fields whose value in Salesforce differs from the one calsync writes
    (`ignore`: a field left out of the comparison, as the fingerprint leaves it out)."""
    return sorted(
        name for name, want in desired.items() if name != ignore and not ownership.same(name, want, actual.get(name))
    )


def _uid_of(event_id: str, delta: mirror.MirrorDelta, known: Mapping[str, Any]) -> str | None:
    uid = next((r.ical_uid for r in delta.upserts if r.event_id == event_id), None)
    if uid is None and event_id in delta.deletes and event_id in known:
        uid = known[event_id].ical_uid
    return uid


def parse_moment(text: str) -> dt.datetime:
    """`--since`/`--until`: a date (midnight UTC) or an ISO date-time (UTC unless it has an offset)."""
    value = text.strip()
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            return dt.datetime.combine(day, dt.time(), dt.timezone.utc)
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not a date (2026-01-05) or date-time (2026-01-05T09:00)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def render(result: ResyncResult) -> list[str]:
    """The text lines `calsync resync` prints after the progress display: one per change (the
    start as `status` shows it, the owner by calendar address), the records Salesforce refused
    and why, then one line per calendar."""
    from calsync.core import display

    verb = {"create": "would create", "update": "would update", "delete": "would delete",
            "cancel": "would cancel", "kept": "kept", "removed": "not restored"}
    done = {"cancel": "canceled", "removed": "not restored"}
    lines = []
    for c in result.changes:
        action = verb[c.action] if result.dry_run else done.get(c.action, c.action)
        where = ""
        if c.sf_id:
            where = f" (was {c.sf_id})" if c.action in ("create", "removed") else f" {c.sf_id}"
        owner = display.owner(c.owner_id, result.owners) if c.owner_id else c.user
        lines.append(
            f"{action:<12} {c.user}  {display.meeting(c.subject, c.start)}"
            f"  owner {owner}{where}  ({c.reason})"
        )
    for r in result.refused:
        why = f"{r.status_code or '?'}" + (f": {r.message}" if r.message else "")
        lines.append(
            f"{'refused':<12} {r.user}  {display.meeting(r.subject, r.start)}  {r.operation or 'write'}"
            f" refused by Salesforce, {why} (parked for a retry: `calsync retry`)"
        )
    for u in result.users.values():
        tail = "ok" if u.ok else f"FAILED: {u.error}"
        if result.dry_run:
            counts = (f"would create {u.created}, would update {u.updated}, "
                      f"would delete {u.deleted}, would cancel {u.canceled}, unchanged {u.unchanged}")
        else:
            counts = (f"created {u.created}, updated {u.updated}, deleted {u.deleted}, "
                      f"canceled {u.canceled}, unchanged {u.unchanged}, failed {u.failed}")
        counts += f", edited in Salesforce and kept {u.kept}, deleted in Salesforce {u.removed}"
        lines.append(f"{u.user}: {u.meetings} meetings, {counts} {tail}")
    if result.dry_run:
        lines.append("dry run: nothing was written to Salesforce or the state database")
    lines.append(f"Salesforce API calls: {result.salesforce_calls}")
    return lines


def _listed_uids(items: Sequence[Mapping[str, Any]]) -> set[str]:
    return {str(i["iCalUID"]) for i in items if isinstance(i.get("iCalUID"), str)}
