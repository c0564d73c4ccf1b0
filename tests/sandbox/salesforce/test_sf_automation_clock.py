"""The org's own clock, its automation and who wrote what (reference B10 "Clocks", "Triggers,
Flows"), through simple-salesforce, requests and the control API:

- CreatedById/LastModifiedById name the session's user on API writes;
- the clock offset moves CreatedDate and the Date header together;
- a trigger rewrites Subject and/or WhoId on insert, as the user who made the insert;
- the UserInfo endpoint names the token's user;
- `drop_after`: the write lands, its answer never comes.
"""

from __future__ import annotations

import datetime as dt
import email.utils
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce

from calsync.sandbox.salesforce import SalesforceEmulator
from calsync.sandbox.server import Fault



def trusting_session(emulator: SalesforceEmulator) -> requests.Session:
    session = requests.Session()
    session.verify = emulator.ca_file
    session.trust_env = False  # REQUESTS_CA_BUNDLE would replace `verify` (reference B8)
    return session


EVENT = {"Subject": "Pricing", "StartDateTime": "2026-11-25T10:00:00Z", "EndDateTime": "2026-11-25T11:00:00Z"}


@pytest.fixture
def control(emulator: SalesforceEmulator) -> Any:
    session = trusting_session(emulator)

    def call(method: str, path: str, body: Any = None) -> requests.Response:
        return session.request(method, f"{emulator.url}/_control/{path}", json=body)
    return call


def test_api_writes_name_the_sessions_user_as_creator_and_modifier(emulator: SalesforceEmulator, connect) -> None:
    calsync = emulator.backend.create_user("calsync@acme.test")
    rep = emulator.backend.create_user("rep@acme.test")
    as_calsync: Salesforce = connect(emulator.backend.create_session("calsync@acme.test"))
    as_rep: Salesforce = connect(emulator.backend.create_session("rep@acme.test"))
    event_id = as_calsync.Event.create(EVENT)["id"]
    row = as_calsync.Event.get(event_id)
    assert row["CreatedById"] == calsync and row["LastModifiedById"] == calsync
    as_rep.Event.update(event_id, {"Description": "notes"})
    row = as_calsync.Event.get(event_id)
    assert row["CreatedById"] == calsync and row["LastModifiedById"] == rep


@pytest.mark.parametrize("minutes", [-10, 10])
def test_the_clock_offset_moves_created_date_and_the_date_header_together(
    emulator: SalesforceEmulator, http: requests.Session, control, minutes: int
) -> None:
    assert control("POST", "settings", {"clock_offset_seconds": minutes * 60}).status_code == 200
    before = dt.datetime.now(dt.timezone.utc)
    answer = http.post(f"{emulator.url}/services/data/v59.0/sobjects/Event", json=EVENT)
    assert answer.status_code == 201
    server = email.utils.parsedate_to_datetime(answer.headers["Date"])
    assert abs((server - before).total_seconds() - minutes * 60) < 5
    created = emulator.backend.record("Event", answer.json()["id"])["CreatedDate"]
    stamp = dt.datetime.strptime(created, "%Y-%m-%dT%H:%M:%S.%f%z")
    assert abs((stamp - server).total_seconds()) < 2


def test_a_trigger_rewrites_subject_and_name_on_insert_as_the_inserting_user(
    emulator: SalesforceEmulator, connect, control
) -> None:
    calsync = emulator.backend.create_user("calsync@acme.test")
    contact = emulator.backend.create_record("Contact", {"LastName": "Scorpio"})
    other = emulator.backend.create_record("Contact", {"LastName": "Bouvier"})
    made = control("POST", "triggers", {"object": "Event", "subject_prefix": "[Mtg] ", "set": {"WhoId": other}})
    assert made.status_code == 201
    sf: Salesforce = connect(emulator.backend.create_session("calsync@acme.test"))
    event_id = sf.Event.create({**EVENT, "WhoId": contact})["id"]
    row = sf.Event.get(event_id)
    assert row["Subject"] == "[Mtg] Pricing" and row["WhoId"] == other
    assert row["LastModifiedById"] == calsync and row["CreatedDate"] == row["LastModifiedDate"]
    relations = sf.query(f"SELECT RelationId FROM EventRelation WHERE EventId = '{event_id}'")["records"]
    assert [r["RelationId"] for r in relations] == [other]
    # On insert only: an update keeps what it sends.
    sf.Event.update(event_id, {"Subject": "Pricing v2"})
    assert sf.Event.get(event_id)["Subject"] == "Pricing v2"
    assert control("DELETE", "triggers").status_code == 204
    assert sf.Event.get(sf.Event.create(EVENT)["id"])["Subject"] == "Pricing"


def test_a_trigger_on_update_rewrites_every_update(emulator: SalesforceEmulator, sf: Salesforce) -> None:
    emulator.backend.add_trigger("Event", on=("insert", "update"), subject_suffix=" (logged)")
    event_id = sf.Event.create(EVENT)["id"]
    sf.Event.update(event_id, {"Subject": "Pricing v2"})
    assert sf.Event.get(event_id)["Subject"] == "Pricing v2 (logged)"


def test_a_trigger_value_too_long_fails_the_insert(emulator: SalesforceEmulator, sf: Salesforce) -> None:
    emulator.backend.add_trigger("Event", subject_prefix="x" * 250)
    answer = sf.restful("composite/sobjects", method="POST", json={
        "allOrNone": False, "records": [{"attributes": {"type": "Event"}, **EVENT}]})
    assert answer[0]["success"] is False and answer[0]["errors"][0]["statusCode"] == "STRING_TOO_LONG"


def test_userinfo_names_the_tokens_user(emulator: SalesforceEmulator) -> None:
    user = emulator.backend.create_user("calsync@acme.test")
    session = trusting_session(emulator)
    token = emulator.backend.create_session("calsync@acme.test")
    calls = emulator.backend.api_calls
    answer = session.get(f"{emulator.url}/services/oauth2/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["user_id"] == user and body["organization_id"] == emulator.backend.org_id
    assert body["preferred_username"] == "calsync@acme.test"
    assert emulator.backend.api_calls == calls  # not a REST API call
    refused = session.get(f"{emulator.url}/services/oauth2/userinfo", headers={"Authorization": "Bearer nope"})
    assert refused.status_code == 403


def test_drop_after_performs_the_write_and_loses_its_answer(
    emulator: SalesforceEmulator, sf: Salesforce
) -> None:
    emulator.faults.add(Fault(drop_after=True, method="POST", path_prefix="/services/data/v59.0/composite/sobjects"))
    with pytest.raises(requests.ConnectionError):
        sf.restful("composite/sobjects", method="POST", json={
            "allOrNone": False, "records": [{"attributes": {"type": "Event"}, **EVENT}]})
    assert [r["Subject"] for r in emulator.backend.list_records("Event")] == ["Pricing"]
