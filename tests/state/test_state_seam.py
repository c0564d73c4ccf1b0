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


POSTGRES_MODULES = {"postgres.py", "postgres_lock.py"}


@pytest.mark.parametrize(
    "module", sorted(p.name for p in STATE.glob("*.py") if p.name not in POSTGRES_MODULES)
)
def test_only_the_postgresql_engine_imports_psycopg(module):
    assert not _runtime_imports(STATE / module) & {"psycopg", "psycopg_pool"}


@pytest.mark.parametrize("module", sorted(
    p.name for p in STATE.glob("*.py")
    if p.name not in SQLITE_MODULES | POSTGRES_MODULES | {"copy.py", "tables.py", "store.py", "lock.py"}
))
def test_no_concern_writes_sqlite_only_sql(module):
    # One SQL for both engines (connection.py): none of SQLite's own upserts, no instr, and the
    # column user always quoted (PostgreSQL reserves the word). Read from the module's string
    # literals that look like SQL (docstrings aside).
    import re

    tree = ast.parse((STATE / module).read_text())
    docstrings = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}
    sql = [n.value for n in ast.walk(tree)
           if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings
           and re.search(r"\b(SELECT|INSERT|UPDATE|DELETE|WHERE|JOIN|CONFLICT|AND)\b", n.value)]
    assert sql or module in {"__init__.py", "connection.py", "records.py", "upgrade.py", "lock.py"}
    for text in sql:
        assert not re.search(r"\b(INSERT OR|UPDATE OR|instr\(|last_insert_rowid|changes\(\))", text), text
        assert not re.search(r'(?<!")\buser\b(?!")', text), text
