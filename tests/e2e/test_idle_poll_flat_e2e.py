"""An idle poll costs the same whatever the size of the state (issue 17: it read every row of
`written` to find the creates a crash left unanswered, 5 ms at 60 MB, 24 ms at 300 MB).

The cost counted is SQLite's own work (virtual-machine instructions, through the connection's
progress handler), which does not depend on the machine's load: an idle cycle over a state with
20,000 more Events, mirror items and decisions must do about the same work as over a small one.
"""

from __future__ import annotations

import json

import pytest

from calsync.core import config as config_module
from calsync.service.runtime import open_cycle

EXTRA = 20_000


def _instructions_of_an_idle_cycle(path) -> int:
    cfg = config_module.load(path)
    with open_cycle(cfg) as cycle:
        counted = [0]

        def count() -> int:
            counted[0] += 1
            return 0  # go on

        cycle.store.db.conn.set_progress_handler(count, 10)
        result = cycle.run()
        cycle.store.db.conn.set_progress_handler(None, 0)
    assert result.ok and result.salesforce_calls == 0
    assert all(c.items == 0 for c in result.calendars.values())  # idle: nothing listed
    return counted[0] * 10


def _grow(path) -> None:
    """Rows of other meetings of the same owners, as months of syncing leave them."""
    cfg = config_module.load(path)
    with open_cycle(cfg) as cycle:
        store = cycle.store
        owners = list(cfg.sync.users)
        with store.transaction():
            for n in range(EXTRA):
                owner = owners[n % len(owners)]
                uid = f"old-{n}@google.com"
                store._exec(
                    "INSERT INTO written (key, owner, ical_uid, sf_id, fingerprint, state, updated_at)"
                    " VALUES (?, ?, ?, ?, 'fp', 'synced', '2026-01-01T00:00:00+00:00')",
                    [f"cs1-old-{n}", owner, uid, f"00U{n:015d}"])
                store._exec(
                    "INSERT INTO google_items (user, event_id, ical_uid, payload) VALUES (?, ?, ?, ?)",
                    [owner, f"old{n}", uid, json.dumps({"id": f"old{n}", "iCalUID": uid,
                                                         "summary": "x" * 200})])


@pytest.mark.sqlite_only("counts SQLite's virtual-machine instructions (its progress handler)")
def test_an_idle_poll_does_the_same_work_on_a_large_state(make_config, sync):
    path = make_config(sync={"directory_refresh_minutes": 10080})
    assert sync(path).ok  # the first sync (and its sweep, its directory refresh)
    assert sync(path).ok  # settles anything the first left due
    small = _instructions_of_an_idle_cycle(path)
    _grow(path)
    large = _instructions_of_an_idle_cycle(path)
    # A full read of `written` alone is ~20 instructions per row: 400,000 for 20,000 rows.
    assert large < small * 1.3 + 20_000, (small, large)
