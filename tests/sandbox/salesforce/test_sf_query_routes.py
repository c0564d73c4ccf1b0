"""query / queryAll / paging and Composite through simple-salesforce (reference B1).

The SOQL language itself is tested with soql.py; these tests cover the REST side: shapes,
batches, cursors, deleted rows, error bodies.
"""

from __future__ import annotations

import pytest
import requests
from simple_salesforce import Salesforce, SalesforceMalformedRequest

from calsync.sandbox.salesforce import SalesforceEmulator


def add_contacts(emulator: SalesforceEmulator, n: int) -> list[str]:
    return [emulator.backend.create_record("Contact", {"LastName": f"C{i:05d}", "Email": f"c{i}@x.example"})
            for i in range(n)]


def test_query_answer_shape(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    account = emulator.backend.create_record("Account", {"Name": "Acme"})
    contact = emulator.backend.create_record("Contact", {"LastName": "Lee", "Email": "ann@example.com",
                                                         "AccountId": account})
    answer = sf.query("SELECT Id, Email, Account.Name FROM Contact")
    assert answer["totalSize"] == 1 and answer["done"] is True and "nextRecordsUrl" not in answer
    record = answer["records"][0]
    assert record["attributes"] == {"type": "Contact", "url": f"/services/data/v59.0/sobjects/Contact/{contact}"}
    assert record["Email"] == "ann@example.com"
    assert record["Account"]["Name"] == "Acme"


def test_first_page_is_2000_with_next_records_url(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    add_contacts(emulator, 2001)
    answer = sf.query("SELECT Id FROM Contact")
    assert answer["totalSize"] == 2001 and answer["done"] is False and len(answer["records"]) == 2000
    assert answer["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")
    assert answer["nextRecordsUrl"].endswith("-2000")


def test_query_more_returns_the_rest_and_done(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    add_contacts(emulator, 2001)
    first = sf.query("SELECT Id FROM Contact")
    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert second["done"] is True and len(second["records"]) == 1 and "nextRecordsUrl" not in second


def test_query_all_walks_every_page_one_call_each(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    ids = add_contacts(emulator, 450)
    before = emulator.backend.api_calls
    answer = sf.query_all("SELECT Id FROM Contact", headers={"Sforce-Query-Options": "batchSize=200"})
    assert sorted(r["Id"] for r in answer["records"]) == sorted(ids)
    assert emulator.backend.calls_by_kind()["query"] == 3
    assert emulator.backend.api_calls - before == 3


def test_batch_size_below_200_is_raised_to_200(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    add_contacts(emulator, 250)
    answer = sf.query("SELECT Id FROM Contact", headers={"Sforce-Query-Options": "batchSize=10"})
    assert len(answer["records"]) == 200


def test_deleted_rows_only_in_query_all(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    keep, gone = add_contacts(emulator, 2)
    sf.Contact.delete(gone)
    assert [r["Id"] for r in sf.query("SELECT Id FROM Contact")["records"]] == [keep]
    rows = sf.query_all("SELECT Id, IsDeleted FROM Contact", include_deleted=True)["records"]
    assert sorted((r["Id"], r["IsDeleted"]) for r in rows) == sorted([(keep, False), (gone, True)])


def test_invalid_field_in_query_is_400_list_body(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query("SELECT Nope__c FROM Event")
    assert caught.value.content[0]["errorCode"] == "INVALID_FIELD"


def test_unknown_object_in_query_is_invalid_type(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query("SELECT Id FROM Meeting")
    assert caught.value.content[0]["errorCode"] == "INVALID_TYPE"


def test_malformed_query(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query("SELEKT Id FROM Event")
    assert caught.value.content[0]["errorCode"] == "MALFORMED_QUERY"


def test_unknown_query_locator(emulator: SalesforceEmulator, http: requests.Session) -> None:
    answer = http.get(f"{emulator.url}/services/data/v59.0/query/01gRO0000000000AAA-2000")
    assert answer.status_code == 400
    assert answer.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_event_query_sees_custom_fields_and_who_type(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    lead = emulator.backend.create_record("Lead", {"LastName": "Ray", "Company": "Beta"})
    sf.Event.upsert("Calsync_Key__c/k1", {"Subject": "x", "StartDateTime": "2026-01-05T15:00:00Z",
                                          "DurationInMinutes": 30, "WhoId": lead})
    answer = sf.query("SELECT Calsync_Key__c, Who.Type FROM Event "
                      "WHERE StartDateTime >= 2026-01-05T00:00:00Z")
    record = answer["records"][0]
    assert record["Calsync_Key__c"] == "k1"
    assert record["Who"]["Type"] == "Lead"


def test_composite_runs_a_long_query_as_one_call(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    add_contacts(emulator, 3)
    before = emulator.backend.api_calls
    emails = ",".join(f"'c{i}@x.example'" for i in range(3))
    answer = sf.restful("composite", method="POST", json={"compositeRequest": [
        {"method": "GET", "url": f"/services/data/v59.0/query?q=SELECT Id FROM Contact WHERE Email IN ({emails})",
         "referenceId": "q1"}]})
    sub = answer["compositeResponse"][0]
    assert (sub["referenceId"], sub["httpStatusCode"], sub["body"]["totalSize"]) == ("q1", 200, 3)
    assert emulator.backend.api_calls == before + 1


def test_composite_subrequest_errors_are_in_the_body(sf: Salesforce) -> None:
    answer = sf.restful("composite", method="POST", json={"compositeRequest": [
        {"method": "GET", "url": "/services/data/v59.0/query?q=SELECT Nope FROM Contact", "referenceId": "q"}]})
    sub = answer["compositeResponse"][0]
    assert sub["httpStatusCode"] == 400 and sub["body"][0]["errorCode"] == "INVALID_FIELD"


def test_composite_references_earlier_results(sf: Salesforce) -> None:
    answer = sf.restful("composite", method="POST", json={"compositeRequest": [
        {"method": "POST", "url": "/services/data/v59.0/sobjects/Account", "referenceId": "acct",
         "body": {"Name": "Acme"}},
        {"method": "POST", "url": "/services/data/v59.0/sobjects/Contact", "referenceId": "c",
         "body": {"LastName": "Lee", "AccountId": "@{acct.id}"}}]})
    account_id = answer["compositeResponse"][0]["body"]["id"]
    contact_id = answer["compositeResponse"][1]["body"]["id"]
    assert sf.Contact.get(contact_id)["AccountId"] == account_id
