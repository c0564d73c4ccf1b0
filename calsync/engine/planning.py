"""Planning a batch: the planner's operations, with deletes another address of the owner still has
kept.

`plan_operations` runs the pure planner (rules/planner) on the batch's copies, the Events
written before and the directory's answers, and logs each of its warnings once per cycle (a
cycle may plan twice: the fields are vetted at the first write). A Delete of a meeting that
another configured address of the same Salesforce User still has becomes a Skip
(`identity.keep_shared_events`); that sibling's copy comes from the batch, else from its
calendar's mirror, and its people are looked up if need be.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence

from calsync.core.model import Delete, Directory, MeetingCopy, Operation, Written
from calsync.engine import identity, mirror
from calsync.engine.lookup import look_up
from calsync.engine.owners import Owners
from calsync.engine.salesforce_session import SalesforceSession
from calsync.rules.planner import addresses_to_look_up, plan
from calsync.state.store import StateStore

log = logging.getLogger("calsync.cycle")  # names predate the layers (ARCHITECTURE.md)


class Planning:
    """The planner run on one batch, as a Cycle does it (warnings once per cycle)."""

    def __init__(self, store: StateStore, session: SalesforceSession, owners: Owners) -> None:
        self.store = store
        self.session = session
        self.owners = owners
        self.warned: set[str] = set()  # warnings logged this run: each once per cycle

    def look_up(self, copies: Sequence[MeetingCopy], users: Mapping[str, str]) -> Directory:
        """The batch's people in Salesforce (lookup.py)."""
        return look_up(self.session.org, self.session.settings, copies, users)

    def plan_operations(
        self,
        copies: Sequence[MeetingCopy],
        previous: Mapping[str, Written],
        directory: Directory,
        now: dt.datetime,
    ) -> list[Operation]:
        settings = self.session.settings
        planned = plan(copies, previous, directory, settings, now)
        for warning in planned.warnings:
            if warning not in self.warned:  # a cycle may plan twice (fields vetted at first write)
                self.warned.add(warning)
                log.warning(warning)
        operations = list(planned.operations)
        identities = self.owners.identities
        if any(isinstance(op, Delete) and op.owner in identities
               and identities[op.owner].siblings for op in operations):
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
            operations, self.owners.identities, {c.key: c.ical_uid for c in copies}, sibling_copy
        )
        if not found:
            return operations
        theirs = [copy for copy, _ in found]
        users = {**answers.users, **{copy.owner: sf_user for copy, sf_user in found}}
        settings = self.session.settings
        people = (self.look_up(theirs, users) if addresses_to_look_up(theirs, settings)
                  else Directory(users=users))
        planned = plan(theirs, previous, people, settings, now).operations
        return identity.keep_shared_events(operations, planned)
