"""sObject Collections: create, update, upsert, delete (reference B4), via sf.restful."""

from __future__ import annotations

from typing import Any

import pytest
from simple_salesforce import Salesforce, SalesforceMalformedRequest

from calsync.sandbox.salesforce import SalesforceEmulator

START = "2026-01-05T15:00:00.000+0000"
ROLLED_BACK = {
    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
    "fields": [],
}


def event(**fields: object) -> dict[str, object]:
    body: dict[str, object] = {"attributes": {"type": "Event"}, "Subject": "Intro call", "StartDateTime": START,
                               "DurationInMinutes": 30}
    body.update(fields)
    return body


def post(sf: Salesforce, records: list[dict[str, Any]], all_or_none: bool = False) -> Any:
    return sf.restful("composite/sobjects", method="POST", json={"allOrNone": all_or_none, "records": records})


def upsert(sf: Salesforce, records: list[dict[str, Any]], all_or_none: bool = False) -> Any:
    return sf.restful("composite/sobjects/Event/Calsync_Key__c", method="PATCH",
                      json={"allOrNone": all_or_none, "records": records})


def test_create_returns_one_result_per_record_in_order(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    results = post(sf, [event(Subject=f"e{i}") for i in range(3)])
    assert [r["success"] for r in results] == [True, True, True]
    subjects = {r["Id"]: r["Subject"] for r in emulator.backend.list_records("Event")}
    assert [subjects[r["id"]] for r in results] == ["e0", "e1", "e2"]


def test_partial_failure_is_200_with_status_code_errors(sf: Salesforce) -> None:
    results = post(sf, [event(), event(Subject="s" * 256), event()])
    assert [r["success"] for r in results] == [True, False, True]
    failed = results[1]
    assert failed.get("id") is None
    assert failed["errors"][0]["statusCode"] == "STRING_TOO_LONG"
    assert failed["errors"][0]["fields"] == ["Subject"]
    assert "errorCode" not in failed["errors"][0]


def test_all_or_none_rolls_back_the_valid_records(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    results = post(sf, [event(), event(Subject="s" * 256)], all_or_none=True)
    assert results[0]["success"] is False and results[0]["errors"] == [ROLLED_BACK]
    assert results[1]["errors"][0]["statusCode"] == "STRING_TOO_LONG"
    assert emulator.backend.list_records("Event") == []
    assert emulator.backend.list_records("EventRelation") == []


def test_all_or_none_success_keeps_everything(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    post(sf, [event(), event()], all_or_none=True)
    assert len(emulator.backend.list_records("Event")) == 2


def test_more_than_200_records_is_exceeded_id_limit(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        post(sf, [event() for _ in range(201)])
    assert caught.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


def test_exactly_200_records_are_one_api_call(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    before = emulator.backend.api_calls
    results = post(sf, [event() for _ in range(200)])
    assert len(results) == 200 and all(r["success"] for r in results)
    assert emulator.backend.api_calls == before + 1


def test_record_without_type_is_invalid_type(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        post(sf, [{"Subject": "x"}])
    assert caught.value.content[0]["errorCode"] == "INVALID_TYPE"


def test_unknown_field_fails_the_whole_request(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        post(sf, [event(), event(Nope__c=1)])
    assert caught.value.content[0]["errorCode"] == "INVALID_FIELD"
    assert emulator.backend.list_records("Event") == []


def test_create_with_id_is_refused_per_record(sf: Salesforce) -> None:
    results = post(sf, [event(Id="00URO0000000001")])
    assert results[0]["errors"][0]["statusCode"] == "INVALID_FIELD"


def test_every_event_rule_applies_per_record(sf: Salesforce) -> None:
    lead = sf.Lead.create({"LastName": "Ray", "Company": "Beta"})["id"]
    account = sf.Account.create({"Name": "Acme"})["id"]
    results = post(sf, [
        event(WhoId=lead, WhatId=account),
        event(IsPrivate=True, WhatId=account),
        event(DurationInMinutes=15 * 1440),
        event(WhatId=lead),
        event(Description="d" * 32001),
    ])
    assert [r["errors"][0]["statusCode"] for r in results] == [
        "FIELD_INTEGRITY_EXCEPTION", "FIELD_INTEGRITY_EXCEPTION", "FIELD_INTEGRITY_EXCEPTION",
        "FIELD_INTEGRITY_EXCEPTION", "STRING_TOO_LONG"]


def test_update_by_id(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    ids = [r["id"] for r in post(sf, [event(), event()])]
    results = sf.restful("composite/sobjects", method="PATCH", json={
        "allOrNone": False,
        "records": [{"attributes": {"type": "Event"}, "Id": ids[1], "Subject": "second"},
                    {"attributes": {"type": "Event"}, "Id": ids[0], "Subject": "first"}]})
    assert [r["id"] for r in results] == [ids[1], ids[0]]
    assert emulator.backend.record("Event", ids[0])["Subject"] == "first"  # type: ignore[index]


def test_update_without_id_fails_that_record(sf: Salesforce) -> None:
    results = sf.restful("composite/sobjects", method="PATCH", json={
        "allOrNone": False, "records": [{"attributes": {"type": "Event"}, "Subject": "x"}]})
    assert results[0]["success"] is False
    assert results[0]["errors"][0]["statusCode"] == "MISSING_ARGUMENT"


def test_update_of_deleted_record_is_entity_is_deleted(sf: Salesforce) -> None:
    record_id = post(sf, [event()])[0]["id"]
    sf.Event.delete(record_id)
    results = sf.restful("composite/sobjects", method="PATCH", json={
        "records": [{"attributes": {"type": "Event"}, "Id": record_id, "Subject": "x"}]})
    assert results[0]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"


def test_upsert_creates_and_updates_with_created_flag(sf: Salesforce) -> None:
    upsert(sf, [event(Calsync_Key__c="a")])
    results = upsert(sf, [event(Calsync_Key__c="a", Subject="changed"), event(Calsync_Key__c="b")])
    assert [(r["success"], r["created"]) for r in results] == [(True, False), (True, True)]
    assert sf.Event.get_by_custom_id("Calsync_Key__c", "a")["Subject"] == "changed"


def test_upsert_result_ids_are_the_existing_records(sf: Salesforce) -> None:
    first = upsert(sf, [event(Calsync_Key__c="a")])[0]["id"]
    assert upsert(sf, [event(Calsync_Key__c="a")])[0]["id"] == first


def test_upsert_record_without_key_fails(sf: Salesforce) -> None:
    results = upsert(sf, [event()])
    assert results[0]["success"] is False and results[0]["created"] is False


def test_upsert_same_key_twice_in_one_request_fails_both(sf: Salesforce) -> None:
    results = upsert(sf, [event(Calsync_Key__c="a"), event(Calsync_Key__c="A")])
    assert [r["errors"][0]["statusCode"] for r in results] == ["DUPLICATE_EXTERNAL_ID"] * 2


def test_upsert_all_or_none_rolls_back_updates_too(sf: Salesforce) -> None:
    upsert(sf, [event(Calsync_Key__c="a", Subject="original")])
    results = upsert(sf, [event(Calsync_Key__c="a", Subject="changed"),
                          event(Calsync_Key__c="b", Subject="s" * 300)], all_or_none=True)
    assert results[0]["errors"] == [ROLLED_BACK]
    assert sf.Event.get_by_custom_id("Calsync_Key__c", "a")["Subject"] == "original"


def test_upsert_on_non_external_field_is_not_found(sf: Salesforce) -> None:
    from simple_salesforce import SalesforceResourceNotFound

    with pytest.raises(SalesforceResourceNotFound):
        sf.restful("composite/sobjects/Event/Subject", method="PATCH", json={"records": [event()]})


def test_delete_by_ids_in_order(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    ids = [r["id"] for r in post(sf, [event(), event()])]
    results = sf.restful("composite/sobjects", method="DELETE",
                         params={"ids": ",".join(reversed(ids)), "allOrNone": "false"})
    assert [(r["id"], r["success"]) for r in results] == [(ids[1], True), (ids[0], True)]
    assert emulator.backend.list_records("Event") == []


def test_delete_of_already_deleted_fails_that_record(sf: Salesforce) -> None:
    ids = [r["id"] for r in post(sf, [event(), event()])]
    sf.Event.delete(ids[0])
    results = sf.restful("composite/sobjects", method="DELETE", params={"ids": ",".join(ids)})
    assert results[0]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"
    assert results[1]["success"] is True


def test_delete_all_or_none_keeps_the_records(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    ids = [r["id"] for r in post(sf, [event()])]
    results = sf.restful("composite/sobjects", method="DELETE",
                         params={"ids": f"{ids[0]},00URO0000000zzz", "allOrNone": "true"})
    assert results[0]["errors"] == [ROLLED_BACK]
    assert len(emulator.backend.list_records("Event")) == 1


def test_delete_more_than_200_ids_is_exceeded_id_limit(sf: Salesforce) -> None:
    ids = ",".join("00URO0000000001" for _ in range(201))
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.restful("composite/sobjects", method="DELETE", params={"ids": ids})
    assert caught.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


def test_injected_lock_failure_is_a_per_record_result(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    emulator.backend.fail_records(lambda r: r.get("Subject") == "locked")
    results = post(sf, [event(), event(Subject="locked")])
    assert results[0]["success"] is True
    assert results[1]["errors"] == [{"statusCode": "UNABLE_TO_LOCK_ROW",
                                     "message": "unable to obtain exclusive access to this record",
                                     "fields": []}]


def test_injected_failure_is_used_up_after_times(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    emulator.backend.fail_records(1, times=1)
    assert post(sf, [event()])[0]["success"] is False
    assert post(sf, [event()])[0]["success"] is True


def test_injected_failure_by_count_fails_the_first_records(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    emulator.backend.fail_records(2, status_code="UNKNOWN_EXCEPTION", message="boom")
    results = post(sf, [event(), event(), event()])
    assert [r["success"] for r in results] == [False, False, True]
    assert results[0]["errors"][0]["statusCode"] == "UNKNOWN_EXCEPTION"


def test_retrieve_by_ids(sf: Salesforce) -> None:
    ids = [r["id"] for r in post(sf, [event(Subject="a"), event(Subject="b")])]
    records = sf.restful("composite/sobjects/Event", params={"ids": ",".join(ids), "fields": "Subject"})
    assert [r["Subject"] for r in records] == ["a", "b"]


def test_an_injected_failure_does_not_hide_that_the_record_is_gone(
    sf: Salesforce, emulator: SalesforceEmulator
) -> None:
    # Salesforce loads the record before any trigger or validation rule could refuse it (Apex
    # guide, "Triggers and Order of Execution"): deleting or updating a deleted Event fails as
    # gone, whatever refusal is injected.
    gone, live = [r["id"] for r in post(sf, [event(Subject="gone"), event(Subject="live")])]
    sf.restful("composite/sobjects", method="DELETE", params={"ids": gone})
    emulator.backend.fail_records(lambda r: True, status_code="FIELD_CUSTOM_VALIDATION_EXCEPTION", times=-1)
    deleted = sf.restful("composite/sobjects", method="DELETE", params={"ids": f"{gone},{live}"})
    assert [r["errors"][0]["statusCode"] for r in deleted] == ["ENTITY_IS_DELETED", "FIELD_CUSTOM_VALIDATION_EXCEPTION"]
    body = {"allOrNone": False, "records": [{"attributes": {"type": "Event"}, "Id": i, "Subject": "x"}
                                            for i in (gone, live)]}
    updated = sf.restful("composite/sobjects", method="PATCH", json=body)
    assert [r["errors"][0]["statusCode"] for r in updated] == ["ENTITY_IS_DELETED", "FIELD_CUSTOM_VALIDATION_EXCEPTION"]
