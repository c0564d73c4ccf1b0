"""HTTP side of the Google emulator: one method per API action (parse, call backend, render).

Served on one port:
- Calendar v3 `events.list` / `events.get`, `events.watch` and `channels.stop` (push.py), at
  the root and under `/calendar/v3/` (the real client's `api_endpoint` may be either, A10);
- Google OAuth: `POST /token` and `GET /o/oauth2/auth` (reference A9);
- the control API under `/_control/` (JSON) that tests and `calsync sandbox` use to seed and
  script the emulator.

Every failure answers with Google's own body (errors.py), never a traceback.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import jwt

from calsync.sandbox.google.backend import GoogleBackend
from calsync.sandbox.google.errors import (
    SYNC_TOKEN_COMBINATION_MESSAGE,
    GoogleError,
    OAuthError,
    google_error,
    google_error_body,
    invalid_value,
)
from calsync.sandbox.google.eventtime import parse_instant, rfc3339
from calsync.sandbox.google.listing import (
    DEFAULT_MAX_RESULTS,
    MAX_MAX_RESULTS,
    EventsPage,
    ListQuery,
)
from calsync.sandbox.google.oauth import CALENDAR_SCOPES
from calsync.sandbox.server import Emulator, Fault, Request, Response, fault_from_json

log = logging.getLogger(__name__)

_API = r"(?:/calendar/v3)?"
# Parameters that cannot go with syncToken (reference A2).
_NOT_WITH_SYNC_TOKEN = (
    "iCalUID", "orderBy", "privateExtendedProperty", "q", "sharedExtendedProperty",
    "timeMin", "timeMax", "updatedMin",
)


class GoogleEmulator(Emulator):
    """Google Calendar v3 + Google OAuth on loopback; state in `.backend` (a GoogleBackend)."""

    scheme = "http"

    def __init__(self, clock: Callable[[], dt.datetime] | None = None) -> None:
        super().__init__()
        self.backend = GoogleBackend(clock)
        GoogleRoutes(self).register()

    def reset(self, clock: Callable[[], dt.datetime] | None = None) -> GoogleBackend:
        """Forget all state (a fresh backend), faults and seen requests; keep serving.

        Lets a test session share one server (stopping one costs ~0.5 s of serve_forever poll).
        """
        backend = GoogleBackend(clock)
        backend.base_url = self.backend.base_url
        self.backend.push.close()
        self.backend = backend
        self.faults.clear()
        with self._seen_lock:
            self.requests_seen.clear()
            self.answers.clear()
        return backend

    def start(self, host: str = "127.0.0.1", port: int = 0) -> "GoogleEmulator":
        super().start(host, port)
        self.backend.base_url = self.url  # key files and client secrets point here
        return self

    def stop(self) -> None:
        self.backend.push.close()
        super().stop()

    def not_found(self, request: Request, method_not_allowed: bool = False) -> Response:
        return _google(GoogleError(404, "notFound"))

    def internal_error(self) -> Response:
        return _google(GoogleError(500, "backendError"))

    def fail_next(
        self,
        reason: str,
        times: int = 1,
        path_prefix: str = "",
        status: int | None = None,
        method: str | None = "GET",
        message: str | None = None,
        user: str = "",
    ) -> Fault:
        """Answer the next `times` matching requests with Google's error for `reason`.

        `method` defaults to GET so the POST /token of a fresh credential is not hit; `status`
        picks a variant (429 rateLimitExceeded, 503 backendError; reference A7). `user`: only
        the requests of that user's calendar (`request_user`).
        """
        code, body = google_error(status, reason, message)
        return self.faults.add(
            Fault(status=code, body=body, method=method, path_prefix=path_prefix, times=times,
                  user=user)
        )

    def request_user(self, request: Request) -> str | None:
        """The user a request is for: the owner of its access token (Calendar API), or the `sub`
        of the JWT assertion it trades for one (POST /token with delegation, reference A9)."""
        token = self.backend.auth.authenticate(request.bearer)
        if token is not None:
            return token.user
        if request.method == "POST" and request.path.endswith("/token"):
            try:
                assertion = request.form().get("assertion")
                if assertion:
                    claims = jwt.decode(assertion, options={"verify_signature": False})
                    subject = claims.get("sub")
                    return subject.lower() if isinstance(subject, str) else None
            except (jwt.PyJWTError, UnicodeDecodeError, ValueError):
                return None
        return None


def _google(error: GoogleError) -> Response:
    body = error.body()
    if error.reason == "insufficientPermissions":
        body["error"]["status"] = "PERMISSION_DENIED"
    return Response(error.status, body)


def _control_error(status: int, message: str) -> Response:
    return Response(status, {"error": message})


def _bool(request: Request, name: str) -> bool:
    value = request.arg(name)
    if value is None:
        return False
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise invalid_value(name)


def _int(request: Request, name: str) -> int | None:
    value = request.arg(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise invalid_value(name) from None


def _instant(request: Request, name: str) -> dt.datetime | None:
    value = request.arg(name)
    if value is None:
        return None
    try:
        # Milliseconds are ignored (reference A1).
        return parse_instant(value).replace(microsecond=0)
    except ValueError:
        raise invalid_value(name) from None


def parse_list_query(request: Request) -> ListQuery:
    """events.list parameters → ListQuery; GoogleError 400 for what Google refuses (A1, A2)."""
    sync_token = request.arg("syncToken")
    if sync_token is not None:
        clashing = [name for name in _NOT_WITH_SYNC_TOKEN if request.arg(name) is not None]
        if clashing:
            raise GoogleError(400, "invalid", SYNC_TOKEN_COMBINATION_MESSAGE)
    max_results = _int(request, "maxResults")
    if max_results is None:
        max_results = DEFAULT_MAX_RESULTS
    elif max_results < 1:
        raise invalid_value("maxResults")
    max_results = min(max_results, MAX_MAX_RESULTS)  # larger values are capped (reference A1)
    single_events = _bool(request, "singleEvents")
    time_min, time_max = _instant(request, "timeMin"), _instant(request, "timeMax")
    if time_min is not None and time_max is not None and time_max <= time_min:
        raise GoogleError(400, "timeRangeEmpty")
    order_by = request.arg("orderBy")
    if order_by not in (None, "startTime", "updated"):
        raise invalid_value("orderBy")
    if order_by == "startTime" and not single_events:
        raise GoogleError(
            400, "invalid", "The requested ordering is not available for the particular query."
        )
    max_attendees = _int(request, "maxAttendees")
    if max_attendees is not None and max_attendees < 1:
        raise invalid_value("maxAttendees")
    page_token = request.arg("pageToken")
    if page_token is not None and not page_token:
        raise invalid_value("pageToken")
    return ListQuery(
        max_results=max_results,
        page_token=page_token,
        sync_token=sync_token,
        show_deleted=_bool(request, "showDeleted"),
        single_events=single_events,
        time_min=time_min,
        time_max=time_max,
        updated_min=_instant(request, "updatedMin"),
        order_by=order_by,
        ical_uid=request.arg("iCalUID"),
        q=request.arg("q"),
        max_attendees=max_attendees,
    )


def render_events(page: EventsPage) -> dict[str, Any]:
    """The `calendar#events` body (reference A1): exactly one of the two tokens."""
    body: dict[str, Any] = {
        "kind": "calendar#events",
        "etag": f'"p{int(page.updated.timestamp() * 1000):x}"',
        "summary": page.calendar,
        "updated": rfc3339(page.updated),
        "timeZone": page.time_zone,
        "accessRole": "owner",
        "defaultReminders": [{"method": "popup", "minutes": 10}],
    }
    if page.next_page_token is not None:
        body["nextPageToken"] = page.next_page_token
    body["items"] = page.items
    if page.next_sync_token is not None:
        body["nextSyncToken"] = page.next_sync_token
    return body


class GoogleRoutes:
    """The handlers; each parses the request, calls the backend and renders the answer."""

    def __init__(self, emulator: GoogleEmulator) -> None:
        self.emulator = emulator

    @property
    def backend(self) -> GoogleBackend:
        return self.emulator.backend  # read each time: reset() swaps it

    def register(self) -> None:
        route = self.emulator.route
        route("GET", _API + r"/calendars/(?P<calendar_id>[^/]+)/events", self.events_list)
        route(
            "GET",
            _API + r"/calendars/(?P<calendar_id>[^/]+)/events/(?P<event_id>[^/]+)",
            self.events_get,
        )
        route(
            "POST", _API + r"/calendars/(?P<calendar_id>[^/]+)/events/watch", self.events_watch
        )
        route("POST", _API + r"/channels/stop", self.channels_stop)
        route("POST", r"/token", self.token)
        route("GET", r"/o/oauth2/auth", self.authorize)
        control: list[tuple[str, str, Callable[[Request, re.Match[str]], Any]]] = [
            ("GET", r"/users", self.c_list_users),
            ("POST", r"/users", self.c_add_user),
            ("POST", r"/users/rename", self.c_rename_user),
            ("GET", r"/calendars/(?P<user>[^/]+)/events", self.c_calendar_events),
            ("POST", r"/events", self.c_create_event),
            ("PATCH", r"/events/(?P<event_id>[^/]+)", self.c_update_event),
            ("DELETE", r"/events/(?P<event_id>[^/]+)", self.c_delete_event),
            ("POST", r"/events/(?P<event_id>[^/]+)/restore", self.c_restore_event),
            ("POST", r"/events/(?P<event_id>[^/]+)/respond", self.c_respond),
            ("POST", r"/events/(?P<event_id>[^/]+)/occurrences", self.c_modify_occurrence),
            ("POST", r"/events/(?P<event_id>[^/]+)/occurrences/cancel", self.c_cancel_occurrence),
            ("POST", r"/events/(?P<event_id>[^/]+)/split", self.c_split_series),
            ("POST", r"/events/(?P<event_id>[^/]+)/copy-fields", self.c_copy_fields),
            ("POST", r"/sync-tokens/invalidate", self.c_invalidate),
            ("POST", r"/deleted/purge", self.c_purge_deleted),
            ("GET", r"/faults", self.c_list_faults),
            ("POST", r"/faults", self.c_add_fault),
            ("DELETE", r"/faults", self.c_clear_faults),
            ("POST", r"/service-accounts", self.c_service_account),
            ("POST", r"/oauth-clients", self.c_oauth_client),
            ("POST", r"/consent", self.c_consent),
            ("POST", r"/tokens", self.c_token),
            ("POST", r"/settings", self.c_settings),
            ("GET", r"/stats", self.c_stats),
            ("GET", r"/push/channels", self.c_push_channels),
            ("GET", r"/push/deliveries", self.c_push_deliveries),
            ("POST", r"/push/settings", self.c_push_settings),
            ("POST", r"/push/forget", self.c_push_forget),
        ]
        for method, pattern, handler in control:
            route(method, r"/_control" + pattern, self._control(handler))

    # -- Calendar API -------------------------------------------------------------------

    def _calendar_for(self, request: Request, calendar_id: str) -> str:
        token = self.backend.authenticate(request.bearer)
        if not token.scopes & CALENDAR_SCOPES:
            raise GoogleError(
                403, "insufficientPermissions", "Request had insufficient authentication scopes."
            )
        return self.backend.resolve_calendar(token, unquote(calendar_id))

    def events_list(self, request: Request, match: re.Match[str]) -> Response:
        try:
            calendar = self._calendar_for(request, match["calendar_id"])
            query = parse_list_query(request)
            page = self.backend.list_events(calendar, query)
        except GoogleError as error:
            return _google(error)
        return Response(200, render_events(page))

    def events_get(self, request: Request, match: re.Match[str]) -> Response:
        try:
            calendar = self._calendar_for(request, match["calendar_id"])
            event = self.backend.get_event(calendar, unquote(match["event_id"]))
        except GoogleError as error:
            return _google(error)
        if event is None:
            return _google(GoogleError(404, "notFound"))
        return Response(200, event)

    def events_watch(self, request: Request, match: re.Match[str]) -> Response:
        """events.watch (push.py): a notification channel on the calendar's events."""
        try:
            token = self.backend.authenticate(request.bearer)
            calendar = self._calendar_for(request, match["calendar_id"])
            try:
                body = request.json()
            except ValueError:
                raise GoogleError(400, "parseError", "Parse Error") from None
            channel = self.backend.push.watch(calendar, token.user or "", body)
        except GoogleError as error:
            return _google(error)
        return Response(200, channel)

    def channels_stop(self, request: Request, match: re.Match[str]) -> Response:
        """channels.stop: 204 and no body (push.py)."""
        try:
            token = self.backend.authenticate(request.bearer)
            try:
                body = request.json()
            except ValueError:
                raise GoogleError(400, "parseError", "Parse Error") from None
            self.backend.push.stop(token.user or "", body)
        except GoogleError as error:
            return _google(error)
        return Response(204)

    # -- OAuth ----------------------------------------------------------------------------

    def token(self, request: Request, match: re.Match[str]) -> Response:
        try:
            answer = self.backend.auth.token(request.form(), request.headers.get("authorization"))
        except OAuthError as error:
            return Response(error.status, error.body(), {"Cache-Control": "no-store"})
        except UnicodeDecodeError:
            return Response(400, {"error": "invalid_request", "error_description": "Bad body"})
        return Response(200, answer, {"Cache-Control": "no-store", "Pragma": "no-cache"})

    def authorize(self, request: Request, match: re.Match[str]) -> Response:
        params = {name: values[-1] for name, values in request.query.items()}
        try:
            location = self.backend.auth.authorize(params)
        except OAuthError as error:
            # Google shows the person an error page, not JSON.
            page = f"<html><body><h1>Error {error.status}: {error.error}</h1>" \
                   f"<p>{error.description}</p></body></html>"
            return Response(error.status, page, content_type="text/html; charset=utf-8")
        return Response(302, b"", {"Location": location})

    # -- control API ----------------------------------------------------------------------

    def _control(
        self, handler: Callable[[Request, re.Match[str]], Any]
    ) -> Callable[[Request, re.Match[str]], Response]:
        def wrapped(request: Request, match: re.Match[str]) -> Response:
            try:
                result = handler(request, match)
            except json.JSONDecodeError as exc:
                return _control_error(400, f"body is not JSON: {exc}")
            except KeyError as exc:
                return _control_error(404, str(exc.args[0]) if exc.args else "not found")
            except (ValueError, TypeError, AttributeError) as exc:
                return _control_error(400, str(exc))
            if isinstance(result, Response):
                return result
            return Response(200, result)

        return wrapped

    @staticmethod
    def _json(request: Request) -> dict[str, Any]:
        data = request.json()
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ValueError("body must be a JSON object")
        return data

    @staticmethod
    def _field(data: dict[str, Any], name: str) -> Any:
        if name not in data:
            raise ValueError(f"missing field {name!r}")
        return data[name]

    def c_list_users(self, request: Request, match: re.Match[str]) -> Any:
        return {"users": [vars(u) for u in self.backend.users.values()]}

    def c_add_user(self, request: Request, match: re.Match[str]) -> Any:
        data = self._json(request)
        user = self.backend.add_user(
            str(self._field(data, "email")),
            data.get("display_name"),
            data.get("time_zone") or "UTC",
        )
        return Response(201, vars(user))

    def c_rename_user(self, request: Request, match: re.Match[str]) -> Any:
        """A Workspace rename (backend.rename_user): body {"old": ..., "new": ...}."""
        data = self._json(request)
        user = self.backend.rename_user(str(self._field(data, "old")), str(self._field(data, "new")))
        return vars(user)

    def c_calendar_events(self, request: Request, match: re.Match[str]) -> Any:
        include = (request.arg("include_deleted") or "true").lower() != "false"
        items = self.backend.calendar_events(unquote(match["user"]), include_deleted=include)
        return {"items": items}

    def c_create_event(self, request: Request, match: re.Match[str]) -> Any:
        data = self._json(request)
        event = self._field(data, "event")
        if not isinstance(event, dict):
            raise ValueError("'event' must be an object")
        return Response(201, self.backend.create_event(self._field(data, "organizer"), event))

    def c_update_event(self, request: Request, match: re.Match[str]) -> Any:
        return self.backend.update_event(unquote(match["event_id"]), self._json(request))

    def c_delete_event(self, request: Request, match: re.Match[str]) -> Any:
        self.backend.delete_event(unquote(match["event_id"]))
        return Response(204)

    def c_restore_event(self, request: Request, match: re.Match[str]) -> Any:
        return self.backend.restore_event(unquote(match["event_id"]))

    def c_respond(self, request: Request, match: re.Match[str]) -> Any:
        data = self._json(request)
        self.backend.respond(
            str(self._field(data, "user")),
            unquote(match["event_id"]),
            str(self._field(data, "status")),
        )
        return {"ok": True}

    def c_modify_occurrence(self, request: Request, match: re.Match[str]) -> Any:
        data = self._json(request)
        return self.backend.modify_occurrence(
            unquote(match["event_id"]),
            self._field(data, "original_start"),
            data.get("changes") or {},
        )

    def c_cancel_occurrence(self, request: Request, match: re.Match[str]) -> Any:
        data = self._json(request)
        instance_id = self.backend.cancel_occurrence(
            unquote(match["event_id"]), self._field(data, "original_start")
        )
        return {"id": instance_id}

    def c_split_series(self, request: Request, match: re.Match[str]) -> Any:
        data = self._json(request)
        return self.backend.split_series(
            unquote(match["event_id"]),
            self._field(data, "at_original_start"),
            data.get("changes") or {},
        )

    def c_copy_fields(self, request: Request, match: re.Match[str]) -> Any:
        data = self._json(request)
        self.backend.set_copy_fields(
            str(self._field(data, "user")), unquote(match["event_id"]),
            dict(self._field(data, "fields")),
        )
        return {"ok": True}

    def c_invalidate(self, request: Request, match: re.Match[str]) -> Any:
        data = self._json(request)
        return {"invalidated": self.backend.invalidate_sync_tokens(data.get("user"))}

    def c_purge_deleted(self, request: Request, match: re.Match[str]) -> Any:
        data = self._json(request)
        return {"purged": self.backend.purge_deleted(data.get("user"))}

    def c_list_faults(self, request: Request, match: re.Match[str]) -> Any:
        return {"faults": [vars(f) for f in self.emulator.faults.pending()]}

    def c_add_fault(self, request: Request, match: re.Match[str]) -> Any:
        """Either a Fault's fields, or `{"reason": ..., "status"?, "times"?, "path_prefix"?,
        "method"?, "message"?, "user"?}` for Google's body of that reason (`user`: only that
        user's calendar)."""
        data = self._json(request)
        if "reason" in data:
            allowed = {"reason", "status", "times", "path_prefix", "method", "message", "user"}
            unknown = set(data) - allowed
            if unknown:
                raise ValueError(f"unknown fault fields: {sorted(unknown)}")
            fault = self.emulator.fail_next(**data)
        else:
            fault = self.emulator.faults.add(fault_from_json(data))
        return Response(201, vars(fault))

    def c_clear_faults(self, request: Request, match: re.Match[str]) -> Any:
        self.emulator.faults.clear()
        return Response(204)

    def c_service_account(self, request: Request, match: re.Match[str]) -> Any:
        data = self._json(request)
        allowed = {"client_email", "delegated_scopes"}
        if set(data) - allowed:
            raise ValueError(f"unknown fields: {sorted(set(data) - allowed)}")
        return Response(201, self.backend.create_service_account(**data))

    def c_oauth_client(self, request: Request, match: re.Match[str]) -> Any:
        return Response(201, self.backend.create_oauth_client())

    def c_consent(self, request: Request, match: re.Match[str]) -> Any:
        data = self._json(request)
        self.backend.consent_as(data.get("email"))
        return {"ok": True}

    def c_token(self, request: Request, match: re.Match[str]) -> Any:
        data = self._json(request)
        user = str(self._field(data, "user"))
        if not self.backend.is_user(user):
            raise KeyError(f"no user {user!r}")
        scopes = data.get("scopes")
        token = (
            self.backend.issue_access_token(user, scopes)
            if scopes
            else self.backend.issue_access_token(user)
        )
        return {"access_token": token}

    def c_settings(self, request: Request, match: re.Match[str]) -> Any:
        data = self._json(request)
        if "sync_token_max_age_seconds" in data:
            self.backend.sync_token_max_age = dt.timedelta(
                seconds=float(data["sync_token_max_age_seconds"])
            )
        if "access_token_lifetime_seconds" in data:
            self.backend.access_token_lifetime = dt.timedelta(
                seconds=float(data["access_token_lifetime_seconds"])
            )
        return {
            "sync_token_max_age_seconds": self.backend.sync_token_max_age.total_seconds(),
            "access_token_lifetime_seconds": self.backend.access_token_lifetime.total_seconds(),
        }

    def c_push_channels(self, request: Request, match: re.Match[str]) -> Any:
        user = request.arg("user")
        return {"channels": [
            {**vars(c), "expiration": c.expiration.isoformat()}
            for c in self.backend.push.live(user.lower() if user else None)
        ]}

    def c_push_deliveries(self, request: Request, match: re.Match[str]) -> Any:
        user = request.arg("user")
        return {"deliveries": [
            {**vars(d), "at": d.at.isoformat()}
            for d in self.backend.push.sent(user.lower() if user else None)
        ]}

    def c_push_settings(self, request: Request, match: re.Match[str]) -> Any:
        """`drop_next` (lose the next N notifications), `delay_seconds` (every notification
        waits), `require_https` (false: http:// addresses on loopback), `max_ttl_seconds`."""
        data = self._json(request)
        allowed = {"drop_next", "delay_seconds", "require_https", "max_ttl_seconds"}
        if set(data) - allowed:
            raise ValueError(f"unknown fields: {sorted(set(data) - allowed)}")
        push = self.backend.push
        if "drop_next" in data:
            push.drop_next = int(data["drop_next"])
        if "delay_seconds" in data:
            push.delay = float(data["delay_seconds"])
        if "require_https" in data:
            push.require_https = bool(data["require_https"])
        if "max_ttl_seconds" in data:
            push.max_ttl = dt.timedelta(seconds=float(data["max_ttl_seconds"]))
        return {"drop_next": push.drop_next, "delay_seconds": push.delay,
                "require_https": push.require_https,
                "max_ttl_seconds": push.max_ttl.total_seconds()}

    def c_push_forget(self, request: Request, match: re.Match[str]) -> Any:
        """Lose channels (`id`, or every channel of `user`, or all) as Google may."""
        data = self._json(request)
        user = data.get("user")
        return {"forgotten": self.backend.push.forget(data.get("id"), user.lower() if user else None)}

    def c_stats(self, request: Request, match: re.Match[str]) -> Any:
        stats = self.backend.stats()
        stats["requests"] = len(self.emulator.requests_seen)
        return stats


__all__ = ["GoogleEmulator", "GoogleRoutes", "google_error_body", "parse_list_query"]
