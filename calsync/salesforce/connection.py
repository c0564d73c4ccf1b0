"""The connection to one org: login, the HTTP session, Salesforce's clock, each call and its errors.

Logins: a given access token, a JWT bearer assertion signed with the connected app's key, or
the username-password flow (reference B7). Every request goes through one `TracingSession`
with calsync's timeouts and CA bundle (network.py); simple-salesforce is handed that session.
Each answer's Date header is kept: Salesforce's clock, not ours (reference B10, "Clocks").

Errors of a whole call are mapped to calsync's tree (reference B5, C11): REQUEST_LIMIT_EXCEEDED →
QuotaExhausted; 5xx, UNABLE_TO_LOCK_ROW and network → TransientError (idempotent calls are retried
here first); an expired session is renewed once (jwt/password) and the call retried. Nothing
outside this module imports simple_salesforce.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jwt
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from calsync.core import logs, network
from calsync.core.errors import (
    AuthError,
    ConfigError,
    NetworkError,
    PermanentError,
    QuotaExhausted,
    TransientError,
)
from calsync.core.network import TracingSession

RETRIES = 2
CONNECT_TIMEOUT = 10  # seconds ([salesforce] connect_timeout_seconds)
READ_TIMEOUT = 120  # seconds to wait for each answer ([salesforce] read_timeout_seconds)


class Connection:
    """A session with one org: logs in when first needed, counts the API calls it makes (`calls`)."""

    def __init__(
        self,
        instance_url: str,
        *,
        auth: str = "access_token",
        access_token: str | None = None,
        login_url: str = "https://login.salesforce.com",
        username: str | None = None,
        consumer_key: str | None = None,
        private_key: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        password: str | None = None,
        security_token: str | None = None,
        ca_bundle: str | None = None,
        api_version: str = "59.0",
        min_remaining: int = 0,
        sleep: Callable[[float], None] = time.sleep,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        self.instance_url = instance_url.rstrip("/")
        self.auth = auth
        self._access_token = access_token
        self.login_url = login_url.rstrip("/")
        self.username = username
        self._consumer_key = consumer_key
        self._private_key = private_key
        self._client_id = client_id
        self._client_secret = client_secret
        self._password = password
        self._security_token = security_token
        self.api_version = api_version
        self.min_remaining = min_remaining
        self._sleep = sleep
        self.calls = 0
        self.api_usage: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self.server_time: dt.datetime | None = None  # Salesforce's clock at its last answer
        self._server_seen_at: float | None = None  # time.monotonic() when that answer came
        # The session's user: from the token answer's `id` (jwt and password logins), else as
        # `Reader.own_user_id` found it.
        self.user_id: str | None = None
        # Timeouts on every request, the debug trace, the allowance noted (network.py).
        self.http = TracingSession((connect_timeout, read_timeout))
        self.http.hooks["response"].append(self._note_server_time)
        if ca_bundle:
            self.http.verify = _trust(ca_bundle)
            # With trust_env on, REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE replace session.verify on
            # every request (reference B8, psf/requests#3829); _trust() already folded those in.
            self.http.trust_env = False
        for secret in (access_token, private_key, client_secret, password, security_token):
            if secret:
                logs.register_secret(secret)
        self._sf: Salesforce | None = None

    def _note_server_time(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Keep the answer's Date header (RFC 9110 §6.6.1): Salesforce's clock, not ours."""
        try:
            moment = email.utils.parsedate_to_datetime(response.headers.get("Date", ""))
        except (TypeError, ValueError, IndexError):
            return
        if moment.tzinfo is not None:
            self.server_time = moment.astimezone(dt.timezone.utc)
            self._server_seen_at = time.monotonic()

    def server_now(self) -> dt.datetime | None:
        """Salesforce's clock now, as far as its answers tell: the last Date header plus the time
        elapsed since, by this process's monotonic clock (None before any answer).

        The header counts whole seconds and is written before the answer travels, so this is at
        most a second or so behind Salesforce's own clock, never ahead of it; calsync's clock
        plays no part, however far it is from Salesforce's (reference B10, "Clocks").
        """
        if self.server_time is None or self._server_seen_at is None:
            return None
        return self.server_time + dt.timedelta(seconds=max(0.0, time.monotonic() - self._server_seen_at))

    def count_call(self) -> None:
        """Count a call made outside `call` (the UserInfo request)."""
        with self._lock:
            self.calls += 1

    # -- sessions --------------------------------------------------------------------------------

    def client(self) -> Salesforce:
        """simple-salesforce's client on this session, logged in on first use."""
        if self._sf is None:
            self._sf = self._login()
        return self._sf

    def _login(self) -> Salesforce:
        if self.auth == "access_token":
            if not self._access_token:
                raise AuthError("salesforce.access_token is empty")
            token, instance = self._access_token, self.instance_url
        elif self.auth == "jwt":
            token, instance = self._token_request(self._jwt_form())
        elif self.auth == "password":
            token, instance = self._token_request(
                {
                    "grant_type": "password",
                    "client_id": self._client_id or "",
                    "client_secret": self._client_secret or "",
                    "username": self.username or "",
                    "password": (self._password or "") + (self._security_token or ""),
                }
            )
        else:
            raise ConfigError(f"salesforce.auth: unknown mode {self.auth!r}")
        logs.register_secret(token)
        # simple-salesforce keeps only host and port of instance_url and always speaks https
        # (reference B8); our own session carries the CA bundle.
        return Salesforce(
            instance_url=instance, session_id=token, session=self.http, version=self.api_version
        )

    def _jwt_form(self) -> dict[str, str]:
        if not (self._consumer_key and self._private_key and self.username):
            raise ConfigError("salesforce: jwt needs consumer_key, private_key_file and username")
        now = int(time.time())
        claims = {
            "iss": self._consumer_key,
            "sub": self.username,
            "aud": self.login_url,
            "exp": now + 180,  # at most 3 minutes ahead (reference B7)
            "jti": uuid.uuid4().hex,
        }
        try:
            assertion = jwt.encode(claims, self._private_key, algorithm="RS256")
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"salesforce.private_key_file: not an RSA private key ({type(exc).__name__})") from exc
        return {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}

    def _token_request(self, form: Mapping[str, str]) -> tuple[str, str]:
        url = f"{self.login_url}/services/oauth2/token"
        try:
            response = self.http.post(url, data=dict(form))
        except requests.RequestException as exc:
            raise self.unreachable(exc, "login", url, "salesforce.login_url") from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or "access_token" not in body:
            error = body.get("error") if isinstance(body, dict) else None
            description = body.get("error_description") if isinstance(body, dict) else None
            if response.status_code >= 500:
                raise TransientError(f"Salesforce login answered {response.status_code}")
            # The description may echo the request (some gateways do): redacted and cut, never
            # the raw body.
            raise AuthError(
                f"Salesforce refused the {self.auth} login for {self.username}: "
                + logs.excerpt(f"{error or response.status_code} {description or ''}".strip())
            )
        # The answer's `id` is the identity URL, .../id/<org id>/<user id> (reference B7): who
        # calsync's own writes are made by (their CreatedById and LastModifiedById).
        identity = str(body.get("id") or "").rstrip("/").rsplit("/", 1)[-1]
        if identity.startswith("005"):
            self.user_id = identity
        return str(body["access_token"]), str(body.get("instance_url") or self.instance_url)

    # -- calls ---------------------------------------------------------------------------------

    def call(self, what: str, fn: Callable[[Salesforce], Any], *, idempotent: bool = True) -> Any:
        """Run one API call with session renewal, retries for idempotent calls, error mapping."""
        renewed = False
        attempt = 0
        if self.api_usage is not None:
            used, total = self.api_usage
            if total - used < self.min_remaining:
                # Keep the rest of the org's daily allowance for its other integrations.
                raise QuotaExhausted(
                    f"only {total - used} of the org's {total} daily API calls left, below"
                    f" salesforce.daily_call_budget = {self.min_remaining}; not calling for {what}"
                )
        while True:
            client = self.client()
            with self._lock:
                self.calls += 1
            try:
                result = fn(client)
                usage = getattr(client, "api_usage", {}).get("api-usage")
                if usage is not None:
                    self.api_usage = (int(usage.used), int(usage.total))
                return result
            except SalesforceExpiredSession as exc:
                if renewed or self.auth == "access_token":
                    raise AuthError(
                        f"Salesforce session expired or invalid during {what}"
                        + ("" if self.auth != "access_token" else
                           "; give a new salesforce.access_token and restart calsync (a daemon"
                           " should use auth = \"jwt\", which does not expire)")
                    ) from exc
                renewed = True
                self._sf = None  # sign a new assertion / log in again, then retry once
                continue
            except SalesforceRefusedRequest as exc:
                code = _error_code(exc)
                if code == "REQUEST_LIMIT_EXCEEDED":
                    raise QuotaExhausted(f"Salesforce API allowance spent ({_error_message(exc)})") from exc
                raise AuthError(f"Salesforce refused {what}: {code} {_error_message(exc)}") from exc
            except SalesforceMalformedRequest as exc:
                code = _error_code(exc)
                if code == "UNABLE_TO_LOCK_ROW" and idempotent and attempt < RETRIES:
                    attempt += 1
                    self._sleep(attempt)
                    continue
                if code == "UNABLE_TO_LOCK_ROW":
                    raise TransientError(f"{what}: UNABLE_TO_LOCK_ROW") from exc
                raise PermanentError(f"{what}: {code} {_error_message(exc)}", code) from exc
            except SalesforceResourceNotFound as exc:
                raise PermanentError(f"{what}: NOT_FOUND", _error_code(exc) or "NOT_FOUND") from exc
            except SalesforceError as exc:
                status = getattr(exc, "status", 0) or 0
                if idempotent and attempt < RETRIES and status >= 500:
                    attempt += 1
                    self._sleep(attempt)
                    continue
                raise TransientError(f"{what}: Salesforce answered {status} {_error_code(exc)}") from exc
            except requests.RequestException as exc:
                # A create that timed out may have landed: it is not retried here; its recorded
                # intent is reconciled on the next run (the crash-safety path). A certificate
                # this machine does not trust will not be trusted a second later either.
                if idempotent and attempt < RETRIES and not network.untrusted(exc):
                    attempt += 1
                    self._sleep(attempt)
                    continue
                request = getattr(exc, "request", None)
                url = getattr(request, "url", None) or self.instance_url
                raise self.unreachable(exc, what, url, "salesforce.instance_url") from exc

    def unreachable(
        self, exc: requests.RequestException, what: str, url: str, setting: str
    ) -> NetworkError:
        """The host, the cause and the remedy of a request that got no answer (network.py)."""
        found = network.failure(
            exc, url, service="Salesforce", setting=setting,
            trust="add its CA certificate to salesforce.ca_bundle",
            timeout=_timeout_text(exc, self.http),
        )
        return NetworkError(f"{what}: {str(found).removesuffix('; ' + found.remedy)}", found.remedy)


def _error_code(exc: SalesforceError) -> str:
    content = getattr(exc, "content", None)
    if isinstance(content, list) and content and isinstance(content[0], Mapping):
        return str(content[0].get("errorCode") or "")
    return ""


def _error_message(exc: SalesforceError) -> str:
    content = getattr(exc, "content", None)
    if isinstance(content, list) and content and isinstance(content[0], Mapping):
        return str(content[0].get("message") or "")
    return str(getattr(exc, "status", ""))


def _timeout_text(exc: requests.RequestException, session: TracingSession) -> str:
    """The timeout that ran out, with its setting, for the message of a timed-out request."""
    connect, read = session.timeout
    if isinstance(exc, requests.ConnectTimeout):
        return f"{connect:g} s (connect_timeout_seconds)"
    return f"{read:g} s (read_timeout_seconds)"


_trust_files: dict[str, str] = {}


def _trust(ca_bundle: str) -> str:
    """`ca_bundle` adds to the public CAs: requests' `verify` replaces them, so join both."""
    if ca_bundle in _trust_files:
        return _trust_files[ca_bundle]
    try:
        extra = Path(ca_bundle).read_text()
    except OSError as exc:
        raise ConfigError(f"salesforce.ca_bundle: cannot read {ca_bundle}: {exc.strerror}") from exc
    public = ""
    for candidate in (os.environ.get("REQUESTS_CA_BUNDLE"), os.environ.get("CURL_CA_BUNDLE")):
        if candidate and Path(candidate).is_file():
            public = Path(candidate).read_text()
            break
    else:
        try:
            import certifi

            public = Path(certifi.where()).read_text()
        except (ImportError, OSError):
            public = ""
    handle = tempfile.NamedTemporaryFile("w", prefix="calsync-ca-", suffix=".pem", delete=False)
    with handle:
        handle.write(public + "\n" + extra)
    _trust_files[ca_bundle] = handle.name
    return handle.name
