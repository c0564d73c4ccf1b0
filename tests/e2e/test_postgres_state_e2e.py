"""A sync with its state in PostgreSQL ([state] url) writes Salesforce exactly as one with SQLite,
and its idle cycle costs no Salesforce call (`calsync sync`, a real process, against the
emulators; the database is a fresh one of the session's throwaway cluster)."""

from __future__ import annotations

import datetime as dt
import json
import os

from calsync.sandbox.demo import ACTIVITY_FIELD, seed
from calsync.sandbox.google import GoogleEmulator
from calsync.sandbox.salesforce import SalesforceEmulator
from calsync.state.store import StateStore

NOW = dt.datetime.now(dt.timezone.utc)  # both companies are seeded from the same moment

# What differs between two runs of the same sync: when things happened, and in which order
# the Events were created (their Ids; calendars sync concurrently).
STAMPS = {"Id", "CreatedDate", "LastModifiedDate", "SystemModstamp", "LastReferencedDate", "LastViewedDate"}


def salesforce_result(sf_emu) -> list[str]:
    rows = sf_emu.backend.list_records("Event")
    return sorted(json.dumps({k: v for k, v in r.items() if k not in STAMPS}, sort_keys=True)
                  for r in rows)


def _config(tmp_path, google_emu, sf_emu, company, google_private_key, state: dict) -> str:
    key = google_emu.backend.create_service_account(private_key_pem=google_private_key)
    key_file = tmp_path / "sa.json"
    key_file.write_text(json.dumps(key))
    token = sf_emu.backend.create_session(company.users[0])
    tables = {
        "sync": {"users": list(company.users), "internal_domains": ["acme.test"],
                 "exclude": ["*@resource.calendar.google.com", "noreply@*"], "lookback_days": 30,
                 "interval_minutes": 40, "private_events": "skip",
                 "activity_datetime_field": ACTIVITY_FIELD},
        "state": state,
        "google": {"service_account_file": str(key_file), "api_endpoint": google_emu.url + "/"},
        "salesforce": {"instance_url": sf_emu.url, "auth": "access_token", "access_token": token,
                       "ca_bundle": str(sf_emu.ca_file)},
    }
    text = "".join(f"[{t}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())
                   for t, values in tables.items())
    path = tmp_path / "calsync.toml"
    path.write_text(text)
    return str(path)


def test_a_postgresql_state_syncs_as_sqlite_does_and_idles_without_salesforce_calls(
    tmp_path, pg_url, google_emu, sf_emu, google_private_key, tls_dir, cli
):
    company = seed(google_emu.backend, sf_emu.backend, NOW)
    on_pg = tmp_path / "pg"
    on_pg.mkdir()
    config = _config(on_pg, google_emu, sf_emu, company, google_private_key, {"url": pg_url})
    secret = "db-password-never-shown"  # the cluster trusts local connections: unused, passed
    env = {**os.environ, "CALSYNC_STATE_PASSWORD": secret, "CALSYNC_LOG_LEVEL": "debug"}
    first = cli("-c", config, "--log-level", "debug", "sync", env=env)
    assert first.returncode == 0, first.stderr
    assert secret not in first.stderr + first.stdout
    before = sf_emu.backend.api_calls
    idle = cli("-c", config, "sync")
    assert idle.returncode == 0, idle.stderr
    assert sf_emu.backend.api_calls == before  # 0 Salesforce calls on the idle cycle
    store = StateStore.reader(pg_url)
    try:
        assert store.count_written() == len(sf_emu.backend.list_records("Event")) > 0
    finally:
        store.close()

    # The same company on a second pair of emulators, synced with a SQLite state.
    google2, sf2 = GoogleEmulator().start(), SalesforceEmulator(state_dir=tls_dir).start()
    try:
        company2 = seed(google2.backend, sf2.backend, NOW)
        on_sqlite = tmp_path / "sqlite"
        on_sqlite.mkdir()
        config2 = _config(on_sqlite, google2, sf2, company2, google_private_key,
                          {"path": str(on_sqlite / "state.db")})
        assert cli("-c", config2, "sync").returncode == 0
        assert salesforce_result(sf2) == salesforce_result(sf_emu)
    finally:
        google2.stop()
        sf2.stop()
