"""A calendar that keeps failing shows at once: `status --check` warns after 3 failures in a row
(before `--max-age` passes), `status --failing` and `--user` pick it out of the rest, and
`explain` says the owner's calendar is failing, and why.

Bob's calendar fails through a fault aimed at it alone (the Calendar API not enabled for the
project, as Google answers it, reference A7); Alice and Carol sync on.
"""

from __future__ import annotations

import json

from click.testing import CliRunner

from calsync.cli import main

BOB = "bob@acme.test"


def run(path, *args: str):
    return CliRunner().invoke(main, ["--config", str(path), *args])


def test_three_failures_in_a_row_warn_before_the_calendar_is_stale(make_config, sync, google_emu, company):
    path = make_config()
    assert sync(path).ok
    google_emu.fail_next("accessNotConfigured", times=-1, user=BOB)
    for expected in (1, 2):
        assert not sync(path).ok
        check = run(path, "status", "--check")
        assert check.exit_code == 0, check.stdout  # not yet 3 in a row, nothing stale
        assert "failing=0;0;;0" in check.stdout
    assert not sync(path).ok
    check = run(path, "status", "--check")
    assert check.exit_code == 1, check.stdout
    assert check.stdout.startswith(f"CALSYNC WARNING - 1 calendar failing 3+ times in a row ({BOB} ×3: "
                                   "the Google Calendar API is not enabled")
    assert "failing=1;0;;0" in check.stdout and "stale=0;;0;0" in check.stdout
    assert run(path, "status", "--check", "--max-failures", "4").exit_code == 0
    assert run(path, "status", "--max-failures", "4").exit_code == 2  # goes with --check


def test_status_failing_and_user_pick_the_calendars(make_config, sync, google_emu, company):
    path = make_config()
    google_emu.fail_next("notFound", times=-1, user=BOB)
    sync(path)
    text = run(path, "status", "--failing").stdout
    assert text.splitlines()[1] == "3 calendars: 2 ok, 1 failing, 0 never synced; 0 records waiting for a retry (showing 1)"
    assert f"\n{BOB}\n" in text and "alice@acme.test" not in text
    assert "last attempt FAILED" in text and "has no Google Calendar these credentials can read" in text
    one = json.loads(run(path, "status", "--json", "--user", "alice@acme.test").stdout)
    assert [c["user"] for c in one["calendars"]] == ["alice@acme.test"]
    assert run(path, "status", "--user", "nobody@acme.test").exit_code == 2


def test_explain_says_the_owners_calendar_is_failing(make_config, sync, google_emu, company):
    path = make_config()
    assert sync(path).ok
    google_emu.fail_next("insufficientPermissions", times=-1, user=BOB)
    sync(path)
    known = run(path, "explain", "--user", BOB, "--event-id", company.meetings["lead"])
    assert known.exit_code == 0
    assert known.stdout.startswith(f"note: {BOB}'s calendar is FAILING (1 run in a row")
    assert "the credentials lack the Calendar scope" in known.stdout
    new = google_emu.backend.create_event(BOB, {
        "summary": "Soylent kick-off", "attendees": [BOB, "zoe@soylent.test"],
        "start": {"dateTime": "2030-01-07T09:00:00Z"}, "end": {"dateTime": "2030-01-07T10:00:00Z"}})
    missing = run(path, "explain", "--user", BOB, "--event-id", new["id"])
    assert missing.exit_code == 1
    assert f"{BOB}'s calendar is FAILING" in missing.stdout and "not planned until it syncs again" in missing.stdout
    assert "try --live" not in missing.stdout
