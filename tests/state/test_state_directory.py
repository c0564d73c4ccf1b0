"""The meeting index, the re-plan queue and the refresh's seen set (migration m003_directory)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calsync.state.store import IndexEntry, StateStore, migrations

NOW = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.timezone.utc)
HANK = "003RO0000000001AAA"
OPP = "006RO0000000001AAA"


@pytest.fixture
def store(location):
    s = StateStore(location)
    yield s
    s.close()


def entry(uid: str, *, addresses=(), ids=(), start=NOW, user="alice@acme.test") -> IndexEntry:
    return IndexEntry(user, uid, frozenset(addresses), frozenset(ids), start)


def test_the_directory_migration_is_named_m003_directory(store):
    assert "m003_directory" in set(store.engine.applied())


def test_index_entry_round_trips_with_lowercased_addresses_and_15_char_ids(store):
    store.index_meetings([entry("u1", addresses=["Hank@Globex.test"], ids=[HANK, OPP])])
    assert store.index_entry("alice@acme.test", "u1") == entry(
        "u1", addresses=["hank@globex.test"], ids=[HANK[:15], OPP[:15]]
    )


def test_indexing_again_replaces_the_old_links(store):
    store.index_meetings([entry("u1", addresses=["hank@globex.test"], ids=[HANK])])
    store.index_meetings([entry("u1", addresses=["marge@globex.test"])])
    assert store.meetings_touching(["hank@globex.test"], [HANK], NOW - dt.timedelta(days=30)) == set()
    assert store.meetings_touching(["marge@globex.test"], [], NOW - dt.timedelta(days=30)) == {
        ("alice@acme.test", "u1")
    }


def test_an_empty_entry_removes_the_meeting(store):
    store.index_meetings([entry("u1", addresses=["hank@globex.test"])])
    store.index_meetings([entry("u1")])
    assert store.index_entry("alice@acme.test", "u1") is None
    assert store.meetings_touching(["hank@globex.test"], [], NOW - dt.timedelta(days=30)) == set()


def test_meetings_touching_matches_addresses_case_insensitively_and_ids_by_15_chars(store):
    store.index_meetings([
        entry("by-address", addresses=["hank@globex.test"]),
        entry("by-id", ids=[HANK]),
        entry("other", addresses=["zoe@soylent.test"], ids=["00QRO0000000001AAA"]),
        entry("bob's", addresses=["HANK@globex.test"], user="bob@acme.test"),
    ])
    found = store.meetings_touching(["Hank@GLOBEX.test"], [HANK[:15]], NOW - dt.timedelta(days=1))
    assert found == {("alice@acme.test", "by-address"), ("alice@acme.test", "by-id"), ("bob@acme.test", "bob's")}
    # An 18-character id with another checksum case still matches by its 15-character form.
    assert store.meetings_touching([], [HANK[:15] + "aaa"], NOW - dt.timedelta(days=1)) == {
        ("alice@acme.test", "by-id")
    }


def test_meetings_touching_leaves_out_meetings_before_the_window(store):
    store.index_meetings([
        entry("old", addresses=["hank@globex.test"], start=NOW - dt.timedelta(days=40)),
        entry("recent", addresses=["hank@globex.test"], start=NOW - dt.timedelta(days=2)),
        entry("undated", addresses=["hank@globex.test"], start=None),
    ])
    found = store.meetings_touching(["hank@globex.test"], [], NOW - dt.timedelta(days=30))
    assert found == {("alice@acme.test", "recent"), ("alice@acme.test", "undated")}


def test_meetings_touching_many_values_goes_in_chunks(store):
    addresses = [f"p{i}@x.test" for i in range(1200)]
    store.index_meetings([entry(f"u{i}", addresses=[a]) for i, a in enumerate(addresses)])
    assert len(store.meetings_touching(addresses, [], NOW - dt.timedelta(days=1))) == 1200


def test_replans_queue_read_and_clear_per_user(store):
    store.queue_replans([("alice@acme.test", "u1"), ("alice@acme.test", "u2"), ("bob@acme.test", "u1")])
    store.queue_replans([("alice@acme.test", "u1")])
    assert store.replans("alice@acme.test") == {"u1", "u2"}
    store.clear_replans("alice@acme.test", ["u1", "never-queued"])
    assert store.replans("alice@acme.test") == {"u2"}
    assert store.replans("bob@acme.test") == {"u1"}


def test_seen_pairs_are_forgotten_once_at_or_before_the_cutoff(store):
    store.remember_directory_seen({"a": NOW, "b": NOW + dt.timedelta(milliseconds=1)}, NOW - dt.timedelta(hours=1))
    assert store.directory_seen() == {"a", "b"}
    store.remember_directory_seen({}, NOW)
    assert store.directory_seen() == {"b"}


def test_writes_inside_a_transaction_commit_together(store):
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.queue_replans([("alice@acme.test", "u1")])
            store.save_meta("directory:watermark", "x", NOW)
            raise RuntimeError("boom")
    assert store.replans("alice@acme.test") == set() and store.meta("directory:watermark") is None
    with store.transaction():
        store.queue_replans([("alice@acme.test", "u1")])
        store.save_meta("directory:watermark", "x", NOW)
    assert store.replans("alice@acme.test") == {"u1"} and store.meta("directory:watermark") == ("x", NOW)


addresses = st.lists(st.emails().map(str.lower), max_size=4)
ids = st.lists(st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=15,
                       max_size=15), max_size=4)
instants = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1),
                       timezones=st.just(dt.timezone.utc))
starts = st.one_of(st.none(), instants.map(lambda d: d.replace(microsecond=0)))
uids = st.text(min_size=1, max_size=40)


@settings(max_examples=40, deadline=None)
@given(uid=uids, addresses=addresses, ids=ids, start=starts)
def test_index_entries_round_trip(tmp_path_factory, uid, addresses, ids, start):
    store = StateStore(tmp_path_factory.mktemp("i") / "s.db")
    stored = entry(uid, addresses=addresses, ids=ids, start=start)
    store.index_meetings([stored])
    assert store.index_entry("alice@acme.test", uid) == (None if stored.empty else stored)
    if not stored.empty:
        assert store.meetings_touching(addresses, ids, dt.datetime(1999, 1, 1, tzinfo=dt.timezone.utc)) == {
            ("alice@acme.test", uid)
        }
    store.close()


@settings(max_examples=40, deadline=None)
@given(pairs=st.sets(st.tuples(st.sampled_from(["a@x.test", "b@x.test"]), uids), max_size=6))
def test_replans_round_trip(tmp_path_factory, pairs):
    store = StateStore(tmp_path_factory.mktemp("r") / "s.db")
    store.queue_replans(pairs)
    for user in ("a@x.test", "b@x.test"):
        assert store.replans(user) == {uid for u, uid in pairs if u == user}
        store.clear_replans(user, store.replans(user))
        assert store.replans(user) == set()
    store.close()


@settings(max_examples=40, deadline=None)
@given(seen=st.dictionaries(st.text(min_size=1, max_size=60), instants, max_size=6))
def test_directory_seen_round_trips(tmp_path_factory, seen):
    store = StateStore(tmp_path_factory.mktemp("s") / "s.db")
    store.remember_directory_seen(seen, dt.datetime(1999, 1, 1, tzinfo=dt.timezone.utc))
    assert store.directory_seen() == set(seen)
    store.close()
