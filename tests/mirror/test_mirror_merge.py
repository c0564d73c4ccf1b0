"""How listings change the mirror: stubs, cancelled occurrences, masters listed late."""

from __future__ import annotations

import datetime as dt

from calsync.engine import mirror
from calsync.state.store import MirrorRow


def row(event_id, uid, master=None, **payload):
    return MirrorRow(event_id, uid, master, {"id": event_id, **payload})


def test_deleted_stub_with_only_an_id_finds_its_meeting_through_the_known_row():
    known = {"e1": row("e1", "uid-1@google.com")}
    delta = mirror.merge([{"id": "e1", "status": "cancelled"}], known)
    assert delta.deletes == ("e1",)
    assert delta.affected == {"uid-1@google.com"}
    assert delta.upserts == ()


def test_unknown_deleted_stub_changes_nothing():
    delta = mirror.merge([{"id": "zz", "status": "cancelled"}], {})
    assert delta.affected == frozenset()


def test_cancelled_occurrence_is_kept_with_its_series():
    known = {"m": row("m", "series@google.com", recurrence=["RRULE:FREQ=WEEKLY"])}
    stub = {"id": "m_20260105T150000Z", "status": "cancelled", "recurringEventId": "m",
            "originalStartTime": {"dateTime": "2026-01-05T15:00:00Z"}}
    delta = mirror.merge([stub], known)
    assert [(r.event_id, r.ical_uid, r.recurring_event_id) for r in delta.upserts] == [
        ("m_20260105T150000Z", "series@google.com", "m")
    ]
    assert delta.affected == {"series@google.com"}


def test_exception_listed_before_its_master_joins_the_master_uid():
    items = [
        {"id": "m_1", "status": "confirmed", "recurringEventId": "m"},
        {"id": "m", "status": "confirmed", "iCalUID": "s@google.com"},
    ]
    delta = mirror.merge(items, {})
    assert {r.event_id: r.ical_uid for r in delta.upserts} == {"m": "s@google.com", "m_1": "s@google.com"}


def test_later_copy_of_an_id_in_one_listing_wins():
    items = [{"id": "e", "iCalUID": "u", "summary": "old"}, {"id": "e", "iCalUID": "u", "summary": "new"}]
    (only,) = mirror.merge(items, {}).upserts
    assert only.payload["summary"] == "new"


def test_view_overlays_the_delta_on_the_old_rows():
    old = {"u": [row("m", "u"), row("m_1", "u", "m", status="cancelled")]}
    delta = mirror.merge([{"id": "m_2", "status": "cancelled", "recurringEventId": "m"}], {"m": old["u"][0]})
    rows = mirror.view(old, delta)
    assert sorted(r.event_id for r in rows["u"]) == ["m", "m_1", "m_2"]


def test_view_of_a_deleted_master_is_empty():
    old = {"u": [row("m", "u"), row("m_1", "u", "m")]}
    delta = mirror.merge([{"id": "m", "status": "cancelled"}], {"m": old["u"][0]})
    assert mirror.view(old, delta)["u"] == []


def test_view_keeps_old_rows_a_listing_did_not_mention():
    old = {"u": [row("before-window", "u")]}
    delta = mirror.MirrorDelta((row("new", "u"),), (), frozenset({"u"}))
    assert sorted(r.event_id for r in mirror.view(old, delta)["u"]) == ["before-window", "new"]


NOON = dt.datetime(2026, 3, 1, 12, tzinfo=dt.timezone.utc)


def timed_row(event_id, start, hours=1, **payload):
    item = {"id": event_id, "start": {"dateTime": start.isoformat()},
            "end": {"dateTime": (start + dt.timedelta(hours=hours)).isoformat()}, **payload}
    return mirror.MirrorRow(event_id, "u-" + event_id, item.get("recurringEventId"), item)


def test_a_meeting_that_ended_before_the_window_is_not_covered():
    assert not mirror.covered(timed_row("old", NOON - dt.timedelta(days=10)), NOON)
    assert mirror.covered(timed_row("inside", NOON + dt.timedelta(days=1)), NOON)
    # Within a day of the bound counts as covered: an all-day date is read at midnight UTC.
    assert mirror.covered(timed_row("edge", NOON - dt.timedelta(hours=13)), NOON)


def test_a_series_is_covered_while_it_runs_and_not_once_it_ended():
    start = NOON - dt.timedelta(days=70)
    ended = timed_row("s1", start, recurrence=["RRULE:FREQ=WEEKLY;COUNT=3"])
    running = timed_row("s2", start, recurrence=["RRULE:FREQ=WEEKLY"])
    until = timed_row("s3", start, recurrence=["RRULE:FREQ=WEEKLY;UNTIL=20260101T000000Z"])
    later = timed_row("s4", start, recurrence=["RRULE:FREQ=WEEKLY;UNTIL=20270101T000000Z"])
    assert not mirror.covered(ended, NOON) and not mirror.covered(until, NOON)
    assert mirror.covered(running, NOON) and mirror.covered(later, NOON)


def test_absent_lists_only_covered_items_the_listing_left_out():
    rows = [
        timed_row("listed", NOON + dt.timedelta(days=1)),
        timed_row("history", NOON - dt.timedelta(days=40)),
        timed_row("missing", NOON + dt.timedelta(days=2)),
        timed_row("gone-slot", NOON + dt.timedelta(days=3), status="cancelled", recurringEventId="m"),
    ]
    assert [r.event_id for r in mirror.absent(rows, ["listed"], NOON)] == ["missing"]


def test_meeting_copy_puts_the_master_first():
    copy = mirror.meeting_copy("a@x.test", "u", [row("m_1", "u", "m"), row("m", "u")])
    assert [i.id for i in copy.items] == ["m", "m_1"]


def test_hostile_items_do_not_raise():
    items = [{}, {"id": None}, {"id": 5}, {"id": "x", "recurringEventId": 7}, {"id": "y", "iCalUID": ["a"]}]
    delta = mirror.merge(items, {})
    assert {r.event_id for r in delta.upserts} <= {"x", "y"}
