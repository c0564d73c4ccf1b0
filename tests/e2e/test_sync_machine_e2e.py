"""A hypothesis state machine over whole cycles: meetings change, writes fail, tokens expire,
time passes, syncs run; after every clean sync Salesforce holds exactly what the rules give for
the calendars' whole history, not only the current window.

Like vdirsyncer's SyncMachine, but through the real client libraries and both emulators. Time is
calsync's clock (`Cycle(clock=...)`): as it passes, meetings fall out of the lookback window, and
a 410 then lists only the window. The model says what each sync may know:

- an incremental listing reports every change since the last sync;
- a full listing (after a 410) shows what ends after `timeMin`; calsync also checks by id what
  it knew that ends within a day before `timeMin` (`mirror.MARGIN`); a change further back is
  never learnt, so the Event stays as it was (no evidence, no change);
- a meeting without an Event gets one only if its start is inside the window when it is seen;
  an Event follows its meeting's changes wherever the meeting is;
- a sales rep writes notes on Events and deletes some, at any point (issue 10): the notes are
  never undone, the times always follow Google, an annotated Event whose meeting goes stays
  with `Canceled: `, and a deleted one is never re-created.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections import Counter
from dataclasses import dataclass, field
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
CUSTOMERS = ["c1@cust.test", "c2@cust.test", "c3@cust.test"]  # c3 becomes a Contact only later
LOOKBACK = 7  # days
TODAY = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
HOUR = dt.timedelta(hours=1)


@dataclass
class Meeting:
    summary: str
    attendees: list[str]
    day: int  # days from TODAY
    hour: int
    deleted: bool = False
    pending: set[str] = field(default_factory=set)  # owners whose calendar changed since a sync
    logged: dict[str, tuple[int, int]] = field(default_factory=dict)  # owner -> Event's (day, hour)
    indexed: list[str] = field(default_factory=list)  # attendees as calsync last planned them
    indexed_owners: set[str] = field(default_factory=set)  # calendars whose copy it planned
    notes: dict[str, str] = field(default_factory=dict)  # owner -> Description a rep wrote
    removed: set[str] = field(default_factory=set)  # owners whose Event a rep deleted
    canceled: set[str] = field(default_factory=set)  # owners whose annotated Event was kept

    @property
    def start(self) -> dt.datetime:
        return TODAY + dt.timedelta(days=self.day, hours=self.hour)


class SyncMachine(RuleBasedStateMachine):
    @initialize(meetings=st.lists(st.tuples(st.sampled_from(OWNERS), st.sampled_from(CUSTOMERS),
                                            st.integers(1, 20), st.integers(8, 17)), max_size=3))
    def start(self, meetings):
        self.tmp = Path(tempfile.mkdtemp(prefix="calsync-machine-"))
        self.google = GoogleEmulator().start()
        self.sf = SalesforceEmulator(state_dir=self.tmp / "tls").start()
        self.user_ids = {}
        for owner in OWNERS:
            self.google.backend.add_user(owner, owner.split("@")[0], "UTC")
            self.user_ids[owner] = self.sf.backend.create_user(owner, last_name=owner.split("@")[0])
        self.contacts = {c: self.sf.backend.create_record("Contact", {"LastName": c, "Email": c})
                         for c in CUSTOMERS[:2]}
        self.rep = self.sf.backend.create_user("rep@acme.test", last_name="Rep")
        self.notes = 0
        key = self.tmp / "key.json"
        key.write_text(json.dumps(self.google.backend.create_service_account()))
        token = self.sf.backend.create_session(OWNERS[0])
        path = write_config(self.tmp, self.google.url, self.sf.url, key, self.sf.ca_file, token)
        text = path.read_text().replace('["alice@acme.test", "bob@acme.test", "carol@acme.test"]', json.dumps(OWNERS))
        text = text.replace('activity_datetime_field = "Calsync_Activity_DateTime__c"\n', "")
        text = text.replace('external_id_field = "Calsync_Key__c"\n', "")
        text = text.replace("lookback_days = 30", f"lookback_days = {LOOKBACK}\ndirectory_refresh_minutes = 0")
        assert f"lookback_days = {LOOKBACK}" in text
        path.write_text(text)
        self.config = config_module.load(path)
        self.meetings: dict[str, Meeting] = {}
        self.counter = 0
        self.today = 0  # calsync's clock: TODAY + this many days, at noon
        self.full_next = False
        self.new_contacts: set[str] = set()  # became Contacts since the last sync
        for organizer, customer, day, hour in meetings:
            self.create_meeting(organizer, [customer], day, hour)

    def teardown(self):
        self.google.stop()
        self.sf.stop()

    @property
    def now(self) -> dt.datetime:
        return TODAY + dt.timedelta(days=self.today, hours=12, minutes=30)  # no tie with a start

    def _times(self, day, hour):
        start = TODAY + dt.timedelta(days=day, hours=hour)
        fmt = lambda t: t.isoformat().replace("+00:00", "Z")  # noqa: E731
        return {"start": {"dateTime": fmt(start)}, "end": {"dateTime": fmt(start + HOUR)}}

    def _touch(self, meeting: Meeting, *attendee_lists: list[str]) -> None:
        for attendees in attendee_lists:
            meeting.pending.update(a for a in attendees if a in OWNERS)

    # -- what people do in Google ----------------------------------------------------------------

    @rule(organizer=st.sampled_from(OWNERS), guests=st.lists(st.sampled_from(OWNERS + CUSTOMERS), max_size=3),
          day=st.integers(1, 20), hour=st.integers(8, 17))
    def create_meeting(self, organizer, guests, day, hour):
        self.counter += 1
        summary = f"Meeting {self.counter}"
        attendees = [organizer] + [g for g in dict.fromkeys(guests) if g != organizer]
        day += self.today
        made = self.google.backend.create_event(organizer, {"summary": summary, "attendees": attendees,
                                                            **self._times(day, hour)})
        meeting = Meeting(summary, attendees, day, hour)
        self._touch(meeting, attendees)
        self.meetings[made["id"]] = meeting

    def _live(self):
        # In the order they were made: Google's ids are random, and a draw must pick the same
        # meeting when hypothesis replays an example.
        return [k for k, m in self.meetings.items() if not m.deleted]

    @precondition(lambda self: self._live())
    @rule(data=st.data(), day=st.integers(1, 20), hour=st.integers(8, 17))
    def move_meeting(self, data, day, hour):
        event_id = data.draw(st.sampled_from(self._live()))
        meeting = self.meetings[event_id]
        self.google.backend.update_event(event_id, self._times(self.today + day, hour))
        meeting.day, meeting.hour = self.today + day, hour
        self._touch(meeting, meeting.attendees)

    @precondition(lambda self: self._live())
    @rule(data=st.data(), guests=st.lists(st.sampled_from(OWNERS + CUSTOMERS), max_size=3))
    def change_attendees(self, data, guests):
        event_id = data.draw(st.sampled_from(self._live()))
        meeting = self.meetings[event_id]
        organizer = meeting.attendees[0]
        attendees = [organizer] + [g for g in dict.fromkeys(guests) if g != organizer]
        self.google.backend.update_event(event_id, {"attendees": attendees})
        self._touch(meeting, meeting.attendees, attendees)
        meeting.attendees = attendees

    @precondition(lambda self: self._live())
    @rule(data=st.data())
    def cancel_meeting(self, data):
        event_id = data.draw(st.sampled_from(self._live()))
        meeting = self.meetings[event_id]
        self.google.backend.delete_event(event_id)
        meeting.deleted = True
        self._touch(meeting, meeting.attendees)

    # -- what people do in Salesforce -----------------------------------------------------------

    @precondition(lambda self: CUSTOMERS[2] not in self.contacts)
    @rule()
    def customer_becomes_a_contact(self):
        address = CUSTOMERS[2]
        self.sf.backend.clear_record_failures()  # injected write faults would refuse this insert too
        self.contacts[address] = self.sf.backend.create_record("Contact", {"LastName": "Late", "Email": address})
        self.new_contacts.add(address)

    def _logged(self):
        """(meeting, owner) pairs the model says have an Event (deterministic: hypothesis draws
        from the model, never from the emulators, so every replay draws alike)."""
        return [(m, o) for m in self.meetings.values() for o in sorted(m.logged)]

    def _event_of(self, meeting, owner):
        """The rep's view: the Salesforce Event of (meeting, owner), if it is there yet (a create
        refused by an injected fault may still wait for its retry)."""
        owner_id = self.user_ids[owner][:15]
        for row in self.sf.backend.list_records("Event"):
            if row["Subject"].removeprefix("Canceled: ") == meeting.summary and row["OwnerId"][:15] == owner_id:
                return row
        return None

    @precondition(lambda self: self._logged())
    @rule(pick=st.integers(0, 10**6))
    def rep_writes_notes(self, pick):
        meeting, owner = self._logged()[pick % len(self._logged())]
        row = self._event_of(meeting, owner)
        if row is None:
            return
        self.notes += 1
        text = f"notes {self.notes} by the rep"
        self.sf.backend.clear_record_failures()  # injected write faults would refuse this edit
        self.sf.backend.update_record("Event", row["Id"], {"Description": text}, user_id=self.rep)
        meeting.notes[owner] = text

    @precondition(lambda self: self._logged())
    @rule(pick=st.integers(0, 10**6))
    def rep_deletes_an_event(self, pick):
        meeting, owner = self._logged()[pick % len(self._logged())]
        row = self._event_of(meeting, owner)
        if row is None:
            return
        self.sf.backend.clear_record_failures()
        self.sf.backend.delete_record("Event", row["Id"])
        meeting.logged.pop(owner)
        meeting.canceled.discard(owner)
        meeting.removed.add(owner)

    # -- faults and time ------------------------------------------------------------------------

    @rule(count=st.integers(1, 3))
    def fail_some_writes(self, count):
        self.sf.backend.fail_records(count, status_code="UNABLE_TO_LOCK_ROW", times=1)

    @rule(then_sync=st.booleans())
    def expire_sync_tokens(self, then_sync):
        self.google.backend.invalidate_sync_tokens()
        self.full_next = True
        if then_sync:  # a 410 answered at once: several in a row reach history quickly
            self._sync()

    @rule(times=st.integers(2, 3))
    def several_410s(self, times):
        for _ in range(times):
            self.expire_sync_tokens(then_sync=True)

    @rule(days=st.integers(3, 25))
    def time_passes(self, days):
        # Parked records are retried before time moves on, so a retry never meets a window
        # that has moved past its meeting (the model keeps no list of parked records).
        self.clean_sync_converges()
        self.today += days

    # -- syncs and the model --------------------------------------------------------------------

    def _sync(self):
        with open_cycle(self.config, clock=lambda: self.now) as cycle:
            result = cycle.run()
        assert result.ok, {u: c.error for u, c in result.calendars.items()}
        self._learn()

    def _learn(self):
        """What a successful sync of every calendar tells calsync, by the rules."""
        full, self.full_next = self.full_next, False
        new_contacts, self.new_contacts = self.new_contacts, set()
        window = self.now - dt.timedelta(days=LOOKBACK)
        for meeting in self.meetings.values():
            end = meeting.start + HOUR
            # A new Contact re-plans the meetings of its address that start inside the window
            # (directory refresh); the meeting index holds them as calsync last planned them.
            touched = meeting.start > window and any(a in new_contacts for a in meeting.indexed)
            for owner in OWNERS:
                if full:
                    # A full listing shows what ends after timeMin; calsync checks by id what it
                    # knew ending within a day before (mirror.MARGIN). Earlier changes are lost.
                    seen = end > window - dt.timedelta(days=1)
                else:
                    seen = owner in meeting.pending
                seen = seen or (touched and owner in meeting.indexed_owners)
                if not seen:
                    continue
                has_copy = owner in meeting.attendees and not meeting.deleted
                wanted = has_copy and any(a in self.contacts for a in meeting.attendees)
                if owner in meeting.removed:
                    pass  # deleted by the rep: never re-created
                elif not wanted and owner in meeting.logged and owner in meeting.notes:
                    meeting.canceled.add(owner)  # kept for the rep's notes, `Canceled: `, as it was
                elif not wanted:
                    meeting.logged.pop(owner, None)
                elif owner in meeting.logged or meeting.start >= window:
                    meeting.logged[owner] = (meeting.day, meeting.hour)
                    meeting.canceled.discard(owner)
                if has_copy:
                    meeting.indexed_owners.add(owner)
                else:
                    meeting.indexed_owners.discard(owner)
            if meeting.pending or full or touched:
                meeting.indexed = [] if meeting.deleted else list(meeting.attendees)
            meeting.pending.clear()

    @rule()
    def sync(self):
        self._sync()

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
            for owner, (day, hour) in meeting.logged.items():
                subject = ("Canceled: " if owner in meeting.canceled else "") + meeting.summary
                want[(subject, self.user_ids[owner][:15])] = (day, hour, meeting.notes.get(owner))
        return want

    @rule()
    def clean_sync_converges(self):
        self.sf.backend.clear_record_failures()
        for _ in range(2):  # parked records are due after their delay: make them due now
            with open_cycle(self.config, clock=lambda: self.now) as cycle:
                cycle.store._exec("UPDATE retries SET next_attempt_at = '2000-01-01T00:00:00+00:00'")
            self._sync()
        got = {}
        for r in self.sf.backend.list_records("Event"):
            start = dt.datetime.fromisoformat(r["StartDateTime"].replace("+0000", "+00:00"))
            got[(r["Subject"], r["OwnerId"][:15])] = ((start - TODAY).days, start.hour, r["Description"])
        assert got == self.expected()


SyncMachine.TestCase.settings = settings(
    max_examples=15, stateful_step_count=14, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_sync_machine = SyncMachine.TestCase
