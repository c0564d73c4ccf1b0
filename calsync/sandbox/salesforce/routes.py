"""HTTP ↔ backend for the Salesforce emulator: one method per REST resource (the moto layout).

`SalesforceApi.handle()` wraps every `/services/data/vXX.X/...` call the way Salesforce does:
URI/header size limits (414/431, reference B1), bearer session (401 INVALID_SESSION_ID, B7),
the daily allocation (403 REQUEST_LIMIT_EXCEEDED, counted per call, B6) and the
`Sforce-Limit-Info` header on every answer. `GET /services/data/` (versions), the token
endpoint, the UserInfo endpoint (bearer, but not an API call) and `/_control/` are not counted.

`/_control/` is the test and sandbox API (JSON over HTTP): records of any object, lead
conversion, custom fields, users, sessions, connected apps, passwords, limits, settings (the
org's clock offset among them), org automation (triggers), faults, per-record failures and
stats. Its errors are `{"error": "..."}` (400) or the Salesforce list body of the refused write.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import threading
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from calsync.sandbox.salesforce.backend import SalesforceBackend
from calsync.sandbox.salesforce.errors import (
    NOT_FOUND_MESSAGE,
    ApiError,
    RecordFailed,
    invalid_session,
    invalid_session_fault,
    json_parser_error,
    not_found,
    request_limit_exceeded,
    request_limit_fault,
    server_unavailable_fault,
    sf_error,
    unable_to_lock_row_fault,
    unknown_exception_fault,
)
from calsync.sandbox.salesforce.identity import Session
from calsync.sandbox.salesforce.oauth import OAuthError
from calsync.sandbox.salesforce.oauth import token as oauth_token
from calsync.sandbox.salesforce.oauth import userinfo as oauth_userinfo
from calsync.sandbox.salesforce.queries import DEFAULT_BATCH_SIZE, MIN_BATCH_SIZE
from calsync.sandbox.salesforce.sobject_collections import MultipleMatches
from calsync.sandbox.server import Emulator, Request, Response, fault_from_json

log = logging.getLogger(__name__)

API = r"/services/data/v(?P<v>\d+\.\d+)"
_API_RE = re.compile(API + r"(?P<rest>/.*)?\Z")
MAX_URI_AND_HEADERS = 16384  # reference B1
MAX_QUERY_CHARS = 100_000
MAX_COMPOSITE_SUBREQUESTS = 25
VERSIONS = [f"{v}.0" for v in range(20, 63)]
_REFERENCE_RE = re.compile(r"@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_\[\]]+)*)\}")


def release_label(version: str) -> str:
    """59.0 -> "Winter '24" (three releases a year)."""
    index = int(float(version)) - 59
    season = ("Winter", "Spring", "Summer")[index % 3]
    return f"{season} '{24 + index // 3:02d}"


def classify(method: str, rest: str) -> str:
    """The kind of API call (method, path after /services/data/vXX.X), for `calls_by_kind()`."""
    parts = [p for p in rest.split("/") if p]
    if not parts:
        return "other"
    head = parts[0]
    if head == "sobjects":
        if method == "GET" and (len(parts) <= 2 or (len(parts) == 3 and parts[2] == "describe")):
            return "describe"
        return "sobject"
    if head in ("query", "queryAll"):
        return "query"
    if head == "composite":
        return "collections" if len(parts) > 1 and parts[1] == "sobjects" else "composite"
    if head == "limits":
        return "limits"
    return "other"


class SalesforceApi:
    """The REST resources and the control API of one emulator."""

    def __init__(self, emulator: Emulator, backend: SalesforceBackend) -> None:
        self.emulator = emulator
        self.backend = backend
        self._local = threading.local()
        self._install()

    # ------------------------------------------------------------------ plumbing

    def _install(self) -> None:
        r = self.emulator.route
        r("GET", r"/services/data/?", self.versions)
        r("POST", r"/services/oauth2/token/?", self.token)
        r("GET", r"/services/oauth2/userinfo/?", self.userinfo)
        r("GET", API + r"/?", self.resources)
        r("GET", API + r"/limits/?", self.limits)
        r("GET", API + r"/sobjects/?", self.describe_global)
        r("GET", API + r"/sobjects/(?P<type>\w+)/?", self.sobject_info)
        r("POST", API + r"/sobjects/(?P<type>\w+)/?", self.create)
        r("GET", API + r"/sobjects/(?P<type>\w+)/describe/?", self.describe)
        r("GET", API + r"/sobjects/(?P<type>\w+)/(?P<id>[^/]+)/?", self.retrieve)
        r("PATCH", API + r"/sobjects/(?P<type>\w+)/(?P<id>[^/]+)/?", self.update)
        r("DELETE", API + r"/sobjects/(?P<type>\w+)/(?P<id>[^/]+)/?", self.delete)
        r("GET", API + r"/sobjects/(?P<type>\w+)/(?P<field>\w+)/(?P<value>[^/]+)/?", self.retrieve_by_external_id)
        r("PATCH", API + r"/sobjects/(?P<type>\w+)/(?P<field>\w+)/(?P<value>[^/]+)/?", self.upsert)
        r("GET", API + r"/(?P<kind>query|queryAll)/?", self.query)
        r("GET", API + r"/(?:query|queryAll)/(?P<locator>01g[A-Za-z0-9]+)-(?P<offset>\d+)/?", self.query_more)
        r("POST", API + r"/composite/sobjects/?", self.collection_create)
        r("PATCH", API + r"/composite/sobjects/?", self.collection_update)
        r("DELETE", API + r"/composite/sobjects/?", self.collection_delete)
        r("GET", API + r"/composite/sobjects/(?P<type>\w+)/?", self.collection_retrieve)
        r("PATCH", API + r"/composite/sobjects/(?P<type>\w+)/(?P<field>\w+)/?", self.collection_upsert)
        r("POST", API + r"/composite/?", self.composite)
        ControlApi(self.emulator, self.backend)

    def base_dispatch(self, request: Request) -> Response:
        return Emulator.dispatch(self.emulator, request)

    def handle(self, request: Request) -> Response:
        """Every request: API calls get the size, session and limit checks and the usage header."""
        match = _API_RE.match(request.path)
        if match is None:
            return self.base_dispatch(request)
        uri_length = len(request.path) + (1 + len(urlencode(request.query, doseq=True)) if request.query else 0)
        if uri_length > MAX_URI_AND_HEADERS:
            return sf_error(414, "URI_TOO_LONG", "Request-URI Too Long")
        header_length = sum(len(k) + len(v) + 4 for k, v in request.headers.items())
        if uri_length + header_length > MAX_URI_AND_HEADERS:
            return sf_error(431, "REQUEST_HEADER_FIELDS_TOO_LARGE", "Request Header Fields Too Large")
        session = self.backend.authenticate(request.bearer)
        if session is None:
            return invalid_session()
        if not self.backend.count_call(classify(request.method, match.group("rest") or "")):
            response = request_limit_exceeded()
        else:
            self._local.session = session
            try:
                response = self.run(request)
            finally:
                self._local.session = None
        response.headers["Sforce-Limit-Info"] = self.backend.limit_info()
        return response

    def run(self, request: Request) -> Response:
        """Route without the API-call wrapper (also used by Composite subrequests)."""
        try:
            return self.base_dispatch(request)
        except ApiError as exc:
            return exc.response()
        except RecordFailed as exc:
            return exc.response()

    @property
    def session(self) -> Session | None:
        return getattr(self._local, "session", None)

    @property
    def user_id(self) -> str | None:
        session = self.session
        return session.user_id if session else None

    @staticmethod
    def body(request: Request) -> Any:
        try:
            return request.json()
        except (ValueError, UnicodeDecodeError) as exc:
            raise json_parser_error(f"Unexpected character: {exc}") from None

    @staticmethod
    def api_path(match: "re.Match[str]") -> str:
        return f"/services/data/v{match.group('v')}"

    def _type(self, name: str) -> str:
        # An unknown sObject in the URL is 404 NOT_FOUND (reference B5).
        canonical = self.backend.object_name(name)
        if canonical is None:
            raise ApiError(404, "NOT_FOUND", NOT_FOUND_MESSAGE)
        return canonical

    # ------------------------------------------------------------------ discovery

    def versions(self, request: Request, match: "re.Match[str]") -> Response:
        return Response(200, [{"label": release_label(v), "url": f"/services/data/v{v}", "version": v}
                              for v in VERSIONS])

    def resources(self, request: Request, match: "re.Match[str]") -> Response:
        base = self.api_path(match)
        names = ["sobjects", "query", "queryAll", "limits", "composite"]
        return Response(200, {n: f"{base}/{n}" for n in names})

    def limits(self, request: Request, match: "re.Match[str]") -> Response:
        return Response(200, self.backend.limits())

    def describe_global(self, request: Request, match: "re.Match[str]") -> Response:
        api_path = self.api_path(match)
        with self.backend.lock:
            sobjects = [o.summary(api_path) for o in self.backend.objects.values()]
        return Response(200, {"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": sobjects})

    def sobject_info(self, request: Request, match: "re.Match[str]") -> Response:
        name = self._type(match.group("type"))
        with self.backend.lock:
            summary = self.backend.objects[name.lower()].summary(self.api_path(match))
        return Response(200, {"objectDescribe": summary, "recentItems": []})

    def describe(self, request: Request, match: "re.Match[str]") -> Response:
        name = self._type(match.group("type"))
        with self.backend.lock:
            return Response(200, self.backend.objects[name.lower()].describe(self.api_path(match)))

    # ------------------------------------------------------------------ single records (reference B4)

    def create(self, request: Request, match: "re.Match[str]") -> Response:
        name = self._type(match.group("type"))
        body = self.body(request)
        new_id = self.backend.create_record(name, body, user_id=self.user_id, system=False)
        return Response(201, {"id": new_id, "success": True, "errors": []})

    def retrieve(self, request: Request, match: "re.Match[str]") -> Response:
        name = self._type(match.group("type"))
        fields_arg = request.arg("fields")
        fields = [f.strip() for f in fields_arg.split(",") if f.strip()] if fields_arg else None
        with self.backend.lock:
            row = self.backend.lookup_for_rest(name, unquote(match.group("id")))
            return Response(200, self.backend.rest_record(name, row, self.api_path(match), fields))

    def update(self, request: Request, match: "re.Match[str]") -> Response:
        name = self._type(match.group("type"))
        body = self.body(request)
        self.backend.update_record(name, unquote(match.group("id")), body, user_id=self.user_id, system=False)
        return Response(204)

    def delete(self, request: Request, match: "re.Match[str]") -> Response:
        name = self._type(match.group("type"))
        self.backend.delete_record(name, unquote(match.group("id")))
        return Response(204)

    def upsert(self, request: Request, match: "re.Match[str]") -> Response:
        name = self._type(match.group("type"))
        body = self.body(request)
        value = unquote(match.group("value"))
        try:
            result = self.backend.upsert_record(name, match.group("field"), value, body, user_id=self.user_id)
        except MultipleMatches as exc:
            return self._multiple(name, exc.ids, match)
        # API >= 46.0: 201 created / 200 updated, both with a body (reference B4).
        answer = {"id": result.id, "success": True, "errors": [], "created": result.created}
        return Response(201 if result.created else 200, answer)

    def retrieve_by_external_id(self, request: Request, match: "re.Match[str]") -> Response:
        name = self._type(match.group("type"))
        value = unquote(match.group("value"))
        with self.backend.lock:
            ids = self.backend.find_by_external_id(name, match.group("field"), value)
            if not ids:
                raise ApiError(404, "NOT_FOUND", NOT_FOUND_MESSAGE)
            if len(ids) > 1:
                return self._multiple(name, ids, match)
            row = self.backend.lookup_for_rest(name, ids[0])
            return Response(200, self.backend.rest_record(name, row, self.api_path(match)))

    def _multiple(self, name: str, ids: list[str], match: "re.Match[str]") -> Response:
        # Several matches: 300 with the records' URLs, nothing written (reference B4).
        return Response(300, [f"{self.api_path(match)}/sobjects/{name}/{i}" for i in ids])

    # ------------------------------------------------------------------ query (reference B1)

    def query(self, request: Request, match: "re.Match[str]") -> Response:
        text = request.arg("q")
        if not text:
            raise ApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
        if len(text) > MAX_QUERY_CHARS:
            raise ApiError(400, "MALFORMED_QUERY", f"Query too long: {len(text)} characters, at most 100000")
        answer = self.backend.query(text, include_deleted=match.group("kind") == "queryAll",
                                    api_path=self.api_path(match), batch_size=self._batch_size(request))
        return Response(200, answer)

    def query_more(self, request: Request, match: "re.Match[str]") -> Response:
        answer = self.backend.query_more(match.group("locator"), int(match.group("offset")),
                                         api_path=self.api_path(match))
        return Response(200, answer)

    @staticmethod
    def _batch_size(request: Request) -> int:
        # Sforce-Query-Options: batchSize=N, 200..2000, "not guaranteed" (reference B1).
        options = request.headers.get("sforce-query-options", "")
        m = re.search(r"batchSize\s*=\s*(\d+)", options, re.IGNORECASE)
        if not m:
            return DEFAULT_BATCH_SIZE
        return max(MIN_BATCH_SIZE, min(DEFAULT_BATCH_SIZE, int(m.group(1))))

    # ------------------------------------------------------------------ Collections (reference B4)

    def _collection_body(self, request: Request) -> tuple[list[Any], bool]:
        body = self.body(request)
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise json_parser_error("Cannot deserialize request: expected {\"allOrNone\": ..., "
                                    "\"records\": [...]}")
        all_or_none = body.get("allOrNone", False)
        if not isinstance(all_or_none, bool):
            raise json_parser_error(f"Cannot deserialize instance of boolean from value {all_or_none!r}")
        return body["records"], all_or_none

    def collection_create(self, request: Request, match: "re.Match[str]") -> Response:
        records, all_or_none = self._collection_body(request)
        return Response(200, self.backend.collection_write("create", records, all_or_none=all_or_none,
                                                           user_id=self.user_id))

    def collection_update(self, request: Request, match: "re.Match[str]") -> Response:
        records, all_or_none = self._collection_body(request)
        return Response(200, self.backend.collection_write("update", records, all_or_none=all_or_none,
                                                           user_id=self.user_id))

    def collection_upsert(self, request: Request, match: "re.Match[str]") -> Response:
        name = self._type(match.group("type"))
        records, all_or_none = self._collection_body(request)
        return Response(200, self.backend.collection_write(
            "upsert", records, all_or_none=all_or_none, user_id=self.user_id, object_name=name,
            ext_field=match.group("field")))

    def collection_delete(self, request: Request, match: "re.Match[str]") -> Response:
        ids_arg = request.arg("ids")
        if not ids_arg:
            raise ApiError(400, "MISSING_ARGUMENT", "The ids parameter is required")
        ids = [i.strip() for i in ids_arg.split(",") if i.strip()]
        all_or_none = (request.arg("allOrNone") or "false").lower() == "true"
        return Response(200, self.backend.collection_delete(ids, all_or_none=all_or_none))

    def collection_retrieve(self, request: Request, match: "re.Match[str]") -> Response:
        name = self._type(match.group("type"))
        ids = [i for i in (request.arg("ids") or "").split(",") if i]
        fields = [f for f in (request.arg("fields") or "").split(",") if f]
        if not ids or not fields:
            raise ApiError(400, "MISSING_ARGUMENT", "The ids and fields parameters are required")
        if len(ids) > 2000:
            raise ApiError(400, "EXCEEDED_ID_LIMIT", "Maximum number of ids exceeded: 2000")
        out: list[Any] = []
        with self.backend.lock:
            for record_id in ids:
                row = self.backend.record(name, record_id)
                out.append(None if row is None else self.backend.rest_record(name, row, self.api_path(match), fields))
        return Response(200, out)

    # ------------------------------------------------------------------ Composite (reference B1)

    def composite(self, request: Request, match: "re.Match[str]") -> Response:
        body = self.body(request)
        subrequests = body.get("compositeRequest") if isinstance(body, dict) else None
        if not isinstance(subrequests, list) or not subrequests:
            raise json_parser_error("Cannot deserialize request: expected {\"compositeRequest\": [...]}")
        if len(subrequests) > MAX_COMPOSITE_SUBREQUESTS:
            raise ApiError(400, "LIMIT_EXCEEDED", "Composite request can contain at most 25 subrequests")
        results: dict[str, Any] = {}
        answers: list[dict[str, Any]] = []
        for sub in subrequests:
            if not isinstance(sub, dict) or not isinstance(sub.get("url"), str) or not sub.get("referenceId"):
                raise json_parser_error("Each subrequest needs method, url and referenceId")
            url = _substitute(sub["url"], results)
            parts = urlsplit(url)
            inner = Request(
                method=str(sub.get("method", "GET")).upper(),
                path=parts.path,
                query=parse_qs(parts.query, keep_blank_values=True),
                headers={**request.headers, **{k.lower(): v for k, v in (sub.get("httpHeaders") or {}).items()}},
                body=json.dumps(_substitute_json(sub["body"], results)).encode() if "body" in sub else b"",
            )
            if not _API_RE.match(inner.path):
                response = sf_error(400, "INVALID_URL", f"Invalid url: {sub['url']}")
            else:
                response = self.run(inner)
            results[sub["referenceId"]] = response.body
            answers.append({"body": response.body, "httpHeaders": dict(response.headers),
                            "httpStatusCode": response.status, "referenceId": sub["referenceId"]})
        return Response(200, {"compositeResponse": answers})

    # ------------------------------------------------------------------ OAuth (reference B7)

    def token(self, request: Request, match: "re.Match[str]") -> Response:
        try:
            return Response(200, oauth_token(self.backend, request.form()))
        except OAuthError as exc:
            return Response(exc.status, exc.body())

    def userinfo(self, request: Request, match: "re.Match[str]") -> Response:
        """The OpenID Connect UserInfo endpoint: who the access token's user is (Help, "Query for
        User Information": `user_id`, `organization_id`, `preferred_username`, ...)."""
        session = self.backend.authenticate(request.bearer)
        if session is None:
            # Not an API resource: an OAuth-style 403 rather than INVALID_SESSION_ID's list.
            return Response(403, "Bad_OAuth_Token", content_type="text/plain; charset=UTF-8")
        return Response(200, oauth_userinfo(self.backend, session.username))


def _lookup_reference(results: dict[str, Any], ref: str, path: str) -> Any:
    value = results.get(ref)
    for part in [p for p in re.split(r"[.\[\]]", path) if p]:
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict):
            value = value.get(part)
        else:
            return None
    return value


def _substitute(text: str, results: dict[str, Any]) -> str:
    return _REFERENCE_RE.sub(lambda m: str(_lookup_reference(results, m.group(1), m.group(2)) or ""), text)


def _substitute_json(value: Any, results: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return _substitute(value, results)
    if isinstance(value, list):
        return [_substitute_json(v, results) for v in value]
    if isinstance(value, dict):
        return {k: _substitute_json(v, results) for k, v in value.items()}
    return value


# ------------------------------------------------------------------------------ control API

_FAULT_PRESETS = {
    "REQUEST_LIMIT_EXCEEDED": request_limit_fault,
    "UNABLE_TO_LOCK_ROW": unable_to_lock_row_fault,
    "UNKNOWN_EXCEPTION": unknown_exception_fault,
    "SERVER_UNAVAILABLE": server_unavailable_fault,
    "INVALID_SESSION_ID": invalid_session_fault,
}


class ControlApi:
    """`/_control/...`: drive the emulator from tests or a sandbox script, bypassing API limits."""

    def __init__(self, emulator: Emulator, backend: SalesforceBackend) -> None:
        self.emulator = emulator
        self.backend = backend
        r = emulator.route
        c = r"/_control"
        r("GET", c + r"/stats/?", self._wrap(self.stats))
        r("GET", c + r"/records/(?P<type>\w+)/?", self._wrap(self.list_records))
        r("POST", c + r"/records/(?P<type>\w+)/?", self._wrap(self.create_record))
        r("GET", c + r"/records/(?P<type>\w+)/(?P<id>\w+)/?", self._wrap(self.get_record))
        r("PATCH", c + r"/records/(?P<type>\w+)/(?P<id>\w+)/?", self._wrap(self.update_record))
        r("DELETE", c + r"/records/(?P<type>\w+)/(?P<id>\w+)/?", self._wrap(self.delete_record))
        r("POST", c + r"/leads/(?P<id>\w+)/convert/?", self._wrap(self.convert_lead))
        r("POST", c + r"/fields/?", self._wrap(self.add_field))
        r("POST", c + r"/users/?", self._wrap(self.create_user))
        r("PATCH", c + r"/users/(?P<user>[^/]+)/?", self._wrap(self.update_user))
        r("POST", c + r"/sessions/?", self._wrap(self.create_session))
        r("POST", c + r"/sessions/expire/?", self._wrap(self.expire_sessions))
        r("POST", c + r"/connected-apps/?", self._wrap(self.register_app))
        r("POST", c + r"/passwords/?", self._wrap(self.set_password))
        r("GET", c + r"/limits/?", self._wrap(self.get_limits))
        r("POST", c + r"/limits/?", self._wrap(self.set_limits))
        r("POST", c + r"/settings/?", self._wrap(self.settings))
        r("GET", c + r"/faults/?", self._wrap(self.list_faults))
        r("POST", c + r"/faults/?", self._wrap(self.add_fault))
        r("DELETE", c + r"/faults/?", self._wrap(self.clear_faults))
        r("POST", c + r"/triggers/?", self._wrap(self.add_trigger))
        r("DELETE", c + r"/triggers/?", self._wrap(self.clear_triggers))
        r("POST", c + r"/fail-records/?", self._wrap(self.fail_records))
        r("DELETE", c + r"/fail-records/?", self._wrap(self.clear_fail_records))

    def _wrap(self, handler: Any) -> Any:
        def run(request: Request, match: "re.Match[str]") -> Response:
            try:
                body = request.json() if request.body else {}
            except (ValueError, UnicodeDecodeError) as exc:
                return Response(400, {"error": f"body is not JSON: {exc}"})
            try:
                return handler(request, match, body if body is not None else {})
            except (ApiError, RecordFailed) as exc:
                return exc.response()
            except MultipleMatches as exc:
                return Response(300, {"error": "several records match", "ids": exc.ids})
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                return Response(400, {"error": f"{type(exc).__name__}: {exc}"})
        return run

    @staticmethod
    def _dict(body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        return body

    def stats(self, request: Request, match: "re.Match[str]", body: Any) -> Response:
        return Response(200, self.backend.stats())

    def list_records(self, request: Request, match: "re.Match[str]", body: Any) -> Response:
        include = (request.arg("include_deleted") or "false").lower() == "true"
        return Response(200, self.backend.list_records(match.group("type"), include_deleted=include))

    def create_record(self, request: Request, match: "re.Match[str]", body: Any) -> Response:
        new_id = self.backend.create_record(match.group("type"), self._dict(body), system=True)
        return Response(201, {"id": new_id})

    def get_record(self, request: Request, match: "re.Match[str]", body: Any) -> Response:
        row = self.backend.record(match.group("type"), match.group("id"), include_deleted=True)
        if row is None:
            return not_found()
        return Response(200, row)

    def update_record(self, request: Request, match: "re.Match[str]", body: Any) -> Response:
        self.backend.update_record(match.group("type"), match.group("id"), self._dict(body), system=True)
        return Response(204)

    def delete_record(self, request: Request, match: "re.Match[str]", body: Any) -> Response:
        self.backend.delete_record(match.group("type"), match.group("id"))
        return Response(204)

    def convert_lead(self, request: Request, match: "re.Match[str]", body: Any) -> Response:
        """Body (all optional): account_id, contact_id, opportunity_name, converted_status, user_id
        (the converting user, id or username)."""
        b = dict(self._dict(body))
        unknown = set(b) - {"account_id", "contact_id", "opportunity_name", "converted_status", "user_id"}
        if unknown:
            raise ValueError(f"unknown conversion options: {sorted(unknown)}")
        ids = self.backend.convert_lead(match.group("id"), **b)
        return Response(200, {f"{kind}_id": value for kind, value in ids.items()})

    def add_field(self, request: Request, match: "re.Match[str]", body: Any) -> Response:
        b = dict(self._dict(body))
        obj, name, type_ = b.pop("object"), b.pop("name"), b.pop("type")
        allowed = {"length", "label", "external_id", "unique", "createable", "updateable", "nillable",
                   "reference_to", "picklist_values"}
        unknown = set(b) - allowed
        if unknown:
            raise ValueError(f"unknown field options: {sorted(unknown)}")
        fdef = self.backend.add_custom_field(obj, name, type_, **b)
        return Response(201, fdef.describe())

    def create_user(self, request: Request, match: "re.Match[str]", body: Any) -> Response:
        b = self._dict(body)
        user_id = self.backend.create_user(
            b["username"], first_name=b.get("first_name"), last_name=b.get("last_name"), email=b.get("email"),
            active=bool(b.get("active", True)), alias=b.get("alias"))
        return Response(201, {"id": user_id})

    def update_user(self, request: Request, match: "re.Match[str]", body: Any) -> Response:
        b = self._dict(body)
        if "active" in b:
            self.backend.set_user_active(unquote(match.group("user")), bool(b["active"]))
        return Response(204)

    def create_session(self, request: Request, match: "re.Match[str]", body: Any) -> Response:
        b = self._dict(body)
        token = self.backend.create_session(b.get("username"))
        return Response(201, {"access_token": token, "instance_url": self.backend.instance_url})

    def expire_sessions(self, request: Request, match: "re.Match[str]", body: Any) -> Response:
        return Response(200, {"expired": self.backend.expire_sessions()})

    def register_app(self, request: Request, match: "re.Match[str]", body: Any) -> Response:
        b = self._dict(body)
        self.backend.register_connected_app(
            b["consumer_key"], b.get("public_key_pem"), consumer_secret=b.get("consumer_secret"),
            authorized_usernames=b.get("authorized_usernames"))
        return Response(201, {"consumer_key": b["consumer_key"]})

    def set_password(self, request: Request, match: "re.Match[str]", body: Any) -> Response:
        b = self._dict(body)
        self.backend.set_password(b["username"], b["password"], b.get("security_token", ""))
        return Response(204)

    def get_limits(self, request: Request, match: "re.Match[str]", body: Any) -> Response:
        return Response(200, self.backend.limits())

    def set_limits(self, request: Request, match: "re.Match[str]", body: Any) -> Response:
        b = self._dict(body)
        self.backend.set_limits(daily_api_max=b.get("daily_api_max"), api_calls=b.get("api_calls"))
        return Response(200, self.backend.stats())

    def settings(self, request: Request, match: "re.Match[str]", body: Any) -> Response:
        b = self._dict(body)
        if "shared_activities" in b:
            self.backend.shared_activities = bool(b["shared_activities"])
        if "multiday_events" in b:
            self.backend.multiday_events = bool(b["multiday_events"])
        if "session_lifetime_seconds" in b:
            self.backend.session_lifetime = dt.timedelta(seconds=float(b["session_lifetime_seconds"]))
        if "clock_offset_seconds" in b:
            # Salesforce's clock ahead (+) or behind (-) the machine's (reference B10, "Clocks").
            self.backend.clock_offset = dt.timedelta(seconds=float(b["clock_offset_seconds"]))
        return Response(200, self.backend.stats())

    def add_trigger(self, request: Request, match: "re.Match[str]", body: Any) -> Response:
        """Org automation on insert/update (reference B10, "Triggers, Flows"). Body: object,
        on (["insert"]), subject_prefix, subject_suffix, set ({field: value})."""
        b = dict(self._dict(body))
        unknown = set(b) - {"object", "on", "subject_prefix", "subject_suffix", "set"}
        if unknown:
            raise ValueError(f"unknown trigger options: {sorted(unknown)}")
        trigger = self.backend.add_trigger(
            b["object"], on=tuple(b.get("on") or ("insert",)), subject_prefix=str(b.get("subject_prefix") or ""),
            subject_suffix=str(b.get("subject_suffix") or ""), set_fields=b.get("set") or {})
        return Response(201, {"object": trigger.object_name, "on": sorted(trigger.on)})

    def clear_triggers(self, request: Request, match: "re.Match[str]", body: Any) -> Response:
        self.backend.clear_triggers()
        return Response(204)

    def list_faults(self, request: Request, match: "re.Match[str]", body: Any) -> Response:
        return Response(200, [
            {"status": f.status, "method": f.method, "path_prefix": f.path_prefix, "times": f.times,
             "delay": f.delay, "drop": f.drop, "drop_after": f.drop_after}
            for f in self.emulator.faults.pending()
        ])

    def add_fault(self, request: Request, match: "re.Match[str]", body: Any) -> Response:
        b = dict(self._dict(body))
        preset = b.pop("preset", None)
        if preset is not None:
            factory = _FAULT_PRESETS.get(str(preset).upper())
            if factory is None:
                raise ValueError(f"unknown preset {preset!r}; one of {sorted(_FAULT_PRESETS)}")
            fault = factory(**b)
        else:
            fault = fault_from_json(b)
        self.emulator.faults.add(fault)
        return Response(201, {"status": fault.status, "times": fault.times, "path_prefix": fault.path_prefix})

    def clear_faults(self, request: Request, match: "re.Match[str]", body: Any) -> Response:
        self.emulator.faults.clear()
        return Response(204)

    def fail_records(self, request: Request, match: "re.Match[str]", body: Any) -> Response:
        b = self._dict(body)
        target: Any
        if "count" in b:
            target = int(b["count"])
        elif isinstance(b.get("match"), dict):
            wanted = {k.lower(): v for k, v in b["match"].items()}

            def target(record: dict[str, Any]) -> bool:
                fields = {k.lower(): v for k, v in record.items() if k != "attributes"}
                fields["type"] = (record.get("attributes") or {}).get("type")
                return all(fields.get(k) == v for k, v in wanted.items())
        else:
            raise ValueError('give "count": N or "match": {field: value}')
        self.backend.fail_records(target, status_code=b.get("status_code", "UNABLE_TO_LOCK_ROW"),
                                  message=b.get("message"), times=int(b.get("times", 1)),
                                  fields=tuple(b.get("fields", ())))
        return Response(201, {"pending": self.backend.stats()["pending_record_failures"]})

    def clear_fail_records(self, request: Request, match: "re.Match[str]", body: Any) -> Response:
        self.backend.clear_record_failures()
        return Response(204)
