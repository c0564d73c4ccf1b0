"""Google OAuth through the real google-auth / google-auth-oauthlib libraries (reference A9)."""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from typing import Any
from urllib.error import HTTPError as UrlHTTPError

import pytest
import requests
from google.auth.exceptions import RefreshError
from google.auth.transport.requests import Request as AuthRequest
from google.oauth2 import service_account
from google_auth_oauthlib.flow import InstalledAppFlow
from google_helpers import ALICE, BOB, READONLY, list_all, timed
from googleapiclient.errors import HttpError

from calsync.sandbox.google.oauth import generate_private_key_pem


def _credentials(key_file: dict[str, str], user: str, scopes: list[str] = READONLY) -> Any:
    return service_account.Credentials.from_service_account_info(
        key_file, scopes=scopes
    ).with_subject(user)


def test_delegated_token_reads_own_calendar(emulator: Any, make_service: Any) -> None:
    emulator.backend.create_event(BOB, {"summary": "mine", **timed("2026-01-05T10:00:00Z")})
    items, _ = list_all(make_service(BOB), calendar=BOB)
    assert [item["summary"] for item in items] == ["mine"]
    assert emulator.backend.stats()["token_requests"] == 1


def test_token_answer_shape(emulator: Any, key_file: dict[str, str]) -> None:
    credentials = _credentials(key_file, ALICE)
    credentials.refresh(AuthRequest())
    assert credentials.token.startswith("ya29.")
    remaining = (credentials.expiry - credentials.expiry.now()).total_seconds()
    assert 3500 < remaining <= 3599


def test_other_users_calendar_is_not_found(emulator: Any, make_service: Any) -> None:
    with pytest.raises(HttpError) as caught:
        make_service(ALICE).events().list(calendarId=BOB).execute()
    assert caught.value.resp.status == 404
    assert json.loads(caught.value.content)["error"]["errors"][0]["reason"] == "notFound"


def test_unknown_subject_is_invalid_grant(emulator: Any, key_file: dict[str, str]) -> None:
    with pytest.raises(RefreshError) as caught:
        _credentials(key_file, "nobody@acme.test").refresh(AuthRequest())
    assert caught.value.args[0] == "invalid_grant: Invalid email or User ID"
    assert caught.value.args[1] == {
        "error": "invalid_grant", "error_description": "Invalid email or User ID"
    }


def test_bad_signature_is_invalid_grant(emulator: Any, key_file: dict[str, str]) -> None:
    forged = dict(key_file, private_key=generate_private_key_pem())
    with pytest.raises(RefreshError) as caught:
        _credentials(forged, ALICE).refresh(AuthRequest())
    assert caught.value.args[0] == "invalid_grant: Invalid JWT Signature."


def test_undelegated_scope_is_unauthorized_client(
    emulator: Any, key_file: dict[str, str]
) -> None:
    credentials = _credentials(key_file, ALICE, ["https://www.googleapis.com/auth/calendar"])
    with pytest.raises(RefreshError) as caught:
        credentials.refresh(AuthRequest())
    assert caught.value.args[0] == (
        "unauthorized_client: Unauthorized client or scope in request."
    )


def test_missing_token_gets_auth_error_body(emulator: Any) -> None:
    url = f"{emulator.url}/calendar/v3/calendars/primary/events"
    with pytest.raises(UrlHTTPError) as caught:
        urllib.request.urlopen(url, timeout=5)
    assert caught.value.code == 401
    assert json.loads(caught.value.read()) == {
        "error": {
            "errors": [{"domain": "global", "reason": "authError", "message": "Invalid Credentials",
                        "locationType": "header", "location": "Authorization"}],
            "code": 401,
            "message": "Invalid Credentials",
        }
    }


def test_expired_access_token_is_refreshed_by_the_client(
    emulator: Any, make_service: Any, clock: Any
) -> None:
    service = make_service()
    list_all(service)
    clock.advance(hours=2)  # the emulator now refuses the token; google-auth still trusts it
    list_all(service)
    assert emulator.backend.stats()["token_requests"] == 2


def test_installed_app_flow_end_to_end(
    emulator: Any, make_service: Any, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the emulator speaks plain http
    emulator.backend.create_event(BOB, {"summary": "bob's", **timed("2026-01-05T10:00:00Z")})
    config = emulator.backend.create_oauth_client()
    flow = InstalledAppFlow.from_client_config(config, scopes=READONLY)
    caplog.set_level(logging.INFO, logger="google_auth_oauthlib.flow")
    result: dict[str, Any] = {}

    def run() -> None:
        result["credentials"] = flow.run_local_server(
            port=0, open_browser=False, authorization_prompt_message="AUTH_URL {url}",
            timeout_seconds=10, login_hint=BOB,
        )

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    url = None
    while url is None and time.monotonic() < deadline:
        url = next((r.getMessage()[9:] for r in caplog.records
                    if r.getMessage().startswith("AUTH_URL ")), None)
        time.sleep(0.01)
    assert url is not None and url.startswith(emulator.url + "/o/oauth2/auth?")
    assert "code_challenge_method=S256" in url
    browser = requests.get(url, timeout=10)  # 302 to the flow's loopback server
    assert browser.status_code == 200
    thread.join(10)
    credentials = result["credentials"]
    assert credentials.refresh_token
    items, _ = list_all(make_service(credentials=credentials), calendar=BOB)
    assert [item["summary"] for item in items] == ["bob's"]
    credentials.refresh(AuthRequest())  # refresh_token grant
    emulator.backend.revoke_refresh_tokens(BOB)
    with pytest.raises(RefreshError) as caught:
        credentials.refresh(AuthRequest())
    assert caught.value.args[0].startswith("invalid_grant:")


def test_authorization_code_needs_the_pkce_verifier(emulator: Any) -> None:
    config = emulator.backend.create_oauth_client()["installed"]
    emulator.backend.consent_as(ALICE)
    answer = requests.get(
        config["auth_uri"],
        params={"response_type": "code", "client_id": config["client_id"],
                "redirect_uri": "http://localhost:1/", "scope": READONLY[0], "state": "s1",
                "code_challenge": "x" * 43, "code_challenge_method": "S256"},
        allow_redirects=False, timeout=5,
    )
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith("http://localhost:1/?state=s1&code=")
    code = location.split("code=")[1].split("&")[0]
    token = requests.post(
        config["token_uri"],
        data={"grant_type": "authorization_code", "code": requests.utils.unquote(code),
              "client_id": config["client_id"], "client_secret": config["client_secret"],
              "redirect_uri": "http://localhost:1/", "code_verifier": "wrong" * 10},
        timeout=5,
    )
    assert token.status_code == 400
    assert token.json()["error"] == "invalid_grant"
