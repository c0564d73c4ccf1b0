"""History across expired sync tokens and re-listings, through both emulators (issue 8).

A full listing (first sync, after a 410, resync) is windowed by `timeMin`: it says nothing of
meetings that ended before the window. Nothing that calsync logged is deleted or moved because a
window left it out; only evidence (a cancelled item, or events.get finding nothing) removes it.
The window is narrowed with `lookback_days` to stand for time passing.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

from calsync.core import config as config_module
from calsync.engine.resync import Window
from calsync.service.runtime import resync

ALICE = "alice@acme.test"
HANK = "hank@globex.test"  # a Contact of the demo company


def _day(offset: int, hour: int = 10) -> dt.datetime:
    today = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return today + dt.timedelta(days=offset, hours=hour)


def _times(start: dt.datetime, minutes: int = 60) -> dict:
    fmt = lambda t: t.isoformat().replace("+00:00", "Z")  # noqa: E731
    return {"start": {"dateTime": fmt(start), "timeZone": "UTC"},
            "end": {"dateTime": fmt(start + dt.timedelta(minutes=minutes)), "timeZone": "UTC"}}


def _meeting(google_emu, summary: str, start: dt.datetime, **body) -> dict:
    return google_emu.backend.create_event(ALICE, {
        "summary": summary, "attendees": [ALICE, HANK], **_times(start), **body})


def _events(sf_emu, subject: str) -> list[dict]:
    return [r for r in sf_emu.backend.list_records("Event") if r["Subject"] == subject]


def _starts(sf_emu, subject: str) -> list[str]:
    return sorted(r["StartDateTime"][:16] for r in _events(sf_emu, subject))


def _expire_tokens(google_emu) -> None:
    google_emu.backend.invalidate_sync_tokens()


def _no_duplicates(sf_emu) -> None:
    rows = sf_emu.backend.list_records("Event")
    counts = Counter((r["Subject"], r["OwnerId"][:15]) for r in rows)
    assert max(counts.values()) == 1, counts


def test_events_older_than_the_window_survive_any_number_of_410s(sync, make_config, sf_emu, google_emu):
    _meeting(google_emu, "Forty days ago", _day(-40))
    _meeting(google_emu, "Twenty days ago", _day(-20))
    _meeting(google_emu, "Next week", _day(7))
    assert sync(make_config(sync={"lookback_days": 60})).ok
    before = {r["Id"]: r for r in sf_emu.backend.list_records("Event")}
    assert {"Forty days ago", "Twenty days ago", "Next week"} <= {r["Subject"] for r in before.values()}

    narrow = make_config(sync={"lookback_days": 10})  # the window now starts after both ended
    for _ in range(3):
        _expire_tokens(google_emu)
        result = sync(narrow)
        assert result.ok and all(c.full_sync for c in result.calendars.values())
        after = {r["Id"]: r for r in sf_emu.backend.list_records("Event")}
        assert after == before, "a re-listing must not delete or change history"


def test_resync_after_a_410_proposes_no_deletion_of_history(sync, make_config, sf_emu, google_emu):
    _meeting(google_emu, "Forty days ago", _day(-40))
    assert sync(make_config(sync={"lookback_days": 60})).ok
    narrow = make_config(sync={"lookback_days": 10})
    _expire_tokens(google_emu)
    assert sync(narrow).ok
    config = config_module.load(narrow)
    for window in (None, Window(dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=60))):
        planned = resync(config, window=window, dry_run=True)
        assert planned.ok
        assert [c for c in planned.changes if c.action == "delete"] == []
    assert len(_events(sf_emu, "Forty days ago")) == 1


def test_a_meeting_deleted_while_the_token_was_expired_is_deleted_on_evidence(
    sync, make_config, sf_emu, google_emu
):
    gone = _meeting(google_emu, "Cancelled next week", _day(7))
    _meeting(google_emu, "Still on", _day(8))
    path = make_config()
    assert sync(path).ok
    google_emu.backend.delete_event(gone["id"])
    # Google forgot the deletion before calsync listed again: the full listing just lacks it.
    google_emu.backend.purge_deleted()
    result = sync(path)
    assert result.ok
    assert _events(sf_emu, "Cancelled next week") == []  # events.get said 404: evidence
    assert len(_events(sf_emu, "Still on")) == 1


def test_a_missing_meeting_that_moved_out_of_the_window_follows_the_move(
    sync, make_config, sf_emu, google_emu
):
    moved = _meeting(google_emu, "Moved back", _day(3))
    path = make_config(sync={"lookback_days": 10})
    assert sync(path).ok
    _expire_tokens(google_emu)
    google_emu.backend.update_event(moved["id"], _times(_day(-20)))
    assert sync(path).ok
    assert _starts(sf_emu, "Moved back") == [_day(-20).isoformat()[:16]]


def test_checks_of_missing_meetings_are_bounded_per_cycle(sync, make_config, sf_emu, google_emu):
    from calsync.engine import changes

    made = [_meeting(google_emu, f"Gone {i}", _day(5, 8 + i % 8)) for i in range(changes.MAX_CHECKS + 5)]
    path = make_config()
    assert sync(path).ok
    for item in made:
        google_emu.backend.delete_event(item["id"])
    google_emu.backend.purge_deleted(ALICE)
    first = sync(path, users=[ALICE])
    assert first.ok
    left = [r for r in sf_emu.backend.list_records("Event") if r["Subject"].startswith("Gone ")]
    assert len(left) == 5  # 50 checked and deleted this cycle; the rest wait, untouched
    assert sync(path, users=[ALICE]).ok
    assert [r for r in sf_emu.backend.list_records("Event") if r["Subject"].startswith("Gone ")] == []


# -- series whose first slot lies before the window ------------------------------------------


def _series(google_emu, summary: str, first: dt.datetime, count: int = 10) -> dict:
    return _meeting(google_emu, summary, first, recurrence=[f"RRULE:FREQ=WEEKLY;COUNT={count}"])


def test_a_moved_first_occurrence_stays_put_across_410s(sync, make_config, sf_emu, google_emu):
    master = _series(google_emu, "Weekly sync", _day(-35))
    google_emu.backend.modify_occurrence(master["id"], _times(_day(-35))["start"], _times(_day(-34, 15)))
    assert sync(make_config(sync={"lookback_days": 60})).ok
    assert _starts(sf_emu, "Weekly sync") == [_day(-34, 15).isoformat()[:16]]
    narrow = make_config(sync={"lookback_days": 10})
    for _ in range(2):
        _expire_tokens(google_emu)
        assert sync(narrow).ok
        assert _starts(sf_emu, "Weekly sync") == [_day(-34, 15).isoformat()[:16]]


def test_a_cancelled_first_occurrence_stays_cancelled_across_410s(sync, make_config, sf_emu, google_emu):
    master = _series(google_emu, "Weekly sync", _day(-35))
    google_emu.backend.cancel_occurrence(master["id"], _times(_day(-35))["start"])
    assert sync(make_config(sync={"lookback_days": 60})).ok
    assert _starts(sf_emu, "Weekly sync") == [_day(-28).isoformat()[:16]]
    narrow = make_config(sync={"lookback_days": 10})
    for _ in range(2):
        _expire_tokens(google_emu)
        assert sync(narrow).ok
        assert _starts(sf_emu, "Weekly sync") == [_day(-28).isoformat()[:16]]


def test_a_declined_first_occurrence_stays_declined_across_410s(sync, make_config, sf_emu, google_emu):
    master = _series(google_emu, "Weekly sync", _day(-35))
    google_emu.backend.respond(ALICE, f"{master['id']}_{_day(-35):%Y%m%dT%H%M%SZ}", "declined")
    assert sync(make_config(sync={"lookback_days": 60})).ok
    assert _starts(sf_emu, "Weekly sync") == [_day(-28).isoformat()[:16]]
    narrow = make_config(sync={"lookback_days": 10})
    _expire_tokens(google_emu)
    assert sync(narrow).ok
    assert _starts(sf_emu, "Weekly sync") == [_day(-28).isoformat()[:16]]


def test_first_sync_finds_a_cancelled_first_slot_before_the_window(sync, make_config, sf_emu, google_emu):
    # The series began 35 days ago; its first slot, before the 30-day window, was cancelled, so
    # its Event belongs to the second slot, inside the window. The windowed listing shows the
    # master but not that cancellation: calsync asks Google for the series' own items.
    master = _series(google_emu, "Weekly sync", _day(-35))
    google_emu.backend.cancel_occurrence(master["id"], _times(_day(-35))["start"])
    assert sync(make_config(sync={"lookback_days": 30})).ok
    assert _starts(sf_emu, "Weekly sync") == [_day(-28).isoformat()[:16]]


def test_a_series_cancelled_while_the_token_was_expired_is_deleted(sync, make_config, sf_emu, google_emu):
    master = _series(google_emu, "Weekly sync", _day(-35), count=20)
    path = make_config(sync={"lookback_days": 60})
    assert sync(path).ok
    assert len(_events(sf_emu, "Weekly sync")) == 1
    google_emu.backend.delete_event(master["id"])
    google_emu.backend.purge_deleted()
    assert sync(make_config(sync={"lookback_days": 10})).ok
    assert _events(sf_emu, "Weekly sync") == []
    _no_duplicates(sf_emu)


def test_every_delete_line_names_the_google_event(sync, make_config, sf_emu, google_emu, caplog):
    import logging

    made = _meeting(google_emu, "Soon cancelled", _day(4))
    path = make_config()
    assert sync(path).ok
    google_emu.backend.delete_event(made["id"])
    google_emu.backend.purge_deleted()  # the meeting is found gone by id, not by a listing
    with caplog.at_level(logging.INFO):
        assert sync(path).ok
    deletes = [r for r in caplog.records if r.getMessage() == "deleted"]
    assert deletes and all(r.fields["event_id"] == made["id"] for r in deletes)
