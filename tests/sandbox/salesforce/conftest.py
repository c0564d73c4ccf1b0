"""Fixtures for the Salesforce emulator's conformance tests: a fresh emulator per test on an
ephemeral port (certificates generated once per session) and the real simple-salesforce client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from simple_salesforce import Salesforce

from calsync.sandbox.salesforce import SalesforceEmulator


@pytest.fixture(scope="session")
def sf_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sf-state")


@pytest.fixture
def emulator(sf_state_dir: Path) -> Iterator[SalesforceEmulator]:
    emu = SalesforceEmulator(state_dir=sf_state_dir).start()
    emu.backend.add_custom_field("Event", "Calsync_Activity_DateTime__c", "datetime", createable=True,
                                 updateable=True)
    emu.backend.add_custom_field("Event", "Calsync_Key__c", "string", length=255, external_id=True, unique=True)
    try:
        yield emu
    finally:
        emu.stop()


def trusting_session(emu: SalesforceEmulator) -> requests.Session:
    session = requests.Session()
    session.verify = emu.ca_file
    # REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE would override session.verify (reference B8).
    session.trust_env = False
    return session


@pytest.fixture
def connect(emulator: SalesforceEmulator) -> Callable[..., Salesforce]:
    def make(token: str | None = None, version: str = "59.0") -> Salesforce:
        return Salesforce(instance_url=emulator.url, session_id=token or emulator.backend.create_session(),
                          session=trusting_session(emulator), version=version)
    return make


@pytest.fixture
def sf(connect: Callable[..., Salesforce]) -> Salesforce:
    return connect()


@pytest.fixture
def http(emulator: SalesforceEmulator) -> requests.Session:
    """Plain requests for status codes and headers simple-salesforce hides; bearer preset."""
    session = trusting_session(emulator)
    session.headers["Authorization"] = f"Bearer {emulator.backend.create_session()}"
    return session

