"""A hostile or broken Google answer can neither delete live Events nor wedge a calendar."""

from __future__ import annotations

import logging

from calsync.sandbox.server import Fault
from calsync.state.store import StateStore


def events(sf_emu):
    return sorted((r["OwnerId"], r["Subject"]) for r in sf_emu.backend.list_records("Event"))


def stored_tokens(location):
    store = StateStore(location)  # the state's file or URL (tests/conftest.py state_location)
    try:
        return {r["user"]: r["sync_token"] for r in store.rows('SELECT "user", sync_token FROM calendars')}
    finally:
        store.close()


def test_a_full_listing_with_a_malformed_page_deletes_nothing_and_stores_no_token(
    make_config, sync, sf_emu, google_emu, tmp_path, state_location
):
    path = make_config()
    assert sync(path).ok
    before = events(sf_emu)
    assert len(before) == 7
    google_emu.backend.invalidate_sync_tokens()  # the next sync re-lists every calendar
    # Valid JSON, a real-looking token, but `items` is not a list: on the first full listing
    # (the only request with a ":" in a parameter, timeMin).
    google_emu.faults.add(Fault(method="GET", path_prefix="/calendars/", query_contains=":",
                                patch={"items": "not a list", "nextSyncToken": "bogus"}))
    result = sync(path)
    failed = [c for c in result.calendars.values() if not c.ok]
    assert len(failed) == 1
    assert "malformed page" in failed[0].error and "items is a string, not a list" in failed[0].error
    assert failed[0].full_sync and failed[0].google_calls == 2  # the 410, then the bad page
    assert events(sf_emu) == before  # nothing deleted
    assert stored_tokens(state_location)[failed[0].user] is None  # no token stored
    again = sync(path)
    assert again.ok and events(sf_emu) == before
    assert "bogus" not in stored_tokens(state_location).values()


def test_a_stored_token_google_refuses_with_400_is_dropped_for_a_full_listing(
    make_config, sync, sf_emu, tmp_path, caplog, state_location
):
    path = make_config()
    assert sync(path).ok
    before = events(sf_emu)
    store = StateStore(state_location)
    try:
        store.exec("""UPDATE calendars SET sync_token = 'bogus' WHERE "user" = 'alice@acme.test'""")
    finally:
        store.close()
    with caplog.at_level(logging.WARNING, logger="calsync"):
        result = sync(path)
    assert result.ok, {u: c.error for u, c in result.calendars.items()}
    assert result.calendars["alice@acme.test"].full_sync
    warned = [r for r in caplog.records if r.getMessage() == "sync token expired, full sync"]
    assert len(warned) == 1 and "refused" in warned[0].fields["error"]
    assert events(sf_emu) == before
    assert stored_tokens(state_location)["alice@acme.test"] not in (None, "bogus")
    assert not sync(path).calendars["alice@acme.test"].full_sync


def test_the_summary_of_a_failed_first_sync_says_full_and_counts_the_calls(cli, make_config, google_emu):
    google_emu.faults.add(Fault(method="GET", path_prefix="/calendars/", patch={"items": 5}, times=-1))
    done = cli("--config", str(make_config()), "sync")
    assert done.returncode == 1
    lines = [line for line in done.stdout.splitlines() if "FAILED" in line]
    assert len(lines) == 3
    assert all("(full, 1 Google calls) FAILED: Google Calendar sent a malformed page" in line for line in lines)
