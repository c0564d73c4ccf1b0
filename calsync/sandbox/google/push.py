"""The Google emulator's push notifications: events.watch, channels.stop, delivery by POST.

As Google's push guide describes them (https://developers.google.com/calendar/api/guides/push;
the request and response shapes also from the Calendar discovery document, `Channel` schema):

- `events.watch`: `POST .../calendars/{calendarId}/events/watch` with a Channel body: `id` (a
  UUID or similar, at most 64 characters, echoed in every notification), `type` "web_hook" (or
  "webhook"), `address` (the receiving URL: Google requires HTTPS), optional `token` (echoed in
  X-Goog-Channel-Token) and optional `expiration` (Unix ms) or `params.ttl` (seconds; default
  604,800, a week). The answer: `{"kind": "api#channel", "id", "resourceId", "resourceUri",
  "token"?, "expiration"}` (expiration: Unix ms, an int64 sent as a string).
- Every notification is a POST with an empty body and these headers: X-Goog-Channel-ID,
  X-Goog-Channel-Token (if set), X-Goog-Channel-Expiration (if set, human-readable, e.g. "Tue,
  19 Nov 2013 01:13:52 GMT"), X-Goog-Resource-ID, X-Goog-Resource-URI, X-Goog-Resource-State
  and X-Goog-Message-Number. The first message of a channel has the state `sync` and number 1;
  a change to the watched collection gives `exists` (`not_exists` is for a deleted resource,
  which a calendar's events collection never is here). Message numbers increase but are not
  sequential (here they jump by 1 to 3, so receivers cannot count on +1).
- `channels.stop`: `POST .../channels/stop` with `{id, resourceId}` → 204, empty. There is no
  renewal: a new channel (a new id) replaces one about to expire; both run for a while.
- Nothing is delivered after a channel's expiration.

Unconfirmed here, chosen to be plausible: the error reasons for a non-HTTPS address
(`push.webhookUrlNotHttps`, as the Drive API answers), a reused channel id
(`channelIdNotUnique`) and an unknown channel on stop (404 `notFound`); the upper bound Google
puts on a Calendar channel's lifetime (`max_ttl`, a week here); Google's retries of a failed
delivery (none here: one attempt each).

For tests and the benchmark the control API can drop the next N notifications, delay every
notification, forget a channel as if Google had lost it, and accept http:// addresses (the
listener on loopback, with no TLS proxy in front).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import http.client
import logging
import queue
import random
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from calsync.sandbox.google.errors import GoogleError

log = logging.getLogger(__name__)

DEFAULT_TTL = dt.timedelta(seconds=604_800)  # params.ttl default (events.watch reference)
MAX_ID_LENGTH = 64  # the guide: "Maximum length: 64 characters"
DELIVERY_TIMEOUT = 5.0  # seconds the emulator waits for a receiver's answer
KEPT_DELIVERIES = 100_000


@dataclass
class WatchChannel:
    """One notification channel on one calendar's events collection."""

    id: str
    calendar: str
    resource_id: str
    resource_uri: str
    address: str
    token: str | None
    expiration: dt.datetime
    user: str  # who opened it (only they may stop it)
    message_number: int = 0


@dataclass(frozen=True)
class Delivery:
    """One notification the emulator sent, dropped or could not send."""

    channel_id: str
    calendar: str
    state: str
    number: int
    at: dt.datetime  # when it was due (the change, or the watch call)
    outcome: str  # "delivered", "dropped", "expired", "stopped", "failed"
    status: int | None = None  # the receiver's HTTP status, when it answered
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Pending:
    channel_id: str
    state: str
    due: float  # time.monotonic() at which to send
    at: dt.datetime


class PushHub:
    """The channels of every calendar and a thread that delivers their notifications."""

    def __init__(self, clock: Callable[[], dt.datetime], base_url: Callable[[], str]) -> None:
        self.clock = clock
        self.base_url = base_url
        self.channels: dict[str, WatchChannel] = {}
        self.require_https = True  # as Google; tests on loopback turn it off
        self.max_ttl = DEFAULT_TTL
        self.drop_next = 0  # drop this many of the next notifications (lost in transit)
        self.delay = 0.0  # seconds every notification waits before it is sent
        self.deliveries: deque[Delivery] = deque(maxlen=KEPT_DELIVERIES)
        # (when, "opened" | "stopped" | "forgotten" | "expired", channel id, calendar)
        self.history: deque[tuple[dt.datetime, str, str, str]] = deque(maxlen=KEPT_DELIVERIES)
        self.opened = 0  # channels ever opened
        self.granted: dict[str, dt.datetime] = {}  # every channel ever opened → its expiration
        self._lock = threading.RLock()
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._rng = random.Random()
        self._connections: dict[str, http.client.HTTPConnection] = {}

    # -- the API ------------------------------------------------------------------------------

    def watch(self, calendar: str, user: str, body: Any) -> dict[str, Any]:
        """events.watch on `calendar` (already resolved and authorised): open a channel."""
        if not isinstance(body, dict):
            raise GoogleError(400, "parseError", "Parse Error")
        channel_id = body.get("id")
        kind = body.get("type")
        address = body.get("address")
        for name, value in (("id", channel_id), ("type", kind), ("address", address)):
            if not isinstance(value, str) or not value:
                raise GoogleError(400, "required", "Required", name)
        assert isinstance(channel_id, str) and isinstance(address, str)
        if len(channel_id) > MAX_ID_LENGTH:
            raise GoogleError(400, "invalid", f"Invalid channel id: longer than {MAX_ID_LENGTH} characters", "id")
        if kind not in ("web_hook", "webhook"):
            raise GoogleError(400, "invalid", f"Invalid value for type: {kind}", "type")
        parts = urlsplit(address)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise GoogleError(400, "invalid", f"Invalid address: {address}", "address")
        if parts.scheme != "https" and self.require_https:
            raise GoogleError(400, "push.webhookUrlNotHttps", f"WebHook callback must be HTTPS: {address}")
        token = body.get("token")
        if token is not None and not isinstance(token, str):
            raise GoogleError(400, "invalid", "Invalid value for token", "token")
        now = self.clock()
        expiration = now + self._ttl(body, now)
        with self._lock:
            known = self.channels.get(channel_id)
            if known is not None and known.expiration > now:
                raise GoogleError(400, "channelIdNotUnique", f"Channel id {channel_id} not unique")
            channel = WatchChannel(
                id=channel_id,
                calendar=calendar,
                resource_id=resource_id_of(calendar),
                resource_uri=f"{self.base_url()}/calendar/v3/calendars/{quote(calendar, safe='')}/events?alt=json",
                address=address,
                token=token or None,
                expiration=expiration,
                user=user,
            )
            self.channels[channel_id] = channel
            self.opened += 1
            self.history.append((now, "opened", channel_id, calendar))
            self.granted[channel_id] = expiration
            self._enqueue(channel, "sync", now)
        answer: dict[str, Any] = {
            "kind": "api#channel",
            "id": channel.id,
            "resourceId": channel.resource_id,
            "resourceUri": channel.resource_uri,
            "expiration": str(_millis(expiration)),
        }
        if channel.token:
            answer["token"] = channel.token
        return answer

    def _ttl(self, body: dict[str, Any], now: dt.datetime) -> dt.timedelta:
        wanted = DEFAULT_TTL
        params = body.get("params")
        if isinstance(params, dict) and params.get("ttl") is not None:
            try:
                wanted = dt.timedelta(seconds=float(params["ttl"]))
            except (TypeError, ValueError):
                raise GoogleError(400, "invalid", "Invalid value for params.ttl", "params.ttl") from None
        if body.get("expiration") not in (None, "", 0, "0"):
            try:
                at = dt.datetime.fromtimestamp(int(body["expiration"]) / 1000, dt.timezone.utc)
            except (TypeError, ValueError, OverflowError):
                raise GoogleError(400, "invalid", "Invalid value for expiration", "expiration") from None
            wanted = at - now
        if wanted <= dt.timedelta(0):
            raise GoogleError(400, "invalid", "Channel expiration is in the past", "expiration")
        return min(wanted, self.max_ttl)

    def stop(self, user: str, body: Any) -> None:
        """channels.stop: only the user who opened the channel may stop it."""
        if not isinstance(body, dict) or not body.get("id"):
            raise GoogleError(400, "required", "Required", "id")
        with self._lock:
            channel = self.channels.get(str(body["id"]))
            if (
                channel is None
                or channel.user != user
                or (body.get("resourceId") and body["resourceId"] != channel.resource_id)
            ):
                raise GoogleError(404, "notFound", f"Channel '{body['id']}' not found for project")
            del self.channels[channel.id]
            self.history.append((self.clock(), "stopped", channel.id, channel.calendar))

    # -- changes ------------------------------------------------------------------------------

    def changed(self, calendars: set[str]) -> None:
        """These calendars' events changed: one `exists` message per live channel on each."""
        if not calendars or not self.channels:
            return
        now = self.clock()
        with self._lock:
            for channel in list(self.channels.values()):
                if channel.calendar in calendars:
                    if channel.expiration <= now:
                        del self.channels[channel.id]  # expired: Google forgets it
                        self.history.append((now, "expired", channel.id, channel.calendar))
                        continue
                    self._enqueue(channel, "exists", now)

    def forget(self, channel_id: str | None = None, calendar: str | None = None) -> int:
        """Lose channels silently, as Google may (no notification, stop answers 404)."""
        with self._lock:
            gone = [c.id for c in self.channels.values()
                    if (channel_id is None or c.id == channel_id)
                    and (calendar is None or c.calendar == calendar)]
            for cid in gone:
                self.history.append((self.clock(), "forgotten", cid, self.channels[cid].calendar))
                del self.channels[cid]
        return len(gone)

    def live(self, calendar: str | None = None) -> list[WatchChannel]:
        now = self.clock()
        with self._lock:
            return [c for c in self.channels.values()
                    if c.expiration > now and (calendar is None or c.calendar == calendar)]

    def sent(self, calendar: str | None = None, outcome: str | None = None) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries
                    if (calendar is None or d.calendar == calendar)
                    and (outcome is None or d.outcome == outcome)]

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=2)
            self._thread = None
        for conn in self._connections.values():
            conn.close()
        self._connections.clear()

    # -- delivery -----------------------------------------------------------------------------

    def _enqueue(self, channel: WatchChannel, state: str, at: dt.datetime) -> None:
        """Called with the lock held: number the message now, in the order of changes."""
        channel.message_number = 1 if state == "sync" else channel.message_number + self._rng.randint(1, 3)
        self._queue.put(_Pending(channel.id, f"{state}#{channel.message_number}",
                                 time.monotonic() + self.delay, at))
        if self._thread is None:
            self._thread = threading.Thread(target=self._deliver_forever, name="GooglePush", daemon=True)
            self._thread.start()

    def _deliver_forever(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            wait = item.due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                self._deliver(item)
            except Exception:  # an emulator bug must not stop later deliveries
                log.exception("push delivery failed")

    def _deliver(self, item: _Pending) -> None:
        state, _, number = item.state.partition("#")
        with self._lock:
            channel = self.channels.get(item.channel_id)
            calendar = channel.calendar if channel else ""
            if channel is None:
                self._record(item, calendar, state, int(number), "stopped")
                return
            if channel.expiration <= self.clock():
                del self.channels[channel.id]
                self.history.append((self.clock(), "expired", channel.id, calendar))
                self._record(item, calendar, state, int(number), "expired")
                return
            if self.drop_next > 0:
                self.drop_next -= 1
                self._record(item, calendar, state, int(number), "dropped")
                return
            headers = {
                "X-Goog-Channel-ID": channel.id,
                "X-Goog-Channel-Expiration": email.utils.format_datetime(channel.expiration, usegmt=True),
                "X-Goog-Resource-ID": channel.resource_id,
                "X-Goog-Resource-URI": channel.resource_uri,
                "X-Goog-Resource-State": state,
                "X-Goog-Message-Number": number,
                "Content-Length": "0",
            }
            if channel.token:
                headers["X-Goog-Channel-Token"] = channel.token
            address = channel.address
        status = self._post(address, headers)
        self._record(item, calendar, state, int(number),
                     "delivered" if status is not None and 200 <= status < 300 or status == 102 else "failed",
                     status, headers)

    def _post(self, address: str, headers: dict[str, str]) -> int | None:
        parts = urlsplit(address)
        key = f"{parts.scheme}://{parts.netloc}"
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        for attempt in range(2):  # a kept-alive connection the receiver closed: once more
            conn = self._connections.get(key)
            if conn is None:
                if parts.scheme == "https":
                    context = ssl.create_default_context()
                    conn = http.client.HTTPSConnection(parts.hostname or "", parts.port,
                                                       timeout=DELIVERY_TIMEOUT, context=context)
                else:
                    conn = http.client.HTTPConnection(parts.hostname or "", parts.port,
                                                      timeout=DELIVERY_TIMEOUT)
                self._connections[key] = conn
            try:
                conn.request("POST", path, body=b"", headers=headers)
                response = conn.getresponse()
                response.read()
                return response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                del self._connections[key]
                if attempt:
                    return None
        return None

    def _record(self, item: _Pending, calendar: str, state: str, number: int, outcome: str,
                status: int | None = None, headers: dict[str, str] | None = None) -> None:
        with self._lock:
            self.deliveries.append(Delivery(item.channel_id, calendar, state, number, item.at,
                                            outcome, status, dict(headers or {})))


def resource_id_of(calendar: str) -> str:
    """An opaque id of a calendar's events collection, the same for every channel on it."""
    return hashlib.sha1(f"events:{calendar}".encode()).hexdigest()[:27]


def _millis(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


__all__ = ["Delivery", "PushHub", "WatchChannel", "resource_id_of"]
