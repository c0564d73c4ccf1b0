"""The documented systemd install: secrets only as credentials, never in the TOML.

The service sees them in $CREDENTIALS_DIRECTORY (systemd copies each LoadCredential= there); an
admin's shell has no such variable and reads the credential store the unit loads them from
($CALSYNC_CREDENTIAL_STORE stands in for /etc/credstore/calsync). Each command an admin runs
on the host (systemd/README.md) is run here the same way, as a real process.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


@pytest.fixture
def credstore(tmp_path, make_config, sf_emu):
    """The credential store of the install: the Google key and the Salesforce JWT key, with
    a configuration that names them as `%d/...` and holds no secret (auth = "jwt")."""
    store = tmp_path / "credstore"
    store.mkdir(mode=0o750)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (store / "salesforce_jwt.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    sf_emu.backend.register_connected_app("calsync-jwt", public)
    plain = make_config()
    google_key = json.loads(plain.read_text().split('service_account_file = ')[1].split("\n")[0])
    shutil.copy(google_key, store / "google_service_account.json")
    path = make_config(
        google={"service_account_file": "%d/google_service_account.json"},
        salesforce={"auth": "jwt", "access_token": None, "login_url": sf_emu.url,
                    "consumer_key": "calsync-jwt", "private_key_file": "%d/salesforce_jwt.key",
                    "username": "alice@acme.test"},
    )
    text = path.read_text()
    assert "access_token" not in text and "PRIVATE KEY" not in text
    return path, store


def env(**extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("CREDENTIALS_DIRECTORY",)}
    return {**clean, "CALSYNC_CREDENTIAL_STORE": "/nonexistent/credstore", **extra}


def test_the_service_finds_its_credentials_in_credentials_directory(cli, credstore, sf_emu):
    path, store = credstore
    done = cli("--config", str(path), "sync", env=env(CREDENTIALS_DIRECTORY=str(store)))
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(sf_emu.backend.list_records("Event")) == 7


def test_an_admin_shell_reads_the_credential_store(cli, credstore, company):
    path, store = credstore
    admin = env(CALSYNC_CREDENTIAL_STORE=str(store))  # no $CREDENTIALS_DIRECTORY
    synced = cli("--config", str(path), "sync", env=admin)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    doctor = cli("--config", str(path), "doctor", env=admin)
    assert doctor.returncode == 0, doctor.stdout
    assert "ok   Salesforce login" in doctor.stdout and "(auth = jwt)" in doctor.stdout
    assert "WARN" not in doctor.stdout  # jwt: nothing to warn about
    dry = cli("--config", str(path), "resync", "--dry-run", env=admin)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    live = cli("--config", str(path), "explain", "--user", "alice@acme.test", "--event-id",
               company.meetings["external"], "--live", env=admin)
    assert live.returncode == 0, live.stdout + live.stderr
    checked = cli("--config", str(path), "check-config", env=admin)
    assert checked.returncode == 0 and checked.stdout.startswith("ok: ")


def test_without_any_credentials_status_works_and_the_others_say_where_they_looked(cli, credstore, company):
    path, store = credstore
    cli("--config", str(path), "sync", env=env(CREDENTIALS_DIRECTORY=str(store)))
    outside = env()  # neither $CREDENTIALS_DIRECTORY nor a readable store
    status = cli("--config", str(path), "status", env=outside)
    assert status.returncode == 0, status.stderr
    assert "Events written: 3" in status.stdout
    assert cli("--config", str(path), "status", "--check", env=outside).returncode == 0
    offline = cli("--config", str(path), "explain", "--user", "alice@acme.test", "--event-id",
                  company.meetings["external"], env=outside)
    assert offline.returncode == 0, offline.stderr
    doctor = cli("--config", str(path), "doctor", env=outside)
    assert doctor.returncode == 78
    assert "google.service_account_file: %d/google_service_account.json: no credentials directory" in doctor.stdout
    assert "$CREDENTIALS_DIRECTORY is unset" in doctor.stdout and "/nonexistent/credstore" in doctor.stdout
    reload_check = cli("--config", str(path), "check-config", env=outside)
    assert reload_check.returncode == 78


def test_an_access_token_credential_works_and_doctor_warns_about_it(cli, make_config, tmp_path):
    plain = make_config()
    token = plain.read_text().split('access_token = "')[1].split('"')[0]
    store = tmp_path / "credstore"
    store.mkdir()
    (store / "salesforce_access_token").write_text(token + "\n")
    path = make_config(salesforce={"access_token": None})
    doctor = cli("--config", str(path), "doctor", env=env(CREDENTIALS_DIRECTORY=str(store)))
    assert doctor.returncode == 0, doctor.stdout  # a warning is not a failure
    lines = doctor.stdout.splitlines()
    warn = next(i for i, l in enumerate(lines) if l.startswith("WARN Salesforce credential"))
    assert 'a daemon would run with auth = "access_token"' in lines[warn]
    assert "systemctl restart calsync" in lines[warn]
    assert 'use auth = "jwt"' in lines[warn + 1]
    assert token not in doctor.stdout


def test_a_writer_run_as_root_on_the_calsync_users_files_is_refused(cli, make_config, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root, as an admin's sudo is")
    state_dir = tmp_path / "lib"
    state_dir.mkdir()
    os.chown(state_dir, 65534, 65534)  # the service's user owns the state directory
    path = make_config(state={"path": str(state_dir / "state.db")})
    done = cli("--config", str(path), "sync")
    assert done.returncode == 77
    assert f"{state_dir} belongs to the user" in done.stderr and "sudo -u" in done.stderr
    assert not (state_dir / "state.db.lock").exists()  # nothing root-owned was left there
    assert cli("--config", str(path), "status").returncode == 0  # reading is fine
