"""calsync.calendar.google.api against the Google emulator through the real google-api-python-client."""

from __future__ import annotations

import datetime as dt

import pytest

from calsync.core.errors import AuthError, SyncTokenExpired, SyncTokenRefused, TransientError
from calsync.calendar.google.api import GoogleCalendar, check_page
from calsync.calendar.google.credentials import service_account_credentials
from calsync.calendar.items import to_google_event
from calsync.sandbox.server import Fault

SCOPES = ("https://www.googleapis.com/auth/calendar.readonly",)
LONG_AGO = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)


@pytest.fixture
def key_path(google_emu, google_private_key, tmp_path):
    import json

    path = tmp_path / "key.json"
    path.write_text(json.dumps(google_emu.backend.create_service_account(private_key_pem=google_private_key)))
    return path


@pytest.fixture
def calendar(google_emu, company, key_path):
    def make(user="alice@acme.test"):
        creds = service_account_credentials(key_path, user, SCOPES)
        return GoogleCalendar(user, creds, api_endpoint=google_emu.url + "/")

    return make


def test_full_listing_follows_every_page_and_keeps_the_last_token(calendar, google_emu):
    day = dt.date(2026, 12, 1)
    for i in range(2600):
        google_emu.backend.create_event("alice@acme.test", {
            "summary": f"m{i}", "start": {"dateTime": f"{day}T10:00:00Z"}, "end": {"dateTime": f"{day}T11:00:00Z"},
        })
    listing = calendar().list_changes(None, LONG_AGO)
    assert listing.full and listing.calls == 2
    assert len(listing.items) >= 2600
    assert listing.next_sync_token


def test_incremental_listing_returns_only_changes(calendar, google_emu, company):
    first = calendar().list_changes(None, LONG_AGO)
    google_emu.backend.update_event(company.meetings["weekly"], {"summary": "changed"})
    second = calendar().list_changes(first.next_sync_token, LONG_AGO)
    assert not second.full and second.calls == 1
    assert [i["summary"] for i in second.items] == ["changed"]


def test_invalidated_token_raises_sync_token_expired(calendar, google_emu):
    first = calendar().list_changes(None, LONG_AGO)
    google_emu.backend.invalidate_sync_tokens()
    with pytest.raises(SyncTokenExpired):
        calendar().list_changes(first.next_sync_token, LONG_AGO)


def test_a_token_google_refuses_with_400_is_refused_not_transient(calendar):
    with pytest.raises(SyncTokenRefused):
        calendar().list_changes("Cbm90LWEtdG9rZW4", LONG_AGO)


@pytest.mark.parametrize(("page", "problem"), [
    ({"items": "[]", "nextSyncToken": "s"}, "items is a string, not a list"),
    ({"items": {"id": "x"}, "nextSyncToken": "s"}, "items is an object, not a list"),
    ({"items": [{"id": "x"}, None], "nextSyncToken": "s"}, "an item is null, not an object"),
    ({"items": [["id", "x"]], "nextSyncToken": "s"}, "an item is a list, not an object"),
    ({"items": [], "nextSyncToken": 7}, "nextSyncToken is a number, not a token"),
    ({"items": [], "nextSyncToken": ""}, "nextSyncToken is an empty string, not a token"),
    ({"items": [], "nextPageToken": ["p"]}, "nextPageToken is a list, not a token"),
    ({"items": []}, "the last page carries no nextSyncToken"),
    ({"items": [], "nextPageToken": "p1"}, "a nextPageToken came back a second time"),
])
def test_malformed_pages_are_named(page, problem):
    assert check_page(page, {"p1"}) == problem


def test_well_formed_pages_pass():
    assert check_page({"items": [{"id": "x"}], "nextPageToken": "p2"}, {"p1"}) is None
    assert check_page({"nextSyncToken": "s"}, set()) is None  # no items at all: an empty page


def test_a_page_whose_items_is_not_a_list_fails_the_listing(calendar, google_emu):
    google_emu.faults.add(Fault(method="GET", path_prefix="/calendars/", patch={"items": "oops"}))
    with pytest.raises(TransientError, match="malformed page .*items is a string, not a list"):
        calendar().list_changes(None, LONG_AGO)


def test_rate_limit_is_retried_by_the_client(calendar, google_emu):
    google_emu.fail_next("rateLimitExceeded", times=1)
    assert calendar().list_changes(None, LONG_AGO).items


def test_user_outside_the_domain_is_an_auth_error(calendar):
    with pytest.raises(AuthError):
        calendar("mallory@elsewhere.test").list_changes(None, LONG_AGO)


def test_items_normalise_without_raising_on_hostile_input():
    weird = [
        {},
        {"id": "x", "start": {"dateTime": "not a date"}, "attendees": "nope"},
        {"id": "y", "start": {"date": "2026-02-30"}, "organizer": ["x"], "recurrence": [5, None]},
        {"id": "z", "summary": "s" * 1_000_000, "attendees": [{"email": None}, 7]},
    ]
    events = [to_google_event(w) for w in weird]
    assert events[1].start is None and events[1].attendees == ()
    assert events[2].start is None and events[2].recurrence == ()
    assert len(events[3].summary) == 1_000_000
