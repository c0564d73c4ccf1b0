"""How the emulator stores text and hides archived Events (reference B10), through simple-salesforce.

Text: trimmed as Java's String.trim() does (characters up to U+0020; a non-breaking space stays),
"" stored as null, lengths counted in UTF-16 code units. Archived Events: dated 365 days ago or
more by the org's clock, left out by query and returned by queryAll, still updatable and
deletable through Collections.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from simple_salesforce import Salesforce, SalesforceMalformedRequest

from calsync.sandbox.salesforce import SalesforceEmulator

EMOJI = "\N{GRINNING FACE}"  # outside the BMP: two UTF-16 code units


def _event(start: dt.datetime, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"Subject": "Intro call", "StartDateTime": start.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
                            "DurationInMinutes": 30}
    body.update(fields)
    return body


def _at(days: int) -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(days=days)


def _stored(sf: Salesforce, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = sf.Event.get(sf.Event.create(_event(_at(3), **fields))["id"])
    return record


# --- text


@pytest.mark.parametrize(("sent", "kept"), [
    ("  Room 4", "Room 4"),
    ("\nJoin the call\n\n", "Join the call"),
    ("\t\x0b Agenda \r\n", "Agenda"),
    ("\u00a0Room 4\u00a0", "\u00a0Room 4\u00a0"),  # U+00A0 is above U+0020: Java's trim keeps it
    ("a  b\n\nc", "a  b\n\nc"),  # inside the text nothing changes
])
def test_text_is_stored_trimmed_like_java_string_trim(sf: Salesforce, sent: str, kept: str) -> None:
    record = _stored(sf, Location=sent, Description=sent)
    assert (record["Location"], record["Description"]) == (kept, kept)


@pytest.mark.parametrize("sent", ["", "   ", "\n\t\r\n"])
def test_empty_or_blank_text_is_stored_as_null(sf: Salesforce, sent: str) -> None:
    record = _stored(sf, Location=sent, Description=sent)
    assert record["Location"] is None and record["Description"] is None


def test_an_update_with_blank_text_clears_the_field(sf: Salesforce) -> None:
    record_id = sf.Event.create(_event(_at(3), Location="Room 4"))["id"]
    sf.Event.update(record_id, {"Location": " "})
    assert sf.Event.get(record_id)["Location"] is None


def test_trimmed_text_comes_back_from_a_query(sf: Salesforce) -> None:
    record_id = sf.Event.create(_event(_at(3), Subject="  Padded  "))["id"]
    rows = sf.query(f"SELECT Subject FROM Event WHERE Id = '{record_id}'")["records"]
    assert rows[0]["Subject"] == "Padded"


def test_length_counts_utf16_code_units(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Event.create(_event(_at(3), Subject=EMOJI * 128))  # 128 characters, 256 code units
    assert (caught.value.content[0]["errorCode"], caught.value.content[0]["fields"]) == ("STRING_TOO_LONG",
                                                                                          ["Subject"])
    assert _stored(sf, Subject=EMOJI * 127 + "x")["Subject"] == EMOJI * 127 + "x"  # 255 code units


def test_length_is_checked_after_the_trim(sf: Salesforce) -> None:
    assert _stored(sf, Location="  " + "l" * 255 + "\n")["Location"] == "l" * 255


def test_description_length_in_utf16_code_units_in_collections(sf: Salesforce) -> None:
    body = {"allOrNone": False, "records": [
        {"attributes": {"type": "Event"}, **_event(_at(3), Description=EMOJI * 16_000)},
        {"attributes": {"type": "Event"}, **_event(_at(3), Description=EMOJI * 16_000 + "d")},
    ]}
    results = sf.restful("composite/sobjects", method="POST", json=body)
    assert results[0]["success"] is True
    assert results[1]["success"] is False and results[1]["errors"][0]["statusCode"] == "STRING_TOO_LONG"


# --- archived Events


def test_an_event_dated_a_year_ago_is_archived_hidden_from_query_and_found_by_query_all(
    sf: Salesforce, emulator: SalesforceEmulator
) -> None:
    old = sf.Event.create(_event(_at(-366), Subject="Last year"))["id"]
    recent = sf.Event.create(_event(_at(-364), Subject="This year"))["id"]
    soql = "SELECT Id, IsArchived FROM Event WHERE IsDeleted = false ORDER BY Subject"
    assert [r["Id"] for r in sf.query(soql)["records"]] == [recent]
    everything = sf.query_all(soql, include_deleted=True)["records"]
    assert [(r["Id"], r["IsArchived"]) for r in everything] == [(old, True), (recent, False)]
    # A single read by id works on an archived record (only query() filters them).
    assert sf.Event.get(old)["IsArchived"] is True


def test_archiving_follows_the_orgs_clock(
    sf: Salesforce, emulator: SalesforceEmulator, connect: Callable[..., Salesforce]
) -> None:
    record_id = sf.Event.create(_event(_at(-300)))["id"]
    soql = f"SELECT Id FROM Event WHERE Id = '{record_id}'"
    assert len(sf.query(soql)["records"]) == 1
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=70)
    emulator.backend.clock = lambda: later
    sf = connect()  # the first session expired in those 70 days
    assert sf.query(soql)["records"] == []
    assert [r["Id"] for r in sf.query(soql, include_deleted=True)["records"]] == [record_id]


def test_all_day_events_are_archived_by_their_date(sf: Salesforce) -> None:
    day = (dt.date.today() - dt.timedelta(days=365)).isoformat()
    record_id = sf.Event.create({"Subject": "Offsite", "IsAllDayEvent": True, "ActivityDate": day,
                                 "DurationInMinutes": 1440})["id"]
    assert sf.query(f"SELECT Id FROM Event WHERE Id = '{record_id}'")["records"] == []
    assert sf.query(f"SELECT IsArchived FROM Event WHERE Id = '{record_id}'",
                    include_deleted=True)["records"][0]["IsArchived"] is True


def test_archived_events_can_be_updated_and_deleted_through_collections(sf: Salesforce) -> None:
    record_id = sf.Event.create(_event(_at(-400), Location="Room 4"))["id"]
    updated = sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": [
        {"attributes": {"type": "Event"}, "Id": record_id, "Location": "Room 5"}]})
    assert updated[0]["success"] is True
    row = sf.query(f"SELECT Location, IsArchived FROM Event WHERE Id = '{record_id}'",
                   include_deleted=True)["records"][0]
    assert (row["Location"], row["IsArchived"]) == ("Room 5", True)
    deleted = sf.restful("composite/sobjects", method="DELETE", params={"ids": record_id, "allOrNone": "false"})
    assert deleted[0]["success"] is True
    soql = f"SELECT Id, IsDeleted FROM Event WHERE Id = '{record_id}'"
    assert [r["IsDeleted"] for r in sf.query(soql, include_deleted=True)["records"]] == [True]
    assert sf.query(soql + " AND IsDeleted = false", include_deleted=True)["records"] == []


def test_is_archived_cannot_be_written(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Event.create(_event(_at(3), IsArchived=True))
    assert caught.value.content[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
