"""`calsync state copy`: a whole state moved SQLite -> PostgreSQL -> SQLite with nothing lost,
the tables list held to the schema, and the refusals (a running writer, a destination with rows).
The PostgreSQL side runs on the session's throwaway cluster (tests/postgres_cluster.py)."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest

from calsync.state import owner_keys, push_channels, record_history
from calsync.state.lock import LockBusy, WriterLock
from calsync.state.records import IndexEntry, MirrorRow, PushChannel, Record, StoredDecision
from calsync.state.store import StateStore
from calsync.state.tables import TABLES

NOW = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.timezone.utc)
ALICE, BOB = "alice@acme.test", "bob@acme.test"


def fill(store: StateStore) -> None:
    """One or more rows in every table, through the store as a cycle writes them (odd text
    included: quotes, %, ?, non-ASCII)."""
    store.commit_listing(ALICE, upserts=[MirrorRow("e1", "u1", None, {"id": "e1", "summary": "Zoë's 100% ?"}),
                                         MirrorRow("e2", "u2", "e1", {"id": "e2"})],
                         deletes=[], sync_token="tok-a", time_zone="Europe/Paris",
                         result={"created": 1}, at=NOW, swept=True)
    store.apply_listing(BOB, upserts=[MirrorRow("e3", "u3", None, {"id": "e3"})], deletes=[],
                        suspects=["e3"], queued=["u3"], at=NOW)
    store.record_written_many([Record("k1", ALICE, "u1", "00U000000000001AAA", "fp1",
                                      {"Subject": "h1", "Description": "h2"}, frozenset({"Location"}))], NOW)
    store.record_create_intents([("k2", BOB, "u3", {"Subject": "Demo"})], NOW, NOW)
    store.record_update_intents({"k1": {"Subject": "h9"}})
    store.mark_canceled("k1", {"Subject": "Canceled: h1"}, NOW)
    store.record_retry("k3", ALICE, "u2", "create", "FIELD_CUSTOM_VALIDATION_EXCEPTION", "no",
                       NOW, dt.timedelta(minutes=5))
    record_history.record_history(store, "k3", ALICE, "u2", "dropped", NOW, by="admin")
    store.save_sf_users({ALICE: "005000000000001AAA", BOB: None}, NOW)
    store.save_meta("describe", {"fields": ["Subject"]}, NOW)
    store.index_meetings([IndexEntry(ALICE, "u1", frozenset({"c@d.test"}), frozenset({"003000000000001"}), NOW)])
    store.remember_directory_seen({"003000000000001": NOW}, NOW - dt.timedelta(days=1))
    store.record_decisions([StoredDecision(ALICE, "u1", "e1", "Zoë", NOW, "create", None, NOW, {"a": 1})])
    push_channels.save_push_channel(store, PushChannel("c1", ALICE, "t", "https://x.test/p", "r", NOW, NOW))
    owner_keys.claim_owner_key(store, "005000000000001AAA", ALICE, NOW)
    with store.transaction():
        store.exec("INSERT INTO requests (command, arguments, requested_at) VALUES (?, ?, ?)",
                   ["retry", "{}", NOW.isoformat()])


def every_row(location) -> dict[str, list[dict]]:
    store = StateStore.reader(location)
    try:
        return {t: store.rows(f"SELECT * FROM {t} ORDER BY {', '.join(chr(34) + c + chr(34) for c in order)}")
                for t, order in TABLES.items()}
    finally:
        store.close()


def test_the_tables_list_is_the_whole_schema(tmp_path):
    StateStore(tmp_path / "s.db").close()
    with sqlite3.connect(tmp_path / "s.db") as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert names - {"_sqlite_migrations"} == set(TABLES)


def test_a_round_trip_sqlite_postgresql_sqlite_loses_nothing(tmp_path, pg_url, cli):
    first, back = tmp_path / "first.db", tmp_path / "back.db"
    store = StateStore(first)
    fill(store)
    store.close()
    before = every_row(first)
    assert all(before.values()), [t for t, rows in before.items() if not rows]

    there = cli("state", "copy", "--from", str(first), "--to", pg_url)
    assert there.returncode == 0, there.stderr
    assert "  written: 2 rows" in there.stdout and "  record_history: 2 rows" in there.stdout
    assert every_row(pg_url) == before

    home = cli("state", "copy", "--from", pg_url, "--to", str(back))
    assert home.returncode == 0, home.stderr
    assert every_row(back) == before

    # The copies work as states: what calsync wrote is still its own, ids keep counting.
    again = StateStore(pg_url)
    try:
        assert again.written(["k1"])["k1"].hashes == {"Subject": "Canceled: h1"}
        record_history.record_history(again, "k9", ALICE, "u9", "dropped", NOW)
        ids = [r["id"] for r in again.rows("SELECT id FROM record_history ORDER BY id")]
        assert ids == sorted(set(ids)) and len(ids) == 3
    finally:
        again.close()


def test_a_destination_with_rows_is_refused_unless_forced(tmp_path, pg_url, cli):
    source = tmp_path / "s.db"
    store = StateStore(source)
    fill(store)
    store.close()
    assert cli("state", "copy", "--from", str(source), "--to", pg_url).returncode == 0
    refused = cli("state", "copy", "--from", str(source), "--to", pg_url)
    assert refused.returncode != 0 and "--force" in refused.stderr
    assert cli("state", "copy", "--from", str(source), "--to", pg_url, "--force").returncode == 0
    assert every_row(pg_url) == every_row(source)


@pytest.mark.parametrize("held", ["source", "destination"])
def test_a_copy_is_refused_while_a_writer_holds_either_state(tmp_path, pg_url, cli, held):
    source = tmp_path / "s.db"
    StateStore(source).close()
    lock = WriterLock(source if held == "source" else pg_url, "run")
    lock.acquire()
    try:
        refused = cli("state", "copy", "--from", str(source), "--to", pg_url)
    finally:
        lock.release()
    assert refused.returncode == 75, refused.stderr
    assert "`calsync run`" in refused.stderr


def test_the_postgresql_writer_lock_names_its_holder_and_dies_with_it(pg_url):
    first = WriterLock(pg_url, "run")
    first.acquire()
    try:
        with pytest.raises(LockBusy) as busy:
            WriterLock(pg_url, "sync").acquire()
        assert "`calsync run` (pid" in str(busy.value) and " on " in str(busy.value)
    finally:
        first.release()
    second = WriterLock(pg_url, "sync")
    second.acquire()
    second.release()
