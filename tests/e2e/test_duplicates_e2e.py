"""Duplicate Events already in Salesforce (planted as a second writer or a restored backup would
leave them) are found by resync and by a full listing: one kept, the others deleted and logged."""

from __future__ import annotations

from collections import Counter

import pytest

from calsync.state.store import StateStore

COPIED = ("OwnerId", "Subject", "StartDateTime", "EndDateTime", "IsAllDayEvent", "ActivityDate",
          "DurationInMinutes", "WhoId", "WhatId", "Type", "ShowAs", "Location", "Description")


def plant(sf_emu, row, **changes):
    """A copy of an Event calsync wrote, created later (as a second writer would have)."""
    fields = {k: row[k] for k in COPIED if row.get(k) is not None}
    return sf_emu.backend.create_record("Event", {**fields, **changes})


def events(sf_emu):
    return sf_emu.backend.list_records("Event")


def recorded_ids(state):
    store = StateStore(state)  # a file or a URL (tests/conftest.py state_location)
    try:
        return {r["sf_id"][:15] for r in store.rows("SELECT sf_id FROM written WHERE sf_id IS NOT NULL")}
    finally:
        store.close()


def copies_per_meeting(sf_emu):
    return Counter((r["OwnerId"][:15], r["Subject"], r["StartDateTime"]) for r in events(sf_emu))


@pytest.fixture
def planted(cli, make_config, sf_emu, tmp_path, state_location):
    """A synced company, then three duplicates of two Events and two look-alikes that are not."""
    path = make_config()
    assert cli("--config", str(path), "sync").returncode == 0
    first, second = sorted(events(sf_emu), key=lambda r: r["Subject"])[:2]
    extras = [plant(sf_emu, first), plant(sf_emu, first), plant(sf_emu, second)]
    other_users = [r["OwnerId"] for r in events(sf_emu) if r["OwnerId"] != first["OwnerId"]]
    keep = [plant(sf_emu, first, Subject=first["Subject"] + " (notes)"),  # another subject
            plant(sf_emu, first, OwnerId=other_users[0])]  # another owner
    return path, {e[:15] for e in extras}, {k[:15] for k in keep}, state_location


def test_resync_lists_duplicates_in_a_dry_run_then_deletes_each_with_a_log_line(cli, sf_emu, planted):
    path, extras, look_alikes, state = planted
    before = {r["Id"][:15] for r in events(sf_emu)}

    dry = cli("--config", str(path), "resync", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    listed = [line for line in dry.stdout.splitlines() if "duplicate of" in line]
    assert len(listed) == 3 and all(line.startswith("would delete") for line in listed)
    assert {r["Id"][:15] for r in events(sf_emu)} == before  # nothing written

    done = cli("--config", str(path), "resync")
    assert done.returncode == 0, done.stderr
    assert sum(line.startswith("delete") and "duplicate of" in line for line in done.stdout.splitlines()) == 3
    logged = [line for line in done.stderr.splitlines() if 'msg="deleted duplicate"' in line]
    assert len(logged) == 3 and all("kept=" in line for line in logged)
    left = {r["Id"][:15] for r in events(sf_emu)}
    assert left == before - extras
    assert look_alikes <= left and recorded_ids(state) <= left  # the recorded Events are the ones kept

    again = cli("--config", str(path), "resync")
    assert again.returncode == 0 and "duplicate of" not in again.stdout


def test_a_full_listing_deletes_duplicates_too(sync, sf_emu, google_emu, planted):
    path, extras, _, _ = planted
    google_emu.backend.invalidate_sync_tokens()
    result = sync(path)
    assert result.ok, {u: c.error for u, c in result.calendars.items()}
    assert sum(c.deleted for c in result.calendars.values()) == 3
    assert not extras & {r["Id"][:15] for r in events(sf_emu)}


@pytest.mark.sqlite_only("deletes the state file and its -wal/-shm beside it")
def test_a_lost_state_database_takes_over_the_oldest_and_deletes_the_rest(sync, sf_emu, planted):
    path, extras, _, state = planted
    originals = recorded_ids(state)
    for leftover in state.parent.glob("state.db*"):
        leftover.unlink()
    result = sync(path)
    assert result.ok, {u: c.error for u, c in result.calendars.items()}
    assert sum(c.created for c in result.calendars.values()) == 0
    left = {r["Id"][:15] for r in events(sf_emu)}
    assert originals <= left and not extras & left  # the oldest of each meeting is the one kept
    assert recorded_ids(state) == originals


def test_events_sharing_a_non_unique_external_id_are_duplicates(cli, make_config, sf_emu):
    sf_emu.backend.add_custom_field("Event", "Loose_Key__c", "string", length=255, external_id=True)
    path = make_config(salesforce={"external_id_field": "Loose_Key__c"})
    assert cli("--config", str(path), "sync").returncode == 0
    row = next(r for r in events(sf_emu) if r.get("Loose_Key__c"))
    # Same key, other fields: a copy made before the meeting moved; the key says whose it is.
    extra = plant(sf_emu, row, Loose_Key__c=row["Loose_Key__c"], Subject="stale copy")
    done = cli("--config", str(path), "resync")
    assert done.returncode == 0, done.stderr
    assert "duplicate of" in done.stdout
    assert extra[:15] not in {r["Id"][:15] for r in events(sf_emu)}
    assert max(Counter(r["Loose_Key__c"] for r in events(sf_emu)).values()) == 1
