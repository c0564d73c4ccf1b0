"""Memory stays flat in the size of the work (issue 12): a cycle over many calendars fetches,
plans, writes and commits them a chunk at a time (`cycle.CHUNK_MEETINGS` meetings, a calendar
never split), so what it holds is one chunk, not every calendar's changes.

The peak memory itself is measured by `scripts/measure-first-sync --memory` (README); here the
order of the requests shows the chunks: a chunk's Events are written in Salesforce before the
next calendar is even listed.
"""

from __future__ import annotations

import datetime as dt

from calsync.engine import cycle as cycle_module
from calsync.sandbox.load import seed_meetings, seed_salespeople

COLLECTIONS = "/services/data/v59.0/composite/sobjects"


def _listed(google_emu) -> list[tuple[dt.datetime, str]]:
    return [(at, path) for at, method, path, _ in list(google_emu.answers)
            if method == "GET" and path.endswith("/events")]


def _written(sf_emu) -> list[dt.datetime]:
    return [at for at, method, path, _ in list(sf_emu.answers) if path.startswith(COLLECTIONS)]


def test_calendars_are_written_a_chunk_at_a_time(google_emu, sf_emu, company, make_config, sync,
                                                 monkeypatch):
    now = dt.datetime.now(dt.timezone.utc)
    reps = seed_salespeople(google_emu.backend, sf_emu.backend, 6)
    seed_meetings(google_emu.backend, sf_emu.backend, reps, 60, now)  # 10 meetings each
    path = make_config(sync={"users": [*company.users, *reps]})
    monkeypatch.setattr(cycle_module, "CHUNK_MEETINGS", 20)
    result = sync(path)
    assert result.ok
    assert sum(c.created for c in result.calendars.values()) == 67
    listed, written = _listed(google_emu), _written(sf_emu)
    assert len(listed) == 9
    # Writes happen between listings: some calendars are listed only after the first chunk's
    # Events were created, and the first chunk holds at most 20 meetings plus one calendar.
    first_write = written[0]
    later = [p for at, p in listed if at > first_write]
    assert later, "every calendar was listed before anything was written: one batch"
    assert len(later) >= 3
    again = sync(path)
    assert again.ok and again.salesforce_calls == 0


def test_chunks_cost_few_salesforce_calls_more_than_one_batch(google_emu, sf_emu, company,
                                                              make_config, sync, monkeypatch):
    now = dt.datetime.now(dt.timezone.utc)
    reps = seed_salespeople(google_emu.backend, sf_emu.backend, 10)
    seed_meetings(google_emu.backend, sf_emu.backend, reps, 1000, now)  # 100 each
    path = make_config(sync={"users": [*company.users, *reps]})
    monkeypatch.setattr(cycle_module, "CHUNK_MEETINGS", 250)
    before = sf_emu.backend.api_calls
    assert sync(path).ok
    chunked = sf_emu.backend.api_calls - before
    # One batch makes at most 15 calls for 1,000 Events (test_call_budget_e2e); each of the
    # four chunks of ~250 may add a partly filled lookup query and Collections call.
    # Measured: 22 (14 queries, 1 describe, 7 Collections calls).
    assert chunked <= 15 + 4 * 2, sf_emu.backend.calls_by_kind()
