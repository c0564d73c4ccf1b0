"""events.list paging, sync tokens and parameter errors through the real API client (A1-A3, A7)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from google_helpers import ALICE, BOB, list_all, timed
from googleapiclient.errors import HttpError


def _seed(emulator: Any, count: int, organizer: str = ALICE) -> list[str]:
    ids = []
    for n in range(count):
        day = 5 + n % 20
        event = emulator.backend.create_event(
            organizer, {"summary": f"Meeting {n}", **timed(f"2026-01-{day:02d}T10:00:00+00:00")}
        )
        ids.append(event["id"])
    return ids


def _error(exc: HttpError) -> tuple[int, dict[str, Any]]:
    return exc.resp.status, json.loads(exc.content)


def test_sync_token_only_on_last_page(emulator: Any, make_service: Any) -> None:
    _seed(emulator, 5)
    service = make_service()
    pages = []
    token = None
    while True:
        page = service.events().list(calendarId="primary", maxResults=2, pageToken=token).execute()
        pages.append(page)
        token = page.get("nextPageToken")
        if token is None:
            break
    assert [len(p["items"]) for p in pages] == [2, 2, 1]
    assert all("nextSyncToken" not in p and "nextPageToken" in p for p in pages[:-1])
    assert "nextSyncToken" in pages[-1] and "nextPageToken" not in pages[-1]


def test_events_list_envelope(emulator: Any, make_service: Any) -> None:
    _seed(emulator, 1)
    page = make_service().events().list(calendarId=ALICE).execute()
    assert page["kind"] == "calendar#events"
    assert page["summary"] == ALICE
    assert page["timeZone"] == "Europe/Berlin"
    assert page["accessRole"] == "owner"
    assert {"etag", "updated", "defaultReminders"} <= set(page)


def test_max_results_defaults_to_250(emulator: Any, make_service: Any) -> None:
    _seed(emulator, 260)
    page = make_service().events().list(calendarId="primary").execute()
    assert len(page["items"]) == 250
    assert "nextPageToken" in page


def test_max_results_above_2500_is_capped(emulator: Any, make_service: Any) -> None:
    _seed(emulator, 2510)
    page = make_service().events().list(calendarId="primary", maxResults=5000).execute()
    assert len(page["items"]) == 2500
    assert "nextPageToken" in page


def test_max_results_below_one_is_invalid(emulator: Any, make_service: Any) -> None:
    with pytest.raises(HttpError) as caught:
        make_service().events().list(calendarId="primary", maxResults=0).execute()
    status, body = _error(caught.value)
    assert status == 400
    assert body["error"]["errors"][0]["reason"] == "invalid"


def test_incremental_sync_returns_only_changes(emulator: Any, make_service: Any) -> None:
    ids = _seed(emulator, 3)
    service = make_service()
    _, sync_token = list_all(service, showDeleted=True)
    emulator.backend.update_event(ids[1], {"summary": "Renamed"})
    new = emulator.backend.create_event(ALICE, {"summary": "New", **timed("2026-01-09T09:00:00Z")})
    page = service.events().list(calendarId="primary", syncToken=sync_token).execute()
    assert {item["id"] for item in page["items"]} == {ids[1], new["id"]}
    renamed = next(item for item in page["items"] if item["id"] == ids[1])
    assert renamed["summary"] == "Renamed"
    assert renamed["sequence"] == 1
    assert page["nextSyncToken"] != sync_token


def test_incremental_sync_without_changes_is_empty(emulator: Any, make_service: Any) -> None:
    _seed(emulator, 2)
    service = make_service()
    _, sync_token = list_all(service)
    page = service.events().list(calendarId="primary", syncToken=sync_token).execute()
    assert page["items"] == []
    assert "nextSyncToken" in page


def test_incremental_sync_pages_with_the_same_token(emulator: Any, make_service: Any) -> None:
    ids = _seed(emulator, 5)
    service = make_service()
    _, sync_token = list_all(service)
    for event_id in ids:
        emulator.backend.update_event(event_id, {"location": "Room 1"})
    first = service.events().list(
        calendarId="primary", syncToken=sync_token, maxResults=3
    ).execute()
    assert "nextSyncToken" not in first
    second = service.events().list(
        calendarId="primary", syncToken=sync_token, maxResults=3, pageToken=first["nextPageToken"]
    ).execute()
    assert len(first["items"]) + len(second["items"]) == 5
    assert "nextSyncToken" in second


def test_deleted_event_is_an_id_only_stub(emulator: Any, make_service: Any) -> None:
    ids = _seed(emulator, 2)
    service = make_service()
    _, sync_token = list_all(service)
    emulator.backend.delete_event(ids[0])
    # showDeleted=false: deletions still come back on incremental sync (reference A3).
    page = service.events().list(calendarId="primary", syncToken=sync_token).execute()
    assert len(page["items"]) == 1
    stub = page["items"][0]
    assert set(stub) == {"kind", "etag", "id", "status"}
    assert stub["id"] == ids[0] and stub["status"] == "cancelled"
    assert stub["kind"] == "calendar#event"


def test_deleted_events_hidden_from_full_sync_without_show_deleted(
    emulator: Any, make_service: Any
) -> None:
    ids = _seed(emulator, 2)
    emulator.backend.delete_event(ids[0])
    service = make_service()
    hidden, _ = list_all(service)
    shown, _ = list_all(service, showDeleted=True)
    assert [item["id"] for item in hidden] == [ids[1]]
    assert {item["id"] for item in shown} == set(ids)


def _expect_410(call: Any) -> None:
    with pytest.raises(HttpError) as caught:
        call.execute()
    status, body = _error(caught.value)
    assert status == 410
    assert body == {
        "error": {
            "errors": [
                {
                    "domain": "calendar",
                    "reason": "fullSyncRequired",
                    "message": "Sync token is no longer valid, a full sync is required.",
                    "locationType": "parameter",
                    "location": "syncToken",
                }
            ],
            "code": 410,
            "message": "Sync token is no longer valid, a full sync is required.",
        }
    }


def test_invalidated_sync_token_gets_410(emulator: Any, make_service: Any) -> None:
    _seed(emulator, 1)
    service = make_service()
    _, sync_token = list_all(service)
    assert emulator.backend.invalidate_sync_tokens(ALICE) == 1
    _expect_410(service.events().list(calendarId="primary", syncToken=sync_token))


def test_invalidation_of_another_user_keeps_token(emulator: Any, make_service: Any) -> None:
    service = make_service()
    _, sync_token = list_all(service)
    emulator.backend.invalidate_sync_tokens(BOB)
    page = service.events().list(calendarId="primary", syncToken=sync_token).execute()
    assert page["items"] == []


def test_too_old_sync_token_gets_410(emulator: Any, make_service: Any, clock: Any) -> None:
    service = make_service()
    _, sync_token = list_all(service)
    clock.advance(days=7, seconds=1)
    _expect_410(service.events().list(calendarId="primary", syncToken=sync_token))


def test_sync_token_with_time_min_is_400(emulator: Any, make_service: Any) -> None:
    service = make_service()
    _, sync_token = list_all(service)
    with pytest.raises(HttpError) as caught:
        service.events().list(
            calendarId="primary", syncToken=sync_token, timeMin="2026-01-01T00:00:00Z"
        ).execute()
    status, body = _error(caught.value)
    assert status == 400
    assert body["error"]["message"] == "Sync token cannot be used with other request restrictions."
    assert body["error"]["errors"][0]["reason"] == "invalid"


INVALID_VALUE = {
    "error": {
        "code": 400,
        "message": "Invalid Value",
        "errors": [{"domain": "global", "reason": "invalid", "message": "Invalid Value"}],
    }
}


@pytest.mark.parametrize(
    "params",
    [
        {"syncToken": "garbage!"},
        {"pageToken": "nonsense"},
        {"timeMin": "yesterday"},
        {"timeMin": "2026-01-01T00:00:00"},  # offset required (reference A1)
        {"showDeleted": "maybe"},
    ],
)
def test_garbage_parameters_get_invalid_value(
    emulator: Any, make_service: Any, params: dict[str, str]
) -> None:
    # The client would refuse a bad boolean itself, so build the request URL by hand through it.
    service = make_service()
    request = service.events().list(calendarId="primary")
    from urllib.parse import urlencode

    request.uri = request.uri + "&" + urlencode(params)
    with pytest.raises(HttpError) as caught:
        request.execute()
    status, body = _error(caught.value)
    assert status == 400
    errors = body["error"]["errors"][0]
    assert (body["error"]["code"], body["error"]["message"]) == (400, "Invalid Value")
    assert (errors["domain"], errors["reason"], errors["message"]) == (
        "global", "invalid", "Invalid Value"
    )


def test_time_max_not_after_time_min_is_time_range_empty(
    emulator: Any, make_service: Any
) -> None:
    with pytest.raises(HttpError) as caught:
        make_service().events().list(
            calendarId="primary", timeMin="2026-01-02T00:00:00Z", timeMax="2026-01-02T00:00:00Z"
        ).execute()
    status, body = _error(caught.value)
    assert status == 400
    assert body["error"]["errors"][0] == {
        "domain": "calendar",
        "reason": "timeRangeEmpty",
        "message": "The specified time range is empty.",
        "locationType": "parameter",
        "location": "timeMax",
    }


def test_event_resource_shape(emulator: Any, make_service: Any) -> None:
    emulator.backend.create_event(
        ALICE,
        {
            "summary": "Kickoff",
            "location": "Room 4",
            "visibility": "private",
            **timed("2026-01-05T16:00:00+01:00", zone="Europe/Berlin"),
            "attendees": [BOB, {"email": "dana@customer.test", "optional": True}],
        },
    )
    item = make_service().events().list(calendarId="primary").execute()["items"][0]
    assert re.fullmatch(r"[a-v0-9]{26}", item["id"])
    assert item["iCalUID"] == item["id"] + "@google.com"
    assert re.fullmatch(r'"\d+"', item["etag"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", item["updated"])
    assert item["start"] == {"dateTime": "2026-01-05T16:00:00+01:00", "timeZone": "Europe/Berlin"}
    assert item["organizer"] == {"email": ALICE, "displayName": "Alice Admin", "self": True}
    assert item["visibility"] == "private"
    assert item["eventType"] == "default"
    assert "transparency" not in item  # the default `opaque` is omitted
    assert item["attendees"] == [
        {"email": ALICE, "displayName": "Alice Admin", "organizer": True, "self": True,
         "responseStatus": "accepted"},
        {"email": BOB, "displayName": "Bob Builder", "responseStatus": "needsAction"},
        {"email": "dana@customer.test", "optional": True, "responseStatus": "needsAction"},
    ]


def test_max_attendees_keeps_only_own_entry(emulator: Any, make_service: Any) -> None:
    emulator.backend.create_event(
        BOB, {"summary": "Big", **timed("2026-01-05T10:00:00Z"), "attendees": [ALICE, "x@y.test"]}
    )
    item = make_service().events().list(calendarId="primary", maxAttendees=1).execute()["items"][0]
    assert item["attendeesOmitted"] is True
    assert [a["email"] for a in item["attendees"]] == [ALICE]


def test_updated_min_and_order_by_updated(emulator: Any, make_service: Any, clock: Any) -> None:
    ids = _seed(emulator, 3)
    clock.advance(hours=1)
    cutoff = clock.now
    clock.advance(minutes=1)
    emulator.backend.update_event(ids[2], {"summary": "late 1"})
    clock.advance(minutes=1)
    emulator.backend.update_event(ids[0], {"summary": "late 2"})
    items, _ = list_all(
        make_service(), updatedMin=cutoff.isoformat().replace("+00:00", "Z"), orderBy="updated"
    )
    assert [item["id"] for item in items] == [ids[2], ids[0]]


def test_ical_uid_and_q_filters(emulator: Any, make_service: Any) -> None:
    ids = _seed(emulator, 3)
    service = make_service()
    by_uid, _ = list_all(service, iCalUID=f"{ids[1]}@google.com")
    by_text, _ = list_all(service, q="meeting 2")
    assert [item["id"] for item in by_uid] == [ids[1]]
    assert [item["id"] for item in by_text] == [ids[2]]


def test_root_and_v3_prefix_both_served(emulator: Any, make_service: Any, key_file: Any) -> None:
    from google.oauth2 import service_account
    from googleapiclient.discovery import build

    _seed(emulator, 1)
    credentials = service_account.Credentials.from_service_account_info(
        key_file, scopes=["https://www.googleapis.com/auth/calendar.readonly"]
    ).with_subject(ALICE)
    root = build("calendar", "v3", credentials=credentials, static_discovery=True,
                 client_options={"api_endpoint": emulator.url})
    assert len(root.events().list(calendarId=ALICE).execute()["items"]) == 1
    assert ("GET", "/calendars/alice%40acme.test/events") in emulator.requests_seen


def test_events_get_returns_a_deleted_event(emulator: Any, make_service: Any) -> None:
    ids = _seed(emulator, 1)
    emulator.backend.delete_event(ids[0])
    item = make_service().events().get(calendarId="primary", eventId=ids[0]).execute()
    assert (item["id"], item["status"]) == (ids[0], "cancelled")


def test_a_deleted_event_restored_from_the_trash_comes_back_on_incremental_sync(
    emulator: Any, make_service: Any
) -> None:
    # Google keeps a deleted event's details on the organizer's calendar so that it can be
    # restored (Event `status`); restored, it is the same event again, live.
    ids = _seed(emulator, 1, organizer=ALICE)
    emulator.backend.update_event(ids[0], {"attendees": [ALICE, BOB]})
    service, bobs = make_service(), make_service(BOB)
    _, token = list_all(service)
    _, bobs_token = list_all(bobs)
    emulator.backend.delete_event(ids[0])
    gone = service.events().list(calendarId="primary", syncToken=token).execute()
    assert [(i["id"], i["status"]) for i in gone["items"]] == [(ids[0], "cancelled")]
    emulator.backend.update_event(ids[0], {"status": "confirmed"})  # events.update undeletes
    back = service.events().list(calendarId="primary", syncToken=gone["nextSyncToken"]).execute()
    (item,) = back["items"]
    assert (item["id"], item["status"], item["summary"]) == (ids[0], "confirmed", "Meeting 0")
    # Every copy comes back (reference A6): Bob's lists it too, with his own answer kept.
    (copy,) = bobs.events().list(calendarId="primary", syncToken=bobs_token).execute()["items"]
    assert (copy["id"], copy["status"]) == (ids[0], "confirmed")
    assert emulator.backend.restore_event(ids[0])["status"] == "confirmed"  # already live: as is


def test_a_purged_deleted_event_cannot_be_restored(emulator: Any) -> None:
    ids = _seed(emulator, 1)
    emulator.backend.delete_event(ids[0])
    emulator.backend.purge_deleted()
    with pytest.raises(KeyError):
        emulator.backend.restore_event(ids[0])


def test_emulator_bug_answers_backend_error(emulator: Any) -> None:
    response = emulator.internal_error()
    assert response.status == 500
    assert response.body["error"]["errors"][0]["reason"] == "backendError"
