"""Hostile meetings never crash a cycle or block the other Events."""

from __future__ import annotations

import datetime as dt
import time

import pytest


def by_subject(sf_emu):
    found: dict[str, list[dict]] = {}
    for row in sf_emu.backend.list_records("Event"):
        found.setdefault(row["Subject"], []).append(row)
    return found


def test_huge_fields_and_odd_addresses_are_cut_or_skipped_and_the_rest_lands(
    sync, make_config, sf_emu, google_emu, company
):
    day = dt.date.today() + dt.timedelta(days=3)
    odd = ["o'brien\\x@globex.test", "ünïcode@globex.test", "x" * 300 + "@globex.test",
           "'; DROP TABLE Contact; --@globex.test"]
    sf_emu.backend.create_record("Contact", {"LastName": "O'Brien", "Email": "o'brien\\x@globex.test"})
    google_emu.backend.create_event("alice@acme.test", {
        "summary": "S" * 5000, "description": "D" * 100_000, "location": "L" * 1000,
        "start": {"dateTime": f"{day}T10:00:00Z"}, "end": {"dateTime": f"{day}T11:00:00Z"},
        "attendees": ["alice@acme.test", *odd],
    })
    result = sync(make_config())
    assert result.ok, {u: c.error for u, c in result.calendars.items()}
    (hostile,) = by_subject(sf_emu)["S" * 255]
    assert len(hostile["Description"]) == 32_000 and len(hostile["Location"]) == 255
    assert hostile["WhoId"][:15] == sf_emu.backend.list_records("Contact")[-1]["Id"][:15]
    assert len(sf_emu.backend.list_records("Event")) == 8  # the demo's seven as well


def test_a_meeting_longer_than_fourteen_days_is_skipped_with_the_reason(sync, make_config, sf_emu, google_emu, caplog):
    day = dt.date.today() + dt.timedelta(days=3)
    google_emu.backend.create_event("alice@acme.test", {
        "summary": "Month-long residency", "attendees": ["alice@acme.test", "hank@globex.test"],
        "start": {"date": day.isoformat()}, "end": {"date": (day + dt.timedelta(days=20)).isoformat()},
    })
    with caplog.at_level("INFO"):
        assert sync(make_config()).ok
    assert "Month-long residency" not in by_subject(sf_emu)
    assert any("longer than 14 days" in str(getattr(r, "fields", "")) for r in caplog.records)


def test_private_meeting_with_sync_keeps_the_links_and_withholds_the_content(sync, make_config, sf_emu, company):
    assert sync(make_config(sync={"private_events": "sync"})).ok
    (row,) = by_subject(sf_emu)["Private meeting"]
    assert row["WhoId"][:15] == company.contact_ids["bill@initech.test"][:15]
    assert row["IsPrivate"] is False and row["Description"] is None and row["Location"] is None


def test_control_characters_never_reach_salesforce(sync, make_config, sf_emu, google_emu):
    day = dt.date.today() + dt.timedelta(days=3)
    google_emu.backend.create_event("alice@acme.test", {
        "summary": "Bell\x07 and\x00 escape\x1b[2J\r\nsecond line",
        "location": "Room\x00 4\r\nFloor 2", "description": "Agenda:\r\n\t1.\x1b item\x00",
        "start": {"dateTime": f"{day}T10:00:00Z"}, "end": {"dateTime": f"{day}T11:00:00Z"},
        "attendees": ["alice@acme.test", "hank@globex.test"],
    })
    assert sync(make_config()).ok
    (row,) = by_subject(sf_emu)["Bell and escape[2J second line"]
    assert row["Location"] == "Room 4\nFloor 2"
    assert row["Description"] == "Agenda:\n\t1. item"


HOSTILE_RULES = [  # pass the up-front check, can never match: each was ~29 s of CPU per listing
    "RRULE:FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=-30",
    "RRULE:FREQ=DAILY;BYYEARDAY=366;BYMONTH=1",
    "RRULE:FREQ=DAILY;BYWEEKNO=53;BYMONTH=3",
]


def test_invitations_whose_rule_never_matches_are_planned_in_milliseconds(
    sync, make_config, sf_emu, google_emu, caplog
):
    path = make_config()
    assert sync(path).ok
    day = dt.date.today() + dt.timedelta(days=3)
    stamp = f"{day:%Y%m%d}T100000Z"
    for rule in HOSTILE_RULES:  # sent from outside; the incremental listing carries them
        for label, lines in (("Never", [rule]), ("Gone", [rule, f"EXDATE:{stamp}"])):
            google_emu.backend.create_event("hank@globex.test", {
                "summary": f"{label} {rule}", "start": {"dateTime": f"{day}T10:00:00Z", "timeZone": "UTC"},
                "end": {"dateTime": f"{day}T11:00:00Z", "timeZone": "UTC"}, "recurrence": lines,
                "attendees": ["hank@globex.test", "alice@acme.test"],
            })
    with caplog.at_level("INFO", logger="calsync"):
        began = time.monotonic()
        result = sync(path)
        took = time.monotonic() - began
    assert result.ok, {u: c.error for u, c in result.calendars.items()}
    assert took < 1.5, took
    # The master's start is the series' one occurrence (RFC 5545 DTSTART, reference A4)...
    rows = [r for r in sf_emu.backend.list_records("Event") if r["Subject"].startswith("Never")]
    assert len(rows) == len(HOSTILE_RULES)
    assert all(r["StartDateTime"].startswith(f"{day}T10:00") for r in rows)
    # ...and with EXDATE taking the start, there is none: skipped as such, not as "cancelled".
    skipped = [r.fields for r in caplog.records if r.getMessage() == "skipped"]
    assert sum(f["reason"] == "recurrence has no occurrence" for f in skipped) == len(HOSTILE_RULES)
    assert not any(row["Subject"].startswith("Gone") for row in sf_emu.backend.list_records("Event"))


@pytest.mark.parametrize("state_engine", ["sqlite", "postgres"])
def test_a_nul_in_a_meetings_text_syncs_on_either_state_engine_and_the_next_cycle_is_idle(
    sync, make_config, sf_emu, google_emu, company, state_engine
):
    """PostgreSQL's text cannot hold a NUL (SQLite's can): a meeting with one in any of its
    texts must neither fail its calendar on every cycle nor be written again and again."""
    day = dt.date.today() + dt.timedelta(days=4)
    google_emu.backend.create_event("alice@acme.test", {
        "summary": "\x00Nul\x00 review\x00", "location": "Room\x00 7", "description": "\x00",
        "start": {"dateTime": f"{day}T10:00:00Z"}, "end": {"dateTime": f"{day}T11:00:00Z"},
        "attendees": ["alice@acme.test", {"email": "hank@globex.test", "displayName": "Ha\x00nk"}],
    })
    path = make_config()
    first = sync(path)
    assert first.ok, {u: c.error for u, c in first.calendars.items()}
    (row,) = by_subject(sf_emu)["Nul review"]
    assert row["Location"] == "Room 7" and row["Description"] is None
    idle = sync(path)
    assert idle.ok and idle.salesforce_calls == 0
    google_emu.backend.invalidate_sync_tokens()  # a full listing sees the meeting unchanged
    again = sync(path)
    assert again.ok and sum(c.created + c.updated for c in again.calendars.values()) == 0
    assert len(by_subject(sf_emu)["Nul review"]) == 1
