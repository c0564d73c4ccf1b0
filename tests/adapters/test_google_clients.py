"""Cheap polls (issue 12): the key is parsed once per process, each user's token is reused until
shortly before it expires, connections stay open, the API client is built once, and the
per-minute budget holds under 429s (reference A8, A9, A10).

All through google-auth, google-api-python-client and httplib2 against the Google emulator;
nothing is patched. Parses and builds are counted with cProfile (the library functions really
called), tokens and connections by the emulator.
"""

from __future__ import annotations

import cProfile
import datetime as dt
import json
import pstats
import random
from dataclasses import replace
from pathlib import Path

import pytest
from freezegun import freeze_time

from calsync.core.config import GoogleConfig
from calsync.calendar.google.api import GoogleCalendar, calendar_factory
from calsync.calendar.google.clients import GoogleClients, budget_limits, clients_for, forget_clients
from calsync.calendar.google.quota import Limits, RequestBudget

UTC = dt.timezone.utc
USERS = ["ann@acme.test", "ben@acme.test", "cy@acme.test"]
LONG_AGO = dt.datetime(2020, 1, 1, tzinfo=UTC)
CALENDAR = "/calendars/"


@pytest.fixture
def google_cfg(google_emu, tmp_path: Path, google_private_key: str) -> GoogleConfig:
    for user in USERS:
        google_emu.backend.add_user(user)
    key = google_emu.backend.create_service_account(private_key_pem=google_private_key)
    path = tmp_path / "key.json"
    path.write_text(json.dumps(key))
    forget_clients()
    yield GoogleConfig(service_account_file=path, api_endpoint=google_emu.url + "/")
    forget_clients()


def _calls(profile: cProfile.Profile, name: str) -> int:
    """How many times functions named `name` (Python or built-in) were called."""
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    return sum(
        entry[1] for (_, _, function), entry in stats.items()
        if function == name or function.endswith(f".{name}>")
    )


def _calendar_answers(google_emu) -> list[tuple[dt.datetime, int]]:
    return [(at, status) for at, _, path, status in list(google_emu.answers)
            if path.startswith(CALENDAR)]


def test_the_key_is_parsed_once_and_the_client_built_once_for_many_calendars_and_cycles(google_cfg):
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(3):  # three cycles, each with its own factory, as runtime.open_cycle makes
        calendar_for = calendar_factory(google_cfg)
        for user in USERS:
            calendar_for(user).list_changes(None, LONG_AGO)
    profile.disable()
    # Before issue 12: 9 parses (~50 ms each) and 9 builds for these 9 listings.
    assert _calls(profile, "load_pem_private_key") == 1
    assert _calls(profile, "build") == 1
    assert clients_for(google_cfg).parses == 1


def test_a_rotated_key_file_is_parsed_again(google_cfg, google_emu, google_private_key):
    calendar_factory(google_cfg)(USERS[0]).list_changes(None, LONG_AGO)
    key = google_emu.backend.create_service_account(
        client_email="rotated@acme-sandbox.iam.gserviceaccount.com", private_key_pem=google_private_key)
    Path(google_cfg.service_account_file).write_text(json.dumps(key) + "\n")  # new size and mtime
    calendar_factory(google_cfg)(USERS[0]).list_changes(None, LONG_AGO)
    assert clients_for(google_cfg).parses == 2


def test_each_users_token_is_reused_until_shortly_before_it_expires(google_cfg, google_emu):
    start = dt.datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    issued = lambda: google_emu.backend.stats()["token_requests"]  # noqa: E731
    with freeze_time(start) as frozen:
        for minutes in (0, 10, 30, 50, 56):
            frozen.move_to(start + dt.timedelta(minutes=minutes))
            calendar_for = calendar_factory(google_cfg)
            for user in USERS:
                calendar_for(user).list_changes(None, LONG_AGO)
        # One token per user for 56 minutes of polls (A9: tokens last 3599 s).
        assert issued() == 3
        first = {t.user: t.token for t in google_emu.backend.auth.tokens.values()}
        # google-auth refreshes once less than 3 min 45 s are left (REFRESH_THRESHOLD): at
        # 57 min the old token is still good for Google, yet a new one is fetched.
        frozen.move_to(start + dt.timedelta(minutes=57))
        assert all(google_emu.backend.auth.authenticate(t) is not None for t in first.values())
        calendar_factory(google_cfg)(USERS[0]).list_changes(None, LONG_AGO)
        assert issued() == 4
        # The others still use theirs; the refreshed one is used from now on.
        frozen.move_to(start + dt.timedelta(minutes=58))
        calendar_factory(google_cfg)(USERS[0]).list_changes(None, LONG_AGO)
        assert issued() == 4


def test_connections_stay_open_across_calendars_and_cycles(google_cfg, google_emu):
    before = google_emu.connections
    for _ in range(3):
        calendar_for = calendar_factory(google_cfg)
        for user in USERS:
            calendar_for(user).list_changes(None, LONG_AGO)
    assert len(_calendar_answers(google_emu)) == 9
    # 3 token requests and 9 listings from one thread: one TCP connection (httplib2 keep-alive).
    assert google_emu.connections - before == 1


class FakeTime:
    """A clock that only moves when someone sleeps: minutes of budget in no time."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)


def _budgeted(cfg: GoogleConfig, google_emu, limits: Limits) -> tuple[GoogleClients, FakeTime, dt.datetime]:
    fake = FakeTime()
    base = dt.datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    google_emu.backend.clock = lambda: base + dt.timedelta(seconds=fake.now)
    budget = RequestBudget(limits, clock=fake, sleep=fake.sleep, rng=random.Random(7))
    clients = GoogleClients(cfg, budget=budget, sleep=fake.sleep, rng=random.Random(8))
    return clients, fake, base


def _most_in_a_minute(seconds: list[float]) -> int:
    return max(sum(1 for u in seconds if u <= t < u + 60) for t in seconds)


def test_the_per_minute_budget_holds_under_429s(google_cfg, google_emu):
    cfg = replace(google_cfg, requests_per_minute=25, request_share=0.8)
    assert budget_limits(cfg) == Limits(20, 480)
    clients, fake, base = _budgeted(cfg, google_emu, budget_limits(cfg))
    google_emu.fail_next("rateLimitExceeded", status=429, times=3, path_prefix=CALENDAR)
    for _ in range(10):
        for user in USERS:
            assert GoogleCalendar(user, clients=clients).list_changes(None, LONG_AGO).next_sync_token
    answers = _calendar_answers(google_emu)
    assert [status for _, status in answers[:4]] == [429, 429, 429, 200]
    assert len(answers) == 33  # 30 listings, the first one tried 4 times (retries are counted)
    seconds = [(at - base).total_seconds() for at, _ in answers]
    # Google counts sliding minutes (A8): no minute holds more than the share, 429s included.
    assert _most_in_a_minute(seconds) <= 20
    assert seconds[-1] >= 60  # so 33 requests take more than a minute
    # After each 429 every request waits: 1, 2, 4 s doubling, jittered down to half (A7).
    gaps = [b - a for a, b in zip(seconds, seconds[1:4])]
    assert gaps[0] >= 0.5 and gaps[1] >= 1.0 and gaps[2] >= 2.0, gaps
    assert clients.budget.throttles == 3


def test_the_per_user_budget_holds(google_cfg, google_emu):
    cfg = replace(google_cfg, requests_per_minute_per_user=5, request_share=1.0)
    clients, fake, base = _budgeted(cfg, google_emu, budget_limits(cfg))
    for _ in range(12):
        GoogleCalendar(USERS[0], clients=clients).list_changes(None, LONG_AGO)
    GoogleCalendar(USERS[1], clients=clients).list_changes(None, LONG_AGO)
    answers = _calendar_answers(google_emu)
    seconds = [(at - base).total_seconds() for at, _ in answers[:12]]
    assert _most_in_a_minute(seconds) <= 5
    assert seconds[-1] >= 120  # 12 requests at 5 a minute
    # Another user is not held back by the first one's minute.
    assert (answers[12][0] - base).total_seconds() == pytest.approx(seconds[-1], abs=1)


def test_user_rate_limit_pauses_only_that_user(google_cfg, google_emu):
    clients, fake, base = _budgeted(google_cfg, google_emu, Limits(1000, 1000))
    google_emu.fail_next("userRateLimitExceeded", status=403, times=1, path_prefix=CALENDAR)
    GoogleCalendar(USERS[0], clients=clients).list_changes(None, LONG_AGO)
    after_pause = fake.now
    assert after_pause >= 0.5  # the retry waited for the user's pause
    assert clients.budget.throttles == 1




def test_throttles_count_in_the_metric_by_limit_once_the_service_is_wired(google_cfg, google_emu):
    """The adapter counts "too many requests" answers in `calsync_google_throttled{scope}`
    (core/telemetry.py, which metrics.py exposes)."""
    from calsync.service import metrics

    clients, fake, base = _budgeted(google_cfg, google_emu, Limits(1000, 1000))
    before = {scope: metrics.value("calsync_google_throttled_total", scope=scope)
              for scope in ("project", "user")}
    google_emu.fail_next("userRateLimitExceeded", status=403, times=1, path_prefix=CALENDAR)
    google_emu.fail_next("rateLimitExceeded", status=429, times=2, path_prefix=CALENDAR)
    GoogleCalendar(USERS[0], clients=clients).list_changes(None, LONG_AGO)
    GoogleCalendar(USERS[1], clients=clients).list_changes(None, LONG_AGO)
    assert metrics.value("calsync_google_throttled_total", scope="user") == before["user"] + 1
    assert metrics.value("calsync_google_throttled_total", scope="project") == before["project"] + 2
