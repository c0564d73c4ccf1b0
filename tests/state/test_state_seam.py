"""The engine seam of the state: only the SQLite engine knows SQLite, every concern's queries run
on any `Connection`, and every write transaction opens through `StateStore.transaction`."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest

import calsync.state
from calsync.state import owner_keys, push_channels, record_history
from calsync.state.calendars import Calendars
from calsync.state.records import IndexEntry, MirrorRow, PushChannel, Record, StoredDecision
from calsync.state.retries import Retries
from calsync.state.sqlite import SQLiteEngine
from calsync.state.store import StateStore

NOW = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.timezone.utc)
ALICE = "alice@acme.test"
STATE = Path(calsync.state.__file__).parent
# SQLite's own: the engine, its schema (sqlite-utils migrations), the copy kept before an
# upgrade (SQLite's backup API). Every other module of the state is engine-neutral.
SQLITE_MODULES = {"sqlite.py", "migrations.py", "upgrade.py"}


def _runtime_imports(path: Path) -> set[str]:
    """Top-level names of the modules `path` imports, outside `if TYPE_CHECKING:` blocks."""
    tree = ast.parse(path.read_text())
    skipped = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize(
    "module", sorted(p.name for p in STATE.glob("*.py") if p.name not in SQLITE_MODULES)
)
def test_only_the_sqlite_engine_imports_sqlite(module):
    assert not _runtime_imports(STATE / module) & {"sqlite3", "sqlite_utils"}


def test_a_concern_runs_on_any_connection_not_only_the_store():
    engine = SQLiteEngine.open(":memory:")
    try:
        calendars, retries = Calendars(engine), Retries(engine)
        calendars.record_failure_of_calendar(ALICE, "boom", NOW)
        retries.record_retry("k", ALICE, "u1", "create", "X", "no", NOW, dt.timedelta(minutes=5))
        assert calendars.calendar(ALICE).consecutive_failures == 1
        assert [r.key for r in retries.retries(ALICE)] == ["k"]
        assert [e.kind for e in record_history.history(engine, NOW)] == ["refused"]
    finally:
        engine.close()


CONCERNS = ["calendars", "google_items", "written", "retries", "decisions", "salesforce_cache",
            "meeting_index", "replans", "push_channels", "owner_keys", "record_history"]


def _writes(store: StateStore):
    """One write of each concern, by name."""
    channel = PushChannel("c1", ALICE, "t", "https://x.test/push", None, None, NOW)
    decision = StoredDecision(ALICE, "u1", "e1", "Hi", NOW, "create", None, NOW, {})
    return {
        "calendars": lambda: store.record_failure_of_calendar(ALICE, "boom", NOW),
        "google_items": lambda: store.keep_listed(ALICE, [MirrorRow("e1", "u1", None, {})]),
        "written": lambda: store.record_written_many([Record("k", ALICE, "u1", "00U1", "f")], NOW),
        "retries": lambda: store.record_retry("k", ALICE, "u1", "update", None, None, NOW,
                                              dt.timedelta(minutes=5)),
        "decisions": lambda: store.record_decisions([decision]),
        "salesforce_cache": lambda: store.save_meta("m", 1, NOW),
        "meeting_index": lambda: store.index_meetings([IndexEntry(ALICE, "u1", frozenset({"c@d.test"}))]),
        "replans": lambda: store.queue_replans([(ALICE, "u1")]),
        "push_channels": lambda: push_channels.save_push_channel(store, channel),
        "owner_keys": lambda: owner_keys.move_user(store, ALICE, "alice@new.test"),
        "record_history": lambda: record_history.record_history(store, "k", ALICE, "u1", "dropped", NOW),
    }


@pytest.mark.parametrize("concern", CONCERNS)
def test_every_concern_writes_inside_a_transaction_the_store_opens(tmp_path, concern):
    store = StateStore(tmp_path / "state.db")
    try:
        opened: list[None] = []
        inner = store.transaction

        def counting():
            if not store.db.conn.in_transaction:
                opened.append(None)
            return inner()

        store.transaction = counting  # type: ignore[method-assign]
        _writes(store)[concern]()
        assert len(opened) == 1
    finally:
        store.close()
