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


def test_a_fault_with_a_rate_hits_that_share_of_requests_and_spares_the_rest(
    emulator: Any, service: Any
) -> None:
    # rate: a chaos test's "one request in ten fails"; the spared ones go on to the next fault
    # (here a delay-free pass-through) or to the emulator itself.
    status, body = google_error(503, "backendError")
    emulator.faults.seed(7)
    fault = emulator.faults.add(Fault(status=status, body=body, path_prefix=LIST_PATH, times=-1, rate=0.3))
    answers = []
    for _ in range(200):
        try:
            service.events().list(calendarId="primary").execute()
            answers.append(200)
        except HttpError as exc:
            answers.append(exc.resp.status)
    assert set(answers) == {200, 503}
    assert 0.2 < answers.count(503) / len(answers) < 0.4
    assert fault.times == -1
    limited = emulator.faults.add(Fault(status=status, body=body, path_prefix=LIST_PATH, times=2, rate=0.5))
    emulator.faults.clear()
    emulator.faults.add(limited)
    hits = 0
    for _ in range(40):
        try:
            service.events().list(calendarId="primary").execute()
        except HttpError:
            hits += 1
    assert hits == 2 and limited.times == 0  # only hits use up `times`
