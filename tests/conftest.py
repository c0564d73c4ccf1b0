"""Shared fixtures: both emulators on ephemeral ports, the demo company, configs that point at them.

Integration tests drive the real google-api-python-client and simple-salesforce against these
servers; nothing here patches a client library.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from calsync.core import config as config_module
from calsync.core import logs
from calsync.engine.cycle import CycleResult
from calsync.service.runtime import open_cycle
from calsync.sandbox.demo import ACTIVITY_FIELD, DemoCompany, seed
from calsync.sandbox.google import GoogleEmulator
from calsync.sandbox.google.oauth import generate_private_key_pem
from calsync.sandbox.salesforce import SalesforceEmulator

NOW = dt.datetime.now(dt.timezone.utc)


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    yield
    logs.clear_secrets()


@pytest.fixture(scope="session")
def google_private_key() -> str:
    return generate_private_key_pem()


@pytest.fixture(scope="session")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tls")


@pytest.fixture
def google_emu() -> Iterator[GoogleEmulator]:
    emu = GoogleEmulator().start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def sf_emu(tls_dir: Path) -> Iterator[SalesforceEmulator]:
    emu = SalesforceEmulator(state_dir=tls_dir).start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def company(google_emu: GoogleEmulator, sf_emu: SalesforceEmulator) -> DemoCompany:
    return seed(google_emu.backend, sf_emu.backend, NOW)


# `CALSYNC_TEST_STATE=postgres` runs the tests that take their state from `state_location`
# (make_config's [state], most e2e and daemon tests) on PostgreSQL: a fresh database of the
# session's throwaway cluster per test instead of tmp_path/state.db. Unset (or "sqlite"), nothing
# changes. A test parametrises `state_engine` itself to run on both in the normal suite.
STATE_ENGINES = ("sqlite", "postgres")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sqlite_only(reason): the test's subject is SQLite's own (a file, its journal, its"
        " progress handler); skipped when its state is on PostgreSQL",
    )


def _env_engine() -> str:
    import os

    engine = os.environ.get("CALSYNC_TEST_STATE", "") or "sqlite"
    if engine not in STATE_ENGINES:
        raise pytest.UsageError(f"CALSYNC_TEST_STATE={engine!r}: expected one of {STATE_ENGINES}")
    return engine


def pytest_runtest_setup(item: pytest.Item) -> None:
    marker = item.get_closest_marker("sqlite_only")
    if marker is not None and _env_engine() == "postgres":
        pytest.skip(f"SQLite only: {marker.args[0] if marker.args else ''}")


@pytest.fixture
def state_engine() -> str:
    """The state engine of this test: $CALSYNC_TEST_STATE, SQLite by default (a test
    parametrised on `state_engine` overrides it)."""
    return _env_engine()


@pytest.fixture
def state_location(state_engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> str | Path:
    """Where this test's state is: tmp_path/state.db, or a fresh PostgreSQL database's URL."""
    if state_engine == "postgres":
        marker = request.node.get_closest_marker("sqlite_only")
        if marker is not None:
            pytest.skip(f"SQLite only: {marker.args[0] if marker.args else ''}")
        return str(request.getfixturevalue("pg_url"))
    return tmp_path / "state.db"


@pytest.fixture
def make_config(
    tmp_path: Path,
    google_emu: GoogleEmulator,
    sf_emu: SalesforceEmulator,
    company: DemoCompany,
    google_private_key: str,
    state_location: str | Path,
) -> Callable[..., Path]:
    """make_config(**overrides) -> path of a calsync.toml for the emulators.

    Overrides go into their TOML table by key: sync={"users": [...]}, salesforce={...}.
    A value of None removes the key. The [state] is `state_location` (a path or a URL); a
    `state={"path": ...}` override replaces it whole.
    """
    key = google_emu.backend.create_service_account(private_key_pem=google_private_key)
    key_file = tmp_path / "google-service-account.json"
    key_file.write_text(json.dumps(key))
    token = sf_emu.backend.create_session(company.users[0])

    def make(**overrides: dict[str, Any]) -> Path:
        tables: dict[str, dict[str, Any]] = {
            "sync": {
                "users": list(company.users),
                "internal_domains": ["acme.test"],
                "exclude": ["*@resource.calendar.google.com", "noreply@*"],
                "lookback_days": 30,
                "interval_minutes": 40,
                "private_events": "skip",
                "activity_datetime_field": ACTIVITY_FIELD,
            },
            "state": (
                {"url": state_location} if isinstance(state_location, str)
                else {"path": str(state_location)}
            ),
            "google": {"service_account_file": str(key_file), "api_endpoint": google_emu.url + "/"},
            "salesforce": {
                "instance_url": sf_emu.url,
                "auth": "access_token",
                "access_token": token,
                "ca_bundle": str(sf_emu.ca_file),
            },
        }
        if "path" in overrides.get("state", {}) or "url" in overrides.get("state", {}):
            tables["state"] = {}  # the test names its own state: exactly one of path and url
        for table, values in overrides.items():
            for name, value in values.items():
                if value is None:
                    tables.get(table, {}).pop(name, None)
                else:
                    tables.setdefault(table, {})[name] = value  # a new table too: metrics={...}
        path = tmp_path / "calsync.toml"
        path.write_text(_toml(tables))
        return path

    return make


def _toml(tables: dict[str, dict[str, Any]]) -> str:
    lines = []
    for table, values in tables.items():
        lines.append(f"[{table}]")
        for name, value in values.items():
            if isinstance(value, dict):  # an inline table: { "a" = "b" }
                pairs = ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in value.items())
                lines.append(f"{name} = {{ {pairs} }}")
            else:
                lines.append(f"{name} = {json.dumps(value)}")
        lines.append("")
    return "\n".join(lines)


@pytest.fixture
def sync(make_config: Callable[..., Path]) -> Callable[..., CycleResult]:
    """sync(path=None) runs one in-process cycle with a fresh state connection, as `calsync sync`."""

    def run(path: Path | None = None, users: list[str] | None = None) -> CycleResult:
        cfg = config_module.load(path or make_config())
        with open_cycle(cfg) as cycle:
            return cycle.run(users)

    return run


@pytest.fixture
def cli() -> Callable[..., Any]:
    """cli(*args) runs `python -m calsync ARGS` as a real process; returns CompletedProcess."""
    import subprocess

    def run(*args: str, timeout: float = 120, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "calsync", *args],
            capture_output=True, text=True, timeout=timeout, **kwargs,
        )

    return run


@pytest.fixture
def processes() -> Iterator[list[Any]]:
    """A list to put started processes in (`calsync run`, ...): those still running when the
    test ends are killed."""
    started: list[Any] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


# -- a throwaway PostgreSQL (tests/postgres_cluster.py) ----------------------------------------


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Any]:
    """One PostgreSQL cluster for the session, started at the first test that needs it; the
    test skips when PostgreSQL's server binaries are absent."""
    from postgres_cluster import Cluster, binaries

    if binaries() is None:
        pytest.skip("no PostgreSQL server binaries (initdb): install Debian's postgresql package")
    cluster = Cluster()
    try:
        yield cluster
    finally:
        from calsync.state.postgres import close_pools

        close_pools()
        cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: Any) -> Iterator[str]:
    """The URL of a fresh, empty database of the session's cluster. At the end this process's
    pooled connections are closed (the cluster allows 200; each database has its own pool)."""
    yield str(pg_cluster.database())
    from calsync.state.postgres import close_pools

    close_pools()
