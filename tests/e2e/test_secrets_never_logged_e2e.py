"""Every line of full runs, in every auth mode and both log formats, is free of secrets."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from calsync.core import config as config_module
from calsync.sandbox.server import Fault
from calsync.state.store import StateStore
from calsync.state.tables import TABLES

PASSWORD = "Tr0ub4dor&3-horse"
SECURITY_TOKEN = "SECTOKEN8WqPz1"
CLIENT_SECRET = "client-secret-7f3e9a1b2c"


@pytest.fixture
def jwt_key(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    path = tmp_path / "sf-jwt.key"
    path.write_text(private)
    return path, private, public


def secrets_of(config_path, extra=()):
    text = config_path.read_text()
    found = list(extra)
    token = re.search(r'access_token = "([^"]+)"', text)
    if token:
        found.append(token.group(1))
    key_file = re.search(r'service_account_file = "([^"]+)"', text).group(1)
    key = json.loads(open(key_file).read())
    found.append(key["private_key_id"])
    # Any single line of the PEM body would be a leak.
    found += [line for line in key["private_key"].splitlines() if len(line) > 40]
    return found


def assert_clean(outputs, secrets):
    for output in outputs:
        for secret in secrets:
            assert secret not in output, f"secret leaked: {secret[:6]}..."


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_full_runs_with_an_access_token_log_no_secret(cli, make_config, log_format):
    path = make_config()
    runs = [
        cli("--config", str(path), "--log-level", "debug", "--log-format", log_format, "sync"),
        cli("--config", str(path), "--log-level", "debug", "--log-format", log_format, "sync"),
        cli("--config", str(path), "--log-level", "debug", "doctor"),
        cli("--config", str(path), "status", "--json"),
        cli("--config", str(path), "--log-level", "debug", "resync", "--dry-run"),
    ]
    assert runs[0].returncode == 0, runs[0].stderr
    assert_clean([r.stdout + r.stderr for r in runs], secrets_of(path))


def password_login(make_config, sf_emu, client_secret, password):
    """A configuration for auth = "password", with the connected app and password in the org."""
    sf_emu.backend.register_connected_app("calsync-app", None, consumer_secret=client_secret)
    sf_emu.backend.set_password("alice@acme.test", password, SECURITY_TOKEN)
    return make_config(salesforce={
        "auth": "password", "access_token": None, "login_url": sf_emu.url, "client_id": "calsync-app",
        "client_secret": client_secret, "username": "alice@acme.test", "password": password,
        "security_token": SECURITY_TOKEN,
    })


def test_password_login_logs_no_password_token_or_secret(cli, make_config, sf_emu):
    path = password_login(make_config, sf_emu, CLIENT_SECRET, PASSWORD)
    ok = cli("--config", str(path), "--log-level", "debug", "sync")
    assert ok.returncode == 0, ok.stderr
    sessions = list(sf_emu.backend._sessions)  # every access token the emulator issued
    wrong = make_config(salesforce={"password": "Wr0ng-" + PASSWORD})
    refused = cli("--config", str(wrong), "--log-level", "debug", "sync")
    assert refused.returncode != 0
    assert_clean([ok.stdout + ok.stderr, refused.stdout + refused.stderr],
                 secrets_of(path, [PASSWORD, SECURITY_TOKEN, CLIENT_SECRET, "Wr0ng-" + PASSWORD, *sessions]))


def test_jwt_login_logs_no_private_key(cli, make_config, sf_emu, jwt_key):
    key_path, private, public = jwt_key
    sf_emu.backend.register_connected_app("calsync-jwt", public)
    path = make_config(salesforce={
        "auth": "jwt", "access_token": None, "login_url": sf_emu.url, "consumer_key": "calsync-jwt",
        "private_key_file": str(key_path), "username": "alice@acme.test",
    })
    done = cli("--config", str(path), "--log-level", "debug", "sync")
    assert done.returncode == 0, done.stderr
    pem_lines = [line for line in private.splitlines() if len(line) > 40]
    assert_clean([done.stdout + done.stderr], secrets_of(path, [*pem_lines, *sf_emu.backend._sessions]))


# Secrets whose URL- and form-encoded forms differ from the raw one.
ODD_PASSWORD = "Tr0ub4dor&3 horse/+%=é"
ODD_CLIENT_SECRET = "cl!ent secret/+=&?#"


def every_form(secret):
    """The secret raw, URL-encoded, form-encoded (and JSON-escaped)."""
    return {secret, quote(secret, safe=""), quote(secret), quote_plus(secret), json.dumps(secret)[1:-1]}


def state_bytes(config_path):
    """All the state holds: a SQLite file and its -wal/-shm, or every row of a PostgreSQL one."""
    found = re.search(r'path = "([^"]+)"', config_path.read_text())
    if found is None:  # [state] url: the rows of every table, as text
        store = StateStore(config_module.load(config_path).state)
        try:
            return "".join(repr(store.rows(f"SELECT * FROM {table}")) for table in TABLES).encode()
        finally:
            store.close()
    state = Path(found.group(1))
    return b"".join(p.read_bytes() for p in state.parent.glob(state.name + "*") if p.is_file())


def assert_nowhere(secrets, outputs, stored):
    for secret in secrets:
        for form in every_form(secret):
            for output in outputs:
                assert form not in output, f"secret leaked on screen: {form[:4]}..."
            assert form.encode() not in stored, f"secret stored: {form[:4]}..."


def test_a_salesforce_token_endpoint_echoing_the_request_leaks_nothing(cli, make_config, sf_emu):
    path = password_login(make_config, sf_emu, ODD_CLIENT_SECRET, ODD_PASSWORD)
    # The gateway in front of the token endpoint refuses the login and repeats the form it got.
    sf_emu.faults.add(Fault(status=400, echo=True, method="POST", path_prefix="/services/oauth2/token",
                            times=-1))
    failed = cli("--config", str(path), "--log-level", "debug", "sync")
    assert failed.returncode == 1
    assert "FAILED" in failed.stdout and "rejected request" in failed.stdout  # the echo did come back
    shown = cli("--config", str(path), "status", "--json")
    assert_nowhere([ODD_PASSWORD, ODD_CLIENT_SECRET, SECURITY_TOKEN, ODD_PASSWORD + SECURITY_TOKEN],
                   [failed.stdout, failed.stderr, shown.stdout, shown.stderr], state_bytes(path))


def test_a_google_token_endpoint_echoing_the_refresh_leaks_nothing(cli, make_config, google_emu, tmp_path):
    client = google_emu.backend.create_oauth_client()["installed"]
    client["client_secret"] = ODD_CLIENT_SECRET
    client_file = tmp_path / "client_secret.json"
    client_file.write_text(json.dumps({"installed": client}))
    token_dir = tmp_path / "tokens"
    token_dir.mkdir(mode=0o700)
    refresh = "1//0" + "Rf-" * 12 + "/+="
    (token_dir / "alice@acme.test.json").write_text(json.dumps({
        "type": "authorized_user", "client_id": client["client_id"], "client_secret": ODD_CLIENT_SECRET,
        "refresh_token": refresh, "token_uri": client["token_uri"],
    }))
    path = make_config(
        sync={"users": ["alice@acme.test"]},
        google={"service_account_file": None, "oauth_client_file": str(client_file), "token_dir": str(token_dir)},
    )
    google_emu.faults.add(Fault(status=400, echo=True, method="POST", path_prefix="/token", times=-1))
    failed = cli("--config", str(path), "--log-level", "debug", "sync")
    assert failed.returncode == 1
    assert "FAILED" in failed.stdout and "rejected request" in failed.stdout
    shown = cli("--config", str(path), "status")
    assert_nowhere([ODD_CLIENT_SECRET, refresh], [failed.stdout, failed.stderr, shown.stdout, shown.stderr],
                   state_bytes(path))


def test_debug_trace_is_one_redacted_line_per_request(cli, make_config, sf_emu):
    """`--log-level debug`: one line per HTTP request (method, host, path without its query,
    status, ms; Sforce-Limit-Info for Salesforce), and never a secret or a Google token."""

    path = make_config()
    first = cli("--config", str(path), "--log-level", "debug", "sync")
    second = cli("--config", str(path), "--log-level", "debug", "--log-format", "json", "sync")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    from calsync.core.logs import parse_line

    trace = [parse_line(l) for l in first.stderr.splitlines() if 'msg="http request"' in l]
    salesforce = [t for t in trace if t["service"] == "salesforce"]
    google = [t for t in trace if t["service"] == "google"]
    sf_host = sf_emu.url.removeprefix("https://")
    assert "Salesforce API calls: 7" in first.stdout and len(salesforce) == 7  # one line per request
    assert {t["host"] for t in salesforce} == {sf_host}
    assert any(t["path"] == "/services/data/v59.0/query/" and t["method"] == "GET" for t in salesforce)
    assert any(t["path"] == "/services/data/v59.0/composite/sobjects" and t["method"] == "POST"
               for t in salesforce)
    assert all(t["status"] == "200" and t["limit_info"].startswith("api-usage=") for t in salesforce)
    assert all(int(t["ms"]) >= 0 for t in trace)
    assert {t["path"] for t in google} == {"/token", "/calendars/primary/events"}  # the emulator's base
    assert len(google) == 6  # per calendar: a token, one listing page
    assert not any("?" in t["path"] for t in trace)
    json_trace = [json.loads(l) for l in second.stderr.splitlines() if '"http request"' in l]
    assert json_trace and all(line["level"] == "debug" for line in json_trace)
    store = StateStore(config_module.load(path).state)
    try:
        tokens = [row["sync_token"] for row in store.rows("SELECT sync_token FROM calendars")]
    finally:
        store.close()
    assert all(tokens)
    assert_clean([first.stdout + first.stderr, second.stdout + second.stderr], secrets_of(path, tokens))
