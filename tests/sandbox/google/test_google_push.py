"""The emulator's push notifications, through the real google-api-python-client.

Facts from Google's push guide (https://developers.google.com/calendar/api/guides/push), checked
with the search tool, and what each test holds the emulator to:

- "Whenever a channel's resource changes, the Google Calendar API sends a notification message
  as a POST request to that URL"; the receiver "is an HTTPS server".
- The watch request body carries `id` ("we recommend a UUID ... Maximum length: 64
  characters"; "The ID value you set is echoed back in the X-Goog-Channel-Id HTTP header of
  every notification message"), `type` "web_hook", `address`, and optionally `token` and
  `expiration` ("your requested channel expiration time, in milliseconds").
- events.watch reference: `params.ttl` "The time-to-live in seconds for the notification
  channel. Default is 604800 seconds"; the answer is {"kind": "api#channel", "id", "resourceId",
  "resourceUri", "token", "expiration"}, expiration a Unix timestamp in milliseconds (Calendar
  discovery document, schema Channel: int64, sent as a string).
- States: `sync` when the channel is created, `exists` for a change, `not_exists` when the
  resource is deleted. X-Goog-Message-Number: the `sync` message's is 1; the numbers "increase
  for each subsequent message on the channel, but they're not sequential" (the guide, as quoted
  in public code: checked through the search tool, not on the page itself).
- X-Goog-Channel-Expiration is "expressed in human-readable format" (e.g. "Tue, 19 Nov 2013
  01:13:52 GMT"); it and X-Goog-Channel-Token are present only when defined.
- channels.stop (discovery: POST channels/stop, body Channel) answers an empty body.

Recalled from the guide, not re-checked here: the body of a Calendar notification is empty, a
receiver signals success with 200/201/202/204/102, and channels cannot be renewed (a new
channel with a new id replaces an old one).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import http.server
import threading
import time
from typing import Any

import pytest
from google_helpers import ALICE, BOB, timed
from googleapiclient.errors import HttpError


class Receiver:
    """A webhook on loopback that records every notification and answers `status`."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.status = 200
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                receiver.seen.append({"path": self.path, "body": body,
                                      "headers": {k.lower(): v for k, v in self.headers.items()}})
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/google/notify"

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.seen) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.seen)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(emulator):
    emulator.backend.push.require_https = False  # the receiver is plain HTTP on loopback
    found = Receiver()
    yield found
    found.close()


def _watch(service, address: str, channel_id: str = "ch-1", **extra: Any) -> dict[str, Any]:
    body = {"id": channel_id, "type": "web_hook", "address": address, **extra}
    return service.events().watch(calendarId="primary", body=body).execute()


def _meeting(emulator, organizer: str = ALICE, summary: str = "Sync call") -> dict[str, Any]:
    return emulator.backend.create_event(organizer, {"summary": summary,
                                                     **timed("2026-01-05T15:00:00+00:00")})


def test_watch_answers_a_channel_and_a_sync_message_comes_first(emulator, make_service, receiver, clock):
    answer = _watch(make_service(ALICE), receiver.url, token="s3cret", params={"ttl": "3600"})
    assert answer["kind"] == "api#channel" and answer["id"] == "ch-1"
    assert answer["token"] == "s3cret" and answer["resourceId"] and answer["resourceUri"]
    # int64 milliseconds as a string: the requested hour from the emulator's clock.
    assert int(answer["expiration"]) == int((clock.now + dt.timedelta(hours=1)).timestamp() * 1000)
    [first] = receiver.wait_for(1)
    headers = first["headers"]
    assert first["path"] == "/google/notify" and first["body"] == b""
    assert headers["x-goog-channel-id"] == "ch-1"
    assert headers["x-goog-channel-token"] == "s3cret"
    assert headers["x-goog-resource-state"] == "sync"
    assert headers["x-goog-message-number"] == "1"
    assert headers["x-goog-resource-id"] == answer["resourceId"]
    assert headers["x-goog-resource-uri"] == answer["resourceUri"]
    expires = email.utils.parsedate_to_datetime(headers["x-goog-channel-expiration"])
    assert expires == (clock.now + dt.timedelta(hours=1)).replace(microsecond=0)
    assert headers["x-goog-channel-expiration"].endswith(" GMT")


def test_changes_give_exists_messages_with_growing_numbers(emulator, make_service, receiver):
    _watch(make_service(ALICE), receiver.url)
    receiver.wait_for(1)
    meeting = _meeting(emulator)
    emulator.backend.update_event(meeting["id"], {"summary": "Moved"})
    messages = receiver.wait_for(3)
    assert [m["headers"]["x-goog-resource-state"] for m in messages] == ["sync", "exists", "exists"]
    numbers = [int(m["headers"]["x-goog-message-number"]) for m in messages]
    assert numbers == sorted(numbers) and len(set(numbers)) == 3
    assert "x-goog-channel-token" not in messages[0]["headers"]  # no token was given


def test_only_the_watched_calendar_notifies(emulator, make_service, receiver):
    _watch(make_service(BOB), receiver.url)
    receiver.wait_for(1)
    _meeting(emulator, ALICE)  # bob is not invited
    time.sleep(0.3)
    assert len(receiver.seen) == 1
    emulator.backend.create_event(ALICE, {"summary": "Invite", "attendees": [BOB],
                                          **timed("2026-01-06T15:00:00+00:00")})
    assert [m["headers"]["x-goog-resource-state"] for m in receiver.wait_for(2)] == ["sync", "exists"]


def test_the_default_lifetime_is_a_week(emulator, make_service, receiver, clock):
    answer = _watch(make_service(ALICE), receiver.url)
    assert int(answer["expiration"]) == int((clock.now + dt.timedelta(seconds=604_800)).timestamp() * 1000)


def test_stop_answers_empty_and_nothing_is_delivered_after(emulator, make_service, receiver):
    service = make_service(ALICE)
    answer = _watch(service, receiver.url)
    receiver.wait_for(1)
    result = service.channels().stop(body={"id": "ch-1", "resourceId": answer["resourceId"]}).execute()
    assert result in ("", None, {})
    _meeting(emulator)
    time.sleep(0.3)
    assert len(receiver.seen) == 1
    with pytest.raises(HttpError) as caught:  # stopped already
        service.channels().stop(body={"id": "ch-1", "resourceId": answer["resourceId"]}).execute()
    assert caught.value.resp.status == 404


def test_only_the_user_who_opened_a_channel_stops_it(emulator, make_service, receiver):
    answer = _watch(make_service(ALICE), receiver.url)
    with pytest.raises(HttpError) as caught:
        make_service(BOB).channels().stop(body={"id": "ch-1", "resourceId": answer["resourceId"]}).execute()
    assert caught.value.resp.status == 404
    assert len(emulator.backend.push.live(ALICE)) == 1


def test_an_expired_channel_delivers_nothing(emulator, make_service, receiver, clock):
    _watch(make_service(ALICE), receiver.url, params={"ttl": "60"})
    receiver.wait_for(1)
    clock.advance(seconds=61)
    _meeting(emulator)
    time.sleep(0.3)
    assert len(receiver.seen) == 1
    assert emulator.backend.push.live(ALICE) == []


def test_google_posts_only_to_https(emulator, make_service, receiver):
    emulator.backend.push.require_https = True
    with pytest.raises(HttpError) as caught:
        _watch(make_service(ALICE), receiver.url)
    assert caught.value.resp.status == 400


def test_a_channel_id_is_at_most_64_characters_and_unique(emulator, make_service, receiver):
    service = make_service(ALICE)
    with pytest.raises(HttpError):
        _watch(service, receiver.url, channel_id="x" * 65)
    _watch(service, receiver.url, channel_id="x" * 64)
    with pytest.raises(HttpError) as caught:
        _watch(service, receiver.url, channel_id="x" * 64)
    assert caught.value.resp.status == 400


def test_notifications_can_be_dropped_delayed_and_channels_forgotten(emulator, make_service, receiver):
    push = emulator.backend.push
    _watch(make_service(ALICE), receiver.url)
    receiver.wait_for(1)
    push.drop_next = 1
    _meeting(emulator, summary="lost")
    time.sleep(0.3)
    assert len(receiver.seen) == 1 and push.sent(ALICE, "dropped")
    push.delay = 0.5
    began = time.monotonic()
    _meeting(emulator, summary="late")
    receiver.wait_for(2)
    assert time.monotonic() - began >= 0.5
    push.delay = 0.0
    assert push.forget(calendar=ALICE) == 1
    _meeting(emulator, summary="nobody hears")
    time.sleep(0.3)
    assert len(receiver.seen) == 2


def test_a_failed_delivery_is_recorded_not_retried(emulator, make_service, receiver):
    receiver.status = 503
    _watch(make_service(ALICE), receiver.url)
    receiver.wait_for(1)
    time.sleep(0.2)
    [delivery] = emulator.backend.push.sent(ALICE)
    assert delivery.outcome == "failed" and delivery.status == 503
    assert len(receiver.seen) == 1


def test_control_api_sets_push_and_lists_channels(emulator, make_service, receiver):
    import requests

    base = emulator.url + "/_control/push"
    settings = requests.post(base + "/settings", json={"drop_next": 2, "require_https": False}).json()
    assert settings["drop_next"] == 2 and settings["require_https"] is False
    _watch(make_service(ALICE), receiver.url)
    listed = requests.get(base + "/channels", params={"user": ALICE}).json()["channels"]
    assert [c["id"] for c in listed] == ["ch-1"]
    assert requests.post(base + "/forget", json={"user": ALICE}).json() == {"forgotten": 1}
    assert requests.get(base + "/deliveries").json()["deliveries"][0]["outcome"] in ("dropped", "stopped")
