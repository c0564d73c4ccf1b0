"""Right in an org that stores text its own way and archives old Events (issue 16, reference B10).

Salesforce trims text (Java's String.trim()), stores "" as null and counts lengths in UTF-16 code
units; it archives Events dated 365 days ago or more, which query() then leaves out. The emulator
does all of it, so these cycles fail if calsync takes Salesforce's trim for a person's edit, sends
a Subject Salesforce refuses, or reads Events with query() and loses the archived ones.
"""

from __future__ import annotations

import datetime as dt
import logging

ALICE = "alice@acme.test"
HANK = "hank@globex.test"  # a Contact of the demo company
EMOJI = "\N{GRINNING FACE}"  # two UTF-16 code units
KEPT = "kept a change made in Salesforce"


def _times(start: dt.datetime, minutes: int = 60) -> dict:
    fmt = lambda t: t.isoformat().replace("+00:00", "Z")  # noqa: E731
    return {"start": {"dateTime": fmt(start), "timeZone": "UTC"},
            "end": {"dateTime": fmt(start + dt.timedelta(minutes=minutes)), "timeZone": "UTC"}}


def _day(days: int, hour: int = 10) -> dt.datetime:
    today = dt.datetime.now(dt.timezone.utc).replace(hour=hour, minute=0, second=0, microsecond=0)
    return today + dt.timedelta(days=days)


def _meeting(google_emu, start: dt.datetime, **body) -> dict:
    return google_emu.backend.create_event(ALICE, {"attendees": [ALICE, HANK], **_times(start), **body})


def _events(sf_emu, **match) -> list[dict]:
    rows = sf_emu.backend.list_records("Event", include_deleted=True)
    return [r for r in rows if all(r.get(k) == v for k, v in match.items())]


def _event(sf_emu, sf_id: str) -> dict:
    (row,) = _events(sf_emu, Id=sf_id)
    return row


def _logged(caplog, message: str) -> list[dict]:
    return [r.fields for r in caplog.records if r.getMessage() == message]


def test_padded_location_and_description_follow_google_and_the_event_goes_with_the_meeting(
    sync, make_config, sf_emu, google_emu, caplog
):
    # Video-call invitations start their description with a newline; rooms come padded.
    made = _meeting(google_emu, _day(3), summary="Globex onboarding", location="  Room 4",
                    description="\nJoin the video call\nhttps://meet.example/abc\n")
    path = make_config()
    assert sync(path).ok
    (row,) = _events(sf_emu, Subject="Globex onboarding")
    assert (row["Location"], row["Description"]) == ("Room 4", "Join the video call\nhttps://meet.example/abc")
    google_emu.backend.update_event(made["id"], {**_times(_day(4, 15)), "location": "  Room 5",
                                                 "description": "\n\nJoin the video call\nNew passcode 42"})
    with caplog.at_level(logging.INFO):
        assert sync(path).ok
    after = _event(sf_emu, row["Id"])
    assert (after["Location"], after["Description"]) == ("Room 5", "Join the video call\nNew passcode 42")
    assert after["StartDateTime"].startswith(_day(4, 15).strftime("%Y-%m-%dT%H:%M"))
    assert _logged(caplog, KEPT) == []
    google_emu.backend.delete_event(made["id"])
    assert sync(path).ok
    gone = _event(sf_emu, row["Id"])
    assert gone["IsDeleted"] is True and gone["Subject"] == "Globex onboarding"  # deleted, not "Canceled: "


def test_a_subject_of_200_emoji_is_logged_cut_at_255_utf16_units(sync, make_config, sf_emu, google_emu, caplog):
    made = _meeting(google_emu, _day(2), summary=EMOJI * 200, location="a" + EMOJI * 200)
    path = make_config()
    with caplog.at_level(logging.INFO):
        result = sync(path)
    assert result.ok and result.calendars[ALICE].failed == 0, result.calendars[ALICE]
    (row,) = _events(sf_emu, Subject=EMOJI * 127)
    # 127 emoji are 254 code units; a 128th would need 256, and half of one is not text.
    assert row["Subject"] == EMOJI * 127
    assert row["Location"] == "a" + EMOJI * 127  # exactly 255
    google_emu.backend.update_event(made["id"], _times(_day(5)))
    with caplog.at_level(logging.INFO):
        assert sync(path).ok
    assert _event(sf_emu, row["Id"])["StartDateTime"].startswith(_day(5).strftime("%Y-%m-%dT%H:%M"))
    assert _logged(caplog, KEPT) == []


def test_empty_text_is_null_in_salesforce_and_never_an_edit(sync, make_config, sf_emu, google_emu, caplog):
    made = _meeting(google_emu, _day(3), summary="  ", location="", description=" \n\t ")
    path = make_config()
    assert sync(path).ok
    (row,) = _events(sf_emu, Subject="(No title)")
    assert (row["Location"], row["Description"]) == (None, None)
    google_emu.backend.update_event(made["id"], {"summary": "Agenda review", "description": "Agenda"})
    assert sync(path).ok
    assert _event(sf_emu, row["Id"])["Description"] == "Agenda"
    google_emu.backend.update_event(made["id"], {"description": "\n", "location": " ", **_times(_day(4))})
    with caplog.at_level(logging.INFO):
        assert sync(path).ok
    after = _event(sf_emu, row["Id"])
    assert (after["Subject"], after["Location"], after["Description"]) == ("Agenda review", None, None)
    google_emu.backend.delete_event(made["id"])
    with caplog.at_level(logging.INFO):
        assert sync(path).ok
    assert _event(sf_emu, row["Id"])["IsDeleted"] is True
    assert _logged(caplog, KEPT) == []


def test_the_first_slot_event_of_a_year_old_series_is_updated_and_deleted_once_archived(
    sync, make_config, sf_emu, google_emu, caplog
):
    # Logged when the series was young (here: a window of a year); its Event stays on slot one.
    first = _day(-360)
    master = _meeting(google_emu, first, summary="Weekly Globex sync", recurrence=["RRULE:FREQ=WEEKLY"])
    assert sync(make_config(sync={"lookback_days": 365})).ok
    (row,) = _events(sf_emu, Subject="Weekly Globex sync")
    assert row["StartDateTime"].startswith(first.strftime("%Y-%m-%dT%H:%M")) and row["IsArchived"] is False
    # Ten days on by Salesforce's clock the Event is 370 days old: archived, out of query().
    sf_emu.backend.clock = lambda: dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=10)
    token = sf_emu.backend.create_session(ALICE)  # the session of the first cycle expired meanwhile
    path = make_config(sync={"lookback_days": 365}, salesforce={"access_token": token})
    assert _event(sf_emu, row["Id"])["IsArchived"] is True
    google_emu.backend.update_event(master["id"], {"summary": "Weekly Globex sync (renamed)", "location": "Room 7"})
    with caplog.at_level(logging.INFO):
        assert sync(path).ok
    after = _event(sf_emu, row["Id"])
    assert (after["Subject"], after["Location"], after["IsDeleted"]) == ("Weekly Globex sync (renamed)", "Room 7",
                                                                        False)
    assert not _logged(caplog, "deleted in Salesforce, not re-created")
    google_emu.backend.delete_event(master["id"])
    assert sync(path).ok
    assert _event(sf_emu, row["Id"])["IsDeleted"] is True
