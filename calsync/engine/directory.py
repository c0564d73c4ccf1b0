"""What changed in Salesforce since the last look, and which stored meetings it affects.

Meetings are planned when they change in Google. A Contact or Lead created later, a Lead
converted, a primary contact role added or removed, an Opportunity closed or an Account set on a
Contact changes the Name or Related To a meeting should have, but Google says nothing. Every
`[sync] directory_refresh_minutes` `refresh()` asks Salesforce what changed since the last
refresh (at most 4 calls, 3 when under 2,000 rows changed; `SalesforceOrg.*_changed_since`):

- Contacts: new, email or AccountId edited, deleted → their address and their Id (a Contact
  whose email changed must re-plan the meetings it named, found by Id);
- Leads: new, edited, converted, deleted → their address, their Id, a converted one's Contact;
- contact roles added, edited or removed, and every role of an Opportunity edited (stage, close
  date) → the role's Contact and Opportunity.

`DirectoryChanges` holds those addresses and ids (ids as 15 characters, reference B2). The
meeting index (`StateStore.index_meetings`, entries from `index_entry()`) maps them to the
stored meetings inside the lookback window, which are queued for re-planning
(`StateStore.queue_replans`); nothing is re-listed from Google.

The watermark, and why it is safe against clock skew: SystemModstamp is Salesforce's clock, not
ours. The watermark is the latest SystemModstamp in the last answer that had rows (Salesforce
time; an empty answer leaves it where it was), and each refresh
asks for `SystemModstamp > watermark - OVERLAP` (15 minutes), so a change committed late (a
long transaction stamps its rows when it starts) or stamped slightly behind is still seen. The
(Id, SystemModstamp) pairs already acted on inside the overlap are remembered
(`directory_seen`) and skipped, so an unchanged record is acted on once, however often it comes
back. The very first watermark costs no call either: a first sync looks everything up anyway, so
a refresh that finds no watermark starts it at Salesforce's time as the
last answer's Date header gave it (`SalesforceOrg.server_time`), or at calsync's `now` when no
call was made yet; a calsync clock up to OVERLAP ahead of Salesforce's loses nothing there, and
the first change seen replaces it with Salesforce's time.

Concurrency: daemon threads run cycles side by side, each with its own store connection. The
refresh is claimed in one `BEGIN IMMEDIATE` transaction (due? nobody else on it? then mark it
started), so only one of them queries; a claim older than CLAIM_LEASE (a crash mid-refresh) no
longer counts.

Failures: a query refused or unanswered (TransientError, PermanentError, AuthError) is logged;
the watermark stays, nothing is queued, the claim is released, and the next cycle tries again.
QuotaExhausted propagates after releasing the claim: the org's allowance is spent and the
cycle must stop calling Salesforce.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from calsync.core.errors import AuthError, PermanentError, QuotaExhausted, TransientError
from calsync.core.logs import event as log_event
from calsync.core.model import Directory, MeetingCopy, PlanSettings
from calsync.rules.planner.name import choose_name, shared_contacts
from calsync.rules.planner.related_to import related_to
from calsync.rules.planner.selection import Meeting, candidates, is_external, outside_organizer, select
from calsync.salesforce.org import ChangedRecord
from calsync.state.store import IndexEntry, StateStore, index_address, index_id

log = logging.getLogger("calsync.directory")  # names predate the layers (ARCHITECTURE.md)

WATERMARK = "directory:watermark"  # meta: latest SystemModstamp seen (Salesforce time)
REFRESHED = "directory:refreshed"  # meta: when the last refresh finished (calsync time)
CLAIM = "directory:claim"  # meta: when a refresh was started and not yet finished, else null
OVERLAP = dt.timedelta(minutes=15)
CLAIM_LEASE = dt.timedelta(minutes=10)

Outcome = Literal["not due", "busy", "started", "refreshed", "failed"]


@dataclass(frozen=True)
class DirectoryChanges:
    """The addresses (lowercased) and record ids (15 characters) that changed in Salesforce."""

    addresses: frozenset[str] = frozenset()
    record_ids: frozenset[str] = frozenset()

    @classmethod
    def from_answers(
        cls,
        contacts: Iterable[ChangedRecord],
        leads: Iterable[ChangedRecord],
        roles: Iterable[ChangedRecord],
    ) -> DirectoryChanges:
        """Contacts and Leads: their address and Id (a converted Lead: its Contact too);
        contact roles: their Contact and Opportunity (the role's own Id names no meeting)."""
        addresses: set[str] = set()
        ids: set[str] = set()
        for record in (*contacts, *leads):
            if record.email:
                addresses.add(index_address(record.email))
            ids.add(index_id(record.id))
            ids.update(index_id(i) for i in record.linked)
        for role in roles:
            ids.update(index_id(i) for i in role.linked)
        return cls(frozenset(addresses), frozenset(ids))

    @property
    def empty(self) -> bool:
        return not self.addresses and not self.record_ids


@dataclass(frozen=True)
class RefreshResult:
    """What a `refresh()` did. `queued`: the (user, iCalUID) meetings it queued for re-planning."""

    outcome: Outcome
    salesforce_calls: int = 0
    changes: DirectoryChanges = DirectoryChanges()
    queued: frozenset[tuple[str, str]] = frozenset()
    error: str | None = None


class ChangeSource(Protocol):
    """What `refresh()` needs of Salesforce (`SalesforceOrg`)."""

    calls: int
    server_time: dt.datetime | None  # Salesforce's clock at its last answer (its Date header)

    def contacts_changed_since(self, since: dt.datetime) -> list[ChangedRecord]: ...

    def leads_changed_since(self, since: dt.datetime) -> list[ChangedRecord]: ...

    def roles_changed_since(self, since: dt.datetime) -> list[ChangedRecord]: ...


def index_entry(copy: MeetingCopy, directory: Directory, settings: PlanSettings) -> IndexEntry:
    """The meeting-index entry of a planned copy: its candidate addresses and, by the planner's
    own rules, the Name, shared Contacts and Related To it gets from `directory` (the answers
    the cycle looked up for it). A copy calsync does not sync gives an empty entry (unindexed);
    one without any Contact or Lead keeps its addresses, so a Contact created later finds it.
    """
    chosen = select(copy, settings)
    if not isinstance(chosen, Meeting):
        return IndexEntry(copy.owner, copy.ical_uid)
    addresses = set(candidates(chosen.occurrence, copy.owner, settings))
    host = outside_organizer(chosen.occurrence, copy.owner, settings)
    if host is not None and host.address and is_external(host, copy.owner, settings):
        # An outside organizer who declined is no candidate, yet their becoming a Contact or
        # Lead decides whether an unanswered invitation of theirs is logged.
        addresses.add(host.address)
    ids: set[str] = set()
    name, _ = choose_name(chosen.occurrence, copy.owner, directory, settings)
    if name is not None:
        ids.add(name.who_id)
        what = related_to(name, directory)
        if what:
            ids.add(what)
        if settings.shared_activities:
            ids.update(shared_contacts(chosen.occurrence, copy.owner, name, directory, settings)[0])
    return IndexEntry(copy.owner, copy.ical_uid, frozenset(addresses), frozenset(ids), chosen.timing.start)


def refresh(
    store: StateStore,
    org: ChangeSource,
    now: dt.datetime,
    *,
    every: dt.timedelta,
    lookback: dt.timedelta,
) -> RefreshResult:
    """Queue the meetings that Salesforce changes since the last refresh can affect.

    Not due (the last refresh is younger than `every`) or claimed by another thread: nothing,
    no call. No watermark yet: start it at `now`, no call. Otherwise three queries (more only
    past 2,000 changed rows), then one transaction that queues the re-plans of the indexed
    meetings starting after `now - lookback` and advances the watermark.
    """
    # A first watermark from Salesforce's own clock where an answer gave it: calsync's clock may
    # be off by more than OVERLAP, and a watermark ahead of Salesforce's time would hide changes.
    claimed = _claim(store, now, every, org.server_time or now)
    if isinstance(claimed, str):
        return RefreshResult(claimed)
    try:
        return _refresh(store, org, now, claimed, lookback)
    except BaseException:
        _release(store, now)  # a refresh that did not finish must not block the next one
        raise


def _refresh(
    store: StateStore, org: ChangeSource, now: dt.datetime, claimed: dt.datetime, lookback: dt.timedelta
) -> RefreshResult:
    calls = org.calls
    since = _whole_second(claimed - OVERLAP)
    try:
        contacts = org.contacts_changed_since(since)
        leads = org.leads_changed_since(since)
        roles = org.roles_changed_since(since)
    except QuotaExhausted:
        raise  # the claim is released by refresh()
    except (TransientError, PermanentError, AuthError) as exc:
        _release(store, now)
        log.warning(
            "directory refresh failed, will try again next cycle",
            extra={"fields": {"error": str(exc), "since": since.isoformat()}},
        )
        return RefreshResult("failed", org.calls - calls, error=str(exc))
    seen = store.directory_seen()
    rows = [*contacts, *leads, *roles]
    fresh = {_seen_key(r): r for r in rows if _seen_key(r) not in seen}
    changes = DirectoryChanges.from_answers(
        _among(contacts, fresh), _among(leads, fresh), _among(roles, fresh)
    )
    queued: set[tuple[str, str]] = set()
    if not changes.empty:
        queued = store.meetings_touching(changes.addresses, changes.record_ids, now - lookback)
    # Salesforce's own clock from here on, even below a first watermark that came from ours
    # (a lower watermark only widens the next window; the seen set keeps that harmless).
    watermark = max((r.stamp for r in rows), default=claimed)
    with store.transaction():
        store.queue_replans(queued)
        store.remember_directory_seen(
            {key: r.stamp for key, r in fresh.items()},
            forget_up_to=_whole_second(watermark - OVERLAP),
        )
        store.save_meta(WATERMARK, _iso(watermark), now)
        store.save_meta(REFRESHED, _iso(now), now)
        store.save_meta(CLAIM, None, now)
    result = RefreshResult("refreshed", org.calls - calls, changes, frozenset(queued))
    log_event(
        log, "directory refreshed", changed=len(fresh), queued=len(queued),
        salesforce_calls=result.salesforce_calls,
    )
    return result


def due(store: StateStore, now: dt.datetime, every: dt.timedelta) -> bool:
    """Whether `refresh` would do anything: no watermark yet, or the last refresh older than
    `every`. Read only, and no Salesforce object needed (the daemon's idle poll asks this)."""
    return (_instant(store.meta(WATERMARK)) is None
            or not _within(_instant(store.meta(REFRESHED)), now, every))


def _claim(
    store: StateStore, now: dt.datetime, every: dt.timedelta, first: dt.datetime
) -> dt.datetime | Outcome:
    """In one BEGIN IMMEDIATE transaction: the watermark to query from, or why not to query."""
    with store.transaction():
        watermark = _instant(store.meta(WATERMARK))
        if watermark is None:
            _start(store, now, first)
            return "started"
        if _within(_instant(store.meta(REFRESHED)), now, every):
            return "not due"
        if _within(_instant(store.meta(CLAIM)), now, CLAIM_LEASE):
            return "busy"
        store.save_meta(CLAIM, _iso(now), now)
        return watermark


def _release(store: StateStore, now: dt.datetime) -> None:
    store.save_meta(CLAIM, None, now)


def _start(store: StateStore, now: dt.datetime, watermark: dt.datetime | None = None) -> None:
    store.save_meta(WATERMARK, _iso(watermark or now), now)
    store.save_meta(REFRESHED, _iso(now), now)


def _within(moment: dt.datetime | None, now: dt.datetime, span: dt.timedelta) -> bool:
    # A moment in the future (the clock was set back) does not hold a refresh back forever.
    return moment is not None and dt.timedelta(0) <= now - moment < span


def _instant(saved: tuple[object, dt.datetime] | None) -> dt.datetime | None:
    if saved is None or not isinstance(saved[0], str):
        return None
    return dt.datetime.fromisoformat(saved[0])


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")


def _whole_second(value: dt.datetime) -> dt.datetime:
    # SOQL datetime literals carry whole seconds (soql_datetime): the seen set is pruned to the
    # same instant the next query starts after, so nothing falls between them.
    return value.astimezone(dt.timezone.utc).replace(microsecond=0)


def _seen_key(record: ChangedRecord) -> str:
    return f"{index_id(record.id)}@{_iso(record.stamp)}"


def _among(records: Sequence[ChangedRecord], fresh: dict[str, ChangedRecord]) -> list[ChangedRecord]:
    return [r for r in records if _seen_key(r) in fresh]
