"""What changed since a moment: SystemModstamp on every write, deleted rows under queryAll, a
parent's SystemModstamp in WHERE combined with OR, and lead conversion (through simple-salesforce
and the control API).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce, SalesforceMalformedRequest

from calsync.sandbox.salesforce import SalesforceEmulator

T0 = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def tick(self, minutes: int = 5) -> str:
        """Move on; returns the SOQL literal of the moment before the move."""
        before = self.now.strftime("%Y-%m-%dT%H:%M:%SZ")
        self.now += dt.timedelta(minutes=minutes)
        return before


@pytest.fixture
def clock(emulator: SalesforceEmulator) -> Clock:
    c = Clock()
    emulator.backend.clock = c
    return c


@pytest.fixture
def control(emulator: SalesforceEmulator) -> Any:
    session = requests.Session()
    session.verify = emulator.ca_file
    session.trust_env = False

    def call(method: str, path: str, body: Any = None) -> requests.Response:
        return session.request(method, f"{emulator.url}/_control/{path}", json=body)
    return call


def ids(sf: Salesforce, soql: str, *, deleted: bool = False) -> set[str]:
    return {r["Id"] for r in sf.query_all(soql, include_deleted=deleted)["records"]}


def test_every_write_moves_system_modstamp_and_last_modified(
    sf: Salesforce, emulator: SalesforceEmulator, clock: Clock
) -> None:
    account = sf.Account.create({"Name": "Globex"})["id"]
    contact = sf.Contact.create({"LastName": "Scorpio", "Email": "hank@globex.test"})["id"]
    since = clock.tick()
    assert ids(sf, f"SELECT Id FROM Contact WHERE SystemModstamp > {since}") == set()
    sf.Contact.update(contact, {"AccountId": account})
    row = sf.Contact.get(contact)
    assert row["SystemModstamp"] == row["LastModifiedDate"] == "2026-11-25T09:05:00.000+0000"
    assert ids(sf, f"SELECT Id FROM Contact WHERE SystemModstamp > {since}") == {contact}


def test_deleted_roles_come_back_under_query_all_only(
    sf: Salesforce, emulator: SalesforceEmulator, clock: Clock
) -> None:
    contact = sf.Contact.create({"LastName": "Scorpio"})["id"]
    opp = sf.Opportunity.create({"Name": "Renewal", "StageName": "Prospecting", "CloseDate": "2026-12-31"})["id"]
    role = sf.OpportunityContactRole.create({"OpportunityId": opp, "ContactId": contact, "IsPrimary": True})["id"]
    since = clock.tick()
    sf.OpportunityContactRole.delete(role)
    soql = f"SELECT Id, ContactId, IsDeleted FROM OpportunityContactRole WHERE SystemModstamp > {since}"
    assert sf.query(soql)["records"] == []
    (row,) = sf.query(soql, include_deleted=True)["records"]
    assert (row["Id"], row["ContactId"], row["IsDeleted"]) == (role, contact, True)


def test_parent_system_modstamp_in_where_with_or(
    sf: Salesforce, emulator: SalesforceEmulator, clock: Clock
) -> None:
    hank = sf.Contact.create({"LastName": "Scorpio"})["id"]
    marge = sf.Contact.create({"LastName": "Bouvier"})["id"]
    renewal = sf.Opportunity.create({"Name": "Renewal", "StageName": "Prospecting", "CloseDate": "2026-12-31"})["id"]
    pilot = sf.Opportunity.create({"Name": "Pilot", "StageName": "Prospecting", "CloseDate": "2026-12-31"})["id"]
    sf.OpportunityContactRole.create({"OpportunityId": renewal, "ContactId": hank, "IsPrimary": True})
    sf.OpportunityContactRole.create({"OpportunityId": pilot, "ContactId": marge, "IsPrimary": True})
    since = clock.tick()
    sf.Opportunity.update(renewal, {"StageName": "Closed Won"})
    soql = (f"SELECT ContactId, OpportunityId, Opportunity.SystemModstamp FROM OpportunityContactRole"
            f" WHERE SystemModstamp > {since} OR Opportunity.SystemModstamp > {since}")
    rows = sf.query(soql, include_deleted=True)["records"]
    assert [(r["ContactId"], r["OpportunityId"]) for r in rows] == [(hank, renewal)]
    assert rows[0]["Opportunity"]["SystemModstamp"] == "2026-11-25T09:05:00.000+0000"
    # A role of its own (not through its Opportunity) matches the other side of the OR.
    sf.OpportunityContactRole.create({"OpportunityId": pilot, "ContactId": hank})
    assert {r["ContactId"] for r in sf.query(soql)["records"]} == {hank}
    assert len(sf.query(soql)["records"]) == 2


def test_semi_join_under_or_is_refused(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query("SELECT Id FROM Contact WHERE LastName = 'x' OR Id IN"
                 " (SELECT ContactId FROM OpportunityContactRole)")
    assert caught.value.content[0]["errorCode"] == "MALFORMED_QUERY"


def test_lead_conversion_creates_a_contact_and_marks_the_lead(
    sf: Salesforce, emulator: SalesforceEmulator, clock: Clock, control: Any
) -> None:
    lead = sf.Lead.create({"FirstName": "Zoe", "LastName": "Sol", "Company": "Soylent",
                           "Email": "zoe@soylent.test"})["id"]
    since = clock.tick()
    answer = control("POST", f"leads/{lead}/convert", {"opportunity_name": "Soylent pilot"})
    assert answer.status_code == 200
    converted = answer.json()
    row = sf.Lead.get(lead)
    assert row["IsConverted"] is True and row["Status"] == "Closed - Converted"
    assert row["ConvertedContactId"] == converted["contact_id"]
    assert row["ConvertedAccountId"] == converted["account_id"]
    assert row["ConvertedOpportunityId"] == converted["opportunity_id"]
    assert row["ConvertedDate"] == "2026-11-25"
    contact = sf.Contact.get(converted["contact_id"])
    assert (contact["Email"], contact["AccountId"]) == ("zoe@soylent.test", converted["account_id"])
    assert sf.Account.get(converted["account_id"])["Name"] == "Soylent"
    rows = sf.query(f"SELECT Id, Email, IsConverted, ConvertedContactId FROM Lead WHERE SystemModstamp > {since}")
    assert [(r["Id"], r["ConvertedContactId"]) for r in rows["records"]] == [(lead, converted["contact_id"])]
    assert ids(sf, f"SELECT Id FROM Contact WHERE SystemModstamp > {since}") == {converted["contact_id"]}
    roles = sf.query(f"SELECT ContactId, IsPrimary FROM OpportunityContactRole WHERE SystemModstamp > {since}")
    assert [(r["ContactId"], r["IsPrimary"]) for r in roles["records"]] == [(converted["contact_id"], True)]


def test_lead_converted_into_an_existing_contact_fills_only_empty_fields(
    sf: Salesforce, emulator: SalesforceEmulator, clock: Clock, control: Any
) -> None:
    account = sf.Account.create({"Name": "Soylent"})["id"]
    contact = sf.Contact.create({"LastName": "Sol", "Email": "zoe.sol@soylent.test", "AccountId": account})["id"]
    lead = sf.Lead.create({"FirstName": "Zoe", "LastName": "Sol", "Company": "Soylent",
                           "Email": "zoe@soylent.test"})["id"]
    answer = control("POST", f"leads/{lead}/convert", {"account_id": account, "contact_id": contact}).json()
    assert answer == {"account_id": account, "contact_id": contact, "opportunity_id": None}
    row = sf.Contact.get(contact)
    assert (row["Email"], row["FirstName"]) == ("zoe.sol@soylent.test", "Zoe")


def test_a_converted_lead_cannot_be_converted_again(
    sf: Salesforce, emulator: SalesforceEmulator, control: Any
) -> None:
    lead = sf.Lead.create({"LastName": "Sol", "Company": "Soylent"})["id"]
    assert control("POST", f"leads/{lead}/convert", {}).status_code == 200
    again = control("POST", f"leads/{lead}/convert", {})
    assert again.status_code == 400
    assert again.json()[0]["errorCode"] == "CANNOT_UPDATE_CONVERTED_LEAD"
    assert len(sf.query("SELECT Id FROM Contact")["records"]) == 1


def test_conversion_fields_are_read_only_through_the_api(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    contact = sf.Contact.create({"LastName": "Sol"})["id"]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Lead.create({"LastName": "Sol", "Company": "Soylent", "ConvertedContactId": contact})
    assert caught.value.content[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"


def _lead_event(sf: Salesforce, lead: str, subject: str) -> str:
    return sf.Event.create({"Subject": subject, "WhoId": lead, "StartDateTime": "2026-12-01T10:00:00.000+0000",
                            "EndDateTime": "2026-12-01T11:00:00.000+0000"})["id"]


def test_converting_moves_the_leads_events_to_the_contact_and_the_new_opportunity(
    sf: Salesforce, emulator: SalesforceEmulator, control: Any
) -> None:
    # Reference B10: the Lead's activities go to the Contact (WhoId) and to the new Opportunity,
    # last modified by the person who converted.
    lead = sf.Lead.create({"LastName": "Sol", "Company": "Soylent", "Email": "zoe@soylent.test"})["id"]
    event = _lead_event(sf, lead, "Discovery")
    other = sf.Event.create({"Subject": "Someone else", "StartDateTime": "2026-12-02T10:00:00.000+0000",
                             "EndDateTime": "2026-12-02T11:00:00.000+0000"})["id"]
    manager = emulator.backend.create_user("manager@acme.test", first_name="Mia", last_name="Manager")
    converted = control("POST", f"leads/{lead}/convert",
                        {"opportunity_name": "Soylent pilot", "user_id": manager}).json()
    row = sf.Event.get(event)
    assert (row["WhoId"], row["WhatId"]) == (converted["contact_id"], converted["opportunity_id"])
    assert row["AccountId"] == converted["account_id"] and row["LastModifiedById"] == manager
    assert sf.Event.get(other)["WhoId"] is None


def test_converting_into_an_existing_contact_and_account_moves_only_the_name(
    sf: Salesforce, emulator: SalesforceEmulator, control: Any
) -> None:
    emulator.backend.shared_activities = True
    account = sf.Account.create({"Name": "Soylent"})["id"]
    contact = sf.Contact.create({"LastName": "Sol", "Email": "zoe.sol@soylent.test", "AccountId": account})["id"]
    lead = sf.Lead.create({"LastName": "Sol", "Company": "Soylent", "Email": "zoe@soylent.test"})["id"]
    event = _lead_event(sf, lead, "Discovery")
    control("POST", f"leads/{lead}/convert", {"account_id": account, "contact_id": contact})
    row = sf.Event.get(event)
    assert (row["WhoId"], row["WhatId"], row["AccountId"]) == (contact, None, account)
    relations = sf.query(f"SELECT RelationId FROM EventRelation WHERE EventId = '{event}' AND IsParent = true")
    assert [r["RelationId"] for r in relations["records"]] == [contact]  # the Lead's relation moved


def test_converting_into_a_new_account_relates_its_events_to_it(
    sf: Salesforce, emulator: SalesforceEmulator, control: Any
) -> None:
    lead = sf.Lead.create({"LastName": "Sol", "Company": "Soylent", "Email": "zoe@soylent.test"})["id"]
    event = _lead_event(sf, lead, "Discovery")
    converted = control("POST", f"leads/{lead}/convert", {}).json()
    row = sf.Event.get(event)
    assert (row["WhoId"], row["WhatId"]) == (converted["contact_id"], converted["account_id"])
