"""Why a meeting was (or was not) logged: the decision record and `calsync explain`.

Each time the planner decides about a meeting, `record()` keeps that decision in the state
database (table `decisions`, one row per (user, iCalUID), replaced each time): the occurrence
calsync looked at, every organizer and attendee with why they could or could not be the Event's
Name (internal, excluded, a room, declined, no Contact or Lead with that address, ...), the
Contact or Lead chosen as Name and why, the Related To and why, and the action (create, update,
delete, unchanged) or the rule that skipped it. It is rebuilt from the planner's own rules
(planner/selection.py, name.py, related_to.py) on the same data the planner had, so it cannot
disagree with what was written.

`calsync explain` reads those rows offline (the state opened read-only, no lock, no network)
and adds what happened after: the Salesforce Event id from `written`, or the parked refusal from
`retries`. With `--live` it fetches the meeting from Google again (events.get, then every item
of its iCalUID), asks Salesforce about its people and plans it without writing anything, on a
throwaway copy of the state.

What the directory answers tell: the lookups go one rank at a time (cycle.py `look_up`), so a
candidate listed after the Name may never have been asked about; it is then described as coming
after the Name, not as "no Contact".
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from calsync.core import display
from calsync.engine.identity import key_address
from calsync.core.model import (
    Contact,
    Create,
    Delete,
    Directory,
    MeetingCopy,
    Operation,
    PlanSettings,
    Retire,
    Skip,
    Written,
    event_key,
)
from calsync.rules.planner import CANCELED_KEPT, DELETED_IN_SALESFORCE, NOT_ACCEPTED
from calsync.rules.planner.name import Name, choose_name
from calsync.rules.planner.related_to import best_opportunity
from calsync.rules.planner.selection import (
    NO_OCCURRENCE,
    Meeting,
    first_occurrence,
    is_candidate,
    organizer_of,
    select,
)
from calsync.state.store import Retry, StateStore, StoredDecision

UTC = dt.timezone.utc
log = logging.getLogger("calsync.explain")  # names predate the layers (ARCHITECTURE.md)

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


# -- building a decision -------------------------------------------------------------------------


def decide(
    copy: MeetingCopy,
    operation: Operation | None,
    directory: Directory,
    settings: PlanSettings,
    now: dt.datetime,
) -> StoredDecision:
    """The decision about `copy`: what the planner did (`operation`; None: nothing to write,
    the Event already holds these values) and why, as plain data."""
    chosen = select(copy, settings)
    occurrence = chosen.occurrence if isinstance(chosen, Meeting) else first_occurrence(copy)
    if occurrence is None and copy.items:
        occurrence = copy.items[0]
    detail: dict[str, Any] = {"people": [], "name": None, "related_to": None}
    if occurrence is not None:
        detail["occurrence_id"] = occurrence.id
        detail["series"] = any(i.recurrence for i in copy.items)
    if isinstance(chosen, Meeting):
        detail["private"] = chosen.private
        name, _ = choose_name(chosen.occurrence, copy.owner, directory, settings)
        detail["people"] = _people(chosen.occurrence, copy.owner, directory, settings, name)
        detail["name"] = _name(chosen.occurrence, copy.owner, directory, settings, name)
        detail["related_to"] = _related_to(name, directory) if name is not None else None
    elif occurrence is not None:
        detail["people"] = _people(occurrence, copy.owner, directory, settings, None, looked_up=False)
    action, reason = _action(operation)
    start = _start(chosen, occurrence)
    return StoredDecision(
        user=copy.owner, ical_uid=copy.ical_uid,
        event_id=copy.items[0].id if copy.items else copy.event_id,
        subject=occurrence.summary if occurrence is not None else None,
        start=start, action=action, reason=reason, decided_at=now, detail=detail,
    )


def record(
    store: StateStore,
    copies: Sequence[MeetingCopy],
    operations: Iterable[Operation],
    directory: Directory,
    settings: PlanSettings,
    now: dt.datetime,
) -> None:
    """Keep the decision about each planned copy (the last copy of a meeting on a calendar
    wins, as in `plan`; two addresses of one Salesforce User each keep theirs, with the
    operation their shared key got)."""
    by_key = {op.key: op for op in operations}
    latest = {(copy.owner, copy.ical_uid): copy for copy in copies}
    decisions = []
    for copy in latest.values():
        try:
            decisions.append(decide(copy, by_key.get(copy.key), directory, settings, now))
        except Exception:  # noqa: BLE001 - explaining a meeting must never stop its sync
            log.warning("cannot record the decision", exc_info=True,
                        extra={"fields": {"user": copy.owner, "ical_uid": copy.ical_uid}})
    for index, d in enumerate(decisions):
        if d.subject is None and d.start is None:
            # Gone from the calendar: nothing left to read the meeting from, so it keeps the
            # subject and start its last decision knew (what an operator will search for).
            before = next(iter(store.decisions(d.user, ical_uids=[d.ical_uid])), None)
            if before is not None:
                decisions[index] = replace(d, subject=before.subject, start=before.start,
                                           event_id=d.event_id or before.event_id)
    store.record_decisions(decisions)


def _action(operation: Operation | None) -> tuple[str, str | None]:
    if operation is None or (isinstance(operation, Skip) and operation.reason == "unchanged"):
        return "unchanged", None
    if isinstance(operation, Skip):
        return "skip", operation.reason
    if isinstance(operation, Delete):
        return "delete", operation.reason
    if isinstance(operation, Retire):  # ownership.py: a person had changed it, so it is kept
        kept = ", ".join(sorted(operation.kept))
        return "cancel", f"{operation.reason}; kept with 'Canceled: ' for a person's changes ({kept})"
    return ("create" if isinstance(operation, Create) else "update"), None


def _start(chosen: Meeting | Any, occurrence: Any) -> dt.datetime | None:
    if isinstance(chosen, Meeting):
        return chosen.timing.start
    if occurrence is None:
        return None
    value = occurrence.start or occurrence.original_start
    try:
        if value is not None and value.date_time is not None:
            return value.date_time.astimezone(UTC)
        if value is not None and value.date is not None:
            return dt.datetime.combine(value.date, dt.time(), UTC)
    except (OverflowError, ValueError):
        return None
    return None


def _verdict(person: Any, owner: str, settings: PlanSettings) -> str | None:
    """Why this person cannot be the Name, None when they can. The planner's own
    `selection.is_candidate` decides; this only words its conditions, in its order."""
    if is_candidate(person, owner, settings):
        return None
    address = person.address
    if not address or "@" not in address:
        return "no email address"
    if person.resource:
        return "a room or resource"
    if person.response_status == "declined":
        return "declined the invitation"
    if address == owner.strip().lower():
        return "the calendar's owner"
    if address in {u.lower() for u in settings.configured_users}:
        return "a calsync user (colleague)"
    domain = address.rsplit("@", 1)[1]
    if domain in {d.lower() for d in settings.internal_domains}:
        return f"internal ({domain} is in [sync] internal_domains)"
    pattern = next((p for p in settings.exclude if fnmatch.fnmatchcase(address, p.lower())), None)
    if pattern is not None:
        return f"excluded by the pattern {pattern!r} ([sync] exclude)"
    return "not someone who could be a Contact or Lead"


def _people(
    occurrence: Any,
    owner: str,
    directory: Directory,
    settings: PlanSettings,
    name: Name | None,
    *,
    looked_up: bool = True,
) -> list[dict[str, Any]]:
    """Organizer then attendees (Google's order, once each), each with their verdict."""
    people: list[tuple[str, Any]] = []
    organizer = organizer_of(occurrence)
    if organizer is not None:
        people.append(("organizer", organizer))
    people += [("attendee", p) for p in occurrence.attendees]
    found: list[dict[str, Any]] = []
    seen: set[str] = set()
    passed_name = False
    for role, person in people:
        key = person.address or f"#{len(found)}"
        if key in seen:
            continue
        seen.add(key)
        entry: dict[str, Any] = {"address": person.address, "role": role}
        if person.display_name:
            entry["display_name"] = person.display_name
        why_not = _verdict(person, owner, settings)
        if why_not is not None:
            entry["candidate"] = False
            entry["why"] = why_not
        else:
            entry["candidate"] = True
            contacts = directory.contacts.get(person.address or "", ())
            leads = directory.leads.get(person.address or "", ())
            conversions = () if contacts else directory.converted.get(person.address or "", ())
            entry["contacts"] = [c.id for c in contacts] + [c.contact.id for c in conversions]
            entry["leads"] = [lead.id for lead in leads]
            if conversions:
                entry["converted"] = [c.lead.id for c in conversions]
            contacts = (*contacts, *(c.contact for c in conversions))
            kind = "Contact" if contacts else "Lead"
            if name is not None and person.address == name.address:
                entry["why"] = "the Name"
                passed_name = True
            elif (contacts or leads) and name is not None:
                entry["why"] = f"also a {kind}, but the Name goes to another (see below)"
            elif contacts or leads:
                entry["why"] = f"a {kind}"
            elif not looked_up:
                entry["why"] = "not looked up: the rule above skipped the meeting first"
            elif passed_name:
                entry["why"] = "comes after the Name; not needed once the Name was found"
            else:
                entry["why"] = "no Contact or Lead with this address"
        found.append(entry)
    return found


def _name(
    occurrence: Any, owner: str, directory: Directory, settings: PlanSettings, name: Name | None
) -> dict[str, Any] | None:
    if name is None:
        return None
    kind = "Contact" if name.is_contact else "Lead"
    organizer = organizer_of(occurrence)
    external = organizer is not None and is_candidate(organizer, owner, settings)
    if external and organizer is not None and organizer.address == name.address:
        why = f"the organizer is outside the company and is a {kind} (an external meeting)"
    elif name.is_contact:
        why = "the first attendee, in Google's order, who is a Contact"
    else:
        why = "no attendee is a Contact; the first attendee, in Google's order, who is a Lead"
    records: Sequence[Any] = (directory.contacts if name.is_contact else directory.leads).get(name.address, ())
    if name.is_contact and not records:
        conversions = directory.converted.get(name.address, ())
        records = [c.contact for c in conversions]
        leads = ", ".join(sorted({c.lead.id for c in conversions if c.contact.id == name.who_id}))
        why += f"; the Lead with this address ({leads}) was converted into this Contact"
    if len({r.id for r in records}) > 1:
        why += f"; {len(records)} {kind}s share this address, the oldest is taken"
    return {"id": name.who_id, "kind": kind, "address": name.address, "why": why}


def _related_to(name: Name, directory: Directory) -> dict[str, Any]:
    contact = name.record
    if not isinstance(contact, Contact):
        return {"id": None, "why": "none: an Event whose Name is a Lead cannot be related to a record"}
    options = directory.primary_opportunities.get(contact.id, ())
    opportunity = best_opportunity(options)
    if opportunity is not None:
        state = "closed" if opportunity.is_closed else "open"
        why = f"the Opportunity where the Contact has the primary role ({state}"
        why += f", close date {opportunity.close_date})" if opportunity.close_date else ")"
        if len(options) > 1:
            why += f"; of {len(options)}, open ones first, then the latest close date"
        return {"id": opportunity.id, "kind": "Opportunity", "why": why}
    if contact.account_id:
        return {"id": contact.account_id, "kind": "Account",
                "why": "the Contact's Account (the Contact has no primary role on an Opportunity)"}
    return {"id": None, "why": "none: the Contact has no Account and no primary Opportunity role"}


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


def uids_of_event(store: StateStore, user: str, event_id: str) -> set[str]:
    """The iCalUID(s) of a Google event id on `user`'s calendar: the item itself, or for an
    unmodified occurrence `<masterId>_<start>` (reference A4) its series master."""
    ids = [event_id]
    if "_" in event_id:
        ids.append(event_id.rsplit("_", 1)[0])
    return {row.ical_uid for row in store.mirror_by_ids(user, ids).values()}


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
    event_id: str | None = None,
    subject: str | None = None,
    since: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> list[tuple[Found, list[str]]]:
    """Fetch the matching meetings from Google again, ask Salesforce about their people and
    plan them, on a throwaway copy of the state: each decision with what changed since the
    stored one. Meetings are matched by event id (Google is asked when the state does not know
    it), or by subject among the stored decisions and the mirror."""
    from pathlib import Path

    from calsync.engine import changes
    from calsync.engine.cycle import Cycle
    from calsync.core.errors import CalsyncError
    from calsync.calendar.google.api import Listing, calendar_factory
    from calsync.rules.planner import addresses_to_look_up
    from calsync.salesforce.org import SalesforceOrg

    now = now or dt.datetime.now(UTC)
    path = Path(config.state.path)
    store = StateStore.snapshot(path) if path.exists() else StateStore(":memory:")
    try:
        cycle = Cycle(config, store, calendar_for=calendar_factory(config.google),
                      org_factory=lambda: SalesforceOrg.from_config(config.salesforce),
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


def named(copy: MeetingCopy | None) -> dict[str, str | None]:
    """The meeting's subject and start, for log lines that must say which meeting it is."""
    if copy is None:
        return {}
    try:
        occurrence = first_occurrence(copy) or (copy.items[0] if copy.items else None)
    except Exception:  # noqa: BLE001 - a log line must not fail the write it reports
        return {}
    if occurrence is None:
        return {}
    start = _start(None, occurrence)
    return {"subject": occurrence.summary,
            "start": start.isoformat(timespec="minutes") if start else None}
