"""The Calendar adapter's per-process objects, so that a poll costs one request and little else.

Measured before this module (issue 12): an idle poll of one calendar cost about 60 ms of CPU,
most of it parsing the service-account key again (`load_pem_private_key`, ~47 ms), building the
API client from the discovery document (~10 ms) and fetching a new delegated token. Now, per
process and per Google configuration (`clients_for`):

- the key file is parsed once (again only when the file changes: a rotated key is picked up);
  each user's delegated credentials are derived from it with `with_subject` (reference A9) and
  kept, so google-auth reuses their access token until shortly before it expires (its
  `REFRESH_THRESHOLD`, 3 min 45 s in google-auth 2.63): about one token request per user per
  hour with Google's one-hour tokens;
- the API client is built once; every request is executed with an `http` of its own
  (reference A10: httplib2 is not thread-safe, so a shared service object is only safe with
  an http per call), made of this thread's `httplib2.Http`, which keeps its connections open
  across requests, calendars and cycles, wrapped in `AuthorizedHttp` for the user's token;
- every attempt passes the process's `RequestBudget` (quota.py, reference A8). Retries are
  done here rather than by google-api-python-client (`execute(num_retries=0)`), with the same
  rules (≥ 500, 429, 403 rate limits, timeouts and dropped connections; 4 attempts in all), so
  that each retry is counted against the budget and a 429 pauses every thread, not one.

Nothing outside the adapter (this package) imports the Google client libraries. A throttled
answer is counted in `calsync_google_throttled{scope}` (core/telemetry.py, the instruments every
layer may count in).
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import google_auth_httplib2
import httplib2
from googleapiclient.discovery import build

from calsync.core import network, telemetry
from calsync.calendar.google.credentials import (
    installed_app_credentials,
    load_service_account,
    user_token_path,
)
from calsync.calendar.google.quota import Limits, RequestBudget, Scope

log = logging.getLogger("calsync.google_clients")  # names predate the layers (ARCHITECTURE.md)

RETRIES = 3  # 4 attempts in all, as google-api-python-client's execute(num_retries=3) made
# errno names google-api-python-client retries on (googleapiclient/http.py `_retry_request`).
_RETRIED_ERRNOS = frozenset({"WSAETIMEDOUT", "ETIMEDOUT", "EPIPE", "ECONNABORTED",
                             "ECONNREFUSED", "ECONNRESET"})
_RATE_REASONS = {"rateLimitExceeded": "project", "userRateLimitExceeded": "user",
                 "quotaExceeded": "quota"}


class GoogleHttp:
    """What `HttpRequest.execute(http=...)` calls: one user's token, the budget, the retries.

    httplib2-compatible (`request(uri, method, body, headers, ...)` → `(response, content)`).
    Token requests go through `AuthorizedHttp`'s own Request on the inner Http, not through
    here: the token endpoint is not part of the Calendar quota.
    """

    def __init__(
        self,
        credentials: Any,
        http: httplib2.Http,
        user: str,
        budget: RequestBudget,
        *,
        retries: int = RETRIES,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._authed = google_auth_httplib2.AuthorizedHttp(credentials, http=http)
        self.user = user
        self._budget = budget
        self._retries = retries
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.timeout = http.timeout

    def request(self, uri: str, method: str = "GET", body: Any = None,
                headers: dict[str, str] | None = None, **kwargs: Any) -> tuple[Any, bytes]:
        for attempt in range(self._retries + 1):
            if attempt:
                log.debug("retrying a Google request",
                          extra={"fields": {"user": self.user, "attempt": attempt + 1}})
            self._budget.acquire(self.user)
            try:
                response, content = self._authed.request(uri, method, body=body,
                                                         headers=headers, **kwargs)
            except Exception as exc:  # noqa: BLE001 - classified just below
                if attempt == self._retries or not _retried_exception(exc):
                    raise
                self._backoff(attempt)
                continue
            status = int(response.status)
            scope = _throttle_scope(status, content)
            if scope is not None:
                self._budget.throttled(self.user, scope)
                telemetry.GOOGLE_THROTTLED.labels(scope).inc()
                if scope != "quota" and attempt < self._retries:
                    continue  # acquire() waits out the pause the throttle set
                return response, content
            if status >= 500 and attempt < self._retries:
                self._backoff(attempt)
                continue
            if status < 300:
                self._budget.succeeded()
            return response, content
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int) -> None:
        # google-api-python-client's own rule: random() * 2**n seconds before retry n.
        self._sleep(self._rng.random() * 2 ** (attempt + 1))


def _retried_exception(exc: BaseException) -> bool:
    """The transport failures google-api-python-client retries (`_retry_request`)."""
    if isinstance(exc, (ssl.SSLError, socket.timeout, TimeoutError, ConnectionError,
                        httplib2.ServerNotFoundError)):
        return True
    if isinstance(exc, OSError):
        import errno

        return errno.errorcode.get(exc.errno or 0) in _RETRIED_ERRNOS
    return False


def _throttle_scope(status: int, content: bytes) -> Scope | None:
    """Which limit a "too many" answer is about (reference A7), or None for any other answer."""
    if status == 429:
        return "project"
    if status != 403 or not content:
        return None
    try:
        reason = json.loads(content.decode("utf-8"))["error"]["errors"][0]["reason"]
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, UnicodeDecodeError):
        return None
    scope = _RATE_REASONS.get(str(reason))
    return scope  # type: ignore[return-value]


class GoogleClients:
    """One Google configuration's credentials, API client, connections and budget.

    `credentials(user)`, `events()`/`channels()` (resources of the one API client) and
    `http(user)` (a fresh `GoogleHttp` on this thread's connections) are all a GoogleCalendar
    needs. Thread-safe. `parses` and `builds` count key parses and API client builds.
    """

    def __init__(
        self,
        cfg: Any,
        *,
        credentials: Any = None,
        budget: RequestBudget | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.cfg = cfg
        self.scopes = tuple(cfg.scopes)
        self.timeout = float(cfg.timeout_seconds)
        self._fixed = credentials  # a single user's credentials (calsync auth), else None
        self.budget = budget or RequestBudget(budget_limits(cfg))
        self._sleep = sleep
        self._rng = rng
        self._lock = threading.Lock()
        self._local = threading.local()
        self._key: tuple[tuple[int, int, int], Any] | None = None  # (file identity, parsed)
        self._users: dict[str, tuple[Any, Any]] = {}  # user → (source identity, credentials)
        self._service: Any = None
        self._events: Any = None
        self._channels: Any = None
        self.parses = 0
        self.builds = 0

    # -- credentials ------------------------------------------------------------------------------

    def credentials(self, user: str) -> Any:
        """`user`'s credentials, the same object every time while their source is unchanged
        (so its access token is reused until google-auth finds it about to expire)."""
        if self._fixed is not None:
            return self._fixed
        if self.cfg.service_account_file is not None:
            base, identity = self._service_account()
            with self._lock:
                known = self._users.get(user)
                if known is not None and known[0] == identity:
                    return known[1]
                creds = base.with_subject(user)  # a copy: the parsed key is shared (reference A9)
                self._users[user] = (identity, creds)
                return creds
        path = user_token_path(self.cfg.token_dir, user)
        identity = _identity(path)
        with self._lock:
            known = self._users.get(user)
            if known is not None and identity is not None and known[0] == identity:
                return known[1]
        creds = installed_app_credentials(self.cfg.token_dir, user, self.scopes)
        with self._lock:
            self._users[user] = (identity, creds)
        return creds

    def _service_account(self) -> tuple[Any, tuple[int, int, int]]:
        """The key file parsed once; again only when the file itself changed."""
        path = Path(self.cfg.service_account_file)
        identity = _identity(path)
        with self._lock:
            if self._key is not None and identity is not None and self._key[0] == identity:
                return self._key[1], self._key[0]
            base = load_service_account(path, self.scopes)  # ConfigError when missing/bad
            self.parses += 1
            stamp = identity or (0, 0, 0)
            self._key = (stamp, base)
            self._users.clear()
            return base, stamp

    # -- the API client and connections -----------------------------------------------------------

    def service(self) -> Any:
        """The Calendar API client, built once from the bundled discovery document.

        Built with a throwaway Http and no credentials (nothing is sent through them): every
        request is executed with `http(user)` instead (reference A10).
        """
        with self._lock:
            if self._service is None:
                options = {"api_endpoint": self.cfg.api_endpoint} if self.cfg.api_endpoint else None
                self._service = build(
                    "calendar", "v3", http=httplib2.Http(timeout=self.timeout),
                    static_discovery=True, cache_discovery=False, client_options=options,
                )
                self._events = self._service.events()
                self._channels = self._service.channels()
                self.builds += 1
            return self._service

    def events(self) -> Any:
        self.service()
        return self._events

    def channels(self) -> Any:
        self.service()
        return self._channels

    def connection_pool(self) -> httplib2.Http:
        """This thread's httplib2.Http: its open connections serve every user and cycle."""
        http = getattr(self._local, "http", None)
        if http is None:
            http = network.TracingHttp(timeout=self.timeout)  # the debug request trace
            self._local.http = http
        return http

    def http(self, user: str) -> GoogleHttp:
        return GoogleHttp(self.credentials(user), self.connection_pool(), user, self.budget,
                          sleep=self._sleep, rng=self._rng)


def budget_limits(cfg: Any) -> Limits:
    """The share of Google's per-minute quotas calsync may use ([google] settings, A8)."""
    return Limits.share_of(
        int(getattr(cfg, "requests_per_minute", 10_000)),
        int(getattr(cfg, "requests_per_minute_per_user", 600)),
        float(getattr(cfg, "request_share", 1.0)),
    )


def _identity(path: Path) -> tuple[int, int, int] | None:
    """What tells a changed file from the same one, without reading it (None: not there)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


_CLIENTS: dict[tuple[Any, ...], GoogleClients] = {}
_CLIENTS_LOCK = threading.Lock()


def clients_for(cfg: Any) -> GoogleClients:
    """The process's GoogleClients for this `[google]` configuration.

    Keyed by what the clients are made of (credentials source, endpoint, scopes, timeout,
    budget), so a reload that changes something else (the push settings) keeps the parsed key,
    the tokens, the connections and the budget's count of the last minute.
    """
    key = (cfg.service_account_file, cfg.token_dir, cfg.api_endpoint, tuple(cfg.scopes),
           float(cfg.timeout_seconds), budget_limits(cfg))
    with _CLIENTS_LOCK:
        clients = _CLIENTS.get(key)
        if clients is None:
            clients = _CLIENTS[key] = GoogleClients(cfg)
        return clients


def forget_clients() -> None:
    """Drop every cached client (tests that count parses, builds or connections from zero)."""
    with _CLIENTS_LOCK:
        _CLIENTS.clear()


__all__ = ["GoogleClients", "GoogleHttp", "budget_limits", "clients_for", "forget_clients"]
