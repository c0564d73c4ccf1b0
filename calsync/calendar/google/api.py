"""Google Calendar adapter: the calendar source (calendar/source.py) on Google Calendar v3.

`GoogleCalendar` implements `source.WatchableSource`; `calendar_factory` is the `CalendarFactory`
the wiring passes to the engine. Google's items are already in calsync's item format
(calendar/items.py) and pass through as they come; the credentials are read by credentials.py.

Every listing sends the same parameters (singleEvents=false, showDeleted=true, maxResults=2500)
on the full and the incremental sync; only the full one adds timeMin (reference A2, C2). The
nextSyncToken comes from the last page only; the caller stores it after applying everything.

Client errors are mapped here (reference A7): 410 → SyncTokenExpired; 400 to a request carrying
the stored sync token → SyncTokenRefused (dropped like a 410); 403/429 rate limits, 5xx and
network failures → TransientError (after the retries of `google_clients.GoogleHttp`); refused
credentials → AuthError. Nothing outside this package (this module, credentials.py and
clients.py: the per-process clients, one key parse, one API client, reused tokens and
connections, the request budget) imports the Google client libraries.

Every page is checked before anything of the listing is used (`check_page`): `items` a list of
objects, `nextPageToken`/`nextSyncToken` non-empty strings, a page token never repeated, the last
page carrying a nextSyncToken. A page that fails fails the listing (TransientError): a listing
cut short would look like deleted meetings on a full sync, and a bogus token would be stored.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import google.auth.exceptions
import httplib2
from googleapiclient.errors import HttpError

from calsync.core import logs, network
from calsync.core.errors import (
    AuthError,
    CalsyncError,
    SyncTokenExpired,
    SyncTokenRefused,
    TransientError,
)
from calsync.core.config import DEFAULT_SCOPES
from calsync.calendar.google.clients import GoogleClients, clients_for
from calsync.calendar.google.errors import calendar_refusal, token_refusal
from calsync.calendar.source import Listing, Watched

log = logging.getLogger("calsync.google")  # names predate the layers (ARCHITECTURE.md)

DEFAULT_SCOPES = ("https://www.googleapis.com/auth/calendar.readonly",)
MAX_RESULTS = 2500  # the most Google gives per page (reference A1): fewer calls on a full sync
# Seconds a request may take to connect, and again to answer ([google] timeout_seconds). httplib2
# applies one socket timeout to both; the token request goes through the same Http.
HTTP_TIMEOUT = 60


class GoogleCalendar:
    """Lists one user's primary calendar (and opens and stops its notification channels): a
    `source.WatchableSource`.

    Made by `calendar_factory` from the process's `GoogleClients` (google_clients.py): the
    parsed key, the user's credentials, the API client and this thread's connections are
    shared, so making one per poll costs nothing. Safe in any thread, one call at a time.
    Given bare `credentials` (calsync auth, tests), it gets clients of its own.
    """

    def __init__(
        self,
        user: str,
        credentials: Any = None,
        *,
        api_endpoint: str | None = None,
        timeout: float = HTTP_TIMEOUT,
        clients: GoogleClients | None = None,
    ) -> None:
        self.user = user
        if clients is None:
            clients = GoogleClients(
                _Standalone(api_endpoint, float(timeout)), credentials=credentials
            )
        self._clients = clients
        self.timeout = clients.timeout
        self.api_endpoint = clients.cfg.api_endpoint or "https://www.googleapis.com/"
        self.calls = 0  # requests made (events.list pages, probes), failed ones included
        self._events = clients.events()

    def _http(self) -> Any:
        return self._clients.http(self.user)

    def list_changes(self, sync_token: str | None, time_min: dt.datetime) -> Listing:
        """All changes since `sync_token`, or a full listing from `time_min` when it is None."""
        params: dict[str, Any] = {
            "calendarId": "primary",
            "singleEvents": False,
            "showDeleted": True,
            "maxResults": MAX_RESULTS,
        }
        if sync_token:
            params["syncToken"] = sync_token
        else:
            params["timeMin"] = time_min.astimezone(dt.timezone.utc).isoformat().replace(
                "+00:00", "Z"
            )
        return self._list_all(params, full=not sync_token, incremental=bool(sync_token))

    def list_series(self, ical_uid: str) -> Listing:
        """Every item of one meeting (a series master and all its exceptions), whenever it is.

        events.list with `iCalUID` and no time bounds (reference A1, A4): what a windowed
        listing leaves out of a series that began before the window.
        """
        params: dict[str, Any] = {
            "calendarId": "primary",
            "iCalUID": ical_uid,
            "singleEvents": False,
            "showDeleted": True,
            "maxResults": MAX_RESULTS,
        }
        return self._list_all(params, full=False, token_needed=False)

    def get_event(self, event_id: str) -> dict[str, Any] | None:
        """events.get: the item as Google holds it now, or None when Google no longer has it.

        `get` returns cancelled events too (reference A3), so None (404, or 410 `deleted`) is the
        evidence that the event is gone; every other error is raised as for a listing.
        """
        request = self._events.get(calendarId="primary", eventId=event_id)
        try:
            return self._execute(request, self._http(), missing_ok=True)
        except _Missing:
            return None

    def _list_all(
        self,
        params: dict[str, Any],
        *,
        full: bool,
        incremental: bool = False,
        token_needed: bool = True,
    ) -> Listing:
        """Every page of one events.list, each checked before anything of it is used.

        `token_needed`: the last page must carry a nextSyncToken (a listing calsync continues
        from); an iCalUID listing is read once and its token, if any, is not kept."""
        items: list[dict[str, Any]] = []
        calls = 0
        page_token: str | None = None
        seen: set[str] = set()
        http = self._http()
        while True:
            request = self._events.list(
                **params, **({"pageToken": page_token} if page_token else {})
            )
            calls += 1
            page = self._execute(request, http, incremental=incremental)
            problem = check_page(page, seen, token_needed=token_needed)
            if problem:
                raise TransientError(
                    f"Google Calendar sent a malformed page (page {calls}) for {self.user}: "
                    f"{problem}; nothing of this listing was applied"
                )
            items.extend(page.get("items") or [])
            page_token = page.get("nextPageToken")
            if not page_token:
                zone = page.get("timeZone")
                return Listing(
                    tuple(items), page.get("nextSyncToken"), full, calls,
                    zone if isinstance(zone, str) and zone else None,
                )
            seen.add(page_token)
            log.debug("listing page", extra={"fields": {"user": self.user, "items": len(items)}})

    def probe(self) -> str | None:
        """One events.list with maxResults=1 on `primary` (doctor, auth): whose calendar it is.

        Raises the same mapped errors as a listing (AuthError for refused credentials, ...).
        """
        request = self._events.list(calendarId="primary", maxResults=1)
        summary = self._execute(request, self._http()).get("summary")
        return summary.lower() if isinstance(summary, str) and "@" in summary else None

    def watch(self, channel_id: str, address: str, token: str, ttl: dt.timedelta) -> Watched:
        """events.watch on `primary`: open a notification channel (Google's push guide).

        Google posts to `address` with `token` in X-Goog-Channel-Token; `ttl` is asked for in
        `params.ttl` (seconds), and the expiration Google grants comes back in the answer.
        """
        body = {
            "id": channel_id,
            "type": "web_hook",
            "address": address,
            "token": token,
            "params": {"ttl": str(max(1, int(ttl.total_seconds())))},
        }
        answer = self._execute(self._events.watch(calendarId="primary", body=body), self._http())
        resource_id = answer.get("resourceId")
        if not isinstance(resource_id, str) or not resource_id:
            raise TransientError(f"events.watch for {self.user} answered without a resourceId")
        expires = None
        try:
            expires = dt.datetime.fromtimestamp(int(answer["expiration"]) / 1000, dt.timezone.utc)
        except (KeyError, TypeError, ValueError, OverflowError):
            pass  # no expiration given: the caller renews after the ttl it asked for
        return Watched(str(answer.get("id") or channel_id), resource_id, expires)

    def stop_channel(self, channel_id: str, resource_id: str | None) -> bool:
        """channels.stop; False when Google no longer knows the channel (404: expired, lost)."""
        body: dict[str, Any] = {"id": channel_id}
        if resource_id:
            body["resourceId"] = resource_id
        request = self._clients.channels().stop(body=body)
        try:
            self._execute(request, self._http(), missing_ok=True, empty_ok=True)
        except _Missing:
            return False
        return True

    def _execute(
        self, request: Any, http: Any, *, incremental: bool = False, missing_ok: bool = False,
        empty_ok: bool = False,
    ) -> dict[str, Any]:
        self.calls += 1
        try:
            # Retries happen in `http` (GoogleHttp), each one counted against the budget.
            result = request.execute(http=http, num_retries=0)
        except HttpError as exc:
            if missing_ok and exc.resp.status in (404, 410):
                raise _Missing() from exc
            raise _map_http_error(exc, self.user, incremental, **self._who()) from exc
        except google.auth.exceptions.RefreshError as exc:
            what, remedy = token_refusal(_refresh_reason(exc), self.user, **self._who())
            raise AuthError(f"{what}; {remedy}", remedy=remedy) from exc
        except google.auth.exceptions.TransportError as exc:
            creds = self._clients.credentials(self.user)
            token_uri = (getattr(creds, "_token_uri", None)  # service account
                         or getattr(creds, "token_uri", None)  # installed app
                         or "https://oauth2.googleapis.com/token")
            raise self._unreachable(exc, "Google's token endpoint", str(token_uri),
                                    "the token_uri of the Google key or client file") from exc
        except (OSError, httplib2.HttpLib2Error) as exc:
            raise self._unreachable(exc, "Google Calendar", self.api_endpoint,
                                    "google.api_endpoint") from exc
        if empty_ok and result in ("", None):
            return {}  # channels.stop answers 204 with no body
        if not isinstance(result, dict):
            raise TransientError("Google Calendar answered with something that is not JSON")
        return result

    def _who(self) -> dict[str, Any]:
        """How calsync gets its Google credentials, for the remedies (google_errors.py)."""
        cfg = self._clients.cfg
        return {"mode": getattr(cfg, "mode", "service_account"),
                "scopes": tuple(getattr(cfg, "scopes", None) or DEFAULT_SCOPES)}

    def _unreachable(self, exc: BaseException, service: str, url: str, setting: str) -> CalsyncError:
        """Host, cause and remedy of a request that got no answer (network.py)."""
        return network.failure(
            exc, url, service=service, setting=setting,
            trust="put a CA bundle that includes it in HTTPLIB2_CA_CERTS (the unit's environment)",
            timeout=f"{self.timeout:g} s (timeout_seconds)",
        )


class _Missing(Exception):
    """events.get answered 404/410: the event is gone (only raised inside this module)."""


def check_page(page: Mapping[str, Any], seen: set[str], *, token_needed: bool = True) -> str | None:
    """What is wrong with one events.list page (reference A1), or None.

    `seen` holds the page tokens already followed: one coming back would page forever.
    `token_needed`: a last page without nextSyncToken is wrong (a listing calsync continues from).
    """
    items = page.get("items")
    if items is not None:
        if not isinstance(items, list):
            return f"items is {_kind(items)}, not a list"
        for item in items:
            if not isinstance(item, dict):
                return f"an item is {_kind(item)}, not an object"
    for name in ("nextPageToken", "nextSyncToken"):
        value = page.get(name)
        if value is not None and (not isinstance(value, str) or not value):
            return f"{name} is {_kind(value)}, not a token"
    page_token = page.get("nextPageToken")
    if token_needed and page_token is None and page.get("nextSyncToken") is None:
        return "the last page carries no nextSyncToken"
    if page_token is not None and page_token in seen:
        return "a nextPageToken came back a second time"
    return None


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return "an empty string" if not value else "a string"
    names = {dict: "an object", list: "a list", bool: "a boolean", int: "a number",
             float: "a number", type(None): "null"}
    return names.get(type(value), f"a {type(value).__name__}")


def _reason(exc: HttpError) -> str:
    """The machine reason (`errors[0].reason`), not HttpError.reason, which is the message."""
    try:
        body = json.loads(exc.content)
        return str(body["error"]["errors"][0]["reason"])
    except (ValueError, KeyError, IndexError, TypeError):
        return ""


def _message(exc: HttpError) -> str:
    """Google's own message (`error.message`), or ''."""
    try:
        return str(json.loads(exc.content)["error"]["message"])
    except (ValueError, KeyError, IndexError, TypeError):
        return ""


def _map_http_error(
    exc: HttpError, user: str, incremental: bool = False, *, mode: str = "service_account",
    scopes: tuple[str, ...] = (),
) -> CalsyncError:
    status = exc.resp.status
    reason = _reason(exc)
    text = f"Google Calendar answered {status} {reason or ''} for {user}".strip()
    rate_limit = status == 403 and ("Limit" in reason or reason == "quotaExceeded")
    if status in (401, 404) or (status == 403 and not rate_limit):
        # Credentials, delegation, the API or the user: the cause and the remedy, with Google's
        # own words (google_errors.py).
        what, remedy = calendar_refusal(status, reason, _message(exc), user, mode=mode,
                                        scopes=scopes or DEFAULT_SCOPES)
        return AuthError(f"{what}; {remedy}", remedy=remedy)
    if status == 410:
        return SyncTokenExpired(text)
    if status == 400 and incremental:
        # Our parameters are the same as on the full listing that gave the token, so the token
        # is what Google refuses: waiting will not mend it (reference A2).
        return SyncTokenRefused(f"{text}: the stored sync token was refused")
    if status == 429 or status >= 500 or (status == 403 and "Limit" in reason) or reason in (
        "rateLimitExceeded",
        "userRateLimitExceeded",
        "quotaExceeded",
    ):
        return TransientError(text)
    return CalsyncError(text)


def _refresh_reason(exc: google.auth.exceptions.RefreshError) -> str:
    # RefreshError's first argument is "<error>: <error_description>" (reference A9); the
    # second is the raw body, which may echo the assertion: never show it. The description
    # itself may echo the request (some gateways do): redacted, and cut.
    return logs.excerpt(str(exc.args[0])) if exc.args else "refused"


@dataclass(frozen=True)
class _Standalone:
    """The `[google]` settings a GoogleCalendar made from bare credentials needs."""

    api_endpoint: str | None
    timeout_seconds: float
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    service_account_file: None = None
    token_dir: None = None


def calendar_factory(cfg: Any) -> Any:
    """`user → GoogleCalendar` for `config.GoogleConfig` (service account or installed app).

    Every calendar it makes shares the process's clients for this configuration
    (`google_clients.clients_for`): one key parse, one API client, tokens and connections
    reused across calendars and cycles.
    """
    clients = clients_for(cfg)

    def calendar_for(user: str) -> GoogleCalendar:
        return GoogleCalendar(user, clients=clients)

    return calendar_for
