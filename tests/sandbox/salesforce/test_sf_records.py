"""Single-record REST resources, describe and upsert through the real simple-salesforce
(reference B4, B5)."""

from __future__ import annotations

import pytest
import requests
from simple_salesforce import (
    Salesforce,
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceResourceNotFound,
)

from calsync.sandbox.salesforce import SalesforceEmulator

START = "2026-01-05T15:00:00.000+0000"


def event(**fields: object) -> dict[str, object]:
    body: dict[str, object] = {"Subject": "Intro call", "StartDateTime": START, "DurationInMinutes": 30}
    body.update(fields)
    return body


def test_create_answers_201_with_id_success_and_no_errors(emulator: SalesforceEmulator,
                                                          http: requests.Session) -> None:
    answer = http.post(f"{emulator.url}/services/data/v59.0/sobjects/Event", json=event())
    assert answer.status_code == 201
    body = answer.json()
    assert body["success"] is True and body["errors"] == [] and body["id"].startswith("00U")


def test_get_returns_the_record_with_attributes_and_all_fields(sf: Salesforce) -> None:
    created = sf.Event.create(event(Location="Room 1"))
    record = sf.Event.get(created["id"])
    assert record["attributes"] == {"type": "Event", "url": f"/services/data/v59.0/sobjects/Event/{created['id']}"}
    assert record["Location"] == "Room 1" and record["Calsync_Key__c"] is None


def test_get_with_fields_parameter_returns_only_those(sf: Salesforce) -> None:
    created = sf.Event.create(event())
    record = sf.restful(f"sobjects/Event/{created['id']}", params={"fields": "Subject,DurationInMinutes"})
    assert set(record) == {"attributes", "Subject", "DurationInMinutes"}


def test_system_fields_are_tracked(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    created = sf.Event.create(event())
    record = sf.Event.get(created["id"])
    assert record["CreatedById"] == emulator.backend.default_user_id
    assert record["IsDeleted"] is False
    assert record["CreatedDate"] == record["LastModifiedDate"] == record["SystemModstamp"]
    assert record["CreatedDate"].endswith("+0000")


def test_owner_defaults_to_the_session_user(connect, emulator: SalesforceEmulator) -> None:  # type: ignore[no-untyped-def]
    user = emulator.backend.create_user("ann@acme.example")
    sf = connect(emulator.backend.create_session("ann@acme.example"))
    created = sf.Event.create(event())
    assert sf.Event.get(created["id"])["OwnerId"] == user


def test_update_answers_204_and_changes_the_record(sf: Salesforce) -> None:
    created = sf.Event.create(event())
    assert sf.Event.update(created["id"], {"Subject": "Renamed"}) == 204
    assert sf.Event.get(created["id"])["Subject"] == "Renamed"


def test_delete_answers_204_and_get_then_says_entity_is_deleted(sf: Salesforce) -> None:
    created = sf.Event.create(event())
    assert sf.Event.delete(created["id"]) == 204
    with pytest.raises(SalesforceResourceNotFound) as caught:
        sf.Event.get(created["id"])
    assert caught.value.content[0]["errorCode"] == "ENTITY_IS_DELETED"


def test_update_of_a_deleted_record_is_entity_is_deleted(sf: Salesforce) -> None:
    created = sf.Event.create(event())
    sf.Event.delete(created["id"])
    with pytest.raises(SalesforceResourceNotFound) as caught:
        sf.Event.update(created["id"], {"Subject": "x"})
    assert caught.value.content[0]["errorCode"] == "ENTITY_IS_DELETED"


def test_unknown_id_is_404_not_found_list_body(sf: Salesforce) -> None:
    with pytest.raises(SalesforceResourceNotFound) as caught:
        sf.Event.get("00URO0000000zzzAAA"[:15])
    assert caught.value.content == [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]


def test_id_of_another_object_is_malformed_id(sf: Salesforce) -> None:
    account = sf.Account.create({"Name": "Acme"})["id"]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Event.get(account)
    assert caught.value.content[0]["errorCode"] == "MALFORMED_ID"


def test_unknown_sobject_in_url_is_not_found(sf: Salesforce) -> None:
    with pytest.raises(SalesforceResourceNotFound) as caught:
        sf.Meeting__x.create({"Name": "x"})
    assert caught.value.content[0]["errorCode"] == "NOT_FOUND"


def test_bad_json_is_json_parser_error(emulator: SalesforceEmulator, http: requests.Session) -> None:
    answer = http.post(f"{emulator.url}/services/data/v59.0/sobjects/Event", data=b"{not json",
                       headers={"Content-Type": "application/json"})
    assert answer.status_code == 400
    assert answer.json()[0]["errorCode"] == "JSON_PARSER_ERROR"


def test_wrong_json_type_is_json_parser_error(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Event.create(event(IsPrivate={"yes": 1}))
    assert caught.value.content[0]["errorCode"] == "JSON_PARSER_ERROR"


def test_field_not_in_schema_is_invalid_field(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Event.create(event(Foo__c="x"))
    assert caught.value.content[0]["errorCode"] == "INVALID_FIELD"
    assert caught.value.content[0]["message"] == "No such column 'Foo__c' on sobject of type Event"


def test_read_only_field_is_invalid_field_for_insert_update(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Event.create(event(AccountId=None, CreatedDate=START))
    error = caught.value.content[0]
    assert error["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert error["fields"] == ["AccountId", "CreatedDate"]


def test_custom_field_not_updateable_is_refused_on_update_only(sf: Salesforce,
                                                               emulator: SalesforceEmulator) -> None:
    emulator.backend.add_custom_field("Event", "Origin__c", "string", length=40, updateable=False)
    created = sf.Event.create(event(Origin__c="google"))
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Event.update(created["id"], {"Origin__c": "other"})
    assert caught.value.content[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"


def test_custom_datetime_field_is_stored_in_wire_form(sf: Salesforce) -> None:
    created = sf.Event.create(event(Calsync_Activity_DateTime__c="2026-01-05T16:00:00+01:00"))
    assert sf.Event.get(created["id"])["Calsync_Activity_DateTime__c"] == START


def test_required_field_missing_on_contact(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Contact.create({"FirstName": "Ann"})
    assert caught.value.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert caught.value.content[0]["fields"] == ["LastName"]


def test_contact_name_is_computed(sf: Salesforce) -> None:
    created = sf.Contact.create({"FirstName": "Ann", "LastName": "Lee"})
    assert sf.Contact.get(created["id"])["Name"] == "Ann Lee"


def test_duplicate_value_on_unique_external_id(sf: Salesforce) -> None:
    sf.Event.create(event(Calsync_Key__c="k1"))
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Event.create(event(Calsync_Key__c="K1"))
    assert caught.value.content[0]["errorCode"] == "DUPLICATE_VALUE"


def test_upsert_creates_with_201(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    assert sf.Event.upsert("Calsync_Key__c/abc", event()) == 201
    rows = emulator.backend.list_records("Event")
    assert [r["Calsync_Key__c"] for r in rows] == ["abc"]


def test_upsert_of_existing_key_updates_with_200_created_false(sf: Salesforce) -> None:
    sf.Event.upsert("Calsync_Key__c/abc", event())
    response = sf.Event.upsert("Calsync_Key__c/abc", {"Subject": "Moved"}, raw_response=True)
    assert response.status_code == 200
    assert response.json()["created"] is False
    record = sf.Event.get_by_custom_id("Calsync_Key__c", "abc")
    assert record["Subject"] == "Moved" and record["DurationInMinutes"] == 30


def test_upsert_created_body_has_id_success_created(sf: Salesforce) -> None:
    response = sf.Event.upsert("Calsync_Key__c/new", event(), raw_response=True)
    body = response.json()
    assert body["created"] is True and body["success"] is True and body["errors"] == []
    assert body["id"].startswith("00U")


def test_upsert_matching_several_records_is_300(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    emulator.backend.add_custom_field("Event", "Legacy_Key__c", "string", external_id=True)
    sf.Event.create(event(Legacy_Key__c="dup"))
    sf.Event.create(event(Legacy_Key__c="dup"))
    with pytest.raises(SalesforceMoreThanOneRecord) as caught:
        sf.Event.upsert("Legacy_Key__c/dup", {"Subject": "x"})
    assert len(caught.value.content) == 2
    assert all(url.startswith("/services/data/v59.0/sobjects/Event/00U") for url in caught.value.content)


def test_upsert_on_a_field_that_is_not_an_external_id_is_not_found(sf: Salesforce) -> None:
    with pytest.raises(SalesforceResourceNotFound) as caught:
        sf.Event.upsert("Subject/abc", event())
    assert caught.value.content[0]["errorCode"] == "NOT_FOUND"


def test_upsert_ignores_deleted_records(sf: Salesforce) -> None:
    sf.Event.upsert("Calsync_Key__c/abc", event())
    sf.Event.delete(sf.Event.get_by_custom_id("Calsync_Key__c", "abc")["Id"])
    assert sf.Event.upsert("Calsync_Key__c/abc", event()) == 201


def test_describe_lists_fields_with_types_lengths_and_permissions(sf: Salesforce) -> None:
    describe = sf.Event.describe()
    assert describe["name"] == "Event" and describe["keyPrefix"] == "00U" and describe["createable"] is True
    fields = {f["name"]: f for f in describe["fields"]}
    assert fields["Subject"]["length"] == 255
    assert fields["Description"]["type"] == "textarea" and fields["Description"]["length"] == 32000
    assert fields["WhatId"]["referenceTo"] == ["Account", "Opportunity"]
    assert fields["WhatId"]["relationshipName"] == "What"
    assert fields["AccountId"]["createable"] is False
    key = fields["Calsync_Key__c"]
    assert (key["externalId"], key["unique"], key["custom"], key["type"]) == (True, True, True, "string")
    assert fields["Calsync_Activity_DateTime__c"]["type"] == "datetime"


def test_describe_field_entries_have_the_documented_keys(sf: Salesforce) -> None:
    wanted = {"name", "type", "length", "externalId", "unique", "createable", "updateable", "nillable",
              "custom", "referenceTo", "relationshipName", "label"}
    for f in sf.Contact.describe()["fields"]:
        assert wanted <= set(f)


def test_describe_global_lists_every_object(sf: Salesforce) -> None:
    names = {o["name"]: o["keyPrefix"] for o in sf.describe()["sobjects"]}
    assert names == {"User": "005", "Account": "001", "Contact": "003", "Lead": "00Q", "Opportunity": "006",
                     "OpportunityContactRole": "00K", "Event": "00U", "EventRelation": "0RE"}


def test_unknown_route_is_not_found_list_body(emulator: SalesforceEmulator, http: requests.Session) -> None:
    answer = http.get(f"{emulator.url}/services/data/v59.0/nothing/here")
    assert answer.status_code == 404
    assert answer.json()[0]["errorCode"] == "NOT_FOUND"
