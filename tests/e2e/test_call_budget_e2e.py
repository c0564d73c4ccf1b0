"""The Salesforce API allowance: a first sync of 1,000 Events within 15 calls, then none."""

from __future__ import annotations

import datetime as dt

from calsync.sandbox.load import seed_meetings


import pytest


@pytest.mark.parametrize("guests", [1, 3])
def test_first_sync_of_a_thousand_events_costs_at_most_fifteen_calls(
    google_emu, sf_emu, company, make_config, sync, guests
):
    now = dt.datetime.now(dt.timezone.utc)
    seed_meetings(google_emu.backend, sf_emu.backend, company.users, 1000, now, guests)
    path = make_config()
    before = sf_emu.backend.api_calls
    result = sync(path)
    assert result.ok
    created = sum(c.created for c in result.calendars.values())
    assert created == 1007  # the thousand plus the demo company's seven
    calls = sf_emu.backend.api_calls - before
    assert calls <= 15, sf_emu.backend.calls_by_kind()
    again = sync(path)
    assert again.ok and again.salesforce_calls == 0
