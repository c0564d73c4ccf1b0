"""The Salesforce API allowance: a first sync of 1,000 Events within 15 calls, then none."""

from __future__ import annotations

import datetime as dt

import pytest

from calsync.sandbox.demo import KEY_FIELD
from calsync.sandbox.load import seed_meetings


@pytest.mark.parametrize(("guests", "external_id"), [(1, None), (3, None), (1, KEY_FIELD)],
                         ids=["intents", "intents-3-contacts", "external-id"])
def test_first_sync_of_a_thousand_events_costs_at_most_fifteen_calls(
    google_emu, sf_emu, company, make_config, sync, guests, external_id
):
    now = dt.datetime.now(dt.timezone.utc)
    seed_meetings(google_emu.backend, sf_emu.backend, company.users, 1000, now, guests)
    path = make_config(salesforce={"external_id_field": external_id})
    before = sf_emu.backend.api_calls
    result = sync(path)
    assert result.ok
    created = sum(c.created for c in result.calendars.values())
    assert created == 1007  # the thousand plus the demo company's seven
    calls = sf_emu.backend.api_calls - before
    assert calls <= 15, sf_emu.backend.calls_by_kind()
    again = sync(path)
    assert again.ok and again.salesforce_calls == 0
