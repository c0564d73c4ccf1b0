"""A user whose address changes keeps their Events (issue 16): a Workspace rename in Google, the
Salesforce User's Email updated, `[sync] users` updated, same Salesforce User. One Event per
meeting and Salesforce owner, whatever the owner's address history; two configured addresses of
one Salesforce User share it too. Through the real client libraries and both emulators."""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from collections import Counter

import pytest

from calsync.core import config as config_module
from calsync.engine import explain
from calsync.service.runtime import open_cycle
from calsync.sandbox.demo import KEY_FIELD
from calsync.state.store import StateStore

OLD, NEW = "alice@acme.test", "alice.smith@acme.test"


def events(sf_emu):
    return sf_emu.backend.list_records("Event")


def per_meeting(sf_emu):
    """Events per (Salesforce owner, Subject): every demo meeting has its own Subject."""
    return Counter((r["OwnerId"][:15], r["Subject"]) for r in events(sf_emu))


def rename(google_emu, sf_emu, company, old=OLD, new=NEW):
    """What an admin does: rename the Workspace user, update the Salesforce User's Email."""
    google_emu.backend.rename_user(old, new)
    sf_emu.backend.update_record("User", company.sf_user_ids[old], {"Email": new}, system=True)


def users_after(company, old=OLD, new=NEW):
    return [new if u == old else u for u in company.users]


def owners_in_state(location):
    store = StateStore(location)  # a file or a URL (tests/conftest.py state_location)
    try:
        return {r["owner"] for r in store.rows("SELECT owner FROM written")}
    finally:
        store.close()


def totals(result):
    return {k: sum(getattr(c, k) for c in result.calendars.values()) for k in ("created", "updated", "deleted")}


def later(hours):
    start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0, second=0, minute=0) + dt.timedelta(days=3, hours=hours)
    fmt = lambda t: t.isoformat().replace("+00:00", "Z")  # noqa: E731
    return {"start": {"dateTime": fmt(start)}, "end": {"dateTime": fmt(start + dt.timedelta(hours=1))}}


@pytest.mark.parametrize("external_id", [False, True], ids=["intents", "external-id"])
def test_a_renamed_user_keeps_their_events_no_duplicate_no_orphan(
    sync, make_config, google_emu, sf_emu, company, tmp_path, caplog, external_id, state_location
):
    salesforce = {"external_id_field": KEY_FIELD} if external_id else {}
    first = sync(make_config(salesforce=salesforce))
    assert first.ok, {u: c.error for u, c in first.calendars.items()}
    before = {r["Id"] for r in events(sf_emu)}
    alice = company.sf_user_ids[OLD][:15]
    assert per_meeting(sf_emu)[(alice, "Globex renewal: pricing review")] == 1

    rename(google_emu, sf_emu, company)
    path = make_config(sync={"users": users_after(company)}, salesforce=salesforce)
    with caplog.at_level(logging.INFO):
        result = sync(path)
    assert result.ok, {u: c.error for u, c in result.calendars.items()}
    assert totals(result) == {"created": 0, "updated": 0, "deleted": 0}
    assert {r["Id"] for r in events(sf_emu)} == before  # no new Event, none lost
    renamed = [r for r in caplog.records if r.getMessage() == "user renamed"]
    assert len(renamed) == 1 and renamed[0].fields == {"old": OLD, "new": NEW, "sf_user": company.sf_user_ids[OLD]}
    assert result.calendars[NEW].full_sync  # the renamed calendar is listed in full once
    assert owners_in_state(state_location) == set(users_after(company))
    store = StateStore(state_location)
    try:  # `calsync explain` finds the Event of a renamed user's meeting (offline)
        (found,) = explain.stored(store, NEW, subject="Globex renewal")
        assert found.written is not None and found.written.sf_id[:15] in {i[:15] for i in before}
    finally:
        store.close()

    # A meeting moved after the rename updates the original Event.
    google_emu.backend.update_event(company.meetings["external"], later(2))
    caplog.clear()
    with caplog.at_level(logging.INFO):
        moved = sync(path)
    assert moved.ok and totals(moved)["created"] == 0
    assert not [r for r in caplog.records if r.getMessage() == "user renamed"]  # logged once
    rows = [r for r in events(sf_emu) if r["Subject"] == "Globex renewal: pricing review"]
    mine = [r for r in rows if r["OwnerId"][:15] == alice]
    assert len(mine) == 1 and mine[0]["Id"] in before
    assert mine[0]["StartDateTime"].startswith(later(2)["start"]["dateTime"][:16])

    # A meeting cancelled after the rename deletes it.
    google_emu.backend.delete_event(company.meetings["internal"])
    cancelled = sync(path)
    assert cancelled.ok and totals(cancelled)["created"] == 0
    assert not [r for r in events(sf_emu) if r["Subject"] == "Initech expansion workshop"]
    assert max(per_meeting(sf_emu).values()) == 1
    assert {r["Id"] for r in events(sf_emu)} <= before

    # And a resync finds nothing to do: no duplicate, nothing missing.
    resynced = sync(path)
    assert resynced.ok and totals(resynced) == {"created": 0, "updated": 0, "deleted": 0}


def test_the_old_address_keeps_resolving_nothing_and_a_second_rename_keeps_the_events(
    sync, make_config, google_emu, sf_emu, company
):
    assert sync(make_config()).ok
    before = {r["Id"] for r in events(sf_emu)}
    rename(google_emu, sf_emu, company)
    assert sync(make_config(sync={"users": users_after(company)})).ok
    third = "a.smith@acme.test"
    google_emu.backend.rename_user(NEW, third)
    sf_emu.backend.update_record("User", company.sf_user_ids[OLD], {"Email": third}, system=True)
    path = make_config(sync={"users": users_after(company, new=third)})
    result = sync(path)
    assert result.ok and totals(result) == {"created": 0, "updated": 0, "deleted": 0}
    google_emu.backend.update_event(company.meetings["external"], later(4))
    assert totals(sync(path))["created"] == 0
    assert {r["Id"] for r in events(sf_emu)} == before
    assert max(per_meeting(sf_emu).values()) == 1


def test_two_addresses_of_one_salesforce_user_share_its_events(sync, make_config, google_emu, sf_emu, company):
    """alice's second account, mapped to her Salesforce User, attends her meetings too: one
    Event per meeting; one calendar dropping the meeting does not delete it while the other
    still has it."""
    second = "alice.two@acme.test"
    google_emu.backend.add_user(second, "Alice Two")
    for label in ("external", "weekly"):
        google_emu.backend.update_event(company.meetings[label], {"attendees": [
            *google_emu.backend.meetings[company.meetings[label]].body["attendees"], {"email": second}]})
    path = make_config(sync={"users": [*company.users, second], "user_map": {second: company.sf_user_ids[OLD]}})
    result = sync(path)
    assert result.ok, {u: c.error for u, c in result.calendars.items()}
    alice = company.sf_user_ids[OLD][:15]
    counts = per_meeting(sf_emu)
    assert counts[(alice, "Globex renewal: pricing review")] == 1
    assert counts[(alice, "Umbrella weekly check-in")] == 1
    assert max(counts.values()) == 1

    # The second account leaves the meeting: alice still attends, the Event stays.
    body = google_emu.backend.meetings[company.meetings["external"]].body
    google_emu.backend.update_event(company.meetings["external"], {
        "attendees": [a for a in body["attendees"] if a["email"] != second]})
    cfg = config_module.load(path)
    with open_cycle(cfg) as cycle:  # the daemon syncs one calendar at a time
        assert cycle.run([second]).ok
    assert per_meeting(sf_emu)[(alice, "Globex renewal: pricing review")] == 1
    # Then alice leaves it too: now it goes.
    body = google_emu.backend.meetings[company.meetings["external"]].body
    google_emu.backend.update_event(company.meetings["external"], {
        "attendees": [a for a in body["attendees"] if a["email"] != OLD]})
    with open_cycle(cfg) as cycle:
        assert cycle.run([OLD]).ok
    assert per_meeting(sf_emu)[(alice, "Globex renewal: pricing review")] == 0
    assert max(per_meeting(sf_emu).values()) == 1


def key_the_next_sync_from_its_own_address(state):
    """Make the next sync hash a new address's keys from that address, as calsync did before
    issue 16: no key address known, no cached user to find one from (returns the cache)."""
    with sqlite3.connect(state) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "owner_keys" in tables:
            db.execute("DELETE FROM owner_keys")
        cached = db.execute("SELECT address, user_id, checked_at FROM sf_users").fetchall()
        db.execute("DELETE FROM sf_users")
    return cached


def as_an_older_calsync_left_it(state, cached):
    """The state database as a calsync before issue 16 left it: no owner_keys table, and the
    user cache with every address it ever resolved."""
    with sqlite3.connect(state) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "owner_keys" in tables:
            db.execute("DROP TABLE owner_keys")
            db.execute("DROP INDEX IF EXISTS sf_users_user_id")
            db.execute("DELETE FROM _sqlite_migrations WHERE name = 'm008_owner_keys'")
        db.executemany("INSERT OR IGNORE INTO sf_users (address, user_id, checked_at) VALUES (?, ?, ?)", cached)


@pytest.fixture
def damaged(sync, make_config, google_emu, sf_emu, company, tmp_path, request):
    """What an older calsync did to a renamed user: synced under the old address, then, renamed,
    again under the new one with keys hashed from it: a second Event for every meeting of the
    window, and a meeting created since that has only the second kind of key."""
    salesforce = {"external_id_field": KEY_FIELD} if getattr(request, "param", False) else {}
    state = tmp_path / "state.db"
    assert sync(make_config(salesforce=salesforce)).ok
    originals = {r["Id"][:15] for r in events(sf_emu)}
    rename(google_emu, sf_emu, company)
    cached = key_the_next_sync_from_its_own_address(state)
    path = make_config(sync={"users": users_after(company)}, salesforce=salesforce)
    sync(path)
    google_emu.backend.create_event(NEW, {
        "summary": "Umbrella follow-up", "attendees": [NEW, "ada@umbrella.test"], **later(5)})
    assert sync(path).ok
    as_an_older_calsync_left_it(state, cached)
    alice = company.sf_user_ids[OLD][:15]
    doubled = [s for (owner, s), n in per_meeting(sf_emu).items() if owner == alice and n == 2]
    assert sorted(doubled) == ["Globex renewal: pricing review", "Initech expansion workshop",
                               "Umbrella weekly check-in"]
    return path, originals, state


@pytest.mark.sqlite_only("rebuilds a state file as a calsync before issue 16 left it (SQLite only then)")
@pytest.mark.parametrize("damaged", [False, True], ids=["intents", "external-id"], indirect=True)
def test_resync_removes_the_duplicates_an_older_version_left_after_a_rename(cli, sf_emu, company, damaged):
    path, originals, state = damaged
    before = {r["Id"][:15] for r in events(sf_emu)}
    extras = before - originals - {r["Id"][:15] for r in events(sf_emu) if r["Subject"] == "Umbrella follow-up"}
    assert len(extras) == 3

    dry = cli("--config", str(path), "resync", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    listed = [line for line in dry.stdout.splitlines() if "duplicate of" in line]
    assert len(listed) == 3 and all(line.startswith("would delete") for line in listed), dry.stdout
    assert {line.split("owner ")[1].split()[1][:15] for line in listed} == extras  # each extra named by Id
    assert not [line for line in dry.stdout.splitlines() if line.startswith(("would create", "would update"))]
    assert {r["Id"][:15] for r in events(sf_emu)} == before  # nothing written

    done = cli("--config", str(path), "resync")
    assert done.returncode == 0, done.stderr
    logged = [line for line in done.stderr.splitlines() if 'msg="deleted duplicate"' in line]
    assert len(logged) == 3 and all("kept=" in line for line in logged)
    assert sum('msg="user renamed"' in line for line in done.stderr.splitlines()) == 1
    left = {r["Id"][:15] for r in events(sf_emu)}
    assert left == before - extras and originals <= left  # the original Events are the ones kept
    assert max(per_meeting(sf_emu).values()) == 1
    with sqlite3.connect(state) as db:
        recorded = {r[0][:15] for r in db.execute("SELECT sf_id FROM written WHERE sf_id IS NOT NULL")}
        owners = {r[0] for r in db.execute("SELECT owner FROM written")}
    assert recorded == left and owners == set(users_after(company))  # the extras' rows forgotten

    again = cli("--config", str(path), "resync")
    assert again.returncode == 0 and "duplicate of" not in again.stdout
    assert "created 0, updated 0, deleted 0" in again.stdout and {r["Id"][:15] for r in events(sf_emu)} == left


@pytest.mark.sqlite_only("rebuilds a state file as a calsync before issue 16 left it (SQLite only then)")
def test_a_sync_after_the_upgrade_removes_them_too_and_keeps_one_a_person_changed(
    sync, sf_emu, google_emu, company, damaged, caplog
):
    path, originals, _ = damaged
    extra = next(r for r in events(sf_emu) if r["Id"][:15] not in originals
                 and r["Subject"] == "Globex renewal: pricing review")
    rep = sf_emu.backend.create_user("rep@acme.test", last_name="Rep")
    sf_emu.backend.update_record("Event", extra["Id"], {"Description": "notes from the call"}, user_id=rep)
    with caplog.at_level(logging.INFO):
        result = sync(path)  # the rename drops the token: a full listing, which finds them
    assert result.ok, {u: c.error for u, c in result.calendars.items()}
    assert totals(result)["created"] == 0 and totals(result)["deleted"] == 2
    kept = [r for r in caplog.records if r.getMessage() == "kept a duplicate a person changed"]
    assert len(kept) == 1 and kept[0].fields["sf_id"] == extra["Id"] and kept[0].fields["fields"] == "Description"
    left = {r["Id"][:15] for r in events(sf_emu)}
    assert extra["Id"][:15] in left  # a person's notes are never deleted as a duplicate
    follow_up = [r for r in events(sf_emu) if r["Subject"] == "Umbrella follow-up"]
    assert len(follow_up) == 1  # re-keyed at the upgrade: not created a second time
    google_emu.backend.update_event(company.meetings["weekly"], {"summary": "Umbrella weekly sync"})
    assert totals(sync(path))["created"] == 0
    assert per_meeting(sf_emu)[(company.sf_user_ids[OLD][:15], "Umbrella weekly sync")] == 1
