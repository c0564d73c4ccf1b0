"""The state store: tables round-trip, transactions are atomic, unknown schemas are refused."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calsync.core.errors import StateError
from calsync.state.store import MirrorRow, StateStore

NOW = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.timezone.utc)
text = st.text(min_size=1, max_size=40)


@pytest.fixture
def store(location):
    s = StateStore(location)
    yield s
    s.close()


def test_listing_commit_stores_token_and_items_together(store):
    store.commit_listing(
        "alice@acme.test",
        upserts=[MirrorRow("e1", "uid1", None, {"id": "e1", "summary": "Hi"})],
        deletes=[],
        sync_token="tok-1",
        result={"created": 1},
        at=NOW,
    )
    assert store.calendar("alice@acme.test").sync_token == "tok-1"
    assert store.mirror_by_uids("alice@acme.test", ["uid1"])["uid1"][0].payload["summary"] == "Hi"


def test_a_listing_never_drops_what_it_does_not_mention(store):
    common = dict(deletes=[], sync_token="t", result={}, at=NOW)
    store.commit_listing("a@x.test", upserts=[MirrorRow("e1", "u1", None, {})], **common)
    store.commit_listing("a@x.test", upserts=[MirrorRow("e2", "u2", None, {})], **common)
    assert store.mirror_uids("a@x.test") == {"u1", "u2"}


def test_suspects_are_kept_marked_and_cleared_by_a_later_listing(store):
    common = dict(deletes=[], sync_token="t", result={}, at=NOW)
    store.commit_listing("a@x.test", upserts=[MirrorRow("e1", "u1", None, {"id": "e1"})], **common)
    store.commit_listing("a@x.test", upserts=[], suspects=["e1"], **common)
    assert [r.event_id for r in store.suspects("a@x.test")] == ["e1"]
    assert store.mirror_uids("a@x.test") == {"u1"}
    store.commit_listing("a@x.test", upserts=[MirrorRow("e1", "u1", None, {"id": "e1"})], **common)
    assert store.suspects("a@x.test") == []


def test_the_calendars_time_zone_is_kept_when_a_listing_gives_none(store):
    common = dict(upserts=[], deletes=[], sync_token="t", result={}, at=NOW)
    store.commit_listing("a@x.test", time_zone="Europe/Berlin", **common)
    store.commit_listing("a@x.test", **common)
    assert store.calendar("a@x.test").time_zone == "Europe/Berlin"


def test_deleting_a_master_drops_its_exceptions(store):
    rows = [MirrorRow("m", "u", None, {}), MirrorRow("m_1", "u", "m", {"status": "cancelled"})]
    store.commit_listing("a@x.test", upserts=rows, deletes=[], sync_token="t", result={}, at=NOW)
    store.commit_listing("a@x.test", upserts=[], deletes=["m"], sync_token="t2", result={}, at=NOW)
    assert store.mirror_by_uids("a@x.test", ["u"]) == {}


def test_failed_transaction_leaves_nothing(store):
    store.record_written("k", "a@x.test", "u", "00U000000000001AAA", "fp", NOW)
    with pytest.raises(RuntimeError):
        with store.transaction():
            store._exec("DELETE FROM written")
            raise RuntimeError("boom")
    assert store.written(["k"])["k"].sf_id == "00U000000000001AAA"


def test_create_intent_survives_until_answered(tmp_path):
    path = tmp_path / "s.db"
    first = StateStore(path)
    first.record_create_intents([("k", "a@x.test", "u", {"Subject": "Demo"})], NOW)
    first.close()  # as if the process died right after the Salesforce call
    again = StateStore(path)
    (pending,) = again.pending_creates()
    assert (pending.key, pending.intent) == ("k", {"Subject": "Demo"})
    again.record_written("k", "a@x.test", "u", "00U000000000001AAA", "fp", NOW)
    assert again.pending_creates() == []


def test_abandoned_create_forgets_a_key_that_never_had_an_event(store):
    store.record_create_intents([("k", "a@x.test", "u", {})], NOW)
    store.abandon_create("k")
    assert store.written(["k"]) == {}


def test_abandoned_create_keeps_an_existing_event(store):
    store.record_written("k", "a@x.test", "u", "00U000000000001AAA", "fp", NOW)
    store.record_create_intents([("k", "a@x.test", "u", {})], NOW)
    store.abandon_create("k")
    assert store.written(["k"])["k"].sf_id == "00U000000000001AAA"
    assert store.pending_creates() == []


def test_retry_delay_doubles_and_caps(store):
    delays = []
    for _ in range(8):
        retry = store.record_retry("k", "a@x.test", "u", "create", "STRING_TOO_LONG", "m", NOW,
                                   dt.timedelta(minutes=40))
        delays.append(retry.next_attempt_at - NOW)
    assert delays[:3] == [dt.timedelta(minutes=40), dt.timedelta(minutes=80), dt.timedelta(minutes=160)]
    assert delays[-1] == dt.timedelta(hours=24)
    assert store.due_retries("a@x.test", NOW) == []
    assert len(store.due_retries("a@x.test", NOW + dt.timedelta(days=2))) == 1


def test_error_texts_are_stored_redacted(store, tmp_path):
    from urllib.parse import quote_plus

    from calsync.core import logs

    secret = "hunter2 & co/+"
    logs.register_secret(secret)
    echo = f"gateway said: password={quote_plus(secret)} raw={secret}"
    store.record_failure_of_calendar("a@x.test", echo, NOW)
    store.record_retry("k", "a@x.test", "u", "create", "INVALID", echo, NOW, dt.timedelta(minutes=1))
    assert store.calendar("a@x.test").last_error == "gateway said: password=*** raw=***"
    assert store.retries()[0].message == "gateway said: password=*** raw=***"
    store.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("state.db*"))
    assert secret.encode() not in stored and quote_plus(secret).encode() not in stored


def test_record_written_clears_the_retry(store):
    store.record_retry("k", "a@x.test", "u", "create", "X", "m", NOW, dt.timedelta(0))
    store.record_written("k", "a@x.test", "u", "00U000000000001AAA", "fp", NOW)
    assert store.retries() == []


def test_an_event_kept_with_canceled_remembers_whose_prefix_it_is(store):
    # m007_canceled_prefix: only the `Canceled: ` calsync added goes when the meeting comes back.
    for key, prefixed in (("ours", True), ("theirs", False)):
        store.record_written(key, "a@x.test", key, "00U000000000001AAA", "fp", NOW, hashes={"Subject": "h"})
        store.mark_canceled(key, {"Subject": "h2"}, NOW, prefixed=prefixed)
    found = store.written(["ours", "theirs"])
    assert (found["ours"].canceled, found["ours"].prefixed) == (True, True)
    assert (found["theirs"].canceled, found["theirs"].prefixed) == (True, False)
    store.record_written("ours", "a@x.test", "ours", "00U000000000001AAA", "fp2", NOW)  # it came back
    back = store.written(["ours"])["ours"]
    assert (back.canceled, back.prefixed) == (False, None)


def test_database_from_a_newer_calsync_is_refused(tmp_path):
    path = tmp_path / "s.db"
    StateStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute(
        "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES ('calsync', 'm999_future', 'x')"
    )
    conn.commit()
    conn.close()
    with pytest.raises(StateError, match="newer calsync"):
        StateStore(path)


def test_garbage_file_is_a_state_error(tmp_path):
    path = tmp_path / "s.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StateError):
        StateStore(path)


@settings(max_examples=40, deadline=None)
@given(event_id=text, uid=text, payload=st.dictionaries(text, st.one_of(text, st.integers(), st.booleans())))
def test_mirror_rows_round_trip(tmp_path_factory, event_id, uid, payload):
    store = StateStore(tmp_path_factory.mktemp("m") / "s.db")
    store.commit_listing("a@x.test", upserts=[MirrorRow(event_id, uid, None, payload)], deletes=[],
                         sync_token="t", result={}, at=NOW)
    assert store.mirror_by_ids("a@x.test", [event_id])[event_id] == MirrorRow(event_id, uid, None, payload)
    store.close()


@settings(max_examples=40, deadline=None)
@given(key=text, owner=text, uid=text, sf_id=text, fp=text)
def test_written_rows_round_trip(tmp_path_factory, key, owner, uid, sf_id, fp):
    store = StateStore(tmp_path_factory.mktemp("w") / "s.db")
    store.record_written(key, owner, uid, sf_id, fp, NOW)
    got = store.written([key])[key]
    assert (got.owner, got.ical_uid, got.sf_id, got.fingerprint) == (owner, uid, sf_id, fp)
    assert store.written_for_owner(owner) == {key: got}
    store.close()


@settings(max_examples=30, deadline=None)
@given(users=st.dictionaries(text, st.one_of(st.none(), text), max_size=5), meta=st.lists(st.integers()))
def test_user_cache_and_meta_round_trip(tmp_path_factory, users, meta):
    store = StateStore(tmp_path_factory.mktemp("u") / "s.db")
    store.save_sf_users(users, NOW)
    assert {k: v[0] for k, v in store.sf_users().items()} == users
    store.save_meta("x", meta, NOW)
    assert store.meta("x") == (meta, NOW)
    store.close()


def test_a_create_intent_keeps_salesforces_time_until_answered(tmp_path):
    # m009: where the search for a lost create's Event starts, in Salesforce's own clock.
    path = tmp_path / "s.db"
    store = StateStore(path)
    theirs = NOW - dt.timedelta(minutes=10, microseconds=250_000)
    store.record_create_intents([("k", "a@x.test", "u", {"Subject": "Demo"})], NOW, theirs)
    store.record_create_intents([("old", "a@x.test", "u", {})], NOW)  # Salesforce not heard yet
    store.close()
    again = StateStore(path)
    pending = {p.key: p for p in again.pending_creates()}
    assert pending["k"].intent_sf_at == theirs and pending["k"].intent_at == NOW
    assert pending["old"].intent_sf_at is None
    again.record_written("k", "a@x.test", "u", "00U000000000001AAA", "fp", NOW)
    again.record_create_intents([("k", "a@x.test", "u", {})], NOW)
    assert {p.key: p.intent_sf_at for p in again.pending_creates()} == {"k": None, "old": None}


def test_unanswered_updates_keep_every_hash_until_a_write_is_recorded(store):
    # Issue 16: two crashes in a row around updates; the Event may hold either update.
    store.record_written("k", "a@x.test", "u", "00U1", "fp", NOW, hashes={"Subject": "h0"})
    store.record_update_intents({"k": {"Subject": "h1", "Location": "l1"}})
    store.record_update_intents({"k": {"Subject": "h2"}})
    store.record_update_intents({"k": {"Subject": "h1"}})
    pending = store.written(["k"])["k"].pending
    assert pending == {"Subject": ["h2", "h1"], "Location": ["l1"]}
    store.record_written("k", "a@x.test", "u", "00U1", "fp2", NOW, hashes={"Subject": "h1"})
    assert store.written(["k"])["k"].pending is None


def test_pending_hashes_stored_as_one_hash_per_field_are_still_read(store):
    store.record_written("k", "a@x.test", "u", "00U1", "fp", NOW, hashes={"Subject": "h0"})
    store._exec("UPDATE written SET pending_hashes = ? WHERE key = 'k'", ['{"Subject": "h1"}'])
    assert store.written(["k"])["k"].pending == {"Subject": ["h1"]}
