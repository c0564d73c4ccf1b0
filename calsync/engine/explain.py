"""`calsync explain`: why a meeting was (or was not) logged, from its decision record.

The cycle keeps each meeting's decision (decisions.py: the occurrence looked at, every person
with why they could or could not be the Name, the Name and Related To and why, the action or
the rule that skipped it). `calsync explain` reads those rows offline (the state opened
read-only, no lock, no network) and adds what happened after: the Salesforce Event id from
`written`, or the parked refusal from `retries`, and says it in plain words (`render`). With
`--live` (`live`) it fetches the meeting from the calendar again (get by id, then every item of
its iCalUID), asks Salesforce about its people and plans it without writing anything, on a
throwaway copy of the state; the calendar source and Salesforce client come from the wiring
(service/runtime.py `explain_live`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from calsync.calendar.source import CalendarFactory, Listing
from calsync.core import display
from calsync.core.errors import CalsyncError
from calsync.core.model import Directory, Written, event_key
from calsync.engine import changes
from calsync.engine.cycle import Cycle
from calsync.engine.decisions import decide, uids_of_event
from calsync.engine.identity import key_address
from calsync.rules.planner import (
    CANCELED_KEPT,
    DELETED_IN_SALESFORCE,
    NOT_ACCEPTED,
    addresses_to_look_up,
)
from calsync.rules.planner.selection import NO_OCCURRENCE
from calsync.salesforce.org import SalesforceOrg
from calsync.state.store import Retry, StateStore, StoredDecision

UTC = dt.timezone.utc

# The planner's reasons (planner/__init__.py, selection.py) in plain words.
RULES = {
    "deleted": "the meeting is no longer on the calendar",
    "cancelled": "the meeting was cancelled (every occurrence of it)",
    NO_OCCURRENCE: "its recurrence rule has no occurrence within five years",
    "declined": "the calendar's owner declined it",
    "private": 'it is private (or confidential) and [sync] private_events = "skip"',
    "longer than 14 days": "it lasts longer than 14 days, the longest Event Salesforce takes",
    "no Contact or Lead": "nobody outside the company who takes part is a Salesforce Contact or Lead",
    NOT_ACCEPTED: "it is an invitation from someone outside the company who is not a Salesforce"
    " Contact or Lead, and the calendar's owner has not accepted it (nor answered maybe)",
    "before lookback window": "it starts before the lookback window ([sync] lookback_days); calsync"
    " never creates Events that far back",
    "owner has no Salesforce User": "the calendar's owner has no active Salesforce User (see"
    " [sync] user_map)",
    DELETED_IN_SALESFORCE: "a person deleted its Event in Salesforce, and calsync does not"
    " re-create it (`calsync resync --restore-deleted` does)",
    CANCELED_KEPT: "the meeting is gone, but a person had changed its Event, so it was kept with"
    " 'Canceled: ' on its Subject",
}


EVENT_TYPES = {"outOfOffice": "an out-of-office block", "focusTime": "focus time",
               "workingLocation": "a working location", "birthday": "a birthday",
               "fromGmail": "an event made from an email"}


def rule_text(reason: str) -> str:
    if reason.startswith("not a meeting (eventType="):
        kind = reason.removeprefix("not a meeting (eventType=").rstrip(")")
        what = EVENT_TYPES.get(kind, f"a {kind} entry")
        return f"it is not a meeting but {what} (Google eventType {kind})"
    return RULES.get(reason, reason)


# -- finding and showing decisions ---------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """What `explain` shows for one meeting: its decision and what became of it since."""

    decision: StoredDecision
    written: Written | None
    retry: Retry | None
    live: bool = False
    # What became of refusals of this record in the last 30 days when it no longer waits for a
    # retry (history.Fate: dropped, written since, no longer needed), filled by the command.
    fate: Any = None


def stored(
    store: StateStore,
    user: str,
    *,
    event_id: str | None = None,
    subject: str | None = None,
    since: dt.datetime | None = None,
) -> list[Found]:
    """The stored decisions matching an event id or a subject, with their outcome."""
    if event_id is not None:
        uids = uids_of_event(store, user, event_id)
        decisions = store.decisions(user, ical_uids=uids) if uids else []
        if not decisions:  # gone from the mirror: the decision still names its event
            decisions = store.decisions(user, event_id=event_id)
    else:
        decisions = store.decisions(user, subject=subject, since=since)
    return [outcome(store, d) for d in decisions]


def outcome(store: StateStore, decision: StoredDecision, *, live: bool = False) -> Found:
    key = event_key(key_address(store, decision.user), decision.ical_uid)
    written = store.written([key]).get(key)
    retry = next((r for r in store.retries(decision.user) if r.key == key), None)
    return Found(decision, written, retry, live)


def _when(value: dt.datetime | None) -> str:
    return display.moment(value) if value else "no start"


def render(found: Found) -> list[str]:
    """Plain words for one meeting."""
    d, detail = found.decision, found.decision.detail
    title = repr(d.subject) if d.subject else "(no title)"
    lines = [f"{d.user}: {title}, {_when(d.start)} (Google event {d.event_id or '?'})"]
    source = "decided now (--live, nothing written)" if found.live else f"decided {_when(d.decided_at)}"
    lines.append(f"  {source}: {_verdict_line(found)}")
    if d.action in ("skip", "cancel") or (d.action == "delete" and d.reason):
        lines.append(f"  rule: {rule_text(d.reason or '')}")
    if found.fate is not None and found.fate.outcome in ("written", "no longer needed"):
        lines.append(f"  earlier refused by Salesforce: {found.fate.describe()}")
    if detail.get("private"):
        lines.append('  private meeting, logged without its content ([sync] private_events = "sync")')
    people = detail.get("people") or []
    if people:
        lines.append("  people:")
        for p in people:
            who = p.get("address") or "(no address)"
            if p.get("display_name"):
                who += f" ({p['display_name']})"
            if p.get("candidate"):
                records = [f"Contact {i}" for i in p.get("contacts", [])]
                records += [f"Lead {i}" for i in p.get("leads", [])]
                records += [f"converted Lead {i}" for i in p.get("converted", [])]
                found_as = f" [{', '.join(records)}]" if records else ""
                lines.append(f"    {p['role']} {who}: candidate{found_as}: {p['why']}")
            else:
                lines.append(f"    {p['role']} {who}: not a candidate: {p['why']}")
    name = detail.get("name")
    if name:
        lines.append(f"  Name: {name['kind']} {name['id']} ({name['address']}): {name['why']}")
    elif d.action in ("create", "update", "unchanged"):
        lines.append("  Name: none")
    related = detail.get("related_to")
    if related:
        target = f"{related['kind']} {related['id']}: " if related.get("id") else ""
        lines.append(f"  Related To: {target}{related['why']}")
    return lines


def _verdict_line(found: Found) -> str:
    d = found.decision
    fate = found.fate
    if found.retry is None and fate is not None and fate.outcome == "dropped":
        event = found.written.sf_id if found.written and found.written.sf_id else None
        last = fate.last
        refused = (f"Salesforce refused the {last.operation or 'write'} ({last.status_code or '?'}:"
                   f" {(last.message or '')[:200]})")
        kept = (f"its Event {event} keeps what was written before" if event
                else "no Event was written")
        return (f"NOT logged as planned: {refused}; {fate.verdict()}; {kept}")
    if found.retry is not None:
        r = found.retry
        return (f"NOT logged yet: Salesforce refused the {r.operation} ({r.status_code or '?'}: "
                f"{(r.message or '')[:200]}); attempt {r.attempts}, next try {_when(r.next_attempt_at)}"
                " (calsync retry / calsync retry --drop)")
    event = found.written.sf_id if found.written and found.written.sf_id else None
    if found.written is not None and found.written.removed:
        return (f"not logged: its Event {event} was deleted in Salesforce by a person and stays deleted"
                " (`calsync resync --restore-deleted` re-creates it)")
    if d.action == "cancel" or (found.written is not None and found.written.canceled):
        return (f"meeting gone, but a person had changed its Event {event}: kept, with 'Canceled: '"
                " on its Subject")
    if d.action == "skip":
        return f"not logged (its earlier Event {event} is left as it was)" if event else "not logged"
    if d.action == "delete":
        if event:
            return f"not logged: its Event {event} is to be deleted (the delete has not gone through yet)"
        return "not logged: its Event " + ("would be deleted" if found.live else "was deleted")
    verb = {"create": "created", "update": "updated", "unchanged": "unchanged since it was written"}[d.action]
    if found.live:
        planned = {"create": "would be created", "update": "would be updated",
                   "unchanged": "already as it should be"}[d.action]
        return f"logged: Event {event} {planned}" if event else f"would be logged: Event {planned}"
    if event:
        return f"logged: Salesforce Event {event} ({verb})"
    return "to be logged: the Event is not written yet (the write did not go through; see `calsync status`)"


def differs(before: StoredDecision | None, now: StoredDecision) -> list[str]:
    """What a live decision changes from the stored one, for `--live`."""
    if before is None:
        return ["no decision was stored for this meeting"]
    changed = []
    if (before.action, before.reason) != (now.action, now.reason) and now.action != "unchanged":
        changed.append(f"action {before.action} → {now.action}")
    for part in ("name", "related_to"):
        old = (before.detail.get(part) or {}).get("id")
        new = (now.detail.get(part) or {}).get("id")
        if old != new:
            changed.append(f"{part.replace('_', ' ')} {old or 'none'} → {new or 'none'}")
    return changed




# -- --live: decide again on fresh data, writing nothing -----------------------------------------


def live(
    config: Any,
    user: str,
    *,
    calendar_for: CalendarFactory,
    org_factory: Callable[[], SalesforceOrg],
    event_id: str | None = None,
    subject: str | None = None,
    since: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> list[tuple[Found, list[str]]]:
    """Fetch the matching meetings from Google again, ask Salesforce about their people and
    plan them, on a throwaway copy of the state: each decision with what changed since the
    stored one. Meetings are matched by event id (Google is asked when the state does not know
    it), or by subject among the stored decisions and the mirror. `calendar_for` and
    `org_factory` make the adapters (the wiring's, service/runtime.py)."""
    now = now or dt.datetime.now(UTC)
    exists = StateStore.exists(config.state)
    store = StateStore.snapshot(config.state) if exists else StateStore(":memory:")
    try:
        cycle = Cycle(config, store, calendar_for=calendar_for, org_factory=org_factory,
                      clock=lambda: now)
        owners = cycle.resolve_users([user], now)
        users = {u: i for u, i in owners.items() if i}
        cycle.identify(users, now)  # a renamed user's state moves to the new address (this copy only)
        source = cycle.calendar_for(user)
        if event_id is not None:
            uids = uids_of_event(store, user, event_id)
            if not uids:
                item = source.get_event(event_id)
                if item is None and "_" in event_id:
                    item = source.get_event(event_id.rsplit("_", 1)[0])
                if item is None or not isinstance(item.get("iCalUID"), str):
                    raise CalsyncError(f"Google has no event {event_id} on {user}'s calendar")
                uids = {item["iCalUID"]}
        else:
            uids = {d.ical_uid for d in store.decisions(user, subject=subject, since=since)}
            wanted = (subject or "").casefold()
            for row in store.mirror_rows(user):
                summary = row.payload.get("summary")
                if isinstance(summary, str) and wanted in summary.casefold():
                    uids.add(row.ical_uid)
        items: list[dict[str, Any]] = []
        for uid in sorted(uids):
            items.extend(source.list_series(uid).items)  # every item of the meeting, fresh
        listing = Listing(tuple(items), None, False, source.calls)
        found = changes.collect(store, source, user, listing, now, cycle.settings, also=uids,
                                key_owner=cycle.key_owner(user))
        copies = found.copies
        directory = (cycle.look_up(copies, users) if addresses_to_look_up(copies, cycle.settings)
                     else Directory(users=users))
        previous = store.written(c.key for c in copies)
        operations = {op.key: op for op in cycle.plan_operations(copies, previous, directory, now)}
        results = []
        for copy in copies:
            decision = decide(copy, operations.get(copy.key), directory, cycle.settings, now)
            if since is not None and event_id is None and decision.start and decision.start < since:
                continue
            before = next(iter(store.decisions(user, ical_uids=[copy.ical_uid])), None)
            results.append((outcome(store, decision, live=True), differs(before, decision)))
        return sorted(results, key=lambda pair: (pair[0].decision.start or now, pair[0].decision.ical_uid))
    finally:
        store.close()
