"""A property over whole cycles (issue 16): people are renamed at random points (Google, the
Salesforce User's Email and `[sync] users` all follow), while meetings are created, moved and
cancelled and sync tokens expire. After every sync there is at most one Event per (Salesforce
owner, meeting); after the last one, exactly one for each meeting a person attends and none for
a cancelled meeting. With and without an External ID field. Real client libraries, both
emulators."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calsync.core import config as config_module
from calsync.service.runtime import open_cycle
from calsync.sandbox.demo import write_config
from calsync.sandbox.google import GoogleEmulator
from calsync.sandbox.salesforce import SalesforceEmulator

PEOPLE = 2
CUSTOMER = "cu@cust.test"
KEY_FIELD = "Calsync_Key__c"
TODAY = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)

step = st.one_of(
    st.tuples(st.just("rename"), st.integers(0, PEOPLE - 1)),
    st.tuples(st.just("create"), st.integers(0, PEOPLE - 1), st.booleans()),
    st.tuples(st.just("move"), st.integers(0, 20), st.integers(8, 17)),
    st.tuples(st.just("cancel"), st.integers(0, 20)),
    st.tuples(st.just("expire")),
    st.tuples(st.just("sync")),
)


class World:
    """Both emulators, the people's current addresses and the meetings made."""

    def __init__(self, external_id: bool) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="calsync-rename-"))
        self.google = GoogleEmulator().start()
        self.sf = SalesforceEmulator(state_dir=self.tmp / "tls").start()
        self.addresses = [f"p{i}@acme.test" for i in range(PEOPLE)]
        self.sf_ids = []
        for address in self.addresses:
            self.google.backend.add_user(address, address.split("@")[0])
            self.sf_ids.append(self.sf.backend.create_user(address, last_name=address.split("@")[0]))
        self.sf.backend.create_record("Contact", {"LastName": "Customer", "Email": CUSTOMER})
        if external_id:
            self.sf.backend.add_custom_field("Event", KEY_FIELD, "string", length=255,
                                             external_id=True, unique=True)
        key = self.tmp / "key.json"
        key.write_text(json.dumps(self.google.backend.create_service_account()))
        token = self.sf.backend.create_session(self.addresses[0])
        self.path = write_config(self.tmp, self.google.url, self.sf.url, key, self.sf.ca_file, token)
        self.template = self.path.read_text().replace('activity_datetime_field = "Calsync_Activity_DateTime__c"\n', "")
        if not external_id:
            self.template = self.template.replace(f'external_id_field = "{KEY_FIELD}"\n', "")
        self.meetings: list[tuple[str, str]] = []  # (Google event id, subject)
        self.cancelled: set[str] = set()
        self.renames = 0
        self.write_config()

    def write_config(self) -> None:
        users = '["alice@acme.test", "bob@acme.test", "carol@acme.test"]'
        assert users in self.template
        self.path.write_text(self.template.replace(users, json.dumps(self.addresses)))

    def stop(self) -> None:
        self.google.stop()
        self.sf.stop()

    def rename(self, person: int) -> None:
        self.renames += 1
        old, new = self.addresses[person], f"p{person}.r{self.renames}@acme.test"
        self.google.backend.rename_user(old, new)
        self.sf.backend.update_record("User", self.sf_ids[person], {"Email": new}, system=True)
        self.addresses[person] = new
        self.write_config()

    def times(self, day: int, hour: int) -> dict[str, dict[str, str]]:
        start = TODAY + dt.timedelta(days=day, hours=hour)
        fmt = lambda t: t.isoformat().replace("+00:00", "Z")  # noqa: E731
        return {"start": {"dateTime": fmt(start)}, "end": {"dateTime": fmt(start + dt.timedelta(hours=1))}}

    def create(self, person: int, both: bool) -> None:
        subject = f"Meeting {len(self.meetings) + 1}"
        attendees = [self.addresses[person], CUSTOMER] + ([self.addresses[1 - person]] if both else [])
        made = self.google.backend.create_event(self.addresses[person], {
            "summary": subject, "attendees": attendees, **self.times(2 + len(self.meetings), 10)})
        self.meetings.append((made["id"], subject))

    def live(self) -> list[tuple[str, str]]:
        return [m for m in self.meetings if m[0] not in self.cancelled]

    def sync(self) -> None:
        with open_cycle(config_module.load(self.path)) as cycle:
            result = cycle.run()
        assert result.ok, {u: c.error for u, c in result.calendars.items()}
        counts = Counter((r["OwnerId"][:15], r["Subject"]) for r in self.sf.backend.list_records("Event"))
        assert max(counts.values(), default=0) <= 1, counts

    def settled(self) -> None:
        """After a clean sync: one Event per person attending each live meeting, none else."""
        counts = Counter((r["OwnerId"][:15], r["Subject"]) for r in self.sf.backend.list_records("Event"))
        wanted = Counter()
        for event_id, subject in self.live():
            emails = {a["email"] for a in self.google.backend.meetings[event_id].body["attendees"]}
            for person, address in enumerate(self.addresses):
                if address in emails:
                    wanted[(self.sf_ids[person][:15], subject)] += 1
        assert counts == wanted


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(external_id=st.booleans(), steps=st.lists(step, min_size=2, max_size=8),
       rename_at=st.integers(0, 8), who=st.integers(0, PEOPLE - 1))
def test_renames_at_any_point_never_give_a_second_event(external_id, steps, rename_at, who):
    steps = [*steps[:rename_at], ("rename", who), *steps[rename_at:]]  # at least one rename
    world = World(external_id)
    try:
        world.create(0, True)
        world.sync()
        for action, *args in steps:
            if action == "rename":
                world.rename(args[0])
            elif action == "create":
                world.create(args[0], args[1])
            elif action == "move" and world.live():
                event_id, _ = world.live()[args[0] % len(world.live())]
                world.google.backend.update_event(event_id, world.times(1 + args[0] % 9, args[1]))
            elif action == "cancel" and world.live():
                event_id, _ = world.live()[args[0] % len(world.live())]
                world.google.backend.delete_event(event_id)
                world.cancelled.add(event_id)
            elif action == "expire":
                world.google.backend.invalidate_sync_tokens()
            elif action == "sync":
                world.sync()
        world.sync()
        world.settled()
    finally:
        world.stop()
