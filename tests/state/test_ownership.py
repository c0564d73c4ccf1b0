"""Who owns which field (calsync/ownership.py), on plain data: edits found, kept, never undone."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from calsync import ownership
from calsync.model import Delete, EventFields, MeetingCopy, Retire, Skip, Update, Written

NOW = dt.datetime(2026, 3, 2, 12, tzinfo=dt.timezone.utc)
SF_ID = "00U000000000001AAA"


def fields(**changes) -> EventFields:
    base = dict(owner_id="005000000000001AAA", subject="Demo", start=NOW, end=NOW + dt.timedelta(hours=1),
                is_all_day=False, activity_date=None, duration_minutes=60, location=None,
                description="Agenda", who_id="003000000000001AAA", what_id="006000000000001AAA")
    base.update(changes)
    return EventFields(**base)


def written(body: dict, **extra) -> Written:
    return Written("k1", "a@x.test", "uid", SF_ID, "fp", hashes=ownership.hashes(body), written_at=NOW, **extra)


def update(f: EventFields, kept=frozenset()) -> Update:
    return Update("k1", SF_ID, MeetingCopy("a@x.test", "uid"), f, kept=kept)


def salesforce_row(body: dict, **changes) -> dict:
    row = {"Id": SF_ID, "LastModifiedDate": "2026-03-02T12:00:00.000+0000", **body, **changes}
    row["OwnerId"] = str(row["OwnerId"]) + "AAA"[: 18 - len(str(row["OwnerId"]))]
    return row


def test_a_field_a_person_changed_is_kept_and_left_out_of_the_update() -> None:
    old = fields().to_salesforce()
    row = salesforce_row(old, Description="Agenda\nmy notes")
    moved = fields(start=NOW + dt.timedelta(days=1), end=NOW + dt.timedelta(days=1, hours=1), subject="Demo v2")
    settled = ownership.settle([update(moved)], {"k1": written(old)}, {SF_ID[:15]: row})
    (op,) = settled.operations
    assert isinstance(op, Update) and op.kept == {"Description"}
    assert "Description" not in op.body() and op.body()["Subject"] == "Demo v2"
    assert op.body()["StartDateTime"] == "2026-03-03T12:00:00.000+0000"  # times follow Google
    assert settled.newly_kept == {"k1": frozenset({"Description"})}


def test_times_are_never_a_persons() -> None:
    old = fields().to_salesforce()
    row = salesforce_row(old, StartDateTime="2026-03-02T15:00:00.000+0000")
    settled = ownership.settle([update(fields(subject="Renamed"))], {"k1": written(old)}, {SF_ID[:15]: row})
    (op,) = settled.operations
    assert op.kept == frozenset() and op.body()["StartDateTime"] == "2026-03-02T12:00:00.000+0000"


def test_what_calsync_writes_now_is_not_an_edit() -> None:
    old = fields().to_salesforce()
    new = fields(subject="Renamed")
    row = salesforce_row(old, Subject="Renamed")  # the update landed, its answer was lost
    settled = ownership.settle([update(new)], {"k1": written(old)}, {SF_ID[:15]: row})
    assert isinstance(settled.operations[0], Skip) and settled.newly_kept == {}


def test_a_kept_related_to_keeps_a_lead_name_out() -> None:
    old = fields().to_salesforce()
    row = salesforce_row(old, WhatId="006000000000009AAA")
    lead = fields(who_id="00Q000000000001AAA", what_id=None)
    settled = ownership.settle([update(lead)], {"k1": written(old)}, {SF_ID[:15]: row})
    op = settled.unchanged["k1"]  # with both links the person's, nothing is left to send
    assert isinstance(settled.operations[0], Skip)
    assert op.kept == {"WhatId"} and "WhoId" not in op.body() and "WhatId" not in op.body()


def test_a_gone_meeting_with_a_persons_edit_is_retired_once() -> None:
    old = fields().to_salesforce()
    row = salesforce_row(old, Location="Room 4")
    delete = Delete("k1", SF_ID, "a@x.test", "cancelled")
    (op,) = ownership.settle([delete], {"k1": written(old)}, {SF_ID[:15]: row}).operations
    assert isinstance(op, Retire) and op.subject == "Canceled: Demo" and op.kept == {"Location"}
    row["Subject"] = "Canceled: Demo"
    (again,) = ownership.settle([delete], {"k1": written(old)}, {SF_ID[:15]: row}).operations
    assert isinstance(again, Retire) and again.subject is None


def test_an_untouched_event_of_a_gone_meeting_is_deleted() -> None:
    old = fields().to_salesforce()
    delete = Delete("k1", SF_ID, "a@x.test", "cancelled")
    (op,) = ownership.settle([delete], {"k1": written(old)}, {SF_ID[:15]: salesforce_row(old)}).operations
    assert op == delete


def test_an_event_deleted_in_salesforce_is_removed_not_recreated() -> None:
    old = fields().to_salesforce()
    settled = ownership.settle([update(fields(subject="x"))], {"k1": written(old)}, {})
    assert isinstance(settled.operations[0], Skip) and settled.removed == {"k1"}
    restored = ownership.settle([update(fields(subject="x"))], {"k1": written(old)}, {}, restore_deleted=True)
    assert type(restored.operations[0]).__name__ == "Create"


def test_an_old_event_modified_after_calsync_wrote_it_is_taken_as_a_persons() -> None:
    old = fields().to_salesforce()
    legacy = Written("k1", "a@x.test", "uid", SF_ID, "fp", written_at=NOW)  # no per-field hashes
    row = salesforce_row(old, Description="notes", LastModifiedDate="2026-03-02T13:00:00.000+0000")
    settled = ownership.settle([update(fields(subject="Renamed"))], {"k1": legacy}, {SF_ID[:15]: row})
    # Without hashes, every field that differs is taken as the person's: the safe side.
    assert settled.kept == {"k1": frozenset({"Description", "Subject"})}
    row["LastModifiedDate"] = "2026-03-02T12:00:30.000+0000"  # calsync's own write
    (op,) = ownership.settle([update(fields(subject="Renamed"))], {"k1": legacy}, {SF_ID[:15]: row}).operations
    assert isinstance(op, Update) and op.kept == frozenset() and op.body()["Subject"] == "Renamed"


TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@settings(max_examples=200, deadline=None)
@given(edits=st.dictionaries(st.sampled_from(["Subject", "Description", "Location", "WhatId", "ShowAs"]),
                             TEXT, max_size=3),
       new_subject=TEXT, new_description=TEXT)
def test_no_persons_edit_is_ever_written_over(edits, new_subject, new_description) -> None:
    old = fields().to_salesforce()
    row = salesforce_row(old, **edits)
    wanted = fields(subject=new_subject or "x", description=new_description or None)
    settled = ownership.settle([update(wanted)], {"k1": written(old)}, {SF_ID[:15]: row})
    (op,) = settled.operations
    changed = {f for f, v in edits.items() if not ownership.same(f, v, old[f])}
    for name in changed:
        sent = op.body() if isinstance(op, Update) else {}
        assert name not in sent or ownership.same(name, sent[name], row[name])


def test_an_event_found_gone_for_a_delete_was_a_persons_unless_calsync_sent_the_delete() -> None:
    old = fields().to_salesforce()
    delete = Delete("k1", SF_ID, "a@x.test", "no Contact or Lead")
    settled = ownership.settle([delete], {"k1": written(old)}, {})
    assert isinstance(settled.operations[0], Skip) and settled.removed == {"k1"}
    ours = ownership.settle([delete], {"k1": written(old, deleting=True)}, {})
    assert ours.operations == (delete,) and ours.removed == frozenset()


def test_an_event_calsyncs_own_unconfirmed_delete_removed_is_made_anew_when_wanted_again() -> None:
    # Issue 16: the delete landed, its answer was lost (a crash, a fault), and the meeting is
    # wanted again: not a person's deletion.
    old = fields().to_salesforce()
    settled = ownership.settle([update(fields())], {"k1": written(old, deleting=True)}, {})
    (op,) = settled.operations
    assert type(op).__name__ == "Create" and settled.gone == {"k1"} and settled.removed == frozenset()
    # The delete never landed: the Event is there, as calsync wrote it; nothing to send.
    kept = ownership.settle([update(fields())], {"k1": written(old, deleting=True)},
                            {SF_ID[:15]: salesforce_row(old)})
    assert isinstance(kept.operations[0], Skip) and set(kept.unchanged) == {"k1"} and kept.gone == frozenset()


def test_the_activity_field_alone_never_makes_an_update() -> None:
    before = fields().to_salesforce()  # written before the field was configured
    now = fields(activity_datetime_field="Act__c")
    settled = ownership.settle([update(now)], {"k1": written(before)}, {SF_ID[:15]: salesforce_row(before, Act__c=None)},
                               activity_field="Act__c")
    assert isinstance(settled.operations[0], Skip)
    renamed = fields(activity_datetime_field="Act__c", subject="Renamed")
    (op,) = ownership.settle([update(renamed)], {"k1": written(before)},
                             {SF_ID[:15]: salesforce_row(before, Act__c=None)}, activity_field="Act__c").operations
    assert isinstance(op, Update) and "Act__c" in op.body()  # an Event changed from now on gets it
