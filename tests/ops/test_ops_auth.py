"""`calsync auth google USER`: the installed-app flow against the Google emulator, then a sync."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from calsync.cli import main


@pytest.fixture
def oauth_config(tmp_path, make_config, google_emu):
    client_file = tmp_path / "client_secret.json"
    client_file.write_text(json.dumps(google_emu.backend.create_oauth_client()))
    token_dir = tmp_path / "tokens"
    path = make_config(
        sync={"users": ["alice@acme.test"]},
        google={"service_account_file": None, "oauth_client_file": str(client_file),
                "token_dir": str(token_dir)},
    )
    return path, token_dir


def run_flow(path: Path, user: str) -> subprocess.CompletedProcess[str]:
    """Start the command, open the URL it prints as a browser would, wait for it to finish."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "calsync", "--config", str(path), "auth", "google", user,
         "--no-browser", "--timeout", "20"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("http"):
                # The emulator consents at once and redirects to the command's loopback server.
                opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
                with opener.open(line.strip(), timeout=20) as page:
                    assert page.status == 200
                break
        out, err = proc.communicate(timeout=30)
        return subprocess.CompletedProcess(proc.args, proc.returncode, "".join(seen) + out, err)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_auth_google_stores_a_private_token_that_the_sync_uses(oauth_config, google_emu, sync, sf_emu):
    path, token_dir = oauth_config
    google_emu.backend.consent_as("alice@acme.test")

    done = run_flow(path, "alice@acme.test")

    assert done.returncode == 0, done.stderr
    token = token_dir / "alice@acme.test.json"
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    assert stat.S_IMODE(token_dir.stat().st_mode) == 0o700
    assert json.loads(token.read_text())["refresh_token"]
    assert "Stored the Google authorisation for alice@acme.test" in done.stdout
    assert json.loads(token.read_text())["refresh_token"] not in done.stdout + done.stderr

    result = sync(path)
    assert result.ok, {u: c.error for u, c in result.calendars.items()}
    assert result.calendars["alice@acme.test"].created == 3
    owners = {r["OwnerId"][:15] for r in sf_emu.backend.list_records("Event")}
    assert len(sf_emu.backend.list_records("Event")) == 3 and len(owners) == 1


def test_auth_google_refuses_a_service_account_configuration(make_config):
    result = CliRunner().invoke(main, ["--config", str(make_config()), "auth", "google",
                                       "alice@acme.test", "--no-browser"])
    assert result.exit_code == 78
    assert "oauth_client_file and token_dir" in result.output


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_auth_google_listens_on_the_port_given_for_ssh_forwarding(oauth_config, google_emu):
    path, token_dir = oauth_config
    google_emu.backend.consent_as("alice@acme.test")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "calsync", "--config", str(path), "auth", "google", "alice@acme.test",
         "--no-browser", "--port", str(port), "--timeout", "20"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        url = next(line.strip() for line in proc.stdout if line.startswith("http"))
        # The redirect goes to localhost:PORT, what `ssh -L PORT:localhost:PORT host` forwards.
        assert f"redirect_uri=http%3A%2F%2Flocalhost%3A{port}%2F" in url
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=20) as page:
            assert page.status == 200
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert (token_dir / "alice@acme.test.json").exists()


def test_auth_google_gives_up_waiting_for_the_browser_with_exit_75(oauth_config):
    path, token_dir = oauth_config
    done = subprocess.run(
        [sys.executable, "-m", "calsync", "--config", str(path), "auth", "google", "alice@acme.test",
         "--no-browser", "--timeout", "1"],
        capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 75, done.stderr
    assert "no answer from the browser within 1 s" in done.stderr
    assert not (token_dir / "alice@acme.test.json").exists()


def test_auth_google_gives_up_on_a_token_endpoint_that_never_answers(tmp_path, make_config, google_emu):
    """The token exchange has a timeout (google.timeout_seconds): requests_oauthlib sends none,
    so a token endpoint that accepts the connection and says nothing held the command forever."""
    import time

    from calsync.sandbox.server import Fault

    client_file = tmp_path / "client_secret.json"
    client_file.write_text(json.dumps(google_emu.backend.create_oauth_client()))
    token_dir = tmp_path / "tokens"
    path = make_config(
        sync={"users": ["alice@acme.test"]},
        google={"service_account_file": None, "oauth_client_file": str(client_file),
                "token_dir": str(token_dir), "timeout_seconds": 2},
    )
    google_emu.backend.consent_as("alice@acme.test")
    google_emu.faults.add(Fault(method="POST", path_prefix="/token", delay=60, times=-1))
    began = time.monotonic()
    done = run_flow(path, "alice@acme.test")
    assert done.returncode == 75, done.stderr
    assert time.monotonic() - began < 30
    assert "cannot complete the authorisation" in done.stderr and "timed out" in done.stderr.lower()
    assert not (token_dir / "alice@acme.test.json").exists()


def test_a_silent_connection_to_the_one_shot_server_does_not_hold_auth_google(oauth_config):
    """Someone on the host connects to the command's loopback server and sends nothing: the
    connection is dropped after google.timeout_seconds, and the command ends (75)."""
    import socket
    import time

    path, token_dir = oauth_config
    path.write_text(path.read_text().replace("[google]\n", "[google]\ntimeout_seconds = 2\n", 1))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "calsync", "--config", str(path), "auth", "google", "alice@acme.test",
         "--no-browser", "--port", str(port), "--timeout", "600"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        next(line for line in proc.stdout if line.startswith("http"))
        silent = socket.create_connection(("127.0.0.1", port), timeout=5)
        began = time.monotonic()
        out, err = proc.communicate(timeout=30)
        silent.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 75, err
    assert time.monotonic() - began < 20
