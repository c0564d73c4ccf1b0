"""The calendars' owners in Salesforce: each configured address's User, and the address it had.

`resolve_users` maps each configured address (or its `[sync] user_map` target) to the active
Salesforce User with that email, username or Id, cached in the state store (a day for a match,
an hour for none), so an idle cycle asks nothing. `identify` settles, before any listing, the
address each owner's keys are hashed from and the renames of configured users (identity.py),
asking the calendar whether a new address holds the old one's items (`_same_calendar`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence

from calsync.calendar.source import CalendarFactory
from calsync.core.config import Config
from calsync.core.errors import AuthError, CalsyncError, TransientError
from calsync.core.logs import event as log_event
from calsync.engine import identity
from calsync.engine.salesforce_session import SalesforceSession
from calsync.state.store import StateStore

log = logging.getLogger("calsync.cycle")  # names predate the layers (ARCHITECTURE.md)

USER_CACHE_TTL = dt.timedelta(hours=24)
MISSING_USER_TTL = dt.timedelta(hours=1)


class Owners:
    """Who owns each calendar in Salesforce, and under which address its keys were made."""

    def __init__(
        self,
        config: Config,
        store: StateStore,
        session: SalesforceSession,
        calendar_for: CalendarFactory,
    ) -> None:
        self.config = config
        self.store = store
        self.session = session
        self.calendar_for = calendar_for
        self.identities: dict[str, identity.Identity] = {}  # resolved users (identity.py)

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
            found = self.session.org.find_users([t for t in targets.values() if "@" in t], ids)
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
            self.store, owners, self.session.settings.configured_users, now,
            same_calendar=self._same_calendar,
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
