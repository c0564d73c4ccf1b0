"""Event validation and the computed time fields (reference B3), through simple-salesforce."""

from __future__ import annotations

from typing import Any

import pytest
from simple_salesforce import Salesforce, SalesforceMalformedRequest

from calsync.sandbox.salesforce import SalesforceEmulator

START = "2026-01-05T15:00:00.000+0000"


def event(**fields: object) -> dict[str, object]:
    body: dict[str, object] = {"Subject": "Intro call", "StartDateTime": START, "DurationInMinutes": 30}
    body.update(fields)
    return body


def refused(sf: Salesforce, body: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Event.create(body)
    error: dict[str, Any] = caught.value.content[0]
    return error


def created(sf: Salesforce, body: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = sf.Event.get(sf.Event.create(body)["id"])
    return record


# --- lengths


def test_subject_over_255_is_string_too_long(sf: Salesforce) -> None:
    error = refused(sf, event(Subject="s" * 256))
    assert (error["errorCode"], error["fields"]) == ("STRING_TOO_LONG", ["Subject"])


def test_subject_of_255_is_accepted(sf: Salesforce) -> None:
    assert created(sf, event(Subject="s" * 255))["Subject"] == "s" * 255


def test_location_over_255_is_string_too_long(sf: Salesforce) -> None:
    error = refused(sf, event(Location="l" * 256))
    assert (error["errorCode"], error["fields"]) == ("STRING_TOO_LONG", ["Location"])


def test_description_over_32000_is_string_too_long(sf: Salesforce) -> None:
    error = refused(sf, event(Description="d" * 32001))
    assert (error["errorCode"], error["fields"]) == ("STRING_TOO_LONG", ["Description"])


def test_string_too_long_on_update_too(sf: Salesforce) -> None:
    record_id = sf.Event.create(event())["id"]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Event.update(record_id, {"Location": "l" * 256})
    assert caught.value.content[0]["errorCode"] == "STRING_TOO_LONG"


# --- times


def test_timed_event_with_duration_gets_end_activity_fields(sf: Salesforce) -> None:
    record = created(sf, event(StartDateTime="2026-01-05T16:00:00+01:00", DurationInMinutes=45))
    assert record["StartDateTime"] == START
    assert record["EndDateTime"] == "2026-01-05T15:45:00.000+0000"
    assert record["ActivityDateTime"] == START and record["ActivityDate"] == "2026-01-05"


def test_timed_event_with_end_gets_duration(sf: Salesforce) -> None:
    body = event(EndDateTime="2026-01-05T17:30:00Z")
    del body["DurationInMinutes"]
    assert created(sf, body)["DurationInMinutes"] == 150


def test_activity_datetime_alone_is_the_start(sf: Salesforce) -> None:
    body = event(ActivityDateTime=START)
    del body["StartDateTime"]
    assert created(sf, body)["StartDateTime"] == START


def test_end_and_duration_must_agree(sf: Salesforce) -> None:
    error = refused(sf, event(EndDateTime="2026-01-05T17:00:00Z", DurationInMinutes=30))
    assert error["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"


def test_activity_datetime_different_from_start_is_refused(sf: Salesforce) -> None:
    error = refused(sf, event(ActivityDateTime="2026-01-05T16:00:00Z"))
    assert (error["errorCode"], error["fields"]) == ("FIELD_INTEGRITY_EXCEPTION", ["ActivityDateTime"])


def test_end_before_start_is_field_integrity_exception(sf: Salesforce) -> None:
    body = event(EndDateTime="2026-01-05T14:00:00Z")
    del body["DurationInMinutes"]
    error = refused(sf, body)
    assert (error["errorCode"], error["fields"]) == ("FIELD_INTEGRITY_EXCEPTION", ["EndDateTime"])


def test_event_without_start_is_required_field_missing(sf: Salesforce) -> None:
    error = refused(sf, {"Subject": "x", "DurationInMinutes": 30})
    assert error["errorCode"] == "REQUIRED_FIELD_MISSING"


def test_timed_event_without_end_or_duration_is_required_field_missing(sf: Salesforce) -> None:
    error = refused(sf, {"Subject": "x", "StartDateTime": START})
    assert (error["errorCode"], error["fields"]) == ("REQUIRED_FIELD_MISSING", ["DurationInMinutes"])


def test_more_than_14_days_is_refused_on_end_datetime(sf: Salesforce) -> None:
    body = event(EndDateTime="2026-01-19T15:01:00Z")
    del body["DurationInMinutes"]
    error = refused(sf, body)
    assert (error["errorCode"], error["fields"]) == ("FIELD_INTEGRITY_EXCEPTION", ["EndDateTime"])


def test_exactly_14_days_is_accepted(sf: Salesforce) -> None:
    body = event(EndDateTime="2026-01-19T15:00:00Z")
    del body["DurationInMinutes"]
    assert created(sf, body)["DurationInMinutes"] == 14 * 1440


def test_over_14_days_by_duration_names_duration(sf: Salesforce) -> None:
    error = refused(sf, event(DurationInMinutes=14 * 1440 + 1))
    assert error["fields"] == ["DurationInMinutes"]


def test_without_multiday_events_more_than_1440_minutes_is_refused(sf: Salesforce,
                                                                  emulator: SalesforceEmulator) -> None:
    emulator.backend.multiday_events = False
    error = refused(sf, event(DurationInMinutes=1441))
    assert error["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    assert error["message"] == "Duration must be between 0 and 1440 minutes"


def test_all_day_event_with_activity_date_only_is_one_day(sf: Salesforce) -> None:
    record = created(sf, {"Subject": "Offsite", "IsAllDayEvent": True, "ActivityDate": "2026-01-05"})
    assert record["DurationInMinutes"] == 1440
    assert record["StartDateTime"] == "2026-01-05T00:00:00.000+0000"
    assert record["EndDateTime"] == "2026-01-05T00:00:00.000+0000"
    assert record["ActivityDate"] == "2026-01-05"


def test_all_day_event_with_duration_spans_days(sf: Salesforce) -> None:
    record = created(sf, {"Subject": "Offsite", "IsAllDayEvent": True, "ActivityDate": "2026-01-05",
                          "DurationInMinutes": 3 * 1440})
    assert record["EndDateTime"] == "2026-01-07T00:00:00.000+0000"


def test_all_day_event_with_start_and_end(sf: Salesforce) -> None:
    record = created(sf, {"Subject": "Offsite", "IsAllDayEvent": True,
                          "StartDateTime": "2026-01-05T00:00:00Z", "EndDateTime": "2026-01-06T00:00:00Z"})
    assert (record["ActivityDate"], record["DurationInMinutes"]) == ("2026-01-05", 2880)


def test_all_day_activity_date_must_equal_start(sf: Salesforce) -> None:
    error = refused(sf, {"Subject": "x", "IsAllDayEvent": True, "ActivityDate": "2026-01-06",
                         "StartDateTime": "2026-01-05T00:00:00Z"})
    assert (error["errorCode"], error["fields"]) == ("FIELD_INTEGRITY_EXCEPTION", ["ActivityDate"])


def test_all_day_event_over_14_days_is_refused(sf: Salesforce) -> None:
    error = refused(sf, {"Subject": "x", "IsAllDayEvent": True, "ActivityDate": "2026-01-05",
                         "DurationInMinutes": 15 * 1440})
    assert error["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"


def test_all_day_multiday_refused_without_multiday_events(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    emulator.backend.multiday_events = False
    error = refused(sf, {"Subject": "x", "IsAllDayEvent": True, "ActivityDate": "2026-01-05",
                         "DurationInMinutes": 2880})
    assert error["message"] == "Duration must be between 0 and 1440 minutes"


def test_moving_the_start_keeps_the_duration(sf: Salesforce) -> None:
    record_id = sf.Event.create(event(DurationInMinutes=60))["id"]
    sf.Event.update(record_id, {"StartDateTime": "2026-01-06T09:00:00Z"})
    record = sf.Event.get(record_id)
    assert record["EndDateTime"] == "2026-01-06T10:00:00.000+0000"
    assert record["ActivityDate"] == "2026-01-06"


def test_update_of_end_recomputes_duration(sf: Salesforce) -> None:
    record_id = sf.Event.create(event())["id"]
    sf.Event.update(record_id, {"EndDateTime": "2026-01-05T16:30:00Z"})
    assert sf.Event.get(record_id)["DurationInMinutes"] == 90


# --- Who / What / Owner / private


@pytest.fixture
def people(sf: Salesforce) -> dict[str, str]:
    account = sf.Account.create({"Name": "Acme"})["id"]
    return {
        "account": account,
        "contact": sf.Contact.create({"LastName": "Lee", "AccountId": account})["id"],
        "lead": sf.Lead.create({"LastName": "Ray", "Company": "Beta"})["id"],
        "opportunity": sf.Opportunity.create({"Name": "Deal", "StageName": "Prospecting",
                                              "CloseDate": "2026-03-01", "AccountId": account})["id"],
    }


def test_lead_who_with_what_is_field_integrity_exception(sf: Salesforce, people: dict[str, str]) -> None:
    error = refused(sf, event(WhoId=people["lead"], WhatId=people["account"]))
    assert (error["errorCode"], error["fields"]) == ("FIELD_INTEGRITY_EXCEPTION", ["WhoId", "WhatId"])


def test_contact_who_with_opportunity_what_is_accepted_and_sets_account(sf: Salesforce,
                                                                       people: dict[str, str]) -> None:
    record = created(sf, event(WhoId=people["contact"], WhatId=people["opportunity"]))
    assert record["AccountId"] == people["account"]


def test_contact_who_alone_sets_the_contacts_account(sf: Salesforce, people: dict[str, str]) -> None:
    assert created(sf, event(WhoId=people["contact"]))["AccountId"] == people["account"]


def test_what_of_the_wrong_type_is_related_to_incorrect_type(sf: Salesforce, people: dict[str, str]) -> None:
    error = refused(sf, event(WhatId=people["contact"]))
    assert error["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    assert error["message"] == f"Related To ID: id value of incorrect type: {people['contact']}"


def test_who_of_the_wrong_type_is_refused(sf: Salesforce, people: dict[str, str]) -> None:
    error = refused(sf, event(WhoId=people["account"]))
    assert (error["errorCode"], error["fields"]) == ("FIELD_INTEGRITY_EXCEPTION", ["WhoId"])


def test_unknown_what_is_invalid_cross_reference_key(sf: Salesforce) -> None:
    error = refused(sf, event(WhatId="001RO0000000zzz"))
    assert error["errorCode"] == "INVALID_CROSS_REFERENCE_KEY"


def test_fifteen_char_who_is_stored_as_eighteen(sf: Salesforce, people: dict[str, str]) -> None:
    assert created(sf, event(WhoId=people["contact"][:15]))["WhoId"] == people["contact"]


def test_inactive_owner_is_invalid_cross_reference_key(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    user = emulator.backend.create_user("gone@acme.example", active=False)
    error = refused(sf, event(OwnerId=user))
    assert error["errorCode"] == "INVALID_CROSS_REFERENCE_KEY"
    assert error["message"] == "operation performed with inactive user"


def test_unknown_owner_is_invalid_cross_reference_id(sf: Salesforce) -> None:
    error = refused(sf, event(OwnerId="005RO0000000zzz"))
    assert (error["errorCode"], error["message"]) == ("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")


def test_private_event_with_who_is_refused(sf: Salesforce, people: dict[str, str]) -> None:
    error = refused(sf, event(IsPrivate=True, WhoId=people["contact"]))
    assert error["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"


def test_private_event_with_what_is_refused(sf: Salesforce, people: dict[str, str]) -> None:
    error = refused(sf, event(IsPrivate=True, WhatId=people["account"]))
    assert error["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"


def test_private_event_without_links_is_accepted(sf: Salesforce) -> None:
    assert created(sf, event(IsPrivate=True))["IsPrivate"] is True


def test_restricted_show_as_picklist(sf: Salesforce) -> None:
    error = refused(sf, event(ShowAs="Tentative"))
    assert error["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"


# --- EventRelation and Shared Activities


def relations(sf: Salesforce, event_id: str) -> list[tuple[str, bool, bool]]:
    records = sf.query_all(
        f"SELECT RelationId, IsParent, IsWhat FROM EventRelation WHERE EventId = '{event_id}'")["records"]
    return sorted((r["RelationId"], r["IsParent"], r["IsWhat"]) for r in records)


def test_event_relations_follow_who_and_what(sf: Salesforce, people: dict[str, str]) -> None:
    event_id = sf.Event.create(event(WhoId=people["contact"], WhatId=people["opportunity"]))["id"]
    assert relations(sf, event_id) == sorted([(people["contact"], True, False),
                                              (people["opportunity"], True, True)])


def test_changing_who_replaces_its_relation(sf: Salesforce, people: dict[str, str]) -> None:
    other = sf.Contact.create({"LastName": "Kim"})["id"]
    event_id = sf.Event.create(event(WhoId=people["contact"]))["id"]
    sf.Event.update(event_id, {"WhoId": other})
    assert relations(sf, event_id) == [(other, True, False)]


def test_event_who_ids_refused_without_shared_activities(sf: Salesforce, people: dict[str, str]) -> None:
    error = refused(sf, event(EventWhoIds=[people["contact"]]))
    assert (error["errorCode"], error["fields"]) == ("INVALID_FIELD_FOR_INSERT_UPDATE", ["EventWhoIds"])


def test_event_who_ids_first_becomes_who(sf: Salesforce, emulator: SalesforceEmulator,
                                        people: dict[str, str]) -> None:
    emulator.backend.shared_activities = True
    other = sf.Contact.create({"LastName": "Kim"})["id"]
    record = created(sf, event(EventWhoIds=[other, people["contact"]]))
    assert record["WhoId"] == other and record["WhoCount"] == 2
    assert [r[0] for r in relations(sf, record["Id"])] == sorted([other, people["contact"]])


def test_more_than_50_contacts_is_refused(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    emulator.backend.shared_activities = True
    contacts = [emulator.backend.create_record("Contact", {"LastName": f"C{i}"}) for i in range(51)]
    error = refused(sf, event(EventWhoIds=contacts))
    assert (error["errorCode"], error["fields"]) == ("FIELD_INTEGRITY_EXCEPTION", ["EventWhoIds"])


def test_exactly_50_contacts_is_accepted(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    emulator.backend.shared_activities = True
    contacts = [emulator.backend.create_record("Contact", {"LastName": f"C{i}"}) for i in range(50)]
    assert created(sf, event(EventWhoIds=contacts))["WhoCount"] == 50


def test_a_lead_with_contacts_is_refused(sf: Salesforce, emulator: SalesforceEmulator,
                                        people: dict[str, str]) -> None:
    emulator.backend.shared_activities = True
    error = refused(sf, event(EventWhoIds=[people["contact"], people["lead"]]))
    assert error["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"


def test_51st_contact_via_event_relation_is_refused(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    emulator.backend.shared_activities = True
    contacts = [emulator.backend.create_record("Contact", {"LastName": f"C{i}"}) for i in range(51)]
    event_id = sf.Event.create(event(EventWhoIds=contacts[:50]))["id"]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.EventRelation.create({"EventId": event_id, "RelationId": contacts[50], "IsParent": True})
    assert caught.value.content[0]["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"


def test_deleting_the_who_relation_promotes_another_who(sf: Salesforce, emulator: SalesforceEmulator,
                                                       people: dict[str, str]) -> None:
    emulator.backend.shared_activities = True
    other = sf.Contact.create({"LastName": "Kim"})["id"]
    event_id = sf.Event.create(event(EventWhoIds=[people["contact"], other]))["id"]
    primary = sf.query(f"SELECT Id FROM EventRelation WHERE EventId = '{event_id}' "
                       f"AND RelationId = '{people['contact']}'")["records"][0]["Id"]
    sf.EventRelation.delete(primary)
    assert sf.Event.get(event_id)["WhoId"] == other


def test_invitee_relation_can_be_added(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    user = emulator.backend.create_user("bob@acme.example")
    event_id = sf.Event.create(event())["id"]
    rel_id = sf.EventRelation.create({"EventId": event_id, "RelationId": user})["id"]
    relation = sf.EventRelation.get(rel_id)
    assert (relation["IsInvitee"], relation["IsParent"], relation["Status"]) == (True, False, "New")


def test_deleting_an_event_deletes_its_relations(sf: Salesforce, people: dict[str, str]) -> None:
    event_id = sf.Event.create(event(WhoId=people["contact"]))["id"]
    sf.Event.delete(event_id)
    assert relations(sf, event_id) == []
    all_rows = sf.query_all(f"SELECT Id, IsDeleted FROM EventRelation WHERE EventId = '{event_id}'",
                            include_deleted=True)["records"]
    assert [r["IsDeleted"] for r in all_rows] == [True]


def test_who_pointing_at_a_deleted_contact_is_entity_is_deleted(sf: Salesforce, people: dict[str, str]) -> None:
    sf.Contact.delete(people["contact"])
    error = refused(sf, event(WhoId=people["contact"]))
    assert (error["errorCode"], error["fields"]) == ("ENTITY_IS_DELETED", ["WhoId"])
