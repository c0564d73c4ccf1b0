"""The control API over HTTP: seeding, scripting faults, stats, and its error answers."""

from __future__ import annotations

import json
from typing import Any

import requests
from google_helpers import ALICE, BOB, list_all


def _post(emulator: Any, path: str, body: Any) -> requests.Response:
    return requests.post(f"{emulator.url}/_control{path}", json=body, timeout=5)


def test_seed_through_http_and_read_with_the_client(emulator: Any, make_service: Any) -> None:
    assert _post(emulator, "/users", {"email": "dave@acme.test", "time_zone": "UTC"}).ok
    created = _post(emulator, "/events", {
        "organizer": ALICE,
        "event": {"summary": "Via HTTP", "start": {"dateTime": "2026-01-05T10:00:00Z"},
                  "end": {"dateTime": "2026-01-05T11:00:00Z"},
                  "attendees": ["dave@acme.test"]},
    })
    assert created.status_code == 201
    event_id = created.json()["id"]
    patched = requests.patch(f"{emulator.url}/_control/events/{event_id}",
                             json={"summary": "Renamed"}, timeout=5)
    assert patched.json()["sequence"] == 1
    items, _ = list_all(make_service("dave@acme.test"))
    assert [(i["id"], i["summary"]) for i in items] == [(event_id, "Renamed")]
    seen = requests.get(f"{emulator.url}/_control/calendars/dave%40acme.test/events", timeout=5)
    assert [i["id"] for i in seen.json()["items"]] == [event_id]


def test_stats_count_events_list_calls_per_calendar(emulator: Any, make_service: Any) -> None:
    list_all(make_service(ALICE))
    list_all(make_service(BOB))
    list_all(make_service(BOB))
    stats = requests.get(f"{emulator.url}/_control/stats", timeout=5).json()
    assert stats["events_list_calls"] == {ALICE: 1, BOB: 2}
    assert emulator.backend.list_calls[BOB] == 2


def test_bad_json_is_a_400_with_a_message(emulator: Any) -> None:
    answer = requests.post(f"{emulator.url}/_control/events", data=b"{not json", timeout=5,
                           headers={"Content-Type": "application/json"})
    assert answer.status_code == 400
    assert "not JSON" in answer.json()["error"]
    assert "Traceback" not in answer.text


def test_bad_event_body_is_a_400(emulator: Any) -> None:
    answer = _post(emulator, "/events", {"organizer": ALICE, "event": {"summary": "no start"}})
    assert answer.status_code == 400
    assert "start" in answer.json()["error"]


def test_unknown_event_is_a_404(emulator: Any) -> None:
    answer = requests.delete(f"{emulator.url}/_control/events/nosuchevent0", timeout=5)
    assert answer.status_code == 404


def test_fault_by_reason_through_http(emulator: Any, make_service: Any) -> None:
    answer = _post(emulator, "/faults", {"reason": "quotaExceeded", "times": 1})
    assert answer.status_code == 201
    service = make_service()
    try:
        service.events().list(calendarId="primary").execute()
        raise AssertionError("expected the fault")
    except Exception as exc:  # googleapiclient HttpError
        assert json.loads(exc.content)["error"]["errors"][0]["reason"] == "quotaExceeded"
    assert requests.delete(f"{emulator.url}/_control/faults", timeout=5).status_code == 204


def test_a_patch_fault_lets_the_real_page_through_with_fields_replaced(emulator: Any, make_service: Any) -> None:
    answer = _post(emulator, "/faults", {"method": "GET", "path_prefix": "/calendar/v3/calendars/",
                                         "patch": {"items": "not a list", "nextSyncToken": None}})
    assert answer.status_code == 201
    page = make_service().events().list(calendarId="primary").execute()
    assert page["items"] == "not a list" and "nextSyncToken" not in page
    assert page["kind"] == "calendar#events"  # the rest is the real answer


def test_an_echo_fault_repeats_the_token_request_in_its_error(emulator: Any) -> None:
    _post(emulator, "/faults", {"status": 400, "echo": True, "method": "POST", "path_prefix": "/token"})
    answer = requests.post(f"{emulator.url}/token", data={"grant_type": "refresh_token",
                                                          "client_secret": "s3 cr/et"}, timeout=5)
    assert answer.status_code == 400
    body = answer.json()
    assert body["error"] == "invalid_request"
    assert "client_secret=s3+cr%2Fet" in body["error_description"]


def test_unknown_fault_fields_are_refused(emulator: Any) -> None:
    answer = _post(emulator, "/faults", {"status": 500, "colour": "red"})
    assert answer.status_code == 400


def test_invalidate_sync_tokens_through_http(emulator: Any, make_service: Any) -> None:
    _, token = list_all(make_service())
    assert _post(emulator, "/sync-tokens/invalidate", {"user": ALICE}).json() == {
        "invalidated": 1
    }


def test_unknown_api_route_gets_google_not_found(emulator: Any) -> None:
    answer = requests.get(f"{emulator.url}/calendar/v3/users/me/calendarList", timeout=5)
    assert answer.status_code == 404
    assert answer.json()["error"]["errors"][0]["reason"] == "notFound"


def test_service_account_and_token_through_http(emulator: Any) -> None:
    key = _post(emulator, "/service-accounts", {"client_email": "x@p.iam.gserviceaccount.com"})
    assert key.status_code == 201
    assert key.json()["token_uri"] == f"{emulator.url}/token"
    token = _post(emulator, "/tokens", {"user": BOB}).json()["access_token"]
    answer = requests.get(f"{emulator.url}/calendars/primary/events",
                          headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert answer.status_code == 200
    assert answer.json()["summary"] == BOB


def test_a_renamed_user_keeps_their_calendar_under_the_new_address(emulator: Any, make_service: Any) -> None:
    """A Workspace rename (support.google.com/a/answer/2622985): same calendar, same event ids
    and iCalUIDs; the attendee entries show the new address; the old one names no calendar."""
    from googleapiclient.errors import HttpError

    created = _post(emulator, "/events", {
        "organizer": ALICE,
        "event": {"summary": "Before", "start": {"dateTime": "2026-01-05T10:00:00Z"},
                  "end": {"dateTime": "2026-01-05T11:00:00Z"}, "attendees": [BOB, "x@client.test"]},
    }).json()
    _, token = list_all(make_service(ALICE))
    renamed = _post(emulator, "/users/rename", {"old": ALICE, "new": "alice.smith@acme.test"})
    assert renamed.ok and renamed.json()["email"] == "alice.smith@acme.test"

    items, _ = list_all(make_service("alice.smith@acme.test"))
    (item,) = items
    assert (item["id"], item["iCalUID"]) == (created["id"], created["iCalUID"])
    assert item["organizer"] == {"email": "alice.smith@acme.test", "displayName": "Alice Admin", "self": True}
    assert {a["email"] for a in item["attendees"]} == {"alice.smith@acme.test", BOB, "x@client.test"}
    (bobs,) = list_all(make_service(BOB))[0]
    assert bobs["organizer"]["email"] == "alice.smith@acme.test"
    service = make_service("alice.smith@acme.test")
    try:  # the old calendar's sync token is not the new calendar's (an assumption, see backend)
        service.events().list(calendarId="primary", syncToken=token).execute()
        raise AssertionError("the old calendar's sync token was accepted")
    except HttpError as exc:
        assert exc.resp.status in (400, 410)
    assert not emulator.backend.is_user(ALICE)
