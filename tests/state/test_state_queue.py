"""The listing queue and the sweep's query (issue 16): the mirror never moves past a meeting
whose writes are neither done nor queued, and orphaned Events are found."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calsync.state.store import MirrorRow, StateStore, StoredDecision

NOW = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.timezone.utc)
ALICE = "alice@acme.test"


@pytest.fixture
def store(location):
    s = StateStore(location)
    yield s
    s.close()


def _transactions(store: StateStore) -> list[None]:
    """Counts the outermost transactions the store opens from now on."""
    seen: list[None] = []
    inner = store.transaction

    def counting():
        if not store.engine.in_transaction:
            seen.append(None)
        return inner()

    store.transaction = counting  # type: ignore[method-assign]
    return seen


def test_a_listing_reaches_the_mirror_with_its_meetings_queued_until_the_commit(store):
    store.apply_listing(ALICE, upserts=[MirrorRow("e1", "u1", None, {"id": "e1"})], deletes=[],
                        queued=["u1", "u2"], at=NOW)
    assert store.mirror_uids(ALICE) == {"u1"} and store.replans(ALICE) == {"u1", "u2"}
    assert store.calendar(ALICE).sync_token is None  # the token waits for the writes
    store.commit_listing(ALICE, sync_token="t1", result={}, at=NOW, done=["u1", "u2"])
    assert store.replans(ALICE) == set() and store.calendar(ALICE).sync_token == "t1"


def test_a_commit_takes_off_the_queue_only_what_it_did(store):
    store.queue_replans([(ALICE, "by-salesforce")])
    store.apply_listing(ALICE, upserts=[], deletes=[], queued=["u1"], at=NOW)
    store.commit_listing(ALICE, sync_token="t1", result={}, at=NOW, done=["u1"])
    assert store.replans(ALICE) == {"by-salesforce"}


def test_an_empty_listing_opens_no_transaction(store):
    seen = _transactions(store)
    store.apply_listing(ALICE, upserts=[], deletes=[], suspects=[], queued=[], at=NOW)
    assert seen == []
    store.commit_listing(ALICE, sync_token="t", result={}, at=NOW)
    assert len(seen) == 1  # the commit's own, as before


def test_applying_the_same_listing_twice_changes_nothing(store):
    rows = [MirrorRow("m", "u", None, {"id": "m"}), MirrorRow("m_1", "u", "m", {"status": "cancelled"})]
    for _ in range(2):
        store.apply_listing(ALICE, upserts=rows, deletes=["gone"], queued=["u"], at=NOW)
    assert [r.event_id for r in store.mirror_by_uids(ALICE, ["u"])["u"]] == ["m", "m_1"]
    assert store.replans(ALICE) == {"u"}


def test_the_sweep_time_is_set_cleared_or_kept_by_the_commit(store):
    common = dict(sync_token="t", result={}, at=NOW)
    store.commit_listing(ALICE, swept=True, **common)
    assert store.calendar(ALICE).swept_at == NOW
    store.commit_listing(ALICE, **common)
    assert store.calendar(ALICE).swept_at == NOW
    store.commit_listing(ALICE, swept=False, **common)
    assert store.calendar(ALICE).swept_at is None


def _written(store: StateStore, key: str, uid: str, owner: str = ALICE, sf_id: str | None = "00U1") -> None:
    if sf_id is None:
        store.record_create_intents([(key, owner, uid, {})], NOW)
    else:
        store.record_written(key, owner, uid, sf_id + key, "fp", NOW)


def test_orphans_are_written_events_whose_meeting_the_mirror_does_not_know(store):
    _written(store, "k-known", "known")
    _written(store, "k-orphan", "orphan")
    _written(store, "k-creating", "creating", sf_id=None)
    _written(store, "k-removed", "removed")
    store.mark_removed(["k-removed"], NOW)
    _written(store, "k-canceled", "canceled")
    store.mark_canceled("k-canceled", {}, NOW)
    _written(store, "k-parked", "parked")
    store.record_retry("k-parked", ALICE, "parked", "delete", "X", "x", NOW, dt.timedelta(minutes=1))
    _written(store, "k-queued", "queued")
    store.queue_replans([(ALICE, "queued")])
    _written(store, "k-bob", "bob-only", owner="bob@acme.test")
    # Its delete was refused, then dropped by an operator (`calsync retry --drop`): stays dropped.
    _written(store, "k-dropped", "dropped")
    store.record_decisions([StoredDecision(ALICE, "dropped", "ev-d", "S", NOW, "delete", "deleted", NOW, {})])
    store.apply_listing(ALICE, upserts=[MirrorRow("e1", "known", None, {})], deletes=[], at=NOW)
    store.record_decisions([StoredDecision(ALICE, "orphan", "ev-orphan", "S", NOW, "create", None, NOW, {})])
    found = store.orphans(ALICE, 10)
    assert [(o.key, o.ical_uid, o.event_id) for o in found] == [("k-orphan", "orphan", "ev-orphan")]
    assert found[0].sf_id == "00U1k-orphan"


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcdef"), st.booleans()), max_size=12))
def test_orphans_are_exactly_the_unmirrored_written_events(tmp_path_factory, rows):
    store = StateStore(tmp_path_factory.mktemp("q") / "state.db")
    try:
        mirrored = {uid for uid, in_mirror in rows if in_mirror}
        for uid in {uid for uid, _ in rows}:
            _written(store, f"k-{uid}", uid)
        store.apply_listing(ALICE, upserts=[MirrorRow(f"e-{u}", u, None, {}) for u in mirrored],
                            deletes=[], at=NOW)
        want = {uid for uid, _ in rows} - mirrored
        assert {o.ical_uid for o in store.orphans(ALICE, 100)} == want
        assert len(store.orphans(ALICE, 2)) == min(2, len(want))
    finally:
        store.close()
