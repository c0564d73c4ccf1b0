"""The /_control/ API of the Salesforce emulator (JSON over HTTPS, no session, not counted)."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce, SalesforceExpiredSession, SalesforceGeneralError

from calsync.sandbox.salesforce import SalesforceEmulator


@pytest.fixture
def control(emulator: SalesforceEmulator) -> Any:
    session = requests.Session()
    session.verify = emulator.ca_file
    session.trust_env = False

    def call(method: str, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        return session.request(method, f"{emulator.url}/_control/{path}", json=body, **kwargs)
    return call


def test_create_and_list_records(control: Any, emulator: SalesforceEmulator) -> None:
    created = control("POST", "records/Contact", {"LastName": "Lee", "Email": "lee@x.example"})
    assert created.status_code == 201
    listed = control("GET", "records/Contact").json()
    assert [(r["Id"], r["Name"]) for r in listed] == [(created.json()["id"], "Lee")]
    assert emulator.backend.api_calls == 0


def test_control_writes_may_set_read_only_fields(control: Any) -> None:
    created = control("POST", "records/Account", {"Name": "Acme", "CreatedDate": "2020-01-01T00:00:00Z"})
    record = control("GET", f"records/Account/{created.json()['id']}").json()
    assert record["CreatedDate"] == "2020-01-01T00:00:00.000+0000"


def test_control_write_errors_are_salesforce_list_bodies(control: Any) -> None:
    answer = control("POST", "records/Contact", {"FirstName": "Ann"})
    assert answer.status_code == 400
    assert answer.json()[0]["errorCode"] == "REQUIRED_FIELD_MISSING"


def test_update_and_delete_records(control: Any) -> None:
    record_id = control("POST", "records/Account", {"Name": "Acme"}).json()["id"]
    assert control("PATCH", f"records/Account/{record_id}", {"Name": "Beta"}).status_code == 204
    assert control("GET", f"records/Account/{record_id}").json()["Name"] == "Beta"
    assert control("DELETE", f"records/Account/{record_id}").status_code == 204
    assert control("GET", "records/Account").json() == []
    assert len(control("GET", "records/Account", params={"include_deleted": "true"}).json()) == 1


def test_add_custom_field(control: Any, sf: Salesforce) -> None:
    answer = control("POST", "fields", {"object": "Contact", "name": "Tier__c", "type": "string", "length": 10})
    assert answer.status_code == 201
    contact = sf.Contact.create({"LastName": "Lee", "Tier__c": "gold"})
    assert sf.Contact.get(contact["id"])["Tier__c"] == "gold"


def test_users_sessions_and_deactivation(control: Any, connect: Any) -> None:
    control("POST", "users", {"username": "ann@acme.example", "first_name": "Ann", "last_name": "Lee"})
    token = control("POST", "sessions", {"username": "ann@acme.example"}).json()["access_token"]
    sf = connect(token)
    assert sf.restful("limits")["DailyApiRequests"]["Max"] == 15000
    control("PATCH", "users/ann@acme.example", {"active": False})
    with pytest.raises(SalesforceExpiredSession):
        sf.restful("limits")


def test_expire_sessions(control: Any, sf: Salesforce) -> None:
    control("POST", "sessions/expire")
    with pytest.raises(SalesforceExpiredSession):
        sf.restful("limits")


def test_set_limits_and_stats(control: Any, sf: Salesforce) -> None:
    control("POST", "limits", {"daily_api_max": 50, "api_calls": 10})
    sf.restful("limits")
    stats = control("GET", "stats").json()
    assert (stats["api_calls"], stats["daily_api_max"], stats["by_kind"]) == (11, 50, {"limits": 1})


def test_fault_from_json(control: Any, sf: Salesforce) -> None:
    control("POST", "faults", {"status": 503, "body": [{"errorCode": "SERVER_UNAVAILABLE", "message": "x"}]})
    assert len(control("GET", "faults").json()) == 1
    with pytest.raises(SalesforceGeneralError) as caught:
        sf.restful("limits")
    assert caught.value.status == 503


def test_fault_preset_and_clear(control: Any, sf: Salesforce) -> None:
    control("POST", "faults", {"preset": "REQUEST_LIMIT_EXCEEDED", "times": -1})
    control("DELETE", "faults")
    assert sf.restful("limits")["DailyApiRequests"]["Max"] == 15000


def test_fail_records_by_match(control: Any, sf: Salesforce) -> None:
    control("POST", "fail-records", {"match": {"Name": "locked"}, "times": 1})
    results = sf.restful("composite/sobjects", method="POST", json={"records": [
        {"attributes": {"type": "Account"}, "Name": "ok"},
        {"attributes": {"type": "Account"}, "Name": "locked"}]})
    assert [r["success"] for r in results] == [True, False]
    assert results[1]["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW"


def test_settings_shared_activities(control: Any, sf: Salesforce) -> None:
    contact = sf.Contact.create({"LastName": "Lee"})["id"]
    control("POST", "settings", {"shared_activities": True})
    created = sf.Event.create({"Subject": "x", "StartDateTime": "2026-01-05T15:00:00Z", "DurationInMinutes": 5,
                               "EventWhoIds": [contact]})
    assert sf.Event.get(created["id"])["WhoId"] == contact


def test_register_app_and_password_for_password_grant(control: Any, emulator: SalesforceEmulator) -> None:
    control("POST", "users", {"username": "ann@acme.example"})
    control("POST", "connected-apps", {"consumer_key": "ck", "consumer_secret": "cs"})
    control("POST", "passwords", {"username": "ann@acme.example", "password": "pw", "security_token": "T"})
    answer = requests.post(f"{emulator.url}/services/oauth2/token", verify=emulator.ca_file, data={
        "grant_type": "password", "client_id": "ck", "client_secret": "cs", "username": "ann@acme.example",
        "password": "pwT"})
    assert answer.status_code == 200


def test_bad_json_is_a_400_json_message(control: Any, emulator: SalesforceEmulator) -> None:
    answer = requests.post(f"{emulator.url}/_control/records/Account", data=b"{oops", verify=emulator.ca_file)
    assert answer.status_code == 400
    assert "error" in answer.json()


def test_missing_key_is_a_400_json_message(control: Any) -> None:
    answer = control("POST", "users", {"first_name": "x"})
    assert answer.status_code == 400 and "username" in answer.json()["error"]


def test_unknown_control_route_is_not_found(control: Any) -> None:
    answer = control("GET", "nothing")
    assert answer.status_code == 404 and answer.json()[0]["errorCode"] == "NOT_FOUND"


def test_unexpected_error_is_500_unknown_exception(emulator: SalesforceEmulator, sf: Salesforce) -> None:
    def broken(text: str, **kwargs: Any) -> Any:
        raise RuntimeError("emulator bug")

    emulator.backend.query = broken  # type: ignore[method-assign]
    with pytest.raises(SalesforceGeneralError) as caught:
        sf.query("SELECT Id FROM Account")
    assert caught.value.status == 500
    assert caught.value.content[0]["errorCode"] == "UNKNOWN_EXCEPTION"

