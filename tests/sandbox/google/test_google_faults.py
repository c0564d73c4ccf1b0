"""Scripted faults answer with Google's exact bodies; the real client reacts (A7, A10)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from google_helpers import ALICE, timed
from googleapiclient.errors import HttpError

from calsync.sandbox.google.errors import google_error
from calsync.sandbox.server import Fault

LIST_PATH = "/calendar/v3/calendars/primary/events"


def _list_requests(emulator: Any) -> int:
    return sum(1 for method, path in emulator.requests_seen if path == LIST_PATH)


@pytest.fixture
def service(emulator: Any, make_service: Any) -> Any:
    emulator.backend.create_event(ALICE, {"summary": "x", **timed("2026-01-05T10:00:00Z")})
    return make_service()


def test_rate_limit_403_is_retried_then_succeeds(emulator: Any, service: Any) -> None:
    emulator.fail_next("rateLimitExceeded")
    page = service.events().list(calendarId="primary").execute(num_retries=2)
    assert len(page["items"]) == 1
    assert _list_requests(emulator) == 2


def test_rate_limit_403_body(emulator: Any, service: Any) -> None:
    emulator.fail_next("rateLimitExceeded")
    with pytest.raises(HttpError) as caught:
        service.events().list(calendarId="primary").execute()
    assert caught.value.resp.status == 403
    assert json.loads(caught.value.content) == {
        "error": {
            "errors": [{"domain": "usageLimits", "reason": "rateLimitExceeded",
                        "message": "Rate Limit Exceeded"}],
            "code": 403,
            "message": "Rate Limit Exceeded",
        }
    }


def test_429_is_retried(emulator: Any, service: Any) -> None:
    emulator.fail_next("rateLimitExceeded", status=429)
    service.events().list(calendarId="primary").execute(num_retries=1)
    assert _list_requests(emulator) == 2


def test_500_backend_error_is_retried(emulator: Any, service: Any) -> None:
    emulator.fail_next("backendError")
    service.events().list(calendarId="primary").execute(num_retries=1)
    assert _list_requests(emulator) == 2


def test_410_is_not_retried(emulator: Any, service: Any) -> None:
    emulator.fail_next("fullSyncRequired")
    with pytest.raises(HttpError) as caught:
        service.events().list(calendarId="primary").execute(num_retries=2)
    assert caught.value.resp.status == 410
    assert json.loads(caught.value.content)["error"]["errors"][0]["reason"] == "fullSyncRequired"
    assert _list_requests(emulator) == 1


def test_dropped_connection_is_survived_with_retries(emulator: Any, service: Any) -> None:
    emulator.faults.add(Fault(drop=True, method="GET", path_prefix=LIST_PATH))
    page = service.events().list(calendarId="primary").execute(num_retries=1)
    assert len(page["items"]) == 1
    assert _list_requests(emulator) == 2


def test_delayed_answer_still_arrives(emulator: Any, service: Any) -> None:
    emulator.faults.add(Fault(delay=0.3, method="GET", path_prefix=LIST_PATH))
    began = time.monotonic()
    page = service.events().list(calendarId="primary").execute()
    assert time.monotonic() - began >= 0.3
    assert len(page["items"]) == 1


def test_fault_is_limited_to_its_path_prefix(emulator: Any, service: Any) -> None:
    emulator.fail_next("backendError", path_prefix="/calendar/v3/calendars/other")
    service.events().list(calendarId="primary").execute()
    assert len(emulator.faults.pending()) == 1


@pytest.mark.parametrize(
    ("status", "reason", "domain", "message"),
    [
        (403, "userRateLimitExceeded", "usageLimits", "User Rate Limit Exceeded"),
        (403, "quotaExceeded", "usageLimits", "Calendar usage limits exceeded."),
        (404, "notFound", "global", "Not Found"),
        (500, "backendError", "global", "Backend Error"),
        (503, "backendError", "global", "Backend Error"),
    ],
)
def test_google_error_bodies(status: int, reason: str, domain: str, message: str) -> None:
    code, body = google_error(status, reason)
    assert code == status
    assert body == {
        "error": {
            "errors": [{"domain": domain, "reason": reason, "message": message}],
            "code": status,
            "message": message,
        }
    }


def test_default_status_follows_the_reason() -> None:
    assert google_error(None, "quotaExceeded")[0] == 403
    assert google_error(None, "fullSyncRequired")[0] == 410
    assert google_error(None, "authError")[0] == 401
