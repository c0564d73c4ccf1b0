"""Push notifications (issue 12): a notification channel per calendar, and the listener Google
posts to. Optional: set `[google] push_url` and `push_listen`; polling goes on regardless.

What Google's push guide says (https://developers.google.com/calendar/api/guides/push), and
what calsync does about it:

- A channel is opened with events.watch on the calendar (`type` web_hook, the public HTTPS
  `address`, a per-channel secret `token`, a requested lifetime in `params.ttl`). It is
  recorded (state `push_channels`, m006_push) *before* the request, since the `sync` message
  may arrive before the answer; the answer gives the resource id and the expiration Google
  granted.
- Channels are not renewable: before one expires (within a tenth of its lifetime, at least five
  minutes) a new one (a new id) is opened, and once it is, the old one is stopped
  (channels.stop). A calendar no longer configured, a changed push_url, and every channel at
  shutdown are stopped too; rows left by a crash are stopped or adopted at the next start.
- Google POSTs each notification with X-Goog-Channel-ID, X-Goog-Channel-Token,
  X-Goog-Resource-ID and X-Goog-Resource-State (`sync` first, then `exists`/`not_exists`).
  The listener (`Listener`) refuses an unknown channel id (404) and a wrong token or resource
  (403), counting them and logging the channel (never the token) at most once a minute per
  cause; it acknowledges `sync` (200) and, for a change, asks the daemon for a sync of that
  calendar (`on_change`, coalesced there: push_runs.py) and answers 200 at once. It is served by
  listener.py, whose limits hold against hostile clients (bounded connections and threads,
  deadlines, Content-Length checked first) and whose port, when it cannot be bound, is
  retried while the daemon polls on.
- Notifications can be lost, late, or stop when Google drops a channel: the daemon still polls
  every `interval_minutes`. A poll that finds changes no notification announced marks the
  calendar's channel suspect (`PushService.suspect`), and a new channel replaces it.

`ChannelKeeper` (a thread of its own) does the watching and stopping, through the same Google
clients and request budget as the polls (calendar/google/clients.py, quota.py).
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import replace
from typing import Any

from calsync.service import metrics
from calsync.core.config import Config
from calsync.core.errors import CalsyncError
from calsync.service.listener import Limits, OncePerMinute, Server
from calsync.core.logs import event as log_event
from calsync.state.store import PushChannel, forget_push_channel, push_channels, save_push_channel

log = logging.getLogger("calsync.push")  # names predate the layers (ARCHITECTURE.md)

MIN_RENEW_MARGIN = dt.timedelta(minutes=5)
RENEW_FRACTION = 0.1  # a channel is replaced when less than this part of its lifetime is left
KEEP_EVERY = 60.0  # seconds between two rounds of the keeper (sooner when woken)
RETRY_AFTER = dt.timedelta(minutes=1)  # a watch that failed is tried again after this, doubling
MAX_RETRY_AFTER = dt.timedelta(hours=1)
HEALTH_TEXT = b"calsync push listener\n"  # what GET answers (doctor checks for it)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def renew_margin(channel: PushChannel) -> dt.timedelta:
    """How long before its expiration a channel is replaced: a tenth of its lifetime, at least
    five minutes, but never more than half of it (Google may grant less than was asked)."""
    if channel.expires_at is None:
        return MIN_RENEW_MARGIN
    lifetime = channel.expires_at - channel.opened_at
    return min(max(MIN_RENEW_MARGIN, lifetime * RENEW_FRACTION), lifetime / 2)


class ChannelBook:
    """The channels calsync knows, by id (the listener's lookup) and by user. Thread-safe."""

    def __init__(self, channels: Iterable[PushChannel] = ()) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, PushChannel] = {}
        # By user too: the keeper asks for every user's channels each round, and a scan of
        # all of them per user made a round over 10,000 calendars cost seconds of CPU.
        self._by_user: dict[str, dict[str, PushChannel]] = {}
        for channel in channels:
            self.put(channel)

    def put(self, channel: PushChannel) -> None:
        with self._lock:
            old = self._by_id.get(channel.channel_id)
            if old is not None and old.user != channel.user:
                self._by_user.get(old.user, {}).pop(channel.channel_id, None)
            self._by_id[channel.channel_id] = channel
            self._by_user.setdefault(channel.user, {})[channel.channel_id] = channel

    def drop(self, channel_id: str) -> None:
        with self._lock:
            channel = self._by_id.pop(channel_id, None)
            if channel is not None:
                mine = self._by_user.get(channel.user, {})
                mine.pop(channel_id, None)
                if not mine:
                    self._by_user.pop(channel.user, None)

    def get(self, channel_id: str) -> PushChannel | None:
        with self._lock:
            return self._by_id.get(channel_id)

    def of(self, user: str) -> list[PushChannel]:
        with self._lock:
            return sorted(self._by_user.get(user, {}).values(), key=lambda c: c.opened_at)

    def all(self) -> list[PushChannel]:
        with self._lock:
            return sorted(self._by_id.values(), key=lambda c: (c.user, c.opened_at))


# ---------------------------------------------------------------------------------------------
# Opening, renewing and stopping channels


class ChannelKeeper:
    """Keeps one live channel per configured calendar; stops the others.

    `maintain()` is one round (the thread calls it every KEEP_EVERY seconds or when woken);
    `stop_all()` stops every channel at shutdown. Tests call both directly.
    """

    def __init__(
        self,
        config: Config,
        book: ChannelBook,
        *,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self.config = config
        self.book = book
        self.clock = clock
        self._suspects: set[str] = set()
        self._failures: dict[str, tuple[int, dt.datetime]] = {}  # user → (count, next try)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the thread -------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="calsync-push-channels", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def halt(self, timeout: float) -> None:
        """Stop the thread (a round in progress ends after its current request)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            pause = KEEP_EVERY
            try:
                self.maintain()
                pause = min(pause, self.next_due())
            except Exception:  # noqa: BLE001 - the keeper must outlive one bad round
                log.exception("push channel upkeep failed")
            self._wake.wait(max(pause, 1.0))  # at most a round a second, even when behind
            self._wake.clear()

    def next_due(self) -> float:
        """Seconds until some channel must be renewed (the keeper wakes then)."""
        now = self.clock()
        due = [(c.expires_at - renew_margin(c) - now).total_seconds()
               for c in self.book.all() if c.expires_at is not None]
        return min(due, default=KEEP_EVERY)

    # -- rounds -----------------------------------------------------------------------------------

    def suspect(self, user: str) -> None:
        """`user`'s channel seems dead (a poll found changes no notification announced)."""
        with self._lock:
            self._suspects.add(user)
        self.wake()

    def maintain(self) -> None:
        """Stop what is no longer needed, open what is missing, renew what expires soon."""
        config = self.config
        url = config.google.push_url
        users = set(config.sync.users)
        for channel in self.book.all():
            if self._stop.is_set():
                return
            if channel.user not in users or channel.address != url or url is None:
                self.stop_channel(channel, "no longer needed")
        if url is None:
            return
        for user in config.sync.users:
            if self._stop.is_set():
                return
            self._keep(user, url)

    def _keep(self, user: str, url: str) -> None:
        now = self.clock()
        mine = self.book.of(user)
        with self._lock:
            suspect = user in self._suspects
            self._suspects.discard(user)
        good = [c for c in mine if c.resource_id and c.expires_at and not suspect
                and c.expires_at - now > renew_margin(c)]
        expired = [c for c in mine if c.expires_at is not None and c.expires_at <= now]
        for channel in expired:  # Google has forgotten it already: nothing to stop
            self._forget(channel)
        if good:
            return
        failure = self._failures.get(user)
        if failure is not None and failure[1] > now and not suspect:
            return
        opened = self.open(user, url, reason="suspect" if suspect else ("renew" if mine else "new"))
        if opened is None:
            return
        for channel in mine:
            if channel not in expired:
                self.stop_channel(channel, "replaced")

    def open(self, user: str, url: str, reason: str = "new") -> PushChannel | None:
        """events.watch for `user`; the channel is in the book before the request is sent."""
        from calsync.calendar.google.api import calendar_factory
        from calsync.service.runtime import thread_store

        config = self.config
        now = self.clock()
        pending = PushChannel(str(uuid.uuid4()), user, secrets.token_urlsafe(32), url, None, None, now)
        store = thread_store(config)
        self.book.put(pending)
        save_push_channel(store, pending)
        ttl = dt.timedelta(hours=config.google.push_channel_hours)
        try:
            watched = calendar_factory(config.google)(user).watch(pending.channel_id, url, pending.token, ttl)
        except CalsyncError as exc:
            self._forget(pending)
            count = (self._failures.get(user, (0, now))[0]) + 1
            delay = min(MAX_RETRY_AFTER, RETRY_AFTER * 2 ** (count - 1))
            self._failures[user] = (count, now + delay)
            log_event(log, "cannot open push channel", level=logging.WARNING, user=user,
                      error=str(exc), retry_in_seconds=int(delay.total_seconds()))
            return None
        self._failures.pop(user, None)
        channel = replace(pending, resource_id=watched.resource_id,
                          expires_at=watched.expires_at or now + ttl)
        if self.book.get(channel.channel_id) is not None:
            self.book.put(channel)
        save_push_channel(store, channel)
        metrics.CHANNELS_OPENED.inc()
        log_event(log, "push channel opened", user=user, channel=channel.channel_id, reason=reason,
                  expires=channel.expires_at.isoformat(timespec="seconds") if channel.expires_at else None)
        return channel

    def stop_channel(self, channel: PushChannel, reason: str) -> bool:
        """channels.stop; the record goes too (also when Google no longer knew the channel).
        False when Google could not be asked (the record stays: stopped on a later round)."""
        from calsync.calendar.google.api import calendar_factory

        if channel.resource_id is None:
            # Its watch request never answered (a crash, a timeout): channels.stop needs the
            # resource id, so the channel can only be left to expire. Notifications it may
            # still bring are refused as an unknown channel.
            self._forget(channel)
            log_event(log, "push channel forgotten", user=channel.user, channel=channel.channel_id,
                      reason=f"{reason}; its watch request never answered")
            return True
        try:
            known = calendar_factory(self.config.google)(channel.user).stop_channel(
                channel.channel_id, channel.resource_id)
        except CalsyncError as exc:
            log_event(log, "cannot stop push channel", level=logging.WARNING, user=channel.user,
                      channel=channel.channel_id, error=str(exc))
            return False
        self._forget(channel)
        metrics.CHANNELS_STOPPED.inc()
        log_event(log, "push channel stopped", user=channel.user, channel=channel.channel_id,
                  reason=reason, known_to_google=known)
        return True

    def _forget(self, channel: PushChannel) -> None:
        from calsync.service.runtime import thread_store

        self.book.drop(channel.channel_id)
        forget_push_channel(thread_store(self.config), channel.channel_id)

    def stop_all(self, deadline: float, workers: int = 4) -> list[PushChannel]:
        """Stop every channel (shutdown) until `deadline` (time.monotonic()); those left are
        returned and stay recorded, to be stopped or adopted at the next start."""
        channels = self.book.all()
        if not channels:
            return []
        pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="calsync-push-stop")
        done: set[str] = set()

        def stop(channel: PushChannel) -> None:
            if time.monotonic() < deadline and self.stop_channel(channel, "shutdown"):
                done.add(channel.channel_id)

        futures = [pool.submit(stop, c) for c in channels]
        wait(futures, timeout=max(0.0, deadline - time.monotonic()))
        pool.shutdown(wait=False, cancel_futures=True)
        return [c for c in channels if c.channel_id not in done]


# ---------------------------------------------------------------------------------------------
# The listener


# Request-level refusals (a notification not taken) and connection-level ones (closed by the
# listener's limits: listener.py), as the metrics and the log name them.
CONNECTION_CAUSES = frozenset({"idle", "slow", "evicted", "out of file descriptors"})


class _Headers:
    """A WSGI environ read as request headers (`get("X-Goog-Channel-ID")`)."""

    def __init__(self, environ: dict[str, Any]) -> None:
        self.environ = environ

    def get(self, name: str) -> str | None:
        value = self.environ.get("HTTP_" + name.upper().replace("-", "_"))
        return value if isinstance(value, str) else None


class Listener:
    """The HTTP server Google's notifications reach (through the reverse proxy at push_url).

    Every POST is a notification, whatever its path (the proxy decides what reaches it); GET
    answers HEALTH_TEXT (`calsync doctor`). `on_change(user)` is called for a valid change
    notification and must return at once. Served by listener.py within its limits (bounded
    connections and threads, deadlines, Content-Length checked before anything is read); a
    POST without a Content-Length is refused with 411. A port that cannot be bound does not
    raise: the listener is down (`up`, `error`) and retries; `on_state(up, error)` tells.
    Refusals are counted (`calsync_push_notifications_refused_total{reason}`, connections
    closed by the limits in `calsync_listener_connections_closed_total`) and logged at most
    once a minute per cause, with the count.
    """

    def __init__(self, address: tuple[str, int], book: ChannelBook,
                 on_change: Callable[[str], Any],
                 on_state: Callable[[bool, str | None], None] | None = None,
                 limits: Limits = Limits()) -> None:
        self.address = address
        self.book = book
        self.on_change = on_change
        self.on_state = on_state or (lambda up, error: None)
        self.limits = limits
        self._refusals = OncePerMinute(log, "push notification refused")
        self._closed = OncePerMinute(log, "push listener closed connections")
        self._server: Server | None = None

    def start(self) -> bool:
        """Listen; True when bound, else down and retrying (never raises for the port)."""
        self._server = Server("push", self.address, self._app, self.limits,
                              on_state=self._state, on_refusal=self._refused, on_tick=self._tick)
        metrics.LISTENER_UP.labels("push").set(0)
        up = self._server.start()
        if up:
            metrics.LISTENER_UP.labels("push").set(1)
        return up

    @property
    def up(self) -> bool:
        return self._server is not None and self._server.up

    @property
    def error(self) -> str | None:
        return self._server.error if self._server is not None else None

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def _state(self, up: bool, error: str | None) -> None:
        metrics.LISTENER_UP.labels("push").set(1 if up else 0)
        self.on_state(up, error)

    def _tick(self) -> None:
        self._refusals.flush()
        self._closed.flush()

    def _refused(self, cause: str) -> None:
        """A refusal by the listener's limits (listener.py), before any notification logic."""
        if cause in CONNECTION_CAUSES:
            metrics.CONNECTIONS_CLOSED.labels("push", cause.replace(" ", "_")).inc()
            self._closed.note(cause)
            return
        metrics.NOTIFICATIONS_RECEIVED.inc()
        self._refuse(0, cause, "", None)

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        method = environ.get("REQUEST_METHOD", "")
        if method in ("GET", "HEAD"):
            return _answer(start_response, 200, HEALTH_TEXT, head=method == "HEAD")
        if method != "POST":
            metrics.NOTIFICATIONS_RECEIVED.inc()
            status, _ = self._refuse(405, "method", "", None)
            return _answer(start_response, status)
        if not environ.get("CONTENT_LENGTH"):
            # Google sends Content-Length (0: a notification has no body); without one there is
            # no telling where the body ends. Nothing is read.
            metrics.NOTIFICATIONS_RECEIVED.inc()
            status, _ = self._refuse(411, "no length", "", None)
            return _answer(start_response, status)
        status, _ = self.handle(_Headers(environ))
        return _answer(start_response, status)

    def handle(self, headers: Any) -> tuple[int, str]:
        """A notification's answer (status, what happened) from its headers (Google's guide)."""
        metrics.NOTIFICATIONS_RECEIVED.inc()
        channel_id = headers.get("X-Goog-Channel-ID") or ""
        state = headers.get("X-Goog-Resource-State") or ""
        if not channel_id or not state:
            return self._refuse(400, "malformed", channel_id, None)
        channel = self.book.get(channel_id)
        if channel is None:
            return self._refuse(404, "unknown channel", channel_id, None)
        token = headers.get("X-Goog-Channel-Token") or ""
        if not hmac.compare_digest(channel.token.encode(), token.encode()):
            return self._refuse(403, "wrong token", channel_id, channel.user)
        resource = headers.get("X-Goog-Resource-ID")
        if channel.resource_id and resource and resource != channel.resource_id:
            return self._refuse(403, "wrong resource", channel_id, channel.user)
        if state == "sync":
            log.debug("push channel confirmed", extra={"fields": {"user": channel.user,
                                                                  "channel": channel_id}})
            return 200, "sync"
        metrics.NOTIFICATIONS_ACTED.inc()
        self.on_change(channel.user)
        return 200, "acted"

    def _refuse(self, status: int, reason: str, channel_id: str, user: str | None) -> tuple[int, str]:
        metrics.NOTIFICATIONS_REFUSED.labels(reason.replace(" ", "_")).inc()
        self._refusals.note(reason, channel=channel_id[:80] or None, user=user)
        return status, reason


_REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 411: "Length Required"}


def _answer(start_response: Callable[..., Any], status: int, body: bytes = b"",
            head: bool = False) -> list[bytes]:
    start_response(f"{status} {_REASONS.get(status, 'Error')}",
                   [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [] if head else [body]


def listener_answers(url: str, timeout: float = 5.0) -> str | None:
    """None when a GET of `url` reaches calsync's listener; else what went wrong (doctor)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 - configured URL
            body = answer.read(len(HEALTH_TEXT) + 1)
    except urllib.error.HTTPError as exc:
        return f"answered HTTP {exc.code}, not calsync's listener"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"no answer ({getattr(reason, 'strerror', None) or reason})"
    if body != HEALTH_TEXT:
        return "something else answers there, not calsync's listener"
    return None


# ---------------------------------------------------------------------------------------------
# The daemon's side


class PushService:
    """The listener, the channel keeper and the book they share, for the daemon.

    `on_change(user)` is the daemon's coalescing trigger (`push_runs.PushRuns.notify_change`). `start()` adopts the channels the
    state records (a crash left them open) and starts the listener (one that cannot bind is
    down and retried: channels are kept all the same, and polling covers for it);
    `reload(config)`, `suspect(user)`, `stop(deadline)`.
    """

    def __init__(self, config: Config, on_change: Callable[[str], Any],
                 on_state: Callable[[bool, str | None], None] | None = None) -> None:
        self.config = config
        self.book = ChannelBook()
        self.keeper = ChannelKeeper(config, self.book)
        assert config.google.push_listen is not None
        self.listener = Listener(config.google.push_listen, self.book, on_change, on_state)

    def start(self) -> None:
        from calsync.service.runtime import thread_store

        for channel in push_channels(thread_store(self.config)):
            self.book.put(channel)
        self.listener.start()
        self.keeper.start()

    def reload(self, config: Config) -> None:
        """A new configuration: channels follow the users and the push_url (the listener's
        address only changes with a restart)."""
        self.config = config
        self.keeper.config = config
        self.keeper.wake()

    def suspect(self, user: str) -> None:
        self.keeper.suspect(user)

    def expiry(self, user: str) -> dt.datetime | None:
        expires = [c.expires_at for c in self.book.of(user) if c.expires_at and c.resource_id]
        return max(expires) if expires else None

    def opened_before(self, user: str, moment: dt.datetime) -> bool:
        """Whether `user` had a live channel opened before `moment`."""
        return any(c.resource_id and c.opened_at < moment for c in self.book.of(user))

    def stop(self, deadline: float) -> list[PushChannel]:
        """Shutdown: no more notifications taken, the keeper halted, every channel stopped
        (until `deadline`); the channels left are returned (they stay recorded)."""
        self.listener.stop()
        self.keeper.halt(max(0.0, deadline - time.monotonic()))
        left = self.keeper.stop_all(deadline, workers=self.config.sync.concurrency)
        if left:
            log_event(log, "push channels left open at shutdown; stopped or adopted at the next"
                      " start, or they expire", level=logging.WARNING, count=len(left))
        return left


__all__ = [
    "ChannelBook",
    "ChannelKeeper",
    "HEALTH_TEXT",
    "Listener",
    "PushService",
    "listener_answers",
    "renew_margin",
]
