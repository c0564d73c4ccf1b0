"""A hypothesis state machine over whole cycles: meetings change, writes fail, tokens expire,
time passes, syncs run; after every clean sync Salesforce holds exactly what the rules give for
the calendars' whole history, not only the current window.

Like vdirsyncer's SyncMachine, but through the real client libraries and both emulators. Time is
calsync's clock (`Cycle(clock=...)`) and Salesforce's (the emulator's clock follows it, a few
minutes off: its `clock_offset`, drawn once per example within ±15 min). As it passes, meetings
fall out of the lookback window, a 410 then lists only the window, and Events dated a year
back are archived (reference B10: only queryAll sees them). The model says what each sync may
know:

- an incremental listing reports every change since the last sync;
- a full listing (after a 410, or of a renamed owner's calendar) shows what ends after
  `timeMin`; calsync also checks by id what it knew that ends within a day before `timeMin`
  (`mirror.MARGIN`); a change further back is never learnt, so the Event stays as it was (no
  evidence, no change);
- a meeting without an Event gets one only if its start is inside the window when it is seen;
  an Event follows its meeting's changes wherever the meeting is, archived or not;
- Salesforce-side changes (a customer becoming a Contact, a Lead converted into a new or an
  existing Contact) re-plan the meetings of the addresses they touch inside the window;
  converting a Lead moves its Events to the Contact and the new Opportunity or Account
  (Salesforce does that, as the converting rep: not a person's edit);
- which meetings count, their Name and Related To, and the text as Salesforce stores it
  (surrounding whitespace, emoji at the 255-unit limit) are machine_world.plan();
- sales reps write notes on Events and delete some (issue 10): the notes are never undone,
  the times always follow Google, an annotated Event whose meeting goes (cancelled, declined)
  stays with `Canceled: ` and loses only that prefix when the meeting comes back (re-accepted,
  restored from the trash), and a deleted one is never re-created;
- the org may run a trigger that rewrites the Subject of every insert: that value is calsync's
  own write (its Subject follows Google at the next update) until a person edits the Event
  before calsync read it back, which makes it theirs (README "Who owns which field");
- an owner may be renamed (Google, the Salesforce User's Email and `[sync] users` follow):
  their Events stay theirs, one per meeting;
- a create's answer may be lost (the connection cut after Salesforce committed it): the next
  run adopts the Event that landed, whatever the clocks say.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import event as hypothesis_event
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from calsync.core import config as config_module
from calsync.core import logs
from calsync.service.runtime import open_cycle
from calsync.sandbox.demo import write_config
from calsync.sandbox.google import GoogleEmulator
from calsync.sandbox.salesforce import SalesforceEmulator
from calsync.sandbox.server import Fault
from machine_world import (
    CANCELED,
    CONTACTS,
    CUSTOMERS,
    HOUR,
    LATE_CONTACT,
    LEADS,
    STRANGERS,
    TOKEN,
    TRIGGER_PREFIX,
    Directory,
    Meeting,
    created,
    descriptions,
    follow,
    locations,
    needs_update,
    person_edits,
    plan,
    respond_default,
    row_values,
    summaries,
)

PEOPLE = ["ann", "ben"]  # the salespeople; their addresses change when they are renamed
LOOKBACK = 7  # days
TODAY = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
COLLECTIONS = "/services/data/v59.0/composite/sobjects"
ARCHIVED = dt.timedelta(days=366)  # Salesforce archives Events dated 365 days back (reference B10)
USERS_LINE = '["alice@acme.test", "bob@acme.test", "carol@acme.test"]'
GUESTS = st.lists(st.sampled_from([0, 1, *CUSTOMERS, *STRANGERS]), max_size=3)  # 0, 1: a salesperson
DAYS = st.integers(1, 20) | st.sampled_from([-3, -30, -400])  # from today; -400 is archived at once


class SyncMachine(RuleBasedStateMachine):
    @initialize(data=st.data(), skew=st.integers(-900, 900), trigger=st.sampled_from([False, False, True]))
    def start(self, data, skew, trigger):
        self.tmp = Path(tempfile.mkdtemp(prefix="calsync-machine-"))
        self.google = GoogleEmulator().start()
        self.sf = SalesforceEmulator(state_dir=self.tmp / "tls").start()
        self.today = 0  # calsync's clock: TODAY + this many days, at 12:30
        began = time.monotonic()
        # Salesforce's clock is calsync's plus the time the example has run, `skew` off.
        self.sf.backend.clock = lambda: self.now + dt.timedelta(seconds=time.monotonic() - began)
        self.sf.backend.clock_offset = dt.timedelta(seconds=skew)
        self.sf.backend.session_lifetime = dt.timedelta(days=36500)  # time passes by years here
        self.addresses = [f"{p}@acme.test" for p in PEOPLE]
        self.user_ids = []
        for address in self.addresses:
            self.google.backend.add_user(address, address.split("@")[0], "UTC")
            self.user_ids.append(self.sf.backend.create_user(address, last_name=address.split("@")[0]))
        self.directory = Directory()
        for address in CONTACTS:
            self.directory.contacts[address] = self.sf.backend.create_record(
                "Contact", {"LastName": address, "Email": address})
        for address in LEADS:
            self.directory.leads[address] = self.sf.backend.create_record(
                "Lead", {"LastName": address, "Email": address, "Company": f"{address} Inc"})
        self.rep = self.sf.backend.create_user("rep@acme.test", last_name="Rep")
        self.sf.backend.create_user("calsync@acme.test", last_name="Integration")
        key = self.tmp / "key.json"
        key.write_text(json.dumps(self.google.backend.create_service_account()))
        token = self.sf.backend.create_session("calsync@acme.test")
        path = write_config(self.tmp, self.google.url, self.sf.url, key, self.sf.ca_file, token)
        text = path.read_text()
        text = text.replace('activity_datetime_field = "Calsync_Activity_DateTime__c"\n', "")
        text = text.replace('external_id_field = "Calsync_Key__c"\n', "")
        text = text.replace("lookback_days = 30", f"lookback_days = {LOOKBACK}\ndirectory_refresh_minutes = 0")
        assert f"lookback_days = {LOOKBACK}" in text and USERS_LINE in text
        self.config_path, self.config_text = path, text
        self._write_config()
        self.meetings: dict[str, Meeting] = {}
        self.notes = 0
        self.renames = 0
        self.full_next: set[int] = set()  # owners whose next listing is a full one
        self.changed: set[str] = set()  # addresses whose Salesforce record changed since a sync
        self.recent: set[str] = set()  # meetings whose Event someone in Salesforce just worked on
        self.trigger = False
        self.may_park = False  # a write was refused since the last clean sync: it may wait
        if trigger:
            self.org_switches_its_trigger()
        for _ in range(data.draw(st.integers(0, 4))):
            self.create_meeting(data, data.draw(st.sampled_from([0, 1, *STRANGERS, *CUSTOMERS])),
                                data.draw(GUESTS), data.draw(st.integers(1, 20)), data.draw(st.integers(8, 17)),
                                data.draw(st.integers(0, 1)))
        if data.draw(st.booleans()):
            self._sync()  # a world calsync already runs in

    def teardown(self):
        if hasattr(self, "sf"):
            self.google.stop()
            self.sf.stop()
        # Each example's keys and tokens are new: forget them, as conftest does between tests
        # (every new secret recompiles the redaction pattern of all of them).
        logs.clear_secrets()

    def _write_config(self):
        self.config_path.write_text(self.config_text.replace(USERS_LINE, json.dumps(self.addresses)))
        self.config = config_module.load(self.config_path)

    @property
    def now(self) -> dt.datetime:
        return TODAY + dt.timedelta(days=self.today, hours=12, minutes=30)  # no tie with a start

    def _times(self, day, hour):
        start = TODAY + dt.timedelta(days=day, hours=hour)
        fmt = lambda t: t.isoformat().replace("+00:00", "Z")  # noqa: E731
        return {"start": {"dateTime": fmt(start)}, "end": {"dateTime": fmt(start + HOUR)}}

    def _touch(self, meeting: Meeting, *attendee_lists: list[str]) -> None:
        for attendees in attendee_lists:
            meeting.pending.update(p for p, a in enumerate(self.addresses) if a in attendees)

    def _guests(self, guests) -> list[str]:
        return [self.addresses[g] if isinstance(g, int) else g for g in guests]

    # -- what people do in Google ----------------------------------------------------------------

    def _make(self, data, organizer: str, attendees: list[str], day: int, hour: int) -> str:
        number = len(self.meetings) + 1
        meeting = Meeting(number, data.draw(summaries(number)), data.draw(locations()),
                          data.draw(descriptions()), attendees,
                          {a: respond_default(a, organizer) for a in attendees}, day, hour)
        body = {"summary": meeting.summary, "attendees": attendees, **self._times(day, hour)}
        body.update({k: v for k, v in (("location", meeting.location), ("description", meeting.description))
                     if v is not None})
        made = self.google.backend.create_event(organizer, body)
        self._touch(meeting, attendees)
        self.meetings[made["id"]] = meeting
        return made["id"]

    @rule(data=st.data(), organizer=st.sampled_from([0, 1, *STRANGERS, *CUSTOMERS]), guests=GUESTS,
          owner=st.integers(0, 1), day=st.integers(1, 20), hour=st.integers(8, 17))
    def create_meeting(self, data, organizer, guests, day, hour, owner=0):
        """A salesperson organises a meeting, or someone outside the company (a customer, a
        stranger) invites a salesperson (`owner`) and others."""
        if isinstance(organizer, int):
            me = self.addresses[organizer]
            attendees = [me] + [g for g in dict.fromkeys(self._guests(guests)) if g != me]
        else:
            me = organizer
            attendees = list(dict.fromkeys([me, self.addresses[owner], *self._guests(guests)]))
        self._make(data, me, attendees, self.today + day, hour)

    def _live(self):
        # In the order they were made: Google's ids are random, and a draw must pick the same
        # meeting when hypothesis replays an example.
        return [k for k, m in self.meetings.items() if not m.deleted]

    def _pick(self, data, choices):
        """One of `choices` (meeting ids, or pairs starting with one); half the time one of the
        meetings people in Salesforce just worked on, when there are some: what happens to a
        meeting next is most interesting right after its Event was edited, moved by a
        conversion, or created without an answer."""
        focus = [c for c in choices if (c[0] if isinstance(c, tuple) else c) in self.recent]
        return data.draw(st.sampled_from(focus if focus and data.draw(st.booleans()) else choices))

    def _gone(self):
        return [k for k, m in self.meetings.items() if m.deleted]

    @precondition(lambda self: self._live())
    @rule(data=st.data(), day=DAYS, hour=st.integers(8, 17))
    def move_meeting(self, data, day, hour):
        if day < 1 and self.may_park:
            # A refused create is retried when the meeting has left the window: it is never
            # made then (README), and the model does not know which create was refused.
            self.clean_sync_converges()
        self._move(self._pick(data, self._live()), day, hour)

    def _move(self, event_id, day, hour):
        meeting = self.meetings[event_id]
        self.google.backend.update_event(event_id, self._times(self.today + day, hour))
        meeting.day, meeting.hour = self.today + day, hour
        self._touch(meeting, meeting.attendees)

    @precondition(lambda self: self._live())
    @rule(data=st.data(), guests=GUESTS)
    def change_attendees(self, data, guests):
        event_id = self._pick(data, self._live())
        meeting = self.meetings[event_id]
        organizer = meeting.attendees[0]
        attendees = [organizer] + [g for g in dict.fromkeys(self._guests(guests)) if g != organizer]
        self.google.backend.update_event(event_id, {"attendees": attendees})
        self._touch(meeting, meeting.attendees, attendees)
        # Google keeps the answers of those who stay; a newcomer has not answered.
        meeting.responses = {a: meeting.responses.get(a) or respond_default(a, organizer) for a in attendees}
        meeting.attendees = attendees

    @precondition(lambda self: self._live())
    @rule(data=st.data())
    def edit_meeting_text(self, data):
        event_id = self._pick(data, self._live())
        meeting = self.meetings[event_id]
        meeting.summary = data.draw(summaries(meeting.number))
        meeting.location, meeting.description = data.draw(locations()), data.draw(descriptions())
        self.google.backend.update_event(event_id, {
            "summary": meeting.summary, "location": meeting.location, "description": meeting.description})
        self._touch(meeting, meeting.attendees)

    @precondition(lambda self: self._live())
    @rule(data=st.data())
    def cancel_meeting(self, data):
        self._cancel(self._pick(data, self._live()))

    def _cancel(self, event_id):
        meeting = self.meetings[event_id]
        self.google.backend.delete_event(event_id)
        meeting.deleted = True
        self._touch(meeting, meeting.attendees)

    def _gone_or_declined(self):
        declined = [(k, a) for k, m in self.meetings.items() if not m.deleted
                    for a in m.attendees[1:] if a in self.addresses and m.responses.get(a) == "declined"]
        found = [(k, None) for k in self._gone()] + declined
        # Most often one whose Event was kept `Canceled: ` (the rep asked for it back).
        kept = [(k, a) for k, a in found if any(e.canceled for e in self.meetings[k].events.values())]
        return kept or found

    @precondition(lambda self: self._gone_or_declined())
    @rule(data=st.data(), answer=st.sampled_from(["accepted", "tentative"]))
    def a_meeting_comes_back(self, data, answer):
        """A deleted meeting is restored from the trash, or a salesperson who declined accepts
        (or answers maybe) after all."""
        event_id, owner = self._pick(data, self._gone_or_declined())
        meeting = self.meetings[event_id]
        if owner is None:
            self.google.backend.restore_event(event_id)
            meeting.deleted = False
        else:
            self.google.backend.respond(owner, event_id, answer)
            meeting.responses[owner] = answer
        self._touch(meeting, meeting.attendees)

    def _answerable(self):
        return [(k, a) for k in self._live() for a in self.meetings[k].attendees[1:]]

    @precondition(lambda self: self._answerable())
    @rule(data=st.data(), answer=st.sampled_from(["declined", "accepted", "tentative"]))
    def answer_invitation(self, data, answer):
        """A guest (a salesperson or a customer) declines, accepts or answers maybe."""
        event_id, address = self._pick(data, self._answerable())
        meeting = self.meetings[event_id]
        self.google.backend.respond(address, event_id, answer)
        meeting.responses[address] = answer
        self._touch(meeting, meeting.attendees)

    @rule(person=st.integers(0, 1))
    def rename_owner(self, person):
        """A Workspace rename: Google, the Salesforce User's Email and `[sync] users` follow."""
        self.renames += 1
        old, new = self.addresses[person], f"{PEOPLE[person]}.r{self.renames}@acme.test"
        self.google.backend.rename_user(old, new)
        self.sf.backend.clear_record_failures()  # injected write faults would refuse the admin too
        self.sf.backend.update_record("User", self.user_ids[person], {"Email": new}, system=True)
        self.addresses[person] = new
        self._write_config()
        for meeting in self.meetings.values():
            if old in meeting.attendees:
                meeting.attendees = [new if a == old else a for a in meeting.attendees]
                meeting.responses = {new if a == old else a: r for a, r in meeting.responses.items()}
                self._touch(meeting, meeting.attendees)  # every copy shows the new address
        self.full_next.add(person)  # the old sync token is refused; calsync lists in full anyway

    # -- what people do in Salesforce -----------------------------------------------------------

    @precondition(lambda self: LATE_CONTACT not in self.directory.contacts)
    @rule()
    def customer_becomes_a_contact(self):
        self.sf.backend.clear_record_failures()  # injected write faults would refuse this insert too
        self.directory.contacts[LATE_CONTACT] = self.sf.backend.create_record(
            "Contact", {"LastName": "Late", "Email": LATE_CONTACT})
        self.changed.add(LATE_CONTACT)

    # A conversion moves Events the model has already seen land: no create waits for a retry.
    @precondition(lambda self: self.directory.leads and not self.may_park)
    @rule(data=st.data(), into=st.sampled_from(["a new Contact", *CONTACTS, LATE_CONTACT]),
          opportunity=st.booleans(), then_cancelled=st.booleans())
    def convert_a_lead(self, data, into, opportunity, then_cancelled):
        """A rep converts a Lead into a new Contact or an existing one (which then gets the new
        Account), with or without an Opportunity (whose primary contact the Contact becomes).
        A meeting of an Event the conversion moved may be cancelled before the next run."""
        named = {a for a, lead in self.directory.leads.items() for m in self.meetings.values()
                 for e in m.events.values() if e.fields["WhoId"] == lead[:15]}
        # Most often a Lead some Event names: the rep met them.
        address = data.draw(st.sampled_from(sorted(named or self.directory.leads)))
        existing = self.directory.contacts.get(into)
        if existing in self.directory.related:
            existing = None  # it has its Account already: one Related To the rules can name
        lead = self.directory.leads.pop(address)
        ids = self.sf.backend.convert_lead(lead, contact_id=existing, user_id=self.rep,
                                           opportunity_name=f"{address} deal" if opportunity else None)
        contact, made = ids["contact"], ids["opportunity"] or ids["account"]
        if existing:
            self.directory.converted[address] = contact
            self.changed.add(into)
        else:
            self.directory.contacts[address] = contact
        self.directory.related[contact] = made
        self.changed.add(address)
        # Salesforce moves the Lead's Events (README "Converted Leads"), as the rep.
        moved = []
        for event_id, meeting in self.meetings.items():
            for event in meeting.events.values():
                if event.fields["WhoId"] == lead[:15]:
                    moved.append(event_id)
                    hypothesis_event("conversion moved an Event")
                    event.fields["WhoId"] = contact[:15]
                    event.fields["WhatId"] = event.fields["WhatId"] or made[:15]
                    person_edits(event)
        self.recent.update(moved)
        live = [k for k in moved if not self.meetings[k].deleted]
        if then_cancelled and live:
            self._cancel(live[0])

    def _id_of(self, meeting: Meeting) -> str:
        return next(k for k, m in self.meetings.items() if m is meeting)

    def _logged(self):
        """(meeting, owner) pairs the model says have an Event (deterministic: hypothesis draws
        from the model, never from the emulators, so every replay draws alike)."""
        return [(m, o) for m in self.meetings.values() for o in sorted(m.events)]

    def _event_of(self, meeting, owner):
        """The rep's view: the Salesforce Event of (meeting, owner), if it is there yet (a create
        refused by an injected fault may still wait for its retry)."""
        for row in self.sf.backend.list_records("Event"):
            found = TOKEN.search(row["Subject"] or "")
            if found and int(found.group(1)) == meeting.number and row["OwnerId"][:15] == self.user_ids[owner][:15]:
                return row
        return None

    @precondition(lambda self: self._logged())
    @rule(pick=st.integers(0, 10**6), action=st.sampled_from(["notes", "notes", "title", "delete"]))
    def rep_works_on_an_event(self, pick, action):
        """A sales rep writes notes into an Event's Description, fixes its Subject, or deletes it."""
        meeting, owner = self._logged()[pick % len(self._logged())]
        row = self._event_of(meeting, owner)
        if row is None:
            return
        self.recent.add(self._id_of(meeting))
        self.sf.backend.clear_record_failures()  # injected write faults would refuse this edit
        if action == "delete":
            self.sf.backend.delete_record("Event", row["Id"])
            meeting.events.pop(owner)
            meeting.removed.add(owner)
            return
        self.notes += 1
        name, text = ("Description", f"notes {self.notes} by the rep") if action == "notes" else (
            "Subject", f"{row['Subject']} (rep {self.notes})")
        self.sf.backend.update_record("Event", row["Id"], {name: text}, user_id=self.rep)
        event = meeting.events[owner]
        event.fields[name] = text
        event.mine.add(name)
        person_edits(event)

    # An insert the trigger may or may not see would be waiting for its retry otherwise.
    @precondition(lambda self: not self.may_park)
    @rule()
    def org_switches_its_trigger(self):
        """An admin adds (or removes) a trigger that prefixes the Subject of every Event inserted."""
        if self.trigger:
            self.sf.backend.clear_triggers()
        else:
            self.sf.backend.add_trigger("Event", on=("insert",), subject_prefix=TRIGGER_PREFIX)
        self.trigger = not self.trigger

    # -- faults and time ------------------------------------------------------------------------

    @rule(count=st.integers(1, 3))
    def fail_some_writes(self, count):
        if not self.trigger:
            self.sf.backend.fail_records(count, status_code="UNABLE_TO_LOCK_ROW", times=1)
        else:
            # Not deletes: a refused delete leaves the Event calsync wrote before the trigger
            # ran, and if its meeting comes back before the retry that Event stays, where the
            # model (which does not know which record was refused) creates a new one.
            left = [count]

            def refuse(record):
                if set(record) <= {"attributes", "Id"} or left[0] <= 0:
                    return False
                left[0] -= 1
                return True

            self.sf.backend.fail_records(refuse, status_code="UNABLE_TO_LOCK_ROW", times=1)
        self.may_park = True

    @rule(times=st.integers(1, 3), then_sync=st.booleans())
    def expire_sync_tokens(self, times, then_sync):
        for _ in range(times):
            self.google.backend.invalidate_sync_tokens()
            self.full_next.update(range(len(PEOPLE)))
            if then_sync or times > 1:  # a 410 answered at once: several in a row reach history quickly
                self._sync()

    @rule(days=st.integers(3, 25) | st.integers(366, 400))
    def time_passes(self, days):
        # Parked records are retried before time moves on, so a retry never meets a window
        # that has moved past its meeting (the model keeps no list of parked records). A year
        # or more: every Event of the meetings so far is archived.
        self.clean_sync_converges()
        self.today += days

    @rule(data=st.data(), organizer=st.integers(0, 1), both=st.booleans(),
          customer=st.sampled_from(CONTACTS), day=st.integers(1, 20), hour=st.integers(8, 17),
          relist=st.booleans(), then=st.sampled_from(["nothing", "moved", "cancelled"]))
    def lose_a_create_answer(self, data, organizer, both, customer, day, hour, relist, then):
        """A new meeting's create lands in Salesforce and its answer is lost (the connection cut
        after the commit), on an incremental or a full listing; Salesforce's clock is off. Before
        the next run the meeting may move (into the past too) or be cancelled."""
        self.clean_sync_converges()
        if relist:
            self.expire_sync_tokens(1, then_sync=False)
        me = self.addresses[organizer]
        attendees = [me, customer] + ([self.addresses[1 - organizer]] if both else [])
        made = self._make(data, me, attendees, self.today + day, hour)
        meeting = self.meetings[made]
        self.recent.add(made)
        self.sf.faults.add(Fault(drop_after=True, method="POST", path_prefix=COLLECTIONS))
        try:
            result = self._cycle()
        finally:
            self.sf.faults.clear()
        failed = {p for p, a in enumerate(self.addresses) if not result.calendars[a].ok}
        hypothesis_event(f"lost answer: {len(failed & meeting.pending)} Event(s) landed unanswered")
        for person in failed & meeting.pending:
            # The Event landed as calsync sent it, the trigger's Subject on it if there is one;
            # the meeting went into the calendar's mirror before the create (README "Crash safety").
            meeting.lost[person] = (plan(meeting, self.addresses[person], self.directory), self.trigger)
            meeting.known[person] = (meeting.day, meeting.hour)
        self._learn(set(range(len(PEOPLE))) - failed)
        if then == "moved":
            self._move(made, data.draw(DAYS), hour)
        elif then == "cancelled":
            self._cancel(made)

    # -- syncs and the model --------------------------------------------------------------------

    def _cycle(self):
        with open_cycle(self.config, clock=lambda: self.now) as cycle:
            return cycle.run()

    def _sync(self):
        result = self._cycle()
        assert result.ok, {u: c.error for u, c in result.calendars.items()}
        self._learn(set(range(len(PEOPLE))))

    def _learn(self, ok: set[int]):
        """What a successful sync of the calendars of `ok` tells calsync, by the rules."""
        full = self.full_next & ok
        self.full_next -= ok
        changed, self.changed = self.changed, set()
        assert not changed or ok == set(range(len(PEOPLE)))  # a refresh never meets a failed calendar
        window = self.now - dt.timedelta(days=LOOKBACK)
        for meeting in self.meetings.values():
            start = meeting.start(TODAY)
            for person in sorted(ok & set(meeting.lost)):
                # The next run finds the Event that landed and adopts it.
                want, trigger = meeting.lost.pop(person)
                meeting.events[person] = created(want, trigger, answer_lost=True)
            # A Salesforce change re-plans the meetings of its addresses that start inside the
            # window (directory refresh); the meeting index holds them as calsync last planned them.
            touched = start > window and bool(changed & set(meeting.indexed))
            for person in sorted(ok):
                if person in full:
                    # A full listing shows what ends after timeMin; calsync checks by id what its
                    # mirror holds ending after timeMin less a day (mirror.MARGIN), wherever the
                    # meeting is now. Changes of meetings further back are never learnt.
                    known = meeting.known.get(person)
                    seen = start + HOUR > window or (
                        known is not None and TODAY + dt.timedelta(days=known[0], hours=known[1] + 1)
                        > window - dt.timedelta(days=1))
                else:
                    seen = person in meeting.pending
                if not (seen or (touched and person in meeting.indexed_owners)):
                    continue
                address = self.addresses[person]
                self._settle(meeting, person, plan(meeting, address, self.directory), start >= window)
                if address in meeting.attendees and not meeting.deleted:
                    meeting.indexed_owners.add(person)
                    meeting.known[person] = (meeting.day, meeting.hour)
                else:
                    meeting.indexed_owners.discard(person)
                    meeting.known.pop(person, None)
            if meeting.pending & ok or full or touched:
                meeting.indexed = [] if meeting.deleted else list(meeting.attendees)
            meeting.pending -= ok

    def _settle(self, meeting: Meeting, person: int, want, in_window: bool) -> None:
        """One (meeting, owner) planned: created, updated, deleted, or kept `Canceled: `."""
        event = meeting.events.get(person)
        if person in meeting.removed:
            return  # deleted by the rep: never re-created
        if event is not None and TODAY + dt.timedelta(days=event.fields["Start"][0]) < self.now - ARCHIVED:
            hypothesis_event("an archived Event planned again")
        if want is None:
            if event is None or event.canceled:
                return
            if event.mine:  # kept for what the person wrote, `Canceled: `, as it was
                hypothesis_event("an annotated Event kept Canceled:")
                event.fields["Subject"] = CANCELED + event.fields["Subject"]
                event.canceled, event.unread_trigger = True, False
            else:
                del meeting.events[person]
        elif event is None:
            if in_window:
                meeting.events[person] = created(want, self.trigger, answer_lost=False)
        elif needs_update(event, want):
            if event.canceled:
                hypothesis_event("a Canceled: Event's meeting came back")
            follow(event, want)

    @rule()
    def sync(self):
        self._sync()

    @invariant()
    def never_a_duplicate(self):
        if not hasattr(self, "sf"):
            return
        counts = Counter((TOKEN.search(r["Subject"] or "").group(1), r["OwnerId"][:15])
                         for r in self.sf.backend.list_records("Event"))
        assert not counts or max(counts.values()) == 1, counts

    @rule()
    def clean_sync_converges(self):
        self.sf.backend.clear_record_failures()
        self.sf.faults.clear()
        self.may_park = False
        for _ in range(2):  # parked records are due after their delay: make them due now
            with open_cycle(self.config, clock=lambda: self.now) as cycle:
                cycle.store._exec("UPDATE retries SET next_attempt_at = '2000-01-01T00:00:00+00:00'")
            self._sync()
        got = {}
        for row in self.sf.backend.list_records("Event"):
            if row["IsArchived"]:
                hypothesis_event("converged with archived Events")
            if TRIGGER_PREFIX in row["Subject"]:
                hypothesis_event("converged with a trigger's Subject")
            number, values = row_values(row, TODAY)
            assert (number, row["OwnerId"][:15]) not in got, row
            got[(number, row["OwnerId"][:15])] = values
        want = {(m.number, self.user_ids[p][:15]): dict(e.fields)
                for m in self.meetings.values() for p, e in m.events.items()}
        wrong = {}  # (meeting, owner) -> what differs: Salesforce's value, the rules' value
        for key in sorted(set(got) | set(want)):
            if key not in want or key not in got:
                wrong[key] = "an Event the rules do not give" if key in got else "no Event, the rules give one"
            elif got[key] != want[key]:
                wrong[key] = {n: (got[key][n], want[key][n]) for n in want[key] if got[key][n] != want[key][n]}
        assert not wrong, wrong


EXAMPLES = int(os.environ.get("CALSYNC_MACHINE_EXAMPLES", "40"))
STEPS = int(os.environ.get("CALSYNC_MACHINE_STEPS", "25"))
SyncMachine.TestCase.settings = settings(
    max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_sync_machine = SyncMachine.TestCase
