"""API allocation, Sforce-Limit-Info (reference B6) and injected faults (B5)."""

from __future__ import annotations

import time

import pytest
import requests
from simple_salesforce import (
    Salesforce,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)

from calsync.sandbox.salesforce import SalesforceEmulator, errors
from calsync.sandbox.server import Fault


def test_every_api_response_carries_sforce_limit_info(emulator: SalesforceEmulator,
                                                       http: requests.Session) -> None:
    base = f"{emulator.url}/services/data/v59.0"
    first = http.get(f"{base}/limits")
    second = http.get(f"{base}/sobjects/Event/00URO0000000zzz")
    assert first.headers["Sforce-Limit-Info"] == "api-usage=1/15000"
    assert second.status_code == 404
    assert second.headers["Sforce-Limit-Info"] == "api-usage=2/15000"


def test_simple_salesforce_sees_the_usage(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    emulator.backend.daily_api_max = 500
    sf.Account.create({"Name": "Acme"})
    sf.query("SELECT Id FROM Account")
    usage = sf.api_usage["api-usage"]
    assert (usage.used, usage.total) == (2, 500)


def test_limits_resource_reports_daily_api_requests(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    emulator.backend.set_limits(api_calls=100)
    limits = sf.restful("limits")
    assert limits["DailyApiRequests"] == {"Max": 15000, "Remaining": 15000 - 101}
    assert "DailyBulkApiBatches" in limits


def test_over_the_allocation_is_request_limit_exceeded(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    emulator.backend.set_limits(daily_api_max=3, api_calls=3)
    with pytest.raises(SalesforceRefusedRequest) as caught:
        sf.Account.create({"Name": "Acme"})
    assert caught.value.status == 403
    assert caught.value.content == [{"message": "TotalRequests Limit exceeded.",
                                     "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    assert emulator.backend.list_records("Account") == []


def test_refused_calls_are_not_counted(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    emulator.backend.set_limits(daily_api_max=1)
    sf.restful("limits")
    for _ in range(3):
        with pytest.raises(SalesforceRefusedRequest):
            sf.restful("limits")
    assert emulator.backend.api_calls == 1


def test_calls_are_counted_by_kind(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    sf.Account.create({"Name": "Acme"})
    sf.Account.describe()
    sf.query("SELECT Id FROM Account")
    sf.restful("composite/sobjects", method="POST",
               json={"records": [{"attributes": {"type": "Account"}, "Name": "B"}]})
    sf.restful("limits")
    assert emulator.backend.calls_by_kind() == {"sobject": 1, "describe": 1, "query": 1, "collections": 1,
                                                "limits": 1}
    assert emulator.backend.api_calls == 5


def test_versions_and_control_calls_are_not_counted(emulator: SalesforceEmulator) -> None:
    requests.get(f"{emulator.url}/services/data/", verify=emulator.ca_file)
    requests.get(f"{emulator.url}/_control/stats", verify=emulator.ca_file)
    assert emulator.backend.api_calls == 0


def test_request_limit_fault(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    emulator.faults.add(errors.request_limit_fault())
    with pytest.raises(SalesforceRefusedRequest) as caught:
        sf.query("SELECT Id FROM Account")
    assert caught.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert sf.query("SELECT Id FROM Account")["done"] is True


def test_unable_to_lock_row_as_whole_request(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    emulator.faults.add(errors.unable_to_lock_row_fault(method="POST"))
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.restful("composite/sobjects", method="POST",
                   json={"records": [{"attributes": {"type": "Account"}, "Name": "A"}]})
    assert caught.value.content[0]["errorCode"] == "UNABLE_TO_LOCK_ROW"


def test_unknown_exception_fault_is_500(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    emulator.faults.add(errors.unknown_exception_fault())
    with pytest.raises(SalesforceGeneralError) as caught:
        sf.restful("limits")
    assert caught.value.status == 500
    assert caught.value.content[0]["errorCode"] == "UNKNOWN_EXCEPTION"


def test_server_unavailable_fault_is_503(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    emulator.faults.add(errors.server_unavailable_fault())
    with pytest.raises(SalesforceGeneralError) as caught:
        sf.restful("limits")
    assert caught.value.status == 503
    assert caught.value.content[0]["errorCode"] == "SERVER_UNAVAILABLE"


def test_invalid_session_fault(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    emulator.faults.add(errors.invalid_session_fault())
    with pytest.raises(SalesforceExpiredSession):
        sf.restful("limits")


def test_single_record_write_hit_by_fail_records_is_400(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    emulator.backend.fail_records(1)
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Account.create({"Name": "Acme"})
    assert caught.value.content[0]["errorCode"] == "UNABLE_TO_LOCK_ROW"
    assert sf.Account.create({"Name": "Acme"})["success"] is True


def test_slow_fault_delays_the_answer(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    emulator.faults.add(errors.slow_fault(0.3))
    started = time.monotonic()
    sf.restful("limits")
    assert time.monotonic() - started >= 0.3


def test_drop_fault_closes_the_connection(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    emulator.faults.add(errors.drop_fault())
    with pytest.raises(requests.exceptions.ConnectionError):
        sf.restful("limits")
    assert sf.restful("limits")["DailyApiRequests"]["Max"] == 15000


def test_fault_matches_its_path_prefix_only(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    emulator.faults.add(Fault(status=503, body=errors.error_body("SERVER_UNAVAILABLE", "x"),
                              path_prefix="/services/data/v59.0/query"))
    assert sf.restful("limits")["DailyApiRequests"]["Max"] == 15000
    with pytest.raises(SalesforceGeneralError):
        sf.query("SELECT Id FROM Account")


def test_uri_over_16kb_is_414(emulator: SalesforceEmulator, http: requests.Session) -> None:
    answer = http.get(f"{emulator.url}/services/data/v59.0/query", params={"q": "x" * 17000})
    assert answer.status_code == 414


def test_headers_pushing_over_16kb_are_431(emulator: SalesforceEmulator, http: requests.Session) -> None:
    answer = http.get(f"{emulator.url}/services/data/v59.0/query", params={"q": "x" * 9000},
                      headers={"X-Pad": "y" * 8000})
    assert answer.status_code == 431
