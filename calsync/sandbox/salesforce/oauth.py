"""`POST /services/oauth2/token`: the JWT bearer and username-password grants (reference B7).

Errors are OAuth-shaped (`{"error", "error_description"}` with 400), not Salesforce's list
bodies; only the `error` codes are stable, the descriptions are the commonly reported ones.
The token endpoint does not count against the API allocation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from typing import Any

import jwt

from calsync.sandbox.salesforce.backend import SalesforceBackend

log = logging.getLogger(__name__)

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
LOGIN_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")
MAX_JWT_LIFETIME = 180  # exp at most 3 minutes ahead (reference B7)


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def token(backend: SalesforceBackend, form: dict[str, str]) -> dict[str, Any]:
    """Answer one token request; raises OAuthError."""
    grant = form.get("grant_type", "")
    if grant == JWT_GRANT:
        return jwt_bearer(backend, form.get("assertion", ""))
    if grant == "password":
        return password(backend, form)
    raise OAuthError("unsupported_grant_type", "grant type not supported")


def jwt_bearer(backend: SalesforceBackend, assertion: str) -> dict[str, Any]:
    try:
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise OAuthError("invalid_grant", "invalid assertion") from None
    app = backend.connected_app(str(claims.get("iss", "")))
    if app is None:
        raise OAuthError("invalid_client_id", "client identifier invalid")
    if not app.public_key_pem:
        raise OAuthError("invalid_grant", "invalid assertion")
    try:
        # exp/aud are checked below against the emulator's clock and audiences.
        jwt.decode(assertion, app.public_key_pem, algorithms=["RS256"],
                   options={"verify_exp": False, "verify_aud": False, "verify_iat": False, "verify_nbf": False})
    except jwt.PyJWTError:
        raise OAuthError("invalid_grant", "invalid assertion") from None
    audiences = claims.get("aud")
    audiences = audiences if isinstance(audiences, list) else [audiences]
    url = backend.instance_url.rstrip("/")
    allowed = {*LOGIN_AUDIENCES, url, url.replace("127.0.0.1", "localhost")}
    if not any(isinstance(a, str) and a.rstrip("/") in allowed for a in audiences):
        raise OAuthError("invalid_grant", "audience is invalid")
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)):
        raise OAuthError("invalid_grant", "invalid assertion")
    now = backend.clock().timestamp()
    if exp <= now:
        raise OAuthError("invalid_grant", "expired access/refresh token")
    if exp > now + MAX_JWT_LIFETIME + 1:  # one second for the client's rounding
        raise OAuthError("invalid_grant", "invalid assertion")
    username = str(claims.get("sub", ""))
    user = backend.user_by_username(username) if username else None
    if user is None or not user["IsActive"] or not app.approved(username):
        raise OAuthError("invalid_grant", "user hasn't approved this consumer")
    return _grant(backend, user["Username"], scope="api")


def password(backend: SalesforceBackend, form: dict[str, str]) -> dict[str, Any]:
    app = backend.connected_app(form.get("client_id", ""))
    if app is None:
        raise OAuthError("invalid_client_id", "client identifier invalid")
    if app.consumer_secret is not None and not hmac.compare_digest(form.get("client_secret", ""),
                                                                  app.consumer_secret):
        raise OAuthError("invalid_client", "invalid client credentials")
    username = form.get("username", "")
    if not backend.check_password(username, form.get("password", "")):
        raise OAuthError("invalid_grant", "authentication failure")
    user = backend.user_by_username(username)
    assert user is not None
    return _grant(backend, user["Username"], scope=None)


def userinfo(backend: SalesforceBackend, username: str) -> dict[str, Any]:
    """The UserInfo answer for a session's user (OpenID Connect Basic Client Profile fields plus
    Salesforce's `user_id` and `organization_id`; Help, "Query for User Information")."""
    user = backend.user_by_username(username)
    assert user is not None
    return {
        "sub": f"{backend.instance_url}/id/{backend.org_id}/{user['Id']}",
        "user_id": user["Id"],
        "organization_id": backend.org_id,
        "preferred_username": user["Username"],
        "name": user.get("Name"),
        "email": user.get("Email"),
        "active": bool(user["IsActive"]),
        "user_type": "STANDARD",
    }


def _grant(backend: SalesforceBackend, username: str, scope: str | None) -> dict[str, Any]:
    access_token = backend.create_session(username)
    user = backend.user_by_username(username)
    assert user is not None
    issued_at = str(int(backend.clock().timestamp() * 1000))
    identity = f"{backend.instance_url}/id/{backend.org_id}/{user['Id']}"
    signature = base64.b64encode(
        hmac.new(backend.org_id.encode(), (identity + issued_at).encode(), hashlib.sha256).digest()
    ).decode("ascii")
    answer: dict[str, Any] = {
        "access_token": access_token,
        "instance_url": backend.instance_url,
        "id": identity,
        "token_type": "Bearer",
        "issued_at": issued_at,
        "signature": signature,
    }
    if scope:
        answer["scope"] = scope
    log.info("issued session user=%s", username)
    return answer
