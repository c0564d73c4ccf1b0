"""The HTTP plumbing both emulators share: routing, JSON bodies, TLS, fault injection.

An emulator subclasses `Emulator`, lists its routes (method, path regex, handler) and keeps its
state in a plain-Python backend (the moto layout: backend.py holds objects, routes.py turns HTTP
into backend calls). `start()` serves on loopback in a daemon thread (port 0 = ephemeral), so
tests run emulators in-process and `calsync sandbox` runs them for people.

Faults are queued on `emulator.faults`: each matches by method and path prefix and, while it has
uses left, replaces the real answer with a status and body, a delay, or a dropped connection
(before the request is handled, or after it, `drop_after`: the write is done, its answer lost);
`echo` makes that body repeat the request (as some proxies and gateways do in their errors);
`patch` lets the real answer through with some of its JSON fields replaced (a malformed page);
`rate` makes a fault hit only that share of the requests it matches, drawn at random (seeded with
`faults.seed(n)`), so a chaos test can fail one request in ten.
"""

from __future__ import annotations

import datetime as dt
import email.utils

import json
import logging
import random
import re
import socket
import ssl
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

log = logging.getLogger(__name__)

ANSWERS_KEPT = 200_000  # the answer log keeps the latest ones (long sandbox runs stay bounded)


@dataclass
class Request:
    method: str
    path: str  # percent-decoding is left to handlers (Google ids are percent-encoded)
    query: dict[str, list[str]]
    headers: dict[str, str]  # lowercased names
    body: bytes

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def json(self) -> Any:
        """The body as JSON; raises ValueError (handlers turn it into the service's error)."""
        return json.loads(self.body.decode("utf-8")) if self.body else None

    def form(self) -> dict[str, str]:
        parsed = parse_qs(self.body.decode("utf-8"), keep_blank_values=True)
        return {k: v[-1] for k, v in parsed.items()}

    @property
    def bearer(self) -> str | None:
        value = self.headers.get("authorization", "")
        if value[:7].lower() == "bearer ":
            return value[7:].strip()
        return None


@dataclass
class Response:
    status: int = 200
    body: Any = None  # bytes/str sent as is; anything else as JSON; None = empty
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=UTF-8"


Handler = Callable[[Request, "re.Match[str]"], Response]


@dataclass
class Fault:
    """A scripted misbehaviour. `status` with `body` answers instead of the emulator."""

    status: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    method: str | None = None  # None = any
    path_prefix: str = ""  # matched against the request path
    times: int = 1  # how many requests it hits (-1 = until cleared)
    delay: float = 0.0  # seconds to sleep before answering (or before the fault's answer)
    drop: bool = False  # close the connection without an answer
    # Do the request, then close the connection without its answer: the write landed and the
    # client never hears of it (a proxy or load balancer cutting the line after the server
    # committed). For a create, the lost answer calsync's recorded intents exist for.
    drop_after: bool = False
    query_contains: str = ""  # only requests with a query parameter value containing this
    # The answer's body repeats the raw request (query string and form body), the way some
    # gateways and token endpoints put what they refused in their error text.
    echo: bool = False
    # Let the real answer through with these top-level JSON fields replaced (a page whose
    # `items` is a string, a bogus `nextSyncToken`, ...); a None value removes the field.
    patch: dict[str, Any] | None = None
    # Only requests made for this user (one salesperson's calendar, or their token): the
    # emulator says whose a request is (`Emulator.request_user`). Empty: anyone's.
    user: str = ""
    # The share of matching requests it hits (1: every one), drawn from the queue's seeded
    # generator; a request it spares goes on to the next fault. Only hits count in `times`.
    rate: float = 1.0

    def matches(self, request: Request, user_of: Callable[[Request], str | None] | None = None) -> bool:
        if self.method and self.method.upper() != request.method:
            return False
        if self.user and (user_of is None or (user_of(request) or "").lower() != self.user.lower()):
            return False
        if self.query_contains and not any(
            self.query_contains in value for values in request.query.values() for value in values
        ):
            return False
        return request.path.startswith(self.path_prefix)


class FaultQueue:
    """Thread-safe list of pending faults; the first matching one with uses left fires."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._rng = random.Random()

    def seed(self, value: int) -> None:
        """Make the draws of faults with a `rate` below 1 repeatable."""
        with self._lock:
            self._rng.seed(value)

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, request: Request, user_of: Callable[[Request], str | None] | None = None) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.times != 0 and fault.matches(request, user_of):
                    if fault.rate < 1 and self._rng.random() >= fault.rate:
                        continue
                    if fault.times > 0:
                        fault.times -= 1
                    return fault
        return None

    def pending(self) -> list[Fault]:
        with self._lock:
            return [f for f in self._faults if f.times != 0]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    emulator: "Emulator"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away mid-answer (killed, timed out) is what clients do; only a
        # real failure of the emulator deserves socketserver's traceback on stderr.
        if isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError, TimeoutError)):
            log.debug("client went away: %s", sys.exc_info()[1])
            return
        super().handle_error(request, client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, each call waits ~40 ms for a
    # delayed ACK.
    disable_nagle_algorithm = True

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The Date header from the emulator's own clock (tests shift it to stand for skew)."""
        if timestamp is None:
            clock = getattr(getattr(self.server.emulator, "backend", None), "clock", None)
            if callable(clock):
                return email.utils.format_datetime(clock().astimezone(dt.timezone.utc), usegmt=True)
        return super().date_time_string(timestamp)

    def setup(self) -> None:
        super().setup()
        self.server.emulator.count_connection()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), format % args)

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        emulator = self.server.emulator
        emulator.count_request(request)
        fault = (None if request.path.startswith("/_control")
                 else emulator.faults.take(request, emulator.request_user))
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.drop:
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if fault.status is not None:
                body = _echoed(fault.body, request) if fault.echo else fault.body
                emulator.log_answer(request, fault.status)
                self._send(Response(fault.status, body, dict(fault.headers)))
                return
        try:
            response = emulator.dispatch(request)
        except Exception:  # an emulator bug must answer like a server, not kill the thread
            log.exception("emulator error on %s %s", request.method, request.path)
            response = emulator.internal_error()
        if fault is not None and fault.drop_after:
            emulator.log_answer(request, response.status)
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if fault is not None and fault.patch is not None and isinstance(response.body, dict):
            body = {**response.body, **fault.patch}
            response.body = {k: v for k, v in body.items() if v is not None}
        emulator.log_answer(request, response.status)
        self._send(response)

    def _send(self, response: Response) -> None:
        body = response.body
        if body is None:
            payload = b""
        elif isinstance(body, bytes):
            payload = body
        elif isinstance(body, str):
            payload = body.encode("utf-8")
        else:
            payload = json.dumps(body).encode("utf-8")
        self.send_response(response.status)
        if payload or response.status not in (204, 304):
            self.send_header("Content-Type", response.content_type)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload and self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _handle


def _echoed(body: Any, request: Request) -> Any:
    """`body` with the raw request in it: OAuth-shaped by default, else added to it."""
    raw = urlencode(request.query, doseq=True)
    raw += ("&" if raw else "") + request.body.decode("utf-8", "replace")
    if body is None:
        return {"error": "invalid_request", "error_description": f"rejected request: {raw}"}
    if isinstance(body, dict):
        return {**body, "error_description": f"{body.get('error_description', '')} {raw}".strip()}
    if isinstance(body, list):
        return [*body, {"message": f"rejected request: {raw}", "errorCode": "INVALID_REQUEST"}]
    return f"{body} {raw}"


class Emulator:
    """Base of both emulators: subclasses fill `routes` and may override the hooks."""

    scheme = "http"

    def __init__(self) -> None:
        self.faults = FaultQueue()
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.requests_seen: list[tuple[str, str]] = []
        # (when by the emulator's clock, method, path, status) of every answered API request:
        # tests check rates per minute and the pauses after a 429 against it.
        self.answers: deque[tuple[dt.datetime, str, str, int]] = deque(maxlen=ANSWERS_KEPT)
        self.connections = 0  # TCP connections accepted (keep-alive reuse shows here)
        self._seen_lock = threading.Lock()

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append((method.upper(), re.compile(pattern + r"\Z"), handler))

    def now(self) -> dt.datetime:
        """The emulator's clock: its backend's when it has one (tests move it), else UTC now."""
        clock = getattr(getattr(self, "backend", None), "clock", None)
        return clock() if callable(clock) else dt.datetime.now(dt.timezone.utc)

    def count_connection(self) -> None:
        with self._seen_lock:
            self.connections += 1

    def log_answer(self, request: Request, status: int) -> None:
        if not request.path.startswith("/_control"):
            at = self.now()
            with self._seen_lock:
                self.answers.append((at, request.method, request.path, status))

    def count_request(self, request: Request) -> None:
        if not request.path.startswith("/_control"):
            with self._seen_lock:
                self.requests_seen.append((request.method, request.path))

    def dispatch(self, request: Request) -> Response:
        path_matched = False
        for method, pattern, handler in self.routes:
            match = pattern.match(request.path)
            if match is None:
                continue
            path_matched = True
            if method == request.method:
                return handler(request, match)
        return self.not_found(request, method_not_allowed=path_matched)

    def not_found(self, request: Request, method_not_allowed: bool = False) -> Response:
        return Response(405 if method_not_allowed else 404, {"error": "not found"})

    def request_user(self, request: Request) -> str | None:
        """Whose request this is, for faults aimed at one user (`Fault.user`); None: unknown."""
        return None

    def internal_error(self) -> Response:
        return Response(500, {"error": "internal error"})

    def ssl_context(self) -> ssl.SSLContext | None:
        return None

    def start(self, host: str = "127.0.0.1", port: int = 0) -> "Emulator":
        server = _Server((host, port), _RequestHandler)
        server.emulator = self
        context = self.ssl_context()
        if context is not None:
            server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        # A short poll so stop() returns at once instead of after serve_forever's 0.5 s select.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}", daemon=True,
        )
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        assert self._server is not None, "emulator not started"
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        assert self._server is not None, "emulator not started"
        return str(self._server.server_address[0])

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. http://127.0.0.1:40123."""
        return f"{self.scheme}://{self.host}:{self.port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "Emulator":
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def fault_from_json(data: dict[str, Any]) -> Fault:
    """Build a Fault from the control API's JSON (same field names as the dataclass)."""
    allowed = set(Fault.__dataclass_fields__)
    unknown = set(data) - allowed
    if unknown:
        raise ValueError(f"unknown fault fields: {sorted(unknown)}")
    return Fault(**data)
