"""The sweep (issue 16): Events calsync wrote whose meeting the mirror does not know are
settled on evidence from Google, through both emulators.

Such Events are what the bug of issue 16 left behind in state databases (a crash or a failed
write between the Salesforce write and the mirror): here the state is put in that shape by
hand (the meeting's rows taken out of the mirror) and the sweep made due, as the migration
does (`swept_at` empty) or a day passing does.
"""

from __future__ import annotations

import datetime as dt
import logging

from calsync.core import config as config_module
from calsync.engine import sweep
from calsync.service.runtime import resync
from calsync.state.store import StateStore

ALICE, BOB = "alice@acme.test", "bob@acme.test"


def _lose_from_the_mirror(path, ical_uids, swept_at: str | None = None) -> None:
    """The state the bug left: Events written, their meetings unknown to the mirror."""
    store = StateStore(config_module.load(path).state.location)
    try:
        with store.transaction():
            for uid in ical_uids:
                store._exec("DELETE FROM google_items WHERE ical_uid = ?", [uid])
            store._exec("UPDATE calendars SET swept_at = ?", [swept_at])
    finally:
        store.close()


def _uid(google_emu, event_id: str) -> str:
    return google_emu.backend.meetings[event_id].ical_uid


def _subjects(sf_emu) -> list[tuple[str, str]]:
    return sorted((r["Subject"], r["OwnerId"][:15]) for r in sf_emu.backend.list_records("Event"))


def test_an_event_whose_meeting_is_gone_is_deleted_once_google_says_so(
    make_config, sync, google_emu, sf_emu, company, caplog
):
    path = make_config()
    assert sync(path).ok
    meeting = company.meetings["external"]  # Alice's and Bob's Events
    _lose_from_the_mirror(path, [_uid(google_emu, meeting)])
    google_emu.backend.delete_event(meeting)  # the next listing carries a bare stub (A3)
    before = len(sf_emu.backend.list_records("Event"))
    with caplog.at_level(logging.INFO, logger="calsync"):
        result = sync(path)
    assert result.ok
    assert not [r for r in sf_emu.backend.list_records("Event") if r["Subject"].startswith("Globex renewal")]
    assert len(sf_emu.backend.list_records("Event")) == before - 2
    swept = [r for r in caplog.records if r.getMessage() == "swept an Event whose meeting the mirror did not know"]
    assert len(swept) == 2 and {r.fields["found"] for r in swept} == {"gone"}
    assert all(r.fields["event_id"] == meeting for r in swept)  # by events.get, its id from explain
    deleted = [r for r in caplog.records if r.getMessage() == "deleted"]
    assert {r.fields["event_id"] for r in deleted} == {meeting}  # the log still names the meeting
    assert sync(path).salesforce_calls == 0


def test_an_event_whose_meeting_is_still_there_is_kept_and_its_meeting_mirrored_again(
    make_config, sync, google_emu, sf_emu, company
):
    path = make_config()
    assert sync(path).ok
    weekly = company.meetings["weekly"]  # a series: all its items come back, by iCalUID
    uid = _uid(google_emu, weekly)
    store = StateStore(config_module.load(path).state.location)
    try:
        rows_before = store.mirror_by_uids(ALICE, [uid])[uid]
    finally:
        store.close()
    events = _subjects(sf_emu)
    _lose_from_the_mirror(path, [uid])
    assert sync(path).ok
    assert _subjects(sf_emu) == events
    store = StateStore(config_module.load(path).state.location)
    try:
        assert {r.event_id for r in store.mirror_by_uids(ALICE, [uid])[uid]} == {r.event_id for r in rows_before}
        assert store.orphans(ALICE, 10) == []
    finally:
        store.close()
    # Known again: when it goes, its Event goes with it.
    google_emu.backend.delete_event(weekly)
    assert sync(path).ok
    assert not [r for r in sf_emu.backend.list_records("Event") if r["Subject"] == "Umbrella weekly check-in"]


def test_an_event_a_person_changed_is_kept_with_canceled_when_its_lost_meeting_is_gone(
    make_config, sync, google_emu, sf_emu, company
):
    path = make_config()
    assert sync(path).ok
    meeting = company.meetings["lead"]  # Bob's Event
    row = next(r for r in sf_emu.backend.list_records("Event") if r["Subject"] == "Intro call with Soylent")
    sf_emu.backend.update_record("Event", row["Id"], {"Description": "Zoe wants a demo"})
    _lose_from_the_mirror(path, [_uid(google_emu, meeting)])
    google_emu.backend.delete_event(meeting)
    assert sync(path).ok
    kept = next(r for r in sf_emu.backend.list_records("Event") if r["Id"] == row["Id"])
    assert kept["Subject"] == "Canceled: Intro call with Soylent"
    assert kept["Description"] == "Zoe wants a demo"


def test_the_sweep_runs_daily_not_on_every_poll(make_config, sync, google_emu, sf_emu, company):
    path = make_config()
    assert sync(path).ok  # a first sync: a full listing, swept
    meeting = company.meetings["external"]
    now = dt.datetime.now(dt.timezone.utc)
    _lose_from_the_mirror(path, [_uid(google_emu, meeting)], swept_at=now.isoformat(timespec="seconds"))
    google_emu.backend.delete_event(meeting)
    result = sync(path)
    assert result.ok and all(c.google_calls == 1 for c in result.calendars.values())  # not due
    assert len([r for r in sf_emu.backend.list_records("Event") if r["Subject"].startswith("Globex renewal")]) == 2
    _lose_from_the_mirror(path, [], swept_at=(now - sweep.EVERY).isoformat(timespec="seconds"))
    result = sync(path)
    assert result.ok
    assert not [r for r in sf_emu.backend.list_records("Event") if r["Subject"].startswith("Globex renewal")]
    # A listing each; for each lost Event, events.get by its id, then events.list by iCalUID.
    assert sum(c.google_calls for c in result.calendars.values()) == 3 + 2 * 2
    idle = sync(path)
    assert all(c.google_calls == 1 for c in idle.calendars.values()) and idle.salesforce_calls == 0


def test_the_sweep_spends_at_most_its_budget_per_cycle(make_config, sync, google_emu, sf_emu, company, monkeypatch):
    path = make_config(sync={"users": [ALICE]})
    assert sync(path).ok
    lost = [company.meetings[label] for label in ("external", "weekly", "internal")]
    _lose_from_the_mirror(path, [_uid(google_emu, m) for m in lost])
    for meeting in lost:
        google_emu.backend.delete_event(meeting)
    monkeypatch.setattr(sweep, "MAX_CALLS", 2)  # one gone Event a cycle (events.get, then by iCalUID)
    store = StateStore(config_module.load(path).state.location)
    try:
        for left in (2, 1, 0):
            result = sync(path)
            assert result.ok and result.calendars[ALICE].google_calls == 1 + 2
            assert len(store.orphans(ALICE, 10)) == left
            assert (store.calendar(ALICE).swept_at is None) == (left > 0)  # due until done
    finally:
        store.close()
    assert not [r for r in sf_emu.backend.list_records("Event")
                if r["OwnerId"] == company.sf_user_ids[ALICE]]
    assert sync(path).calendars[ALICE].google_calls == 1


def test_resync_settles_lost_meetings_too(make_config, sync, google_emu, sf_emu, company):
    path = make_config()
    assert sync(path).ok
    meeting = company.meetings["external"]
    uid = _uid(google_emu, meeting)
    _lose_from_the_mirror(path, [uid], swept_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    google_emu.backend.delete_event(meeting)
    result = resync(config_module.load(path), dry_run=True)
    assert sorted((c.user, c.action) for c in result.changes
                  if (c.subject or "").startswith("Globex renewal")) == [(ALICE, "delete"), (BOB, "delete")]
    assert resync(config_module.load(path)).ok
    assert not [r for r in sf_emu.backend.list_records("Event") if r["Subject"].startswith("Globex renewal")]
