"""Owner keys and renames in the state (m008_owner_keys, identity.py): the address each
Salesforce User's Event keys are hashed from, seeded at migration from what an older calsync
left, and the state of a renamed user moved in one transaction."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calsync.engine import identity

from calsync.state import store as state
from calsync.core.model import event_key
from calsync.state.store import MirrorRow, StateStore, StoredDecision

NOW = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.timezone.utc)
ALICE_ID = "005000000000001AAA"
OLD, NEW = "alice@acme.test", "alice.smith@acme.test"


def before_m008(path):
    """A state database as a calsync without m008_owner_keys left it."""
    StateStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE owner_keys")
        db.execute("DROP INDEX sf_users_user_id")
        db.execute("DELETE FROM _sqlite_migrations WHERE name = 'm008_owner_keys'")


def old_rows(path, rows, users):
    """Rows as an older calsync wrote them: each keyed from its own owner's address (written
    with SQL: opening a store would run the migration)."""
    at = NOW.isoformat()
    with sqlite3.connect(path) as db:
        for address, user_id in users.items():
            db.execute("INSERT INTO sf_users (address, user_id, checked_at) VALUES (?, ?, ?)",
                       [address, user_id, at])
        for owner, uid, sf_id in rows:
            db.execute("INSERT INTO written (key, owner, ical_uid, sf_id, fingerprint, updated_at)"
                       " VALUES (?, ?, ?, ?, 'fp', ?)", [event_key(owner, uid), owner, uid, sf_id, at])


@pytest.fixture
def store(location):
    s = StateStore(location)
    yield s
    s.close()


def test_the_migration_keeps_the_first_address_and_rekeys_what_only_the_later_one_holds(tmp_path):
    path = tmp_path / "state.db"
    before_m008(path)
    # alice synced under her old address, then (renamed) under the new one: m1 twice, m2 only new.
    old_rows(path, [(OLD, "m1", "00U1"), (NEW, "m1", "00U2"), (NEW, "m2", "00U3")],
             {OLD: ALICE_ID, NEW: ALICE_ID, "bob@acme.test": "005000000000002AAA"})
    store = StateStore(path)  # the migration runs
    try:
        assert state.owner_keys(store, [ALICE_ID, "005000000000002AAA"]) == {
            ALICE_ID[:15]: OLD, "005000000000002": "bob@acme.test"}
        written = store.written([event_key(OLD, "m1"), event_key(NEW, "m1"), event_key(OLD, "m2"),
                                 event_key(NEW, "m2")])
        assert written[event_key(OLD, "m1")].sf_id == "00U1"
        assert written[event_key(NEW, "m1")].sf_id == "00U2"  # a duplicate: left for resync
        assert written[event_key(OLD, "m2")].sf_id == "00U3"  # re-keyed: keeps its one Event
        assert event_key(NEW, "m2") not in written
    finally:
        store.close()


def test_the_migration_keeps_a_create_in_flight_under_its_key(tmp_path):
    path = tmp_path / "state.db"
    before_m008(path)
    old_rows(path, [(OLD, "m1", "00U1")], {OLD: ALICE_ID, NEW: ALICE_ID})
    with sqlite3.connect(path) as db:  # a create of an older calsync, its answer never recorded
        db.execute("INSERT INTO written (key, owner, ical_uid, state, intent, intent_at, updated_at)"
                   " VALUES (?, ?, 'm2', 'creating', '{}', ?, ?)",
                   [event_key(NEW, "m2"), NEW, NOW.isoformat(), NOW.isoformat()])
    store = StateStore(path)
    try:
        assert [p.key for p in store.pending_creates()] == [event_key(NEW, "m2")]
    finally:
        store.close()


def test_an_address_taken_by_another_user_keys_by_the_user_id(store):
    assert state.claim_owner_key(store, ALICE_ID, OLD, NOW) == OLD
    assert state.claim_owner_key(store, ALICE_ID, NEW, NOW) == OLD  # claimed once, for good
    # The old address given to someone else: their keys must not be alice's.
    assert state.claim_owner_key(store, "005000000000009AAA", OLD, NOW) == "005000000000009AAA"


@settings(max_examples=40, deadline=None)
@given(claims=st.lists(st.tuples(st.sampled_from(["005A", "005B", "005C"]),
                                 st.sampled_from(["a@x.test", "b@x.test", "c@x.test"])), max_size=8))
def test_owner_keys_round_trip_and_never_share_a_key(tmp_path_factory, claims):
    store = StateStore(tmp_path_factory.mktemp("keys") / "state.db")
    try:
        first: dict[str, str] = {}
        for user_id, address in claims:
            got = state.claim_owner_key(store, user_id + "0" * 14, address, NOW)
            first.setdefault(user_id, got)
            assert got == first[user_id]  # stable
        stored = state.owner_keys(store, [u + "0" * 14 for u in first])
        assert stored == {(u + "0" * 14)[:15]: k for u, k in first.items()}
        assert len(set(stored.values())) == len(stored)  # one key address, one User
    finally:
        store.close()


def test_moving_a_user_moves_every_row_and_drops_the_token(store):
    store.commit_listing(OLD, upserts=[MirrorRow("e1", "m1", None, {"id": "e1"})], deletes=[],
                         sync_token="tok", time_zone="Europe/Berlin", result={}, at=NOW)
    store.record_written(event_key(OLD, "m1"), OLD, "m1", "00U1", "fp", NOW)
    store.record_retry(event_key(OLD, "m2"), OLD, "m2", "create", "X", "no", NOW, dt.timedelta(minutes=5))
    store.record_decisions([StoredDecision(OLD, "m1", "e1", "Hi", NOW, "create", None, NOW, {})])
    store.queue_replans([(OLD, "m1")])
    store.index_meetings([state.IndexEntry(OLD, "m1", frozenset({"c@cust.test"}), start=NOW)])
    # A row the new address holds already (an older calsync synced both): the new one stays.
    store.commit_listing(NEW, upserts=[MirrorRow("e1", "m1", None, {"id": "e1", "summary": "new"})],
                         deletes=[], sync_token="tok2", result={}, at=NOW)

    state.move_user(store, OLD, NEW)

    assert not state.holds_state(store, OLD)
    assert store.calendar(NEW).sync_token is None  # listed in full next
    assert store.mirror_by_ids(NEW, ["e1"])["e1"].payload["summary"] == "new"
    assert store.written([event_key(OLD, "m1")])[event_key(OLD, "m1")].owner == NEW  # same key
    assert [r.key for r in store.retries(NEW)] == [event_key(OLD, "m2")]
    assert [d.ical_uid for d in store.decisions(NEW)] == ["m1"]
    assert store.replans(NEW) == {"m1"}
    assert store.index_entry(NEW, "m1").addresses == {"c@cust.test"}


def test_a_rename_is_found_moved_and_logged_once(store, caplog):
    store.save_sf_users({OLD: ALICE_ID}, NOW)
    identity.settle(store, {OLD: ALICE_ID}, [OLD], NOW)
    store.record_written(event_key(OLD, "m1"), OLD, "m1", "00U1", "fp", NOW)
    store.save_sf_users({NEW: ALICE_ID}, NOW)
    with caplog.at_level("INFO"):
        found = identity.settle(store, {NEW: ALICE_ID}, [NEW], NOW)
        identity.settle(store, {NEW: ALICE_ID}, [NEW], NOW)
    me = found[NEW]
    assert me.key_address == OLD and me.key_owner == OLD and me.key("m1") == event_key(OLD, "m1")
    assert me.alias_keys("m1") == {event_key(NEW, "m1")}
    assert [r.fields for r in caplog.records if r.getMessage() == "user renamed"] == [
        {"old": OLD, "new": NEW, "sf_user": ALICE_ID}]
    assert store.written_for_owner(NEW).keys() == {event_key(OLD, "m1")}
    assert identity.key_address(store, NEW) == OLD  # what explain reads, offline


def test_a_calendar_that_is_not_the_same_is_never_taken_for_a_rename(store):
    store.save_sf_users({OLD: ALICE_ID}, NOW)
    identity.settle(store, {OLD: ALICE_ID}, [OLD], NOW)
    store.record_written(event_key(OLD, "m1"), OLD, "m1", "00U1", "fp", NOW)
    asked = []

    def unknown(old, new):
        asked.append(old)
        return None

    identity.settle(store, {NEW: ALICE_ID}, [NEW], NOW, same_calendar=unknown)
    assert state.holds_state(store, OLD)  # Google could not say: asked again next time
    identity.settle(store, {NEW: ALICE_ID}, [NEW], NOW, same_calendar=lambda old, new: False)
    identity.settle(store, {NEW: ALICE_ID}, [NEW], NOW, same_calendar=unknown)
    assert asked == [OLD] and state.holds_state(store, OLD)  # refused once, for good


def test_two_configured_addresses_of_one_user_share_keys_and_know_each_other(store):
    found = identity.settle(store, {OLD: ALICE_ID, "alice2@acme.test": ALICE_ID}, [OLD, "alice2@acme.test"], NOW)
    assert found[OLD].key_address == found["alice2@acme.test"].key_address
    assert found[OLD].siblings == ("alice2@acme.test",)
    assert found["alice2@acme.test"].siblings == (OLD,)
