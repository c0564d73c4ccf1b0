"""timeMin bounds event END, timeMax bounds event START, both exclusive (reference A1)."""

from __future__ import annotations

from typing import Any

from google_helpers import ALICE, list_all, timed


def _summaries(service: Any, **params: Any) -> list[str]:
    items, _ = list_all(service, **params)
    return sorted(item["summary"] for item in items)


def test_time_min_is_exclusive_on_end(emulator: Any, make_service: Any) -> None:
    backend = emulator.backend
    backend.create_event(ALICE, {"summary": "ends at min", **timed("2026-01-05T09:00:00Z")})
    backend.create_event(ALICE, {"summary": "spans min", **timed("2026-01-05T09:30:00Z")})
    assert _summaries(make_service(), timeMin="2026-01-05T10:00:00Z") == ["spans min"]


def test_time_max_is_exclusive_on_start(emulator: Any, make_service: Any) -> None:
    backend = emulator.backend
    backend.create_event(ALICE, {"summary": "starts at max", **timed("2026-01-05T12:00:00Z")})
    backend.create_event(ALICE, {"summary": "before max", **timed("2026-01-05T11:59:00Z")})
    assert _summaries(make_service(), timeMax="2026-01-05T12:00:00Z") == ["before max"]


def test_window_keeps_series_with_an_instance_inside(emulator: Any, make_service: Any) -> None:
    emulator.backend.create_event(
        ALICE,
        {"summary": "daily", **timed("2026-01-01T09:00:00Z", zone="UTC"),
         "recurrence": ["RRULE:FREQ=DAILY;COUNT=10"]},
    )
    emulator.backend.create_event(
        ALICE,
        {"summary": "over", **timed("2025-12-01T09:00:00Z", zone="UTC"),
         "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"]},
    )
    service = make_service()
    assert _summaries(
        service, timeMin="2026-01-08T00:00:00Z", timeMax="2026-01-09T00:00:00Z"
    ) == ["daily"]
    instances, _ = list_all(
        service, singleEvents=True, timeMin="2026-01-08T00:00:00Z",
        timeMax="2026-01-10T00:00:00Z",
    )
    assert [i["start"]["dateTime"] for i in instances] == [
        "2026-01-08T09:00:00Z", "2026-01-09T09:00:00Z"
    ]


def test_all_day_event_window_uses_calendar_zone(emulator: Any, make_service: Any) -> None:
    # Alice's calendar is in Berlin: 5 Jan starts at 2026-01-04T23:00Z.
    emulator.backend.create_event(
        ALICE, {"summary": "holiday", "start": {"date": "2026-01-05"},
                "end": {"date": "2026-01-06"}},
    )
    service = make_service()
    assert _summaries(service, timeMin="2026-01-05T22:30:00Z") == ["holiday"]
    assert _summaries(service, timeMin="2026-01-05T23:00:00Z") == []
