"""One meeting, many calendars: copies, per-copy self flags, propagation (reference A6)."""

from __future__ import annotations

from typing import Any

from google_helpers import ALICE, BOB, CAROL, list_all, timed


def _meeting(emulator: Any, attendees: list[Any], organizer: str = ALICE) -> dict[str, Any]:
    return emulator.backend.create_event(
        organizer, {"summary": "Sync", **timed("2026-01-05T10:00:00Z"), "attendees": attendees}
    )


def _only(service: Any) -> dict[str, Any]:
    items, _ = list_all(service)
    assert len(items) == 1
    return items[0]


def test_copies_share_id_and_ical_uid_with_own_self_flags(
    emulator: Any, make_service: Any
) -> None:
    meeting = _meeting(emulator, [BOB])
    alice_copy, bob_copy = _only(make_service(ALICE)), _only(make_service(BOB))
    assert alice_copy["id"] == bob_copy["id"] == meeting["id"]
    assert alice_copy["iCalUID"] == bob_copy["iCalUID"]
    assert alice_copy["organizer"].get("self") is True
    assert "self" not in bob_copy["organizer"]
    bob_entry = next(a for a in bob_copy["attendees"] if a["email"] == BOB)
    assert bob_entry["self"] is True
    assert "self" not in next(a for a in alice_copy["attendees"] if a["email"] == BOB)


def test_non_attendee_calendar_has_no_copy(emulator: Any, make_service: Any) -> None:
    _meeting(emulator, [BOB])
    items, _ = list_all(make_service(CAROL))
    assert items == []


def test_organizer_edit_reaches_every_copy_incrementally(
    emulator: Any, make_service: Any
) -> None:
    meeting = _meeting(emulator, [BOB])
    alice, bob = make_service(ALICE), make_service(BOB)
    _, alice_token = list_all(alice)
    _, bob_token = list_all(bob)
    before = _only(bob)
    emulator.backend.update_event(meeting["id"], {"summary": "Sync (moved)"})
    for service, token in ((alice, alice_token), (bob, bob_token)):
        page = service.events().list(calendarId="primary", syncToken=token).execute()
        assert [item["summary"] for item in page["items"]] == ["Sync (moved)"]
        assert page["items"][0]["sequence"] == 1
    after = _only(bob)
    assert after["etag"] != before["etag"]


def test_response_changes_status_in_all_copies(emulator: Any, make_service: Any) -> None:
    meeting = _meeting(emulator, [BOB])
    emulator.backend.respond(BOB, meeting["id"], "declined")
    for user in (ALICE, BOB):
        item = _only(make_service(user))
        bob_entry = next(a for a in item["attendees"] if a["email"] == BOB)
        assert bob_entry["responseStatus"] == "declined"


def test_adding_an_attendee_adds_a_copy(emulator: Any, make_service: Any) -> None:
    meeting = _meeting(emulator, [BOB])
    carol = make_service(CAROL)
    _, token = list_all(carol)
    emulator.backend.update_event(meeting["id"], {"attendees": [BOB, CAROL]})
    page = carol.events().list(calendarId="primary", syncToken=token).execute()
    assert [item["id"] for item in page["items"]] == [meeting["id"]]
    assert page["items"][0]["status"] == "confirmed"


def test_removed_attendee_sees_a_deleted_stub(emulator: Any, make_service: Any) -> None:
    meeting = _meeting(emulator, [BOB, CAROL])
    bob = make_service(BOB)
    _, token = list_all(bob)
    emulator.backend.update_event(meeting["id"], {"attendees": [CAROL]})
    page = bob.events().list(calendarId="primary", syncToken=token).execute()
    assert page["items"] == [
        {"kind": "calendar#event", "etag": page["items"][0]["etag"], "id": meeting["id"],
         "status": "cancelled"}
    ]
    carol_item = _only(make_service(CAROL))
    assert [a["email"] for a in carol_item["attendees"]] == [ALICE, CAROL]


def test_deleting_a_meeting_stubs_every_copy(emulator: Any, make_service: Any) -> None:
    meeting = _meeting(emulator, [BOB])
    tokens = {user: list_all(make_service(user))[1] for user in (ALICE, BOB)}
    emulator.backend.delete_event(meeting["id"])
    for user, token in tokens.items():
        page = make_service(user).events().list(calendarId="primary", syncToken=token).execute()
        assert [(i["id"], i["status"]) for i in page["items"]] == [(meeting["id"], "cancelled")]


def test_external_organizer_meeting_lives_only_in_attendee_calendars(
    emulator: Any, make_service: Any
) -> None:
    meeting = _meeting(emulator, [BOB], organizer="erin@partner.test")
    bob_copy = _only(make_service(BOB))
    assert bob_copy["id"] == meeting["id"]
    assert bob_copy["organizer"] == {"email": "erin@partner.test"}
    assert bob_copy["attendees"][0] == {
        "email": "erin@partner.test", "organizer": True, "responseStatus": "accepted"
    }
    assert list_all(make_service(ALICE))[0] == []


def test_per_copy_fields_change_only_that_copy(emulator: Any, make_service: Any) -> None:
    meeting = _meeting(emulator, [BOB])
    emulator.backend.set_copy_fields(BOB, meeting["id"], {"visibility": "private"})
    assert _only(make_service(BOB))["visibility"] == "private"
    assert "visibility" not in _only(make_service(ALICE))


def test_body_event_type_and_transparency_are_kept(emulator: Any, make_service: Any) -> None:
    emulator.backend.create_event(
        ALICE, {"summary": "OOO", **timed("2026-01-05T10:00:00Z"),
                "eventType": "outOfOffice", "transparency": "transparent"},
    )
    item = _only(make_service(ALICE))
    assert (item["eventType"], item["transparency"]) == ("outOfOffice", "transparent")


def test_room_attendee_is_a_resource(emulator: Any, make_service: Any) -> None:
    _meeting(emulator, ["room-1@resource.calendar.google.com"])
    room = _only(make_service(ALICE))["attendees"][1]
    assert room == {"email": "room-1@resource.calendar.google.com", "resource": True,
                    "responseStatus": "needsAction"}
