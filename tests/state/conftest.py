"""The state layer's tests run on both engines: `location` is a fresh SQLite file or a fresh
PostgreSQL database of the session's throwaway cluster (tests/postgres_cluster.py), by param."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ENGINES = ["sqlite", "postgresql"]


@pytest.fixture(params=ENGINES)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Where a fresh state goes: a SQLite file's path, or a new PostgreSQL database's URL."""
    if request.param == "sqlite":
        return tmp_path / "state.db"
    return request.getfixturevalue("pg_url")


def emptied(store: Any) -> Any:
    """`store` with every table emptied (a hypothesis example's fresh state on one database)."""
    from calsync.state.tables import TABLES

    with store.transaction():
        for table in TABLES:
            store.exec(f"DELETE FROM {table}")
    return store
