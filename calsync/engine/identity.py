"""Who a configured address is in Salesforce, and the address its Event keys are hashed from.

An Event's key hashes an address and the iCalUID (`model.event_key`); with an External ID field
it is stored on the Event in Salesforce too, so a key must never change under an Event that
exists. An address does change: a Workspace rename gives the user a new primary address (the
old one becomes an alias; Google's "Impact on Google apps when changing a user's email
address", support.google.com/a/answer/2622985), the admin updates `[sync] users`, and the
Salesforce User's Email follows. The Salesforce User does not change. So:

- each Salesforce User keeps the address its keys were first hashed from (`owner_keys`,
  m008_owner_keys): the first configured address seen for it, or its Id when another User's
  keys are hashed from that address already. Keys of a renamed user stay those of their
  Events: no second Event, no orphan;
- a configured address whose User is known under another address that is no longer
  configured is a rename: everything the state keeps under the old address (Events written,
  retries, the mirror of the calendar, decisions, the meeting index, re-plans) moves to the new
  one in one transaction, logged once (`user renamed old=… new=… sf_user=…`), and the sync
  token is dropped, so the next cycle lists the renamed calendar in full against its history;
- two configured addresses of one User share its keys (one Event per meeting and Salesforce
  owner). A meeting one of them drops while the other still has it keeps its Event
  (`keep_shared_events`).

An older calsync hashed keys from whatever address was configured; what it left behind (rows
under both addresses, two Events for one meeting) is re-keyed at migration where only the later
Event exists, and otherwise removed by the duplicates pass (`Identity.alias_keys`,
duplicates.superseded).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from calsync.state import store as state
from calsync.core.logs import event as log_event
from calsync.core.model import Create, Delete, MeetingCopy, Operation, Skip, Update, event_key
from calsync.rules.planner import keeps_event

log = logging.getLogger("calsync.identity")  # names predate the layers (ARCHITECTURE.md)


@dataclass(frozen=True)
class Identity:
    """One configured address as calsync writes its Events."""

    user: str  # the configured address
    sf_user: str  # the Salesforce User Id it resolves to
    key_address: str  # what its Event keys are hashed from
    addresses: frozenset[str] = frozenset()  # every address known for that User (cache, config)
    siblings: tuple[str, ...] = ()  # the other configured addresses of that User

    @property
    def key_owner(self) -> str | None:
        """`MeetingCopy.key_owner`: the key address when it is not the address itself."""
        return None if self.key_address == self.user else self.key_address

    def key(self, ical_uid: str) -> str:
        return event_key(self.key_address, ical_uid)

    def alias_keys(self, ical_uid: str) -> frozenset[str]:
        """Keys an older calsync may have given this meeting's Event: hashed from any other
        address the User had."""
        return frozenset(event_key(a, ical_uid) for a in self.addresses) - {self.key(ical_uid)}


def settle(
    store: state.StateStore,
    owners: Mapping[str, str],
    configured: Collection[str],
    now: dt.datetime,
    same_calendar: Callable[[str, str], bool | None] = lambda old, new: True,
) -> dict[str, Identity]:
    """The identity of each resolved user (`owners`: address → Salesforce User Id), after
    giving new Users their key address and moving the state of renamed users.

    A rename: the User's key address is no longer configured, and the state keeps something
    under it or under another address cached for that User (a second rename). Before moving,
    `same_calendar(old, new)` asks Google whether the new address's calendar holds the old
    one's items (a rename keeps the calendar; two people's calendars do not share them): True
    moves, False never does (remembered), None (Google out of reach) asks again next time.
    `configured`: every configured address (a set: only looked into, never copied, so a
    one-calendar cycle of a daemon with 10,000 costs no more than one of a daemon with 3).
    Cheap when nothing was renamed: two indexed reads of the state database."""
    keys = state.owner_keys(store, owners.values())
    by_user: dict[str, list[str]] = {}
    for user, sf_user in sorted(owners.items()):
        by_user.setdefault(sf_user[:15], []).append(user)
    full = {sf_user[:15]: sf_user for sf_user in owners.values()}
    for user15, users in by_user.items():
        if user15 not in keys:
            keys[user15] = state.claim_owner_key(store, full[user15], users[0], now)
    cached = state.cached_addresses(store, owners.values())
    found: dict[str, Identity] = {}
    for user15, users in by_user.items():
        key_address = keys[user15]
        known = cached.get(user15, set())
        members = sorted(set(users) | {a for a in known if a in configured})
        if key_address not in members and members[0] in users:
            for old in sorted(a for a in {key_address, *known} if a not in configured):
                _rename(store, old, members[0], full[user15], same_calendar, now)
        addresses = frozenset({key_address, *known, *members})
        for user in users:
            found[user] = Identity(
                user=user, sf_user=full[user15], key_address=key_address, addresses=addresses,
                siblings=tuple(m for m in members if m != user),
            )
    return found


def _rename(
    store: state.StateStore,
    old: str,
    new: str,
    sf_user: str,
    same_calendar: Callable[[str, str], bool | None],
    now: dt.datetime,
) -> None:
    """Move `old`'s state to `new` if there is any and the calendar is the same."""
    if "@" not in old or not state.holds_state(store, old):
        return  # an Id as key address, or nothing left under the old address
    refused = store.meta(f"not renamed:{old}")
    if refused is not None and refused[0] == new:
        return
    same = same_calendar(old, new)
    if same is None:
        return
    if not same:
        store.save_meta(f"not renamed:{old}", new, now)
        log_event(log, "not taken for a rename", level=logging.WARNING, old=old, new=new,
                  sf_user=sf_user, reason="the new calendar does not hold the old one's meetings",
                  action="the old address's Events are left as they are")
        return
    state.move_user(store, old, new)
    log_event(log, "user renamed", old=old, new=new, sf_user=sf_user)


def key_address(store: state.StateStore, user: str) -> str:
    """The address `user`'s Event keys are hashed from, as the state knows it (read-only:
    `explain`, `status`); the address itself when the state knows no User for it."""
    cached = store.sf_users([user]).get(user)
    if cached is None or not cached[0]:
        return user
    return state.owner_keys(store, [cached[0]]).get(cached[0][:15], user)


def shared_copies(
    operations: Sequence[Operation],
    identities: Mapping[str, Identity],
    ical_uids: Mapping[str, str],
    sibling_copy: Callable[[str, str, str | None], MeetingCopy | None],
) -> list[tuple[MeetingCopy, str]]:
    """For each planned delete of a user with other configured addresses of the same
    Salesforce User: the copies of the meeting those addresses' calendars hold, with that
    User's Id. Planned (`keep_shared_events`), they say whether the Event must stay.

    `ical_uids`: key → iCalUID of the planned meetings. `sibling_copy(address, uid,
    key_owner)`: that calendar's copy of the meeting (None: not on it)."""
    found: list[tuple[MeetingCopy, str]] = []
    for op in operations:
        me = identities.get(op.owner) if isinstance(op, Delete) else None
        if me is None or op.key not in ical_uids:
            continue
        for sibling in me.siblings:
            owner = None if me.key_address == sibling else me.key_address
            copy = sibling_copy(sibling, ical_uids[op.key], owner)
            if copy is not None and copy.key == op.key:
                found.append((copy, me.sf_user))
    return found


def keep_shared_events(operations: Sequence[Operation], planned: Iterable[Operation]) -> list[Operation]:
    """A meeting one address of a User drops keeps its Event while another configured address
    of the same User still has it: the delete becomes a Skip. `planned`: the planner's
    operations for the other addresses' copies (`shared_copies`). Copies of one key planned
    together are settled by the planner itself (`planner.plan`)."""
    holders = {
        op.key: (op.copy.owner if isinstance(op, (Create, Update)) else op.owner)
        for op in planned if keeps_event(op)
    }
    return [
        Skip(key=op.key, owner=op.owner, reason=f"still on {holders[op.key]}'s calendar")
        if isinstance(op, Delete) and op.key in holders else op
        for op in operations
    ]


def alias_anchors(
    operations: Iterable[Operation],
    identities: Mapping[str, Identity],
    ical_uids: Mapping[str, str],
) -> dict[str, frozenset[str]]:
    """Key of each planned meeting whose User had other addresses → the keys an older calsync
    may have hashed from them (empty for nearly everyone: nothing to look up)."""
    found: dict[str, frozenset[str]] = {}
    for op in operations:
        user = op.copy.owner if isinstance(op, (Create, Update)) else op.owner
        me = identities.get(user)
        uid = ical_uids.get(op.key)
        if me is None or uid is None or len(me.addresses) < 2:
            continue
        aliases = me.alias_keys(uid)
        if aliases:
            found[op.key] = aliases
    return found
