"""Every read of Events finds archived ones and leaves deleted ones out (reference B10).

Events dated 365 days ago or more are archived: query() leaves them out, queryAll() returns them.
calsync reads Events with queryAll and `IsDeleted = false`, through the real simple-salesforce.
"""

from __future__ import annotations

import datetime as dt

import pytest

from calsync.salesforce.org import SalesforceOrg
from calsync.sandbox.demo import KEY_FIELD


@pytest.fixture
def org(sf_emu, company):
    token = sf_emu.backend.create_session(company.users[0])
    return SalesforceOrg(sf_emu.url, access_token=token, ca_bundle=sf_emu.ca_file)


def _wire(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def test_event_reads_return_archived_events_but_not_deleted_ones(org, sf_emu, company):
    sf_emu.backend.shared_activities = True
    owner = company.sf_user_ids[company.users[0]]
    hank = company.contact_ids["hank@globex.test"]
    start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(days=400)
    made = {}
    for name in ("archived", "deleted"):
        made[name] = sf_emu.backend.create_record("Event", {
            "Subject": name, "StartDateTime": _wire(start), "DurationInMinutes": 30, "OwnerId": owner,
            "EventWhoIds": [hank], KEY_FIELD: f"key-{name}"})
    sf_emu.backend.delete_record("Event", made["deleted"])
    archived = made["archived"]
    assert sf_emu.backend.record("Event", archived)["IsArchived"] is True
    ids = list(made.values())

    assert list(org.events_by_ids(ids, ["Subject"])) == [archived[:15]]
    assert org.events_by_key(KEY_FIELD, ["key-archived", "key-deleted"]) == {"key-archived": archived}
    since = start - dt.timedelta(days=1)
    assert [r["Id"] for r in org.events_starting_since([owner], since)] == [archived]
    created = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    assert [r["Id"] for r in org.events_created_since([owner], created)] == [archived]
    assert org.who_relations(ids) == {archived[:15]: [hank]}
    # queryAll is one call like query: five reads, five calls.
    assert sf_emu.backend.calls_by_kind().get("query") == 5
