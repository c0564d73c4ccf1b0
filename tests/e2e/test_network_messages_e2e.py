"""Connection, DNS and TLS failures name the host, the cause and the remedy: in `sync` and `doctor`.

Real failures, no fault needed: a loopback port nothing listens on, a name under `.invalid`
(RFC 2606: never resolves), and the Salesforce emulator's own certificate without its CA.
"""

from __future__ import annotations

import socket
from types import SimpleNamespace

from click.testing import CliRunner

from calsync.cli import main
from calsync.sandbox.server import Fault


def run(*args: str) -> SimpleNamespace:
    """`calsync ARGS` in this process (the emulators too): its exit status and output."""
    result = CliRunner().invoke(main, list(args))
    return SimpleNamespace(returncode=result.exit_code, stdout=result.stdout)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the block ends: nothing listens


def test_connection_refused_names_host_cause_and_remedy(make_config):
    port = closed_port()
    path = make_config(salesforce={"instance_url": f"https://127.0.0.1:{port}"})
    done = run("--config", str(path), "sync", "--user", "alice@acme.test")
    assert done.returncode == 1
    line = next(l for l in done.stdout.splitlines() if l.startswith("alice@acme.test"))
    assert f"cannot reach Salesforce at 127.0.0.1:{port}: connection refused" in line
    assert "salesforce.instance_url" in line and "outbound HTTPS" in line
    assert "access_token" not in line  # not a credential problem
    doctor = run("--config", str(path), "doctor")
    assert doctor.returncode == 1
    lines = doctor.stdout.splitlines()
    failed = next(i for i, l in enumerate(lines) if l.startswith("FAIL Salesforce login"))
    assert f"127.0.0.1:{port}: connection refused" in lines[failed]
    assert "salesforce.instance_url" in lines[failed + 1] and "access_token" not in lines[failed + 1]


def test_unknown_host_says_the_name_does_not_resolve(make_config):
    path = make_config(salesforce={"instance_url": "https://acme.invalid"})
    done = run("--config", str(path), "sync")
    assert done.returncode == 1
    assert "cannot reach Salesforce at acme.invalid:443: the name acme.invalid does not resolve" in done.stdout
    assert "getent hosts acme.invalid" in done.stdout


def test_untrusted_certificate_points_at_ca_bundle(make_config):
    path = make_config(salesforce={"ca_bundle": None})  # the emulator's CA is not trusted then
    done = run("--config", str(path), "doctor")
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    failed = next(i for i, l in enumerate(lines) if l.startswith("FAIL Salesforce login"))
    assert "its TLS certificate is not trusted" in lines[failed]
    assert "certificate verify failed" in lines[failed] or "self-signed" in lines[failed] \
        or "unable to get local issuer" in lines[failed]
    assert "salesforce.ca_bundle" in lines[failed + 1]


def test_google_unreachable_names_the_calendar_endpoint(make_config):
    port = closed_port()
    path = make_config(google={"api_endpoint": f"http://127.0.0.1:{port}/"})
    done = run("--config", str(path), "sync", "--user", "alice@acme.test")
    assert done.returncode == 1
    assert f"cannot reach Google Calendar at 127.0.0.1:{port}: connection refused" in done.stdout
    assert "google.api_endpoint" in done.stdout


def test_a_dropped_connection_is_said_so(make_config, sf_emu):
    sf_emu.faults.add(Fault(drop=True, path_prefix="/services/data", times=-1))
    done = run("--config", str(make_config()), "sync", "--user", "alice@acme.test")
    assert done.returncode == 1
    assert "closed the connection before answering" in done.stdout, done.stdout
