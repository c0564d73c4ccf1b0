"""Google refusals name the likely cause and the remedy, with Google's own reason: in `sync`, the
stored `last_error` (`status`) and `doctor`.

Each refusal is a fault aimed at one user's calendar (`Fault.user`): the Calendar API's answer
for Bob only, or the token endpoint's answer to the assertion whose `sub` is Bob (reference A7,
A9), through the real google-api-python-client and google-auth. Alice's calendar syncs beside.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from calsync.cli import main
from calsync.sandbox.server import Fault

BOB = "bob@acme.test"


def run(*args: str) -> SimpleNamespace:
    result = CliRunner().invoke(main, list(args))
    return SimpleNamespace(returncode=result.exit_code, stdout=result.stdout)


def bobs_line(stdout: str) -> str:
    return next(l for l in stdout.splitlines() if l.startswith(BOB))


CALENDAR_REFUSALS = [
    # (reason, what the line must say, the remedy it must give)
    ("accessNotConfigured", "the Google Calendar API is not enabled",
     "APIs & Services → Library → Google Calendar API"),
    ("insufficientPermissions", "the credentials lack the Calendar scope",
     "Manage Domain Wide Delegation"),
    ("forbidden", "the user may not use Google Calendar", "Directory → Users"),
    ("notFound", "has no Google Calendar these credentials can read", "fix or remove it in [sync] users"),
    ("authError", "Google refused the access token", "calsync doctor"),
]


@pytest.mark.parametrize(("reason", "cause", "remedy"), CALENDAR_REFUSALS)
def test_a_calendar_refusal_names_cause_remedy_and_googles_reason(
    make_config, google_emu, reason, cause, remedy
):
    path = make_config()
    google_emu.fail_next(reason, times=-1, user=BOB)
    done = run("--config", str(path), "sync")
    assert done.returncode == 1
    line = bobs_line(done.stdout)
    assert cause in line and remedy in line, line
    assert f"Google: {google_emu.faults.pending()[0].status} {reason}" in line
    assert next(l for l in done.stdout.splitlines() if l.startswith("alice@acme.test")).endswith(" ok")
    status = run("--config", str(path), "status", "--user", BOB).stdout
    assert cause in status and remedy in status


def test_the_api_not_enabled_keeps_googles_own_message(make_config, google_emu):
    path = make_config()
    google_emu.fail_next("accessNotConfigured", times=-1, user=BOB)
    line = bobs_line(run("--config", str(path), "sync").stdout)
    assert "Google Calendar API has not been used in project" in line


TOKEN_REFUSALS = [
    ({"error": "unauthorized_client", "error_description": "Unauthorized client or scope in request."},
     "domain-wide delegation is missing", "numeric client ID"),
    ({"error": "invalid_grant", "error_description": "Invalid email or User ID"},
     "unknown in the Google Workspace domain", "fix or remove it in [sync] users"),
    ({"error": "invalid_grant", "error_description": "Invalid JWT Signature."},
     "does not know the service-account key", "Rotating credentials"),
]


@pytest.mark.parametrize(("body", "cause", "remedy"), TOKEN_REFUSALS)
def test_a_token_refusal_for_one_user_names_cause_and_remedy(make_config, google_emu, body, cause, remedy):
    path = make_config()
    google_emu.faults.add(Fault(status=400, body=body, method="POST", path_prefix="/token",
                                times=-1, user=BOB))
    done = run("--config", str(path), "sync")
    assert done.returncode == 1
    line = bobs_line(done.stdout)
    assert cause in line and remedy in line, line
    assert f"Google: token, {body['error']}" in line
    doctor = run("--config", str(path), "doctor").stdout.splitlines()
    failed = next(i for i, l in enumerate(doctor) if l.startswith(f"FAIL Google access for {BOB}"))
    assert cause in doctor[failed] and remedy in doctor[failed + 1]
