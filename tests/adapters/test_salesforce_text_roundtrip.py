"""A property over any text: what calsync writes is what Salesforce stores (reference B10).

For arbitrary summaries, locations and descriptions (any unicode, padded with whitespace, astral
characters, far over the limits) the Event fields calsync builds are sent with the real
simple-salesforce to the emulator, which stores text the Salesforce way (Java's trim, "" as null,
lengths in UTF-16 code units), and read back as calsync reads Events (queryAll). The value read back
is the value sent, it is within the field's limit in UTF-16 code units, and ownership never takes
the round trip for a person's edit, neither before an update nor before a delete.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calsync.rules import ownership
from calsync.core.model import EventTime, GoogleEvent, PlanSettings, Written
from calsync.rules.planner import fields as planner_fields
from calsync.salesforce.org import SalesforceOrg
from calsync.rules.sftext import units

LIMITS = {"Subject": 255, "Location": 255, "Description": 32_000}
START = dt.datetime(2026, 3, 2, 15, tzinfo=dt.timezone.utc)
# Whitespace on both sides of Java's line (U+0020) and astral characters (two UTF-16 units each).
EDGES = " \t\n\r\x0b\x0c\x1f\x85\xa0\u2028\u3000\ufeff\U0001f600\U0001f469\u200d\U0001f4bb\U00010348"
CHARS = st.one_of(st.characters(blacklist_categories=("Cs",)), st.sampled_from(EDGES))
SHORT = st.text(CHARS, max_size=40)
# Up to ~20,000 characters made of a repeated piece: over every limit, cheaply.
LONG = st.builds(lambda piece, times: piece * times, st.text(CHARS, min_size=1, max_size=40), st.integers(1, 500))
TEXT = st.one_of(st.none(), SHORT, LONG, st.builds(lambda a, b, c: a + b + c, SHORT, LONG, SHORT))


@pytest.fixture
def org(sf_emu, company):
    token = sf_emu.backend.create_session(company.users[0])
    return SalesforceOrg(sf_emu.url, access_token=token, ca_bundle=sf_emu.ca_file)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(summary=TEXT, location=TEXT, description=TEXT)
def test_what_calsync_sends_is_what_salesforce_stores_and_never_an_edit(org, company, summary, location,
                                                                        description):
    occurrence = GoogleEvent(id="e1", summary=summary, location=location, description=description,
                             start=EventTime(date_time=START), end=EventTime(date_time=START + dt.timedelta(hours=1)))
    wanted = planner_fields.event_fields(
        occurrence, planner_fields.timing(occurrence), owner_id=company.sf_user_ids[company.users[0]],
        who_id=None, what_id=None, private=False,
        settings=PlanSettings(internal_domains=frozenset({"acme.test"}), configured_users=frozenset()),
    )
    body = wanted.to_salesforce()
    for name, limit in LIMITS.items():
        assert body[name] is None or 0 < units(body[name]) <= limit, name

    (result,) = org.create([body])
    assert result.ok, (result.status_code, result.message)
    row = org.events_by_ids([result.id], sorted(LIMITS) + ["LastModifiedDate"])[result.id[:15]]
    assert {name: row[name] for name in LIMITS} == {name: body[name] for name in LIMITS}

    before = Written("k", "alice@acme.test", "uid", result.id, wanted.fingerprint(), hashes=ownership.hashes(body),
                     written_at=dt.datetime.now(dt.timezone.utc))
    assert ownership.edited(before, row, body) == frozenset()  # before an update
    assert ownership.edited(before, row, {}) == frozenset()  # before a delete: it is deleted, not kept
