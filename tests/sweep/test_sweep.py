"""The sweep on plain data (issue 16): each orphaned Event settled on the evidence Google gives,
never on an error; within its budget; only when due."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from calsync.engine import sweep
from calsync.core.errors import PermanentError, TransientError
from calsync.calendar.source import Listing
from calsync.state.store import CalendarState, StateStore, StoredDecision

NOW = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.timezone.utc)
ALICE = "alice@acme.test"


class Source:
    """Google as the sweep sees it: events by id, listings by iCalUID, or errors."""

    def __init__(self, by_id: dict[str, Any] | None = None, by_uid: dict[str, list[dict[str, Any]]] | None = None) -> None:
        self.by_id = by_id or {}
        self.by_uid = by_uid or {}
        self.asked: list[tuple[str, str]] = []

    def get_event(self, event_id: str) -> dict[str, Any] | None:
        self.asked.append(("get", event_id))
        found = self.by_id.get(event_id)
        if isinstance(found, Exception):
            raise found
        return found

    def list_series(self, ical_uid: str) -> Listing:
        self.asked.append(("list", ical_uid))
        return Listing(tuple(self.by_uid.get(ical_uid, [])), None, False, 1)


@pytest.fixture
def store(tmp_path):
    s = StateStore(tmp_path / "state.db")
    yield s
    s.close()


def orphan(store: StateStore, uid: str, event_id: str | None = None, when: int = 0) -> None:
    store.record_written(f"k-{uid}", ALICE, uid, f"00U{uid}", "fp", NOW + dt.timedelta(minutes=when))
    if event_id is not None:
        store.record_decisions([StoredDecision(ALICE, uid, event_id, "S", NOW, "create", None, NOW, {})])


def test_gone_by_events_get_404_or_cancelled_and_by_icaluid(store):
    orphan(store, "u1", "e1", 1)
    orphan(store, "u2", "e2", 2)
    source = Source(by_id={"e2": {"id": "e2", "status": "cancelled"}},
                    by_uid={"u2": [{"id": "e2", "status": "cancelled"}]})
    found = sweep.sweep(store, source, ALICE)
    assert found.gone == {"u1", "u2"} and found.items == () and found.complete
    assert source.asked == [("get", "e1"), ("list", "u1"), ("get", "e2"), ("list", "u2")]


def test_a_meeting_gone_by_its_old_id_but_living_under_another_is_there(store):
    # A move to a new organizer leaves an id-only cancelled stub behind (reference A3).
    orphan(store, "u1", "old")
    moved = {"id": "new", "iCalUID": "u1", "status": "confirmed"}
    source = Source(by_id={"old": {"id": "old", "status": "cancelled"}},
                    by_uid={"u1": [{"id": "old", "status": "cancelled"}, moved]})
    found = sweep.sweep(store, source, ALICE)
    assert found.gone == frozenset() and found.items[-1] == moved


def test_there_a_single_event_by_id_a_series_with_all_its_items(store):
    orphan(store, "u1", "e1", 1)
    orphan(store, "u2", "e2", 2)
    single = {"id": "e1", "iCalUID": "u1", "status": "confirmed"}
    master = {"id": "e2", "iCalUID": "u2", "recurrence": ["RRULE:FREQ=WEEKLY"]}
    cancelled = {"id": "e2_20261201", "status": "cancelled", "recurringEventId": "e2"}
    source = Source(by_id={"e1": single, "e2": master}, by_uid={"u2": [master, cancelled]})
    found = sweep.sweep(store, source, ALICE)
    assert found.gone == frozenset() and found.items == (single, master, cancelled)
    assert source.asked == [("get", "e1"), ("get", "e2"), ("list", "u2")]


def test_without_a_known_id_or_with_an_id_now_naming_another_meeting_it_lists_by_icaluid(store):
    orphan(store, "u1", None, 1)
    orphan(store, "u2", "e2", 2)
    orphan(store, "u3", None, 3)
    source = Source(
        by_id={"e2": {"id": "e2", "iCalUID": "other"}},
        by_uid={"u1": [], "u2": [{"id": "e9", "status": "cancelled"}],
                "u3": [{"id": "e3", "iCalUID": "u3", "status": "tentative"}]},
    )
    found = sweep.sweep(store, source, ALICE)
    assert found.gone == {"u1", "u2"}  # nothing listed; only a cancelled stub
    assert [i["id"] for i in found.items] == ["e3"]


def test_an_error_is_no_evidence(store):
    orphan(store, "u1", "e1", 1)
    orphan(store, "u2", "e2", 2)
    orphan(store, "u3", "e3", 3)
    source = Source(by_id={"e1": PermanentError("403 forbidden"), "e2": TransientError("503"), "e3": None})
    found = sweep.sweep(store, source, ALICE)
    # Refused: kept as it is, the sweep goes on; Google out of reach: the rest wait.
    assert found.gone == frozenset() and found.items == ()
    assert found.left == 2 and not found.complete
    assert source.asked == [("get", "e1"), ("get", "e2")]


def test_the_budget_bounds_the_calls_and_the_rest_is_left(store):
    for n in range(5):
        orphan(store, f"u{n}", f"e{n}", n)
    source = Source()
    found = sweep.sweep(store, source, ALICE, max_calls=4)
    assert len(source.asked) == 4 and found.gone == {"u0", "u1"} and not found.complete


def test_meetings_the_listing_carries_are_not_asked_about(store):
    orphan(store, "u1", "e1")
    source = Source()
    assert sweep.sweep(store, source, ALICE, listed={"u1"}) == sweep.Swept()
    assert source.asked == []


def test_nothing_orphaned_costs_nothing(store):
    source = Source()
    assert sweep.sweep(store, source, ALICE) == sweep.Swept() and source.asked == []


def _state(swept_at: dt.datetime | None) -> CalendarState:
    return CalendarState(ALICE, "t", None, None, None, {}, None, 0, swept_at=swept_at)


def test_due_on_full_listings_after_a_crash_and_daily():
    assert sweep.due(None, NOW, full=False, interrupted=False)
    assert sweep.due(_state(None), NOW, full=False, interrupted=False)  # never swept (upgrade)
    recent = _state(NOW - dt.timedelta(hours=1))
    assert not sweep.due(recent, NOW, full=False, interrupted=False)  # an idle poll
    assert sweep.due(recent, NOW, full=True, interrupted=False)
    assert sweep.due(recent, NOW, full=False, interrupted=True)
    assert sweep.due(_state(NOW - sweep.EVERY), NOW, full=False, interrupted=False)
