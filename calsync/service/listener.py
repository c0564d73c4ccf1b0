"""The daemon's HTTP listeners (push notifications, /metrics): bounded, so hostile clients
cannot starve the daemon, and never fatal, so a port that cannot be bound never stops polling.

Both used to be `http.server.ThreadingHTTPServer`: a thread per connection, no timeout, no
cap. About 1,000 idle half-sent connections (systemd's default limit is 1,024 open files)
took every descriptor: accept() then failed in a loop at 90 % CPU and the calendars' own
sockets and state files could not be opened. Now each listener is a waitress server
(https://docs.pylonsproject.org/projects/waitress/en/stable/arguments.html), which gives for
free what the listeners need:

- one I/O thread (poll(2), no FD_SETSIZE limit) for every connection and `threads` request
  threads (2), none shared with the scheduler's workers: an idle connection costs a
  descriptor, never a thread;
- at most `connections` open connections (`connection_limit`); past it waitress stops
  accepting, and here the oldest idle connection is closed to make room for the new one, so
  a flood of idle connections cannot keep a real notification out;
- a connection idle for `idle_seconds` is closed (`channel_timeout`, checked every second);
- Content-Length checked before anything is read: not digits (a negative one) is 400, at
  least `max_body` is 413 (`max_request_body_size`), headers over `max_header` 431; the
  connection is closed after the answer. A POST without one gets 411 from the app.

Added here: a request must arrive whole (headers and body) within `request_seconds` of its
first byte, however slowly it trickles (waitress only times out silence); accept() failing
for want of descriptors pauses accepting for a second instead of spinning; the refusals and
closed connections are reported (`on_refusal`), not logged by waitress.

`Server.start()` binds on the address given (IPv4 or IPv6, `[::1]:8790`). When it cannot
(the port taken, the address not on this host), it reports itself down (`up`, `error`,
`on_state`) and retries in the background, every 5 s doubling to a minute, for as long as the
daemon runs.
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask

from calsync.core.logs import event as log_event

log = logging.getLogger("calsync.listener")  # names predate the layers (ARCHITECTURE.md)
# waitress logs every crossing of the connection limit and every queued task as a warning: an
# attacker would write the journal. calsync reports those itself, at most once a minute.
logging.getLogger("waitress").setLevel(logging.ERROR)

RETRY_FIRST = 5.0  # seconds before the first retry of a bind that failed, then doubling...
RETRY_MAX = 60.0  # ...up to this
STILL_DOWN_EVERY = 600.0  # seconds between two "still cannot listen" lines
ACCEPT_PAUSE = 1.0  # seconds without accepting after accept() ran out of descriptors
TICK = 0.5  # seconds the I/O loop waits at most (stop, maintenance)

Refusal = Callable[[str], None]  # a cause: "bad request", "too large", "slow", "evicted", ...


@dataclass(frozen=True)
class Limits:
    """What one listener allows. The defaults: a notification is headers only; a scrape of
    /metrics is a GET."""

    connections: int = 100
    threads: int = 2
    request_seconds: float = 10.0
    idle_seconds: float = 10.0
    max_body: int = 4096
    max_header: int = 16384
    backlog: int = 128


def address_text(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Server:
    """One listener: `app` (WSGI) served on `address` within `limits`, on threads of its own.

    `start()` never raises for a bind: when the address cannot be bound it logs once, reports
    itself down and keeps retrying. `on_state(up, error)` is called on every change;
    `on_refusal(cause)` for each request or connection refused or closed by the limits;
    `on_tick()` about every second from the listener's thread (to flush throttled log lines).
    """

    def __init__(
        self,
        name: str,
        address: tuple[str, int],
        app: Callable[..., Any],
        limits: Limits = Limits(),
        *,
        on_state: Callable[[bool, str | None], None] | None = None,
        on_refusal: Refusal | None = None,
        on_tick: Callable[[], None] | None = None,
        retry_first: float = RETRY_FIRST,
    ) -> None:
        self.name = name
        self.address = address
        self.app = app
        self.limits = limits
        self.on_state = on_state or (lambda up, error: None)
        self.on_refusal = on_refusal or (lambda cause: None)
        self.on_tick = on_tick or (lambda: None)  # about every second while listening
        self.retry_first = retry_first
        self.up = False
        self.error: str | None = None
        self.down_since: float | None = None  # time.time() of the failed bind
        self._server: _Server | None = None
        self._map: dict[int, Any] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._retrier: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        assert self._server is not None, "not listening"
        return int(self._server.socket.getsockname()[1])

    # -- life cycle -------------------------------------------------------------------------------

    def start(self) -> bool:
        """Bind and serve; True when listening. Otherwise down, retrying in the background."""
        if self._bind():
            return True
        self._retrier = threading.Thread(target=self._retry, name=f"calsync-{self.name}-bind",
                                         daemon=True)
        self._retrier.start()
        return False

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, close every connection, free the port (within `timeout`)."""
        self._stop.set()
        with self._lock:
            server, thread = self._server, self._thread
        if server is not None:
            server.pull_trigger()  # wakes poll(2) at once
        if thread is not None:
            thread.join(timeout)
        if self._retrier is not None:
            self._retrier.join(timeout)

    # -- binding ----------------------------------------------------------------------------------

    def _bind(self) -> bool:
        try:
            sock = _listening_socket(self.address, self.limits.backlog)
        except OSError as exc:
            error = f"cannot listen on {address_text(self.address)}: {exc.strerror or exc}"
            first = self.error is None
            self.up, self.error = False, error
            if first:
                self.down_since = time.time()
                self.on_state(False, error)
            return False
        limits = self.limits
        adjustments = Adjustments(
            sockets=[sock], threads=limits.threads, connection_limit=limits.connections,
            channel_timeout=limits.idle_seconds, cleanup_interval=1,
            max_request_body_size=limits.max_body, max_request_header_size=limits.max_header,
            asyncore_use_poll=True, backlog=limits.backlog, expose_tracebacks=False,
            log_socket_errors=False, ident="calsync",
        )
        server = _Server(self.app, map=self._map, _sock=sock, adj=adjustments, bind_socket=False,
                         sockinfo=(sock.family, sock.type, sock.proto, sock.getsockname()))
        server.calsync = self
        thread = threading.Thread(target=self._serve, args=(server,),
                                  name=f"calsync-{self.name}-listener", daemon=True)
        with self._lock:
            self._server, self._thread = server, thread
        thread.start()
        was_down = self.error is not None
        self.up, self.error, self.down_since = True, None, None
        if was_down:
            self.on_state(True, None)
        log_event(log, f"{self.name} listener started", listen=address_text(self.address),
                  port=self.port)
        return True

    def _retry(self) -> None:
        delay = self.retry_first
        started = last_said = time.monotonic()
        log_event(log, f"{self.name} listener cannot listen; the daemon goes on without it and"
                  " retries", level=logging.ERROR, listen=address_text(self.address),
                  error=self.error, retry_in_seconds=delay)
        while not self._stop.wait(delay):
            if self._bind():
                log_event(log, f"{self.name} listener listening after a failed bind",
                          listen=address_text(self.address),
                          down_seconds=round(time.monotonic() - started))
                return
            delay = min(delay * 2, RETRY_MAX)
            if time.monotonic() - last_said >= STILL_DOWN_EVERY:
                last_said = time.monotonic()
                log_event(log, f"{self.name} listener still cannot listen", level=logging.ERROR,
                          listen=address_text(self.address), error=self.error,
                          down_seconds=round(last_said - started))

    # -- serving ----------------------------------------------------------------------------------

    def _serve(self, server: _Server) -> None:
        try:
            while not self._stop.is_set():
                wasyncore.loop(timeout=TICK, map=self._map, use_poll=True, count=1)
        except Exception:  # noqa: BLE001 - a bug here must not go unseen, nor kill the daemon
            log.exception("%s listener stopped by an error", self.name)
            self.up, self.error = False, "stopped by an error (see the log)"
            self.on_state(False, self.error)
        finally:
            server.task_dispatcher.shutdown(cancel_pending=True, timeout=2)
            wasyncore.close_all(self._map)
            with self._lock:
                self._server = None


def _listening_socket(address: tuple[str, int], backlog: int) -> socket.socket:
    """A bound, listening TCP socket for `address` ("::1" or "127.0.0.1" or a name)."""
    host, port = address
    found = socket.getaddrinfo(host or None, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0,
                               socket.AI_PASSIVE)
    family, kind, proto, _, sockaddr = found[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


class _Channel(HTTPChannel):
    """A connection that remembers when its current request began (the request deadline)."""

    request_began: float | None = None

    def received(self, data: bytes) -> bool:
        if self.request is None and data:
            self.request_began = time.monotonic()
        return bool(super().received(data))


class _RefusedTask(ErrorTask):
    """waitress' own error answer (400, 413, 431 ...), reported before it is sent."""

    def execute(self) -> None:
        error = self.request.error
        causes = {400: "bad request", 413: "too large", 431: "headers too large", 501: "malformed"}
        self.channel.server.refused(causes.get(getattr(error, "code", 0), "server error"))
        super().execute()


_Channel.error_task_class = _RefusedTask


class _Server(TcpWSGIServer):
    """waitress' server with the request deadline, room made by closing the oldest idle
    connection, and a pause (not a spin) when accept() runs out of descriptors."""

    channel_class = _Channel
    calsync: Server
    paused_until = 0.0

    def refused(self, cause: str) -> None:
        self.calsync.on_refusal(cause)

    def maintenance(self, now: float) -> None:
        before = {fd for fd, c in self.active_channels.items() if c.will_close}
        super().maintenance(now)  # idle ones: channel_timeout
        for fd, channel in list(self.active_channels.items()):
            # Reported when nothing, or half a request, came: a keep-alive connection closed
            # after its requests were answered is the normal end of one.
            if fd not in before and channel.will_close and (
                    channel.request_began is None or channel.request is not None):
                self.refused("idle")
        deadline = time.monotonic() - self.calsync.limits.request_seconds
        for channel in list(self.active_channels.values()):
            began = channel.request_began
            if (channel.request is not None and not channel.will_close and began is not None
                    and began < deadline):
                channel.will_close = True  # headers or body still incomplete: too slow
                self.refused("slow")
        self.calsync.on_tick()

    def readable(self) -> bool:
        if self.accepting and len(self._map) >= self.adj.connection_limit:
            self._make_room()
        if time.monotonic() < self.paused_until:
            super().readable()  # the maintenance still runs
            return False
        return bool(super().readable())

    def _make_room(self) -> None:
        """Close the connections idle the longest (no request being served), so that the
        next one can be accepted."""
        channels = list(self.active_channels.values())
        closing = sum(1 for c in channels if c.will_close)
        needed = len(self._map) - self.adj.connection_limit + 1 - closing
        if needed <= 0:
            return
        idle = sorted((c for c in channels if not c.requests and not c.will_close),
                      key=lambda c: c.last_activity)
        for channel in idle[:needed]:
            channel.will_close = True
            self.refused("evicted")

    def handle_accept(self) -> None:
        try:
            accepted = self.accept()
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                self.paused_until = time.monotonic() + ACCEPT_PAUSE
                self.refused("out of file descriptors")
            return
        if accepted is None:
            return
        conn, addr = accepted
        try:
            self.set_socket_options(conn)
        except OSError:
            conn.close()
            return
        self.channel_class(self, conn, self.fix_addr(addr), self.adj, map=self._map)


class OncePerMinute:
    """Log lines of one message at most once a `period` per cause, each with the count of
    what it stands for: a flood of 2,000 forged notifications writes one line a minute per
    cause, not 2,000 (journald's rate limit would drop the real lines with them).

    The first of a cause is logged at once (count=1); the next ones within the period are
    counted, and `flush()` (called every second or so) logs them once the period is over.
    """

    def __init__(self, logger: logging.Logger, message: str, *, level: int = logging.WARNING,
                 period: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.logger, self.message, self.level, self.period = logger, message, level, period
        self.clock = clock
        self._lock = threading.Lock()
        self._causes: dict[str, list[Any]] = {}  # cause → [logged at, held back, last fields]

    def note(self, cause: str, **fields: Any) -> None:
        now = self.clock()
        with self._lock:
            entry = self._causes.get(cause)
            if entry is not None and now - entry[0] < self.period:
                entry[1] += 1
                entry[2] = fields
                return
            self._causes[cause] = [now, 0, fields]
        log_event(self.logger, self.message, level=self.level, reason=cause, **fields, count=1)

    def flush(self) -> None:
        now = self.clock()
        due = []
        with self._lock:
            for cause, entry in self._causes.items():
                if entry[1] and now - entry[0] >= self.period:
                    due.append((cause, entry[1], entry[2]))
                    entry[0], entry[1] = now, 0
        for cause, count, fields in due:
            log_event(self.logger, self.message, level=self.level, reason=cause, **fields,
                      count=count, seconds=int(self.period))


def serve(name: str, address: tuple[str, int], app: Callable[..., Any], limits: Limits = Limits(),
          **callbacks: Any) -> Server:
    """A started `Server` (listening, or down and retrying)."""
    server = Server(name, address, app, limits, **callbacks)
    server.start()
    return server


__all__ = ["Limits", "OncePerMinute", "Server", "address_text", "serve"]
