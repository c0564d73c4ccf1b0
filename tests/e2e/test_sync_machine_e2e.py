"""A hypothesis state machine over whole cycles: meetings change, writes fail, tokens expire,
syncs run; after every clean sync Salesforce holds exactly one right Event per (meeting, owner).

Like vdirsyncer's SyncMachine, but through the real client libraries and both emulators.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from calsync import config as config_module
from calsync.runtime import open_cycle
from calsync.sandbox.demo import write_config
from calsync.sandbox.google import GoogleEmulator
from calsync.sandbox.salesforce import SalesforceEmulator

OWNERS = ["ann@acme.test", "ben@acme.test"]
CUSTOMERS = ["c1@cust.test", "c2@cust.test", "c3@cust.test"]
TODAY = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


class SyncMachine(RuleBasedStateMachine):
    @initialize()
    def start(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="calsync-machine-"))
        self.google = GoogleEmulator().start()
        self.sf = SalesforceEmulator(state_dir=self.tmp / "tls").start()
        self.user_ids = {}
        for owner in OWNERS:
            self.google.backend.add_user(owner, owner.split("@")[0], "UTC")
            self.user_ids[owner] = self.sf.backend.create_user(owner, last_name=owner.split("@")[0])
        self.contacts = {c: self.sf.backend.create_record("Contact", {"LastName": c, "Email": c}) for c in CUSTOMERS}
        key = self.tmp / "key.json"
        key.write_text(json.dumps(self.google.backend.create_service_account()))
        token = self.sf.backend.create_session(OWNERS[0])
        path = write_config(self.tmp, self.google.url, self.sf.url, key, self.sf.ca_file, token)
        text = path.read_text().replace('["alice@acme.test", "bob@acme.test", "carol@acme.test"]', json.dumps(OWNERS))
        text = text.replace('activity_datetime_field = "Calsync_Activity_DateTime__c"\n', "")
        text = text.replace('external_id_field = "Calsync_Key__c"\n', "")
        path.write_text(text)
        self.config = config_module.load(path)
        self.meetings: dict[str, dict] = {}  # id -> {"summary", "hour", "attendees", "organizer"}
        self.counter = 0

    def teardown(self):
        self.google.stop()
        self.sf.stop()

    def _times(self, day, hour):
        start = TODAY + dt.timedelta(days=day, hours=hour)
        fmt = lambda t: t.isoformat().replace("+00:00", "Z")  # noqa: E731
        return {"start": {"dateTime": fmt(start)}, "end": {"dateTime": fmt(start + dt.timedelta(hours=1))}}

    @rule(organizer=st.sampled_from(OWNERS), guests=st.lists(st.sampled_from(OWNERS + CUSTOMERS), max_size=3),
          day=st.integers(1, 20), hour=st.integers(8, 17))
    def create_meeting(self, organizer, guests, day, hour):
        self.counter += 1
        summary = f"Meeting {self.counter}"
        attendees = [organizer] + [g for g in dict.fromkeys(guests) if g != organizer]
        made = self.google.backend.create_event(organizer, {"summary": summary, "attendees": attendees,
                                                            **self._times(day, hour)})
        self.meetings[made["id"]] = {"summary": summary, "attendees": attendees, "day": day, "hour": hour}

    @precondition(lambda self: self.meetings)
    @rule(data=st.data(), day=st.integers(1, 20), hour=st.integers(8, 17))
    def move_meeting(self, data, day, hour):
        event_id = data.draw(st.sampled_from(sorted(self.meetings)))
        self.google.backend.update_event(event_id, self._times(day, hour))
        self.meetings[event_id].update(day=day, hour=hour)

    @precondition(lambda self: self.meetings)
    @rule(data=st.data(), guests=st.lists(st.sampled_from(OWNERS + CUSTOMERS), max_size=3))
    def change_attendees(self, data, guests):
        event_id = data.draw(st.sampled_from(sorted(self.meetings)))
        organizer = self.meetings[event_id]["attendees"][0]
        attendees = [organizer] + [g for g in dict.fromkeys(guests) if g != organizer]
        self.google.backend.update_event(event_id, {"attendees": attendees})
        self.meetings[event_id]["attendees"] = attendees

    @precondition(lambda self: self.meetings)
    @rule(data=st.data())
    def cancel_meeting(self, data):
        event_id = data.draw(st.sampled_from(sorted(self.meetings)))
        self.google.backend.delete_event(event_id)
        del self.meetings[event_id]

    @rule(count=st.integers(1, 3))
    def fail_some_writes(self, count):
        self.sf.backend.fail_records(count, status_code="UNABLE_TO_LOCK_ROW", times=1)

    @rule()
    def expire_sync_tokens(self):
        self.google.backend.invalidate_sync_tokens()

    def _sync(self):
        with open_cycle(self.config) as cycle:
            return cycle.run()

    @rule()
    def sync(self):
        assert self._sync().ok

    @invariant()
    def never_a_duplicate(self):
        if not hasattr(self, "sf"):
            return
        rows = self.sf.backend.list_records("Event")
        counts = Counter((r["Subject"], r["OwnerId"]) for r in rows)
        assert not counts or max(counts.values()) == 1, counts

    def expected(self):
        want = {}
        for meeting in self.meetings.values():
            if not any(a in CUSTOMERS for a in meeting["attendees"]):
                continue
            for owner in OWNERS:
                if owner in meeting["attendees"]:
                    want[(meeting["summary"], self.user_ids[owner][:15])] = (meeting["day"], meeting["hour"])
        return want

    @rule()
    def clean_sync_converges(self):
        self.sf.backend.clear_record_failures()
        for _ in range(2):  # parked records are due after their delay; a resync makes them due
            with open_cycle(self.config) as cycle:
                cycle.store._exec("UPDATE retries SET next_attempt_at = '2000-01-01T00:00:00+00:00'")
                assert cycle.run().ok
        got = {}
        for r in self.sf.backend.list_records("Event"):
            start = dt.datetime.fromisoformat(r["StartDateTime"].replace("+0000", "+00:00"))
            got[(r["Subject"], r["OwnerId"][:15])] = ((start - TODAY).days, start.hour)
        assert got == self.expected()


SyncMachine.TestCase.settings = settings(
    max_examples=12, stateful_step_count=12, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_sync_machine = SyncMachine.TestCase
