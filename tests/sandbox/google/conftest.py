"""Fixtures for the Google emulator's conformance tests: a started emulator with a fake clock,
three domain users, a service-account key file (RSA key generated once per session) and a factory
for REAL google-api-python-client services impersonating a user through it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from google.oauth2 import service_account
from google_helpers import ALICE, BOB, CAROL, READONLY, UTC, FakeClock
from googleapiclient.discovery import build

from calsync.sandbox.google import GoogleEmulator
from calsync.sandbox.google.oauth import generate_private_key_pem


@pytest.fixture(scope="session")
def private_key_pem() -> str:
    return generate_private_key_pem()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(dt.datetime(2026, 1, 1, 8, 0, tzinfo=UTC))


@pytest.fixture(scope="session")
def _server() -> Iterator[GoogleEmulator]:
    emu = GoogleEmulator().start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def emulator(_server: GoogleEmulator, clock: FakeClock) -> GoogleEmulator:
    """The session's server with a fresh backend, three users and the test's clock."""
    backend = _server.reset(clock)
    backend.add_user(ALICE, "Alice Admin", "Europe/Berlin")
    backend.add_user(BOB, "Bob Builder", "UTC")
    backend.add_user(CAROL, "Carol Chen", "UTC")
    return _server


@pytest.fixture
def key_file(emulator: GoogleEmulator, private_key_pem: str) -> dict[str, str]:
    return emulator.backend.create_service_account(
        delegated_scopes=READONLY, private_key_pem=private_key_pem
    )


@pytest.fixture
def make_service(
    emulator: GoogleEmulator, key_file: dict[str, str]
) -> Callable[..., Any]:
    """service(user) -> a Calendar v3 resource built by the real client, impersonating user."""

    def make(user: str = ALICE, scopes: list[str] | None = None, credentials: Any = None) -> Any:
        if credentials is None:
            credentials = service_account.Credentials.from_service_account_info(
                key_file, scopes=scopes or READONLY
            ).with_subject(user)
        return build(
            "calendar",
            "v3",
            credentials=credentials,
            static_discovery=True,
            cache_discovery=False,
            client_options={"api_endpoint": emulator.url + "/calendar/v3/"},
        )

    return make
