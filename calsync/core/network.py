"""What calsync says about the network: failures that name host, cause and remedy; the request trace.

`failure(exc, url, ...)` turns whatever a transport raised (requests/urllib3 for Salesforce,
httplib2 and raw sockets for Google) into one `NetworkError`: which host and port, which cause
(the name does not resolve, nothing listens, no answer in time, the certificate is not trusted,
the TLS handshake failed, the connection was cut) and what an operator can do about it. It
walks the exception's chain (`__cause__`, urllib3's `MaxRetryError.reason`, wrapped `args`),
since the library's own top-level message ("Max retries exceeded with url: ...") says none of
that.

`--log-level debug` adds one line per HTTP request (logger `calsync.http`): method, host, path,
status (or the exception's name), milliseconds, and for Salesforce its `Sforce-Limit-Info`
header. The path is logged without its query string: queries carry sync and page tokens
(Google) and SOQL with customers' addresses (Salesforce); the line passes `logs.redact` like any
other. `TracingSession` (requests, Salesforce) and `TracingHttp` (httplib2, Google) are the
transports calsync hands to the client libraries, as it already hands them its timeouts; the
libraries themselves are not touched.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httplib2
import requests

from calsync.core import telemetry
from calsync.core.errors import NetworkError
from calsync.core.logs import event as log_event

log = logging.getLogger("calsync.http")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and every exception it wraps, outermost first."""
    stack, seen = [exc], set()
    while stack:
        current = stack.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for inner in (getattr(current, "reason", None), current.__cause__, current.__context__,
                      *getattr(current, "args", ())):
            if isinstance(inner, BaseException):
                stack.append(inner)


def _find(exc: BaseException, *kinds: type[BaseException]) -> BaseException | None:
    return next((e for e in _chain(exc) if isinstance(e, kinds)), None)


def untrusted(exc: BaseException) -> bool:
    """The server's TLS certificate failed verification (retrying cannot help)."""
    return _find(exc, ssl.SSLCertVerificationError) is not None


def host_of(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"


def failure(
    exc: BaseException,
    url: str,
    *,
    service: str,
    setting: str,
    trust: str,
    timeout: str = "",
) -> NetworkError:
    """A NetworkError naming the host of `url`, the cause found in `exc`, and the remedy.

    `service`: "Salesforce", "Google Calendar", ...; `setting`: the configuration key holding
    the URL; `trust`: how to add a CA for this service; `timeout`: what the timeout was.
    """
    host = host_of(url)
    where = f"{service} at {host}"
    egress = (f"allow outbound HTTPS from this machine to {host} (firewall, egress rules), or "
              "route it through a proxy (HTTPS_PROXY in the unit's environment)")
    verify = _find(exc, ssl.SSLCertVerificationError)
    if verify is not None:
        cause = getattr(verify, "verify_message", None) or str(verify)
        return NetworkError(
            f"cannot reach {where}: its TLS certificate is not trusted ({cause})",
            f"if a proxy inspects TLS or the server uses a private CA, {trust}; check {setting}",
        )
    tls = _find(exc, ssl.SSLError, requests.exceptions.SSLError)
    if tls is not None:
        reason = getattr(tls, "reason", None)
        cause = reason if isinstance(reason, str) else type(tls).__name__
        return NetworkError(
            f"cannot reach {where}: the TLS handshake failed ({cause})",
            f"check that {setting} is its https:// address; {egress}",
        )
    if _find(exc, socket.gaierror, httplib2.ServerNotFoundError) is not None or any(
        type(e).__name__ == "NameResolutionError" for e in _chain(exc)
    ):
        return NetworkError(
            f"cannot reach {where}: the name {urlsplit(url).hostname} does not resolve",
            f"check the host in {setting} and this machine's DNS (getent hosts "
            f"{urlsplit(url).hostname})",
        )
    if _find(exc, requests.exceptions.ProxyError) is not None:
        return NetworkError(f"cannot reach {where}: the proxy refused or failed",
                            "check HTTPS_PROXY / NO_PROXY in the unit's environment")
    if isinstance(exc, requests.ConnectTimeout):
        return NetworkError(
            f"cannot reach {where}: no connection within {timeout or 'the timeout'}",
            f"packets are dropped on the way: {egress}",
        )
    if isinstance(exc, requests.ReadTimeout):
        return NetworkError(f"{where} did not answer within {timeout or 'the timeout'}",
                            "it is slow or overloaded; the next run tries again")
    if _find(exc, TimeoutError, socket.timeout) is not None:  # httplib2: connect or answer
        return NetworkError(
            f"{where} did not connect or answer within {timeout or 'the timeout'}",
            f"it is slow, or packets are dropped on the way: {egress}",
        )
    if _find(exc, ConnectionRefusedError) is not None:
        return NetworkError(
            f"cannot reach {where}: connection refused (nothing listens there)",
            f"check the host and port in {setting}; {egress}",
        )
    reset = _find(exc, ConnectionResetError, ConnectionAbortedError, BrokenPipeError)
    if reset is not None or any(type(e).__name__ in ("RemoteDisconnected", "ProtocolError")
                                for e in _chain(exc)):
        return NetworkError(
            f"{where} closed the connection before answering",
            "a proxy or firewall may be cutting connections; the next run tries again",
        )
    unreachable = _find(exc, OSError)
    cause = getattr(unreachable, "strerror", None) or type(exc).__name__
    return NetworkError(f"cannot reach {where}: {cause}", egress)


# -- the debug request trace -------------------------------------------------------------------


def trace(
    service: str, method: str, url: str, status: int | str, started: float, limit_info: str | None = None
) -> None:
    """One debug line for one HTTP request (nothing when debug is off)."""
    if not log.isEnabledFor(logging.DEBUG):
        return
    parts = urlsplit(url)
    fields: dict[str, Any] = {
        "service": service, "method": method, "host": parts.netloc, "path": parts.path or "/",
        "status": status, "ms": round((time.monotonic() - started) * 1000),
    }
    if limit_info:
        fields["limit_info"] = limit_info
    log_event(log, "http request", level=logging.DEBUG, **fields)


class TracingSession(requests.Session):
    """The Salesforce transport: a default (connect, read) timeout on every request, one trace
    line per request, and the org's allowance noted from each answer's Sforce-Limit-Info.

    requests waits forever by default, and simple-salesforce passes no timeout of its own (its
    calls only forward the keyword arguments they are given; `describe()` takes none), so the
    default is set where every request passes: the session handed to `Salesforce(session=...)`.
    """

    def __init__(self, timeout: tuple[float, float], service: str = "salesforce") -> None:
        super().__init__()
        self.timeout = timeout
        self.service = service

    def request(  # type: ignore[override]
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        started = time.monotonic()
        verb = method.decode() if isinstance(method, bytes) else str(method)
        where = url.decode() if isinstance(url, bytes) else str(url)
        try:
            response = super().request(method, url, *args, **kwargs)
        except requests.RequestException as exc:
            trace(self.service, verb.upper(), where, type(exc).__name__, started)
            raise
        limit = response.headers.get("Sforce-Limit-Info")
        telemetry.note_limit_info(limit)
        trace(self.service, verb.upper(), where, response.status_code, started, limit)
        return response


class TracingHttp(httplib2.Http):  # type: ignore[misc]
    """The Google transport: httplib2 with one trace line per request (token requests too)."""

    def request(self, uri: str, method: str = "GET", *args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        try:
            response, content = super().request(uri, method, *args, **kwargs)
        except Exception as exc:
            trace("google", method, uri, type(exc).__name__, started)
            raise
        trace("google", method, uri, response.status, started)
        return response, content
