"""Recurring series through the real client: masters, exceptions, expansion, splits (A3, A4)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google_helpers import ALICE, BOB, list_all, timed
from googleapiclient.errors import HttpError

BERLIN = "Europe/Berlin"


def _weekly(emulator: Any, count: int = 5, extra: list[str] | None = None) -> dict[str, Any]:
    """Mondays 16:00 Berlin from 5 Jan 2026, Bob invited."""
    return emulator.backend.create_event(
        ALICE,
        {
            "summary": "Weekly",
            **timed("2026-01-05T16:00:00+01:00", zone=BERLIN),
            "recurrence": [f"RRULE:FREQ=WEEKLY;COUNT={count}"] + (extra or []),
            "attendees": [BOB],
        },
    )


def test_single_events_expand_rrule_exdate_and_exceptions(
    emulator: Any, make_service: Any
) -> None:
    master = _weekly(emulator, extra=["EXDATE;TZID=Europe/Berlin:20260119T160000"])
    backend = emulator.backend
    backend.modify_occurrence(
        master["id"], "2026-01-12T16:00:00+01:00",
        {"summary": "Moved", **timed("2026-01-13T09:00:00+01:00", zone=BERLIN)},
    )
    backend.cancel_occurrence(master["id"], "2026-01-26T16:00:00+01:00")
    items, _ = list_all(make_service(), singleEvents=True, orderBy="startTime")
    assert [item["id"] for item in items] == [
        f"{master['id']}_20260105T150000Z",
        f"{master['id']}_20260112T150000Z",
        f"{master['id']}_20260202T150000Z",
    ]
    assert all(item["recurringEventId"] == master["id"] for item in items)
    assert all(item["iCalUID"] == master["iCalUID"] for item in items)
    assert "recurrence" not in items[0]
    moved = items[1]
    assert moved["summary"] == "Moved"
    assert moved["start"] == {"dateTime": "2026-01-13T09:00:00+01:00", "timeZone": BERLIN}
    assert moved["originalStartTime"] == {
        "dateTime": "2026-01-12T16:00:00+01:00", "timeZone": BERLIN
    }


def test_single_events_show_deleted_adds_cancelled_instance(
    emulator: Any, make_service: Any
) -> None:
    master = _weekly(emulator, count=3)
    emulator.backend.cancel_occurrence(master["id"], "2026-01-12T16:00:00+01:00")
    items, _ = list_all(make_service(), singleEvents=True, showDeleted=True)
    cancelled = [item for item in items if item["status"] == "cancelled"]
    assert [item["id"] for item in cancelled] == [f"{master['id']}_20260112T150000Z"]
    assert len(items) == 3


def test_cancelled_exception_returned_without_show_deleted(
    emulator: Any, make_service: Any
) -> None:
    master = _weekly(emulator)
    emulator.backend.cancel_occurrence(master["id"], "2026-01-12T16:00:00+01:00")
    items, _ = list_all(make_service(), singleEvents=False)
    assert len(items) == 2
    cancelled = items[1]
    assert set(cancelled) == {
        "kind", "etag", "id", "status", "recurringEventId", "originalStartTime"
    }
    assert cancelled == {
        "kind": "calendar#event",
        "etag": cancelled["etag"],
        "id": f"{master['id']}_20260112T150000Z",
        "status": "cancelled",
        "recurringEventId": master["id"],
        "originalStartTime": {"dateTime": "2026-01-12T16:00:00+01:00", "timeZone": BERLIN},
    }


def test_cancelled_occurrence_reaches_attendee_incrementally(
    emulator: Any, make_service: Any
) -> None:
    master = _weekly(emulator)
    service = make_service(BOB)
    _, sync_token = list_all(service)
    emulator.backend.cancel_occurrence(master["id"], "2026-01-19T16:00:00+01:00")
    page = service.events().list(calendarId="primary", syncToken=sync_token).execute()
    assert [(item["id"], item["status"]) for item in page["items"]] == [
        (f"{master['id']}_20260119T150000Z", "cancelled")
    ]


def test_modified_occurrence_is_its_own_item_in_master_mode(
    emulator: Any, make_service: Any
) -> None:
    master = _weekly(emulator)
    emulator.backend.modify_occurrence(
        master["id"], "2026-01-12T16:00:00+01:00", {"location": "Room 2"}
    )
    items, _ = list_all(make_service())
    master_item, exception = items
    assert master_item["recurrence"] == ["RRULE:FREQ=WEEKLY;COUNT=5"]
    assert exception["location"] == "Room 2"
    assert exception["recurringEventId"] == master["id"]
    assert exception["start"] == {"dateTime": "2026-01-12T16:00:00+01:00", "timeZone": BERLIN}


def test_order_by_start_time_needs_single_events(emulator: Any, make_service: Any) -> None:
    with pytest.raises(HttpError) as caught:
        make_service().events().list(calendarId="primary", orderBy="startTime").execute()
    assert caught.value.resp.status == 400
    assert json.loads(caught.value.content)["error"]["errors"][0]["reason"] == "invalid"


def test_split_series_ends_old_rule_and_starts_new_series(
    emulator: Any, make_service: Any
) -> None:
    master = _weekly(emulator, count=5)
    new = emulator.backend.split_series(
        master["id"], "2026-01-19T16:00:00+01:00", {"summary": "Weekly v2"}
    )
    items, _ = list_all(make_service(), singleEvents=True, orderBy="startTime")
    assert [item["summary"] for item in items] == ["Weekly"] * 2 + ["Weekly v2"] * 3
    assert new["id"] != master["id"] and new["iCalUID"] != master["iCalUID"]
    assert new["start"]["dateTime"] == "2026-01-19T16:00:00+01:00"
    old = emulator.backend.get_event(ALICE, master["id"])
    assert old["recurrence"] == ["RRULE:FREQ=WEEKLY;UNTIL=20260119T145959Z"]
    assert new["recurrence"] == ["RRULE:FREQ=WEEKLY;COUNT=3"]


def test_all_day_series_instance_ids_use_dates(emulator: Any, make_service: Any) -> None:
    master = emulator.backend.create_event(
        ALICE,
        {"summary": "Offsite", "start": {"date": "2026-01-05"}, "end": {"date": "2026-01-06"},
         "recurrence": ["RRULE:FREQ=DAILY;COUNT=2"]},
    )
    items, _ = list_all(make_service(), singleEvents=True)
    assert [item["id"] for item in items] == [
        f"{master['id']}_20260105", f"{master['id']}_20260106"
    ]
    assert items[1]["start"] == {"date": "2026-01-06"}
    assert items[1]["originalStartTime"] == {"date": "2026-01-06"}


def test_respond_to_one_occurrence_makes_an_exception(emulator: Any, make_service: Any) -> None:
    master = _weekly(emulator, count=3)
    emulator.backend.respond(BOB, f"{master['id']}_20260112T150000Z", "declined")
    items, _ = list_all(make_service(BOB), singleEvents=True)
    statuses = [
        next(a["responseStatus"] for a in item["attendees"] if a.get("self")) for item in items
    ]
    assert statuses == ["needsAction", "declined", "needsAction"]
