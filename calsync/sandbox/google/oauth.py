"""Google OAuth as the emulator plays it: service accounts, installed-app clients, access tokens.

Two ways in (reference A9):
- service account + domain-wide delegation: an RS256 JWT (`iss` = service account, `sub` = user to
  impersonate) posted to `/token` as `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`;
- installed-app flow: `/o/oauth2/auth` (auto-consents, PKCE S256) then `authorization_code` and
  `refresh_token` grants on `/token`.

Either way the caller gets an opaque access token bound to one user and a set of scopes; the
Calendar routes ask `GoogleAuth.authenticate()` who is calling. Access-token expiry runs on the
backend's clock (so a test can expire tokens by moving it); JWT `iat`/`exp` are checked against
real time, because google-auth stamps them with real time.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from calsync.sandbox.google.errors import (
    INVALID_SIGNATURE,
    INVALID_TIMEFRAME,
    INVALID_USER,
    UNAUTHORIZED_SCOPE,
    OAuthError,
)

log = logging.getLogger(__name__)

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# google-auth hard-codes this audience whatever token_uri says (reference A9).
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
CALENDAR_SCOPES = frozenset(
    {
        "https://www.googleapis.com/auth/calendar",
        "https://www.googleapis.com/auth/calendar.readonly",
        "https://www.googleapis.com/auth/calendar.events",
        "https://www.googleapis.com/auth/calendar.events.readonly",
    }
)
READONLY_SCOPES = (
    "https://www.googleapis.com/auth/calendar.readonly",
    "https://www.googleapis.com/auth/calendar.events.readonly",
)
MAX_JWT_LIFETIME = 3600  # exp - iat (reference A9)
CLOCK_SKEW = 300  # seconds of tolerance for "a reasonable timeframe"
CODE_LIFETIME = dt.timedelta(minutes=10)


@dataclass(frozen=True)
class AccessToken:
    token: str
    user: str | None  # None: the service account itself (no impersonation)
    scopes: frozenset[str]
    expires_at: dt.datetime
    client: str  # service-account email or OAuth client id


@dataclass
class ServiceAccount:
    client_email: str
    client_id: str
    private_key_id: str
    public_key: Any
    delegated_scopes: frozenset[str]


@dataclass
class OAuthClient:
    client_id: str
    client_secret: str


@dataclass
class _AuthCode:
    client_id: str
    redirect_uri: str
    user: str
    scopes: tuple[str, ...]
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: dt.datetime
    used: bool = False


@dataclass
class _RefreshGrant:
    client_id: str
    user: str
    scopes: tuple[str, ...]
    revoked: bool = False


def generate_private_key_pem() -> str:
    """A fresh RSA 2048 key as PKCS#8 PEM (what Google puts in key files)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def _digits(n: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(n))


@dataclass
class GoogleAuth:
    """Credentials and tokens; `is_user` says whether an address is a user of the domain."""

    clock: Callable[[], dt.datetime]
    is_user: Callable[[str], bool]
    token_url: Callable[[], str]
    access_token_lifetime: dt.timedelta = dt.timedelta(hours=1)
    consent_user: str | None = None
    service_accounts: dict[str, ServiceAccount] = field(default_factory=dict)
    oauth_clients: dict[str, OAuthClient] = field(default_factory=dict)
    tokens: dict[str, AccessToken] = field(default_factory=dict)
    token_requests: int = 0
    _codes: dict[str, _AuthCode] = field(default_factory=dict)
    _refresh: dict[str, _RefreshGrant] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # -- set-up -----------------------------------------------------------------------------

    def create_service_account(
        self,
        client_email: str = "calsync@acme-sandbox.iam.gserviceaccount.com",
        delegated_scopes: list[str] | tuple[str, ...] | None = None,
        private_key_pem: str | None = None,
        project_id: str = "acme-sandbox",
    ) -> dict[str, str]:
        """Register a service account; return its key file as a dict (reference A9).

        `delegated_scopes` are the scopes the domain admin granted it (default: every Calendar
        scope). `private_key_pem` reuses a key (RSA generation costs ~0.1 s; tests share one).
        """
        pem = private_key_pem or generate_private_key_pem()
        key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
        account = ServiceAccount(
            client_email=client_email,
            client_id=_digits(21),
            private_key_id=secrets.token_hex(20),
            public_key=key.public_key(),
            delegated_scopes=frozenset(
                CALENDAR_SCOPES if delegated_scopes is None else delegated_scopes
            ),
        )
        with self._lock:
            self.service_accounts[client_email] = account
        return {
            "type": "service_account",
            "project_id": project_id,
            "private_key_id": account.private_key_id,
            "private_key": pem,
            "client_email": client_email,
            "client_id": account.client_id,
            "auth_uri": self.token_url().rsplit("/", 1)[0] + "/o/oauth2/auth",
            "token_uri": self.token_url(),
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/"
            + client_email.replace("@", "%40"),
            "universe_domain": "googleapis.com",
        }

    def create_oauth_client(self) -> dict[str, dict[str, Any]]:
        """Register an installed-app OAuth client; return its client-secrets JSON (reference A9)."""
        client = OAuthClient(
            client_id=f"{_digits(12)}-{secrets.token_hex(16)}.apps.googleusercontent.com",
            client_secret="GOCSPX-" + secrets.token_urlsafe(21),
        )
        with self._lock:
            self.oauth_clients[client.client_id] = client
        base = self.token_url().rsplit("/", 1)[0]
        return {
            "installed": {
                "client_id": client.client_id,
                "project_id": "acme-sandbox",
                "auth_uri": f"{base}/o/oauth2/auth",
                "token_uri": f"{base}/token",
                "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
                "client_secret": client.client_secret,
                "redirect_uris": ["http://localhost"],
            }
        }

    def issue_access_token(
        self, user: str | None, scopes: tuple[str, ...] | list[str] = READONLY_SCOPES,
        client: str = "sandbox",
    ) -> AccessToken:
        token = AccessToken(
            token="ya29." + secrets.token_urlsafe(32),
            user=user.lower() if user else None,
            scopes=frozenset(scopes),
            expires_at=self.clock() + self.access_token_lifetime,
            client=client,
        )
        with self._lock:
            self.tokens[token.token] = token
        return token

    def revoke_refresh_tokens(self, user: str | None = None) -> int:
        """Revoke refresh tokens (of one user, or all); later refreshes get invalid_grant."""
        count = 0
        with self._lock:
            for grant in self._refresh.values():
                if not grant.revoked and (user is None or grant.user == user.lower()):
                    grant.revoked = True
                    count += 1
        return count

    # -- the Calendar side ------------------------------------------------------------------

    def authenticate(self, bearer: str | None) -> AccessToken | None:
        """The live token behind an Authorization header, or None (→ 401 authError)."""
        if not bearer:
            return None
        with self._lock:
            token = self.tokens.get(bearer)
        if token is None or token.expires_at <= self.clock():
            return None
        return token

    # -- /o/oauth2/auth ---------------------------------------------------------------------

    def authorize(self, params: dict[str, str]) -> str:
        """Consent on the user's behalf and return the redirect URL (with code and state)."""
        client = self.oauth_clients.get(params.get("client_id", ""))
        if client is None:
            raise OAuthError(401, "invalid_client", "The OAuth client was not found.")
        if params.get("response_type") != "code":
            raise OAuthError(400, "unsupported_response_type", "Only response_type=code.")
        redirect_uri = params.get("redirect_uri", "")
        parts = urlsplit(redirect_uri)
        # Installed apps may redirect to any loopback port (native-app guide, reference A9).
        if parts.scheme != "http" or parts.hostname not in {"localhost", "127.0.0.1", "::1"}:
            raise OAuthError(400, "redirect_uri_mismatch", f"Bad redirect_uri {redirect_uri!r}")
        scopes = tuple(params.get("scope", "").split())
        if not scopes:
            raise OAuthError(400, "invalid_request", "Missing required parameter: scope")
        method = params.get("code_challenge_method")
        challenge = params.get("code_challenge")
        if challenge and method not in (None, "S256", "plain"):
            raise OAuthError(400, "invalid_request", "Invalid code_challenge_method")
        user = (params.get("login_hint") or self.consent_user or "").lower()
        if not user or not self.is_user(user):
            raise OAuthError(400, "invalid_request", f"No user to consent as ({user!r})")
        code = "4/0A" + secrets.token_urlsafe(32)
        with self._lock:
            self._codes[code] = _AuthCode(
                client_id=client.client_id,
                redirect_uri=redirect_uri,
                user=user,
                scopes=scopes,
                code_challenge=challenge,
                code_challenge_method=method or ("plain" if challenge else None),
                expires_at=self.clock() + CODE_LIFETIME,
            )
        answer = {"code": code, "scope": " ".join(scopes)}
        if "state" in params:
            answer = {"state": params["state"], **answer}
        separator = "&" if parts.query else "?"
        return redirect_uri + separator + urlencode(answer)

    # -- /token -----------------------------------------------------------------------------

    def token(self, form: dict[str, str], authorization: str | None) -> dict[str, Any]:
        """Answer a token-endpoint POST; raises OAuthError with Google's error and text."""
        with self._lock:
            self.token_requests += 1
        grant = form.get("grant_type")
        if grant == JWT_GRANT:
            return self._jwt_grant(form.get("assertion", ""))
        if grant == "authorization_code":
            return self._code_grant(form, authorization)
        if grant == "refresh_token":
            return self._refresh_grant(form, authorization)
        raise OAuthError(400, "unsupported_grant_type", f"Invalid grant_type: {grant}")

    def _bearer_answer(self, token: AccessToken) -> dict[str, Any]:
        # Google answers 3599 for its one-hour tokens (reference A9).
        expires_in = max(int(self.access_token_lifetime.total_seconds()) - 1, 0)
        return {"access_token": token.token, "expires_in": expires_in, "token_type": "Bearer"}

    def _jwt_grant(self, assertion: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise OAuthError(400, "invalid_grant", INVALID_SIGNATURE) from None
        account = self.service_accounts.get(str(unverified.get("iss", "")))
        if account is None:
            raise OAuthError(401, "invalid_client", "The OAuth client was not found.")
        if header.get("kid") not in (None, account.private_key_id):
            raise OAuthError(400, "invalid_grant", INVALID_SIGNATURE)
        try:
            claims = jwt.decode(
                assertion,
                account.public_key,
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_iat": False, "verify_aud": False,
                         "verify_nbf": False},
            )
        except jwt.PyJWTError:
            raise OAuthError(400, "invalid_grant", INVALID_SIGNATURE) from None
        if claims.get("aud") not in (GOOGLE_TOKEN_AUDIENCE, self.token_url()):
            raise OAuthError(400, "invalid_grant", "Invalid JWT: Failed audience check.")
        try:
            iat, exp = int(claims["iat"]), int(claims["exp"])
        except (KeyError, TypeError, ValueError):
            raise OAuthError(400, "invalid_grant", INVALID_TIMEFRAME) from None
        now = time.time()
        if (
            exp <= iat
            or exp - iat > MAX_JWT_LIFETIME
            or iat > now + CLOCK_SKEW
            or exp < now - CLOCK_SKEW
        ):
            raise OAuthError(400, "invalid_grant", INVALID_TIMEFRAME)
        scopes = tuple(str(claims.get("scope", "")).split())
        if not scopes:
            raise OAuthError(400, "invalid_scope", "Empty or missing scope not allowed.")
        subject = claims.get("sub")
        if subject:
            if not self.is_user(str(subject)):
                raise OAuthError(400, "invalid_grant", INVALID_USER)
            if not set(scopes) <= account.delegated_scopes:
                # No delegation for these scopes (reference A9 JWT error table).
                raise OAuthError(401, "unauthorized_client", UNAUTHORIZED_SCOPE)
        token = self.issue_access_token(
            str(subject) if subject else None, scopes, client=account.client_email
        )
        log.debug("token issued client=%s user=%s", account.client_email, subject)
        return self._bearer_answer(token)

    def _client(self, form: dict[str, str], authorization: str | None) -> OAuthClient:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        # requests-oauthlib sends the client as HTTP Basic auth, google-auth in the form.
        if authorization and authorization[:6].lower() == "basic ":
            try:
                decoded = base64.b64decode(authorization[6:].strip()).decode("utf-8")
                basic_id, _, basic_secret = decoded.partition(":")
            except ValueError:
                raise OAuthError(401, "invalid_client", "Unauthorized") from None
            client_id, secret = unquote_plus(basic_id), unquote_plus(basic_secret)
        client = self.oauth_clients.get(client_id or "")
        if client is None:
            raise OAuthError(401, "invalid_client", "The OAuth client was not found.")
        if not hmac.compare_digest(client.client_secret, secret or ""):
            raise OAuthError(401, "invalid_client", "Unauthorized")
        return client

    def _code_grant(self, form: dict[str, str], authorization: str | None) -> dict[str, Any]:
        client = self._client(form, authorization)
        with self._lock:
            code = self._codes.get(form.get("code", ""))
            if code is None or code.used or code.expires_at <= self.clock():
                raise OAuthError(400, "invalid_grant", "Malformed auth code.")
            if code.client_id != client.client_id:
                raise OAuthError(400, "invalid_grant", "Malformed auth code.")
            if form.get("redirect_uri") != code.redirect_uri:
                raise OAuthError(400, "redirect_uri_mismatch", "Bad Request")
            if code.code_challenge:
                verifier = form.get("code_verifier")
                if not verifier:
                    raise OAuthError(400, "invalid_grant", "Missing code verifier.")
                if code.code_challenge_method == "S256":
                    digest = hashlib.sha256(verifier.encode("ascii")).digest()
                    expected = base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")
                else:
                    expected = verifier
                if not hmac.compare_digest(expected, code.code_challenge):
                    raise OAuthError(400, "invalid_grant", "Invalid code verifier.")
            code.used = True
            refresh = "1//0" + secrets.token_urlsafe(40)
            self._refresh[refresh] = _RefreshGrant(client.client_id, code.user, code.scopes)
        token = self.issue_access_token(code.user, code.scopes, client=client.client_id)
        answer = self._bearer_answer(token)
        answer["refresh_token"] = refresh
        answer["scope"] = " ".join(code.scopes)
        return answer

    def _refresh_grant(self, form: dict[str, str], authorization: str | None) -> dict[str, Any]:
        client = self._client(form, authorization)
        with self._lock:
            grant = self._refresh.get(form.get("refresh_token", ""))
        if grant is None or grant.revoked or grant.client_id != client.client_id:
            raise OAuthError(400, "invalid_grant", "Token has been expired or revoked.")
        token = self.issue_access_token(grant.user, grant.scopes, client=client.client_id)
        answer = self._bearer_answer(token)
        answer["scope"] = " ".join(grant.scopes)
        return answer
