"""Token endpoint (JWT bearer, username-password) and session rules (reference B7)."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from simple_salesforce import Salesforce, SalesforceExpiredSession

from calsync.sandbox.salesforce import SalesforceEmulator

CONSUMER_KEY = "3MVG9calsync.consumer"
USERNAME = "sync@acme.example"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def app(emulator: SalesforceEmulator, rsa_key: rsa.RSAPrivateKey) -> SalesforceEmulator:
    public_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    emulator.backend.create_user(USERNAME, first_name="Sync", last_name="Bot")
    emulator.backend.register_connected_app(CONSUMER_KEY, public_pem, consumer_secret="s3cret")
    return emulator


def assertion(key: rsa.RSAPrivateKey, **claims: Any) -> str:
    body = {"iss": CONSUMER_KEY, "sub": USERNAME, "aud": "https://login.salesforce.com",
            "exp": int(time.time()) + 180}
    body.update(claims)
    return jwt.encode(body, key, algorithm="RS256")


def post_token(emu: SalesforceEmulator, form: dict[str, str]) -> requests.Response:
    return requests.post(f"{emu.url}/services/oauth2/token", data=form, verify=emu.ca_file)


def jwt_grant(emu: SalesforceEmulator, token: str) -> requests.Response:
    return post_token(emu, {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": token})


def test_jwt_bearer_grant_returns_a_session_for_the_instance(app: SalesforceEmulator,
                                                             rsa_key: rsa.RSAPrivateKey) -> None:
    answer = jwt_grant(app, assertion(rsa_key))
    assert answer.status_code == 200
    body = answer.json()
    assert body["access_token"].startswith("00D") and "!" in body["access_token"]
    assert body["instance_url"] == app.url
    assert body["token_type"] == "Bearer"
    user_id = app.backend.user_by_username(USERNAME)["Id"]  # type: ignore[index]
    assert body["id"] == f"{app.url}/id/{app.backend.org_id}/{user_id}"
    assert {"issued_at", "signature"} <= set(body)
    assert "refresh_token" not in body


def test_jwt_session_works_with_simple_salesforce(app: SalesforceEmulator, rsa_key: rsa.RSAPrivateKey) -> None:
    body = jwt_grant(app, assertion(rsa_key)).json()
    session = requests.Session()
    session.verify = app.ca_file
    session.trust_env = False
    sf = Salesforce(instance_url=body["instance_url"], session_id=body["access_token"], session=session)
    created = sf.Account.create({"Name": "Acme"})
    owner = sf.Account.get(created["id"])["OwnerId"]
    assert owner == app.backend.user_by_username(USERNAME)["Id"]  # type: ignore[index]


def test_jwt_aud_may_be_test_login_or_the_emulator(app: SalesforceEmulator, rsa_key: rsa.RSAPrivateKey) -> None:
    for aud in ("https://test.salesforce.com", app.url):
        assert jwt_grant(app, assertion(rsa_key, aud=aud)).status_code == 200


def test_jwt_wrong_audience_is_invalid_grant(app: SalesforceEmulator, rsa_key: rsa.RSAPrivateKey) -> None:
    answer = jwt_grant(app, assertion(rsa_key, aud="https://example.com"))
    assert answer.status_code == 400
    assert answer.json() == {"error": "invalid_grant", "error_description": "audience is invalid"}


def test_jwt_unknown_consumer_key_is_invalid_client_id(app: SalesforceEmulator,
                                                       rsa_key: rsa.RSAPrivateKey) -> None:
    answer = jwt_grant(app, assertion(rsa_key, iss="nope"))
    assert answer.status_code == 400
    assert answer.json() == {"error": "invalid_client_id", "error_description": "client identifier invalid"}


def test_jwt_signed_with_another_key_is_invalid_assertion(app: SalesforceEmulator) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    answer = jwt_grant(app, assertion(other))
    assert answer.status_code == 400
    assert answer.json()["error_description"] == "invalid assertion"


def test_jwt_expired_assertion_is_rejected(app: SalesforceEmulator, rsa_key: rsa.RSAPrivateKey) -> None:
    answer = jwt_grant(app, assertion(rsa_key, exp=int(time.time()) - 10))
    assert answer.status_code == 400
    assert answer.json() == {"error": "invalid_grant", "error_description": "expired access/refresh token"}


def test_jwt_exp_more_than_three_minutes_ahead_is_rejected(app: SalesforceEmulator,
                                                           rsa_key: rsa.RSAPrivateKey) -> None:
    answer = jwt_grant(app, assertion(rsa_key, exp=int(time.time()) + 600))
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"


def test_jwt_for_unknown_user_is_not_approved(app: SalesforceEmulator, rsa_key: rsa.RSAPrivateKey) -> None:
    answer = jwt_grant(app, assertion(rsa_key, sub="ghost@acme.example"))
    assert answer.json() == {"error": "invalid_grant", "error_description": "user hasn't approved this consumer"}


def test_jwt_for_inactive_user_is_not_approved(app: SalesforceEmulator, rsa_key: rsa.RSAPrivateKey) -> None:
    app.backend.set_user_active(USERNAME, False)
    answer = jwt_grant(app, assertion(rsa_key))
    assert answer.json()["error_description"] == "user hasn't approved this consumer"


def test_jwt_for_user_outside_preauthorized_list_is_not_approved(
    emulator: SalesforceEmulator, rsa_key: rsa.RSAPrivateKey
) -> None:
    pem = rsa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    emulator.backend.create_user(USERNAME)
    emulator.backend.register_connected_app(CONSUMER_KEY, pem, authorized_usernames=["someone@else.example"])
    answer = jwt_grant(emulator, assertion(rsa_key))
    assert answer.json()["error_description"] == "user hasn't approved this consumer"


def test_garbage_assertion_is_invalid_grant(app: SalesforceEmulator) -> None:
    answer = jwt_grant(app, "not-a-jwt")
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"


def test_password_grant_with_password_and_security_token(app: SalesforceEmulator) -> None:
    app.backend.set_password(USERNAME, "hunter2", "TOKEN")
    answer = post_token(app, {"grant_type": "password", "client_id": CONSUMER_KEY, "client_secret": "s3cret",
                              "username": USERNAME, "password": "hunter2TOKEN"})
    assert answer.status_code == 200
    assert answer.json()["instance_url"] == app.url


def test_password_grant_without_security_token_is_authentication_failure(app: SalesforceEmulator) -> None:
    app.backend.set_password(USERNAME, "hunter2", "TOKEN")
    answer = post_token(app, {"grant_type": "password", "client_id": CONSUMER_KEY, "client_secret": "s3cret",
                              "username": USERNAME, "password": "hunter2"})
    assert answer.status_code == 400
    assert answer.json() == {"error": "invalid_grant", "error_description": "authentication failure"}


def test_token_endpoint_is_not_an_api_call(app: SalesforceEmulator, rsa_key: rsa.RSAPrivateKey) -> None:
    jwt_grant(app, assertion(rsa_key))
    assert app.backend.api_calls == 0


def test_missing_bearer_is_invalid_session(emulator: SalesforceEmulator) -> None:
    answer = requests.get(f"{emulator.url}/services/data/v59.0/limits", verify=emulator.ca_file)
    assert answer.status_code == 401
    assert answer.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def test_expired_session_raises_salesforce_expired_session(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    sf.Account.create({"Name": "before"})
    emulator.backend.expire_sessions()
    with pytest.raises(SalesforceExpiredSession) as caught:
        sf.Account.create({"Name": "after"})
    assert caught.value.content[0]["errorCode"] == "INVALID_SESSION_ID"


def test_session_ends_after_its_lifetime(sf_state_dir) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    now = [dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.timezone.utc)]
    emu = SalesforceEmulator(state_dir=sf_state_dir, clock=lambda: now[0]).start()
    try:
        token = emu.backend.create_session()
        assert emu.backend.authenticate(token) is not None
        now[0] += emu.backend.session_lifetime
        assert emu.backend.authenticate(token) is None
    finally:
        emu.stop()


def test_rejected_session_is_not_counted(emulator: SalesforceEmulator) -> None:
    requests.get(f"{emulator.url}/services/data/v59.0/limits", verify=emulator.ca_file,
                 headers={"Authorization": "Bearer nope"})
    assert emulator.backend.api_calls == 0
