"""calsync.salesforce.org against the Salesforce emulator through the real simple-salesforce."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from calsync.core.errors import AuthError, QuotaExhausted
from calsync.salesforce.org import SalesforceOrg
from calsync.salesforce.soql import in_batches, soql_quote
from calsync.sandbox.salesforce.errors import request_limit_fault


@pytest.fixture
def org(sf_emu, company):
    token = sf_emu.backend.create_session(company.users[0])
    return SalesforceOrg(sf_emu.url, access_token=token, ca_bundle=sf_emu.ca_file)


def queries(sf_emu):
    return sf_emu.backend.calls_by_kind().get("query", 0)


def test_soql_quote_escapes_quotes_and_backslashes():
    assert soql_quote("o'brien\\x@y.test") == "'o\\'brien\\\\x@y.test'"


def test_batches_stay_under_the_uri_budget():
    values = [f"person{i:05d}@example-customer-domain.test" for i in range(2000)]
    batches = list(in_batches("SELECT Id FROM Contact WHERE Email", values))
    assert len(batches) > 1
    assert sorted(v for b in batches for v in b) == sorted(values)


def test_many_addresses_are_looked_up_in_few_queries(org, sf_emu, company):
    extra = [f"buyer{i:04d}@globex.test" for i in range(1200)]
    for address in extra[:50]:
        sf_emu.backend.create_record("Contact", {"LastName": "Buyer", "Email": address})
    before = queries(sf_emu)
    found = org.find_contacts(extra + ["hank@globex.test"])
    assert len(found) == 51
    assert 1 < queries(sf_emu) - before <= 4


def test_address_with_a_quote_is_found(org, sf_emu):
    sf_emu.backend.create_record("Contact", {"LastName": "O'Brien", "Email": "o'brien@globex.test"})
    assert list(org.find_contacts(["o'brien@globex.test"])) == ["o'brien@globex.test"]


def test_one_refused_value_does_not_stop_the_others(org):
    found = org.find_contacts(["hank@globex.test", "x" * 4100 + "@globex.test"])
    assert list(found) == ["hank@globex.test"]


def test_converted_leads_are_not_leads(org):
    # old@soylent.test is converted without a Contact: neither a Lead nor a Contact to name.
    found = org.find_leads(["zoe@soylent.test", "old@soylent.test"])
    assert list(found.leads) == ["zoe@soylent.test"] and found.converted == {}


def test_a_converted_lead_resolves_to_its_contact_in_the_same_query(org, sf_emu, company):
    # Converted into an existing Contact with another address (reference B10): found through
    # ConvertedContactId with that Contact's Account, no call of its own.
    zoe = company.lead_ids["zoe@soylent.test"]
    hank = company.contact_ids["hank@globex.test"]
    sf_emu.backend.convert_lead(zoe, account_id=company.account_ids["Globex"], contact_id=hank)
    calls = org.calls
    found = org.find_leads(["zoe@soylent.test"])
    assert org.calls - calls == 1 and found.leads == {}
    (conversion,) = found.converted["zoe@soylent.test"]
    assert conversion.lead.id == zoe and conversion.lead.is_converted
    assert (conversion.contact.id, conversion.contact.email) == (hank, "hank@globex.test")
    assert conversion.contact.account_id == company.account_ids["Globex"]
    into = org.leads_converted_into([hank])
    assert list(into) == [zoe[:15]] and into[zoe[:15]].converted_contact_id == hank


def test_primary_opportunities_carry_closed_and_close_date(org, company):
    found = org.find_primary_opportunities([company.contact_ids["peter@initech.test"]])
    opps = found[company.contact_ids["peter@initech.test"]]
    assert sorted(o.is_closed for o in opps) == [False, True]
    assert all(o.close_date for o in opps)


def test_collections_split_at_200_records(org, sf_emu, company):
    owner = company.sf_user_ids["alice@acme.test"]
    start = dt.datetime(2026, 12, 1, 10, tzinfo=dt.timezone.utc)
    records = [
        {"OwnerId": owner, "Subject": f"Bulk {i}", "StartDateTime": start.isoformat(),
         "EndDateTime": (start + dt.timedelta(hours=1)).isoformat()}
        for i in range(201)
    ]
    before = sf_emu.backend.calls_by_kind().get("collections", 0)
    results = org.create(records)
    assert len(results) == 201 and all(r.ok and r.id for r in results)
    assert sf_emu.backend.calls_by_kind()["collections"] - before == 2


def test_per_record_errors_come_back_in_order(org, company):
    owner = company.sf_user_ids["alice@acme.test"]
    good = {"OwnerId": owner, "Subject": "ok", "StartDateTime": "2026-12-01T10:00:00Z",
            "EndDateTime": "2026-12-01T11:00:00Z"}
    bad = {**good, "Subject": "x" * 300}
    results = org.create([good, bad, good])
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].status_code == "STRING_TOO_LONG"


def test_request_limit_exceeded_is_quota_exhausted(org, sf_emu):
    sf_emu.faults.add(request_limit_fault())
    with pytest.raises(QuotaExhausted):
        org.find_contacts(["hank@globex.test"])


def test_expired_plain_access_token_is_an_auth_error(org, sf_emu):
    sf_emu.backend.expire_sessions()
    with pytest.raises(AuthError, match="access_token"):
        org.find_contacts(["hank@globex.test"])


def _rsa_pair():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


def test_jwt_session_is_renewed_once_when_it_expires(sf_emu, company):
    private, public = _rsa_pair()
    sf_emu.backend.register_connected_app("calsync-app", public)
    org = SalesforceOrg(sf_emu.url, auth="jwt", login_url=sf_emu.url, consumer_key="calsync-app",
                        private_key=private, username="alice@acme.test", ca_bundle=sf_emu.ca_file)
    assert org.find_contacts(["hank@globex.test"])
    sf_emu.backend.expire_sessions()
    assert org.find_contacts(["hank@globex.test"])


def test_password_login_with_security_token(sf_emu, company):
    sf_emu.backend.register_connected_app("calsync-app", None, consumer_secret="s3cret")
    sf_emu.backend.set_password("bob@acme.test", "hunter2", "TOKEN")
    org = SalesforceOrg(sf_emu.url, auth="password", login_url=sf_emu.url, client_id="calsync-app",
                        client_secret="s3cret", username="bob@acme.test", password="hunter2",
                        security_token="TOKEN", ca_bundle=sf_emu.ca_file)
    assert org.find_contacts(["hank@globex.test"])


def test_wrong_password_is_an_auth_error_without_the_password(sf_emu, company):
    sf_emu.backend.register_connected_app("calsync-app", None, consumer_secret="s3cret")
    sf_emu.backend.set_password("bob@acme.test", "hunter2", "TOKEN")
    org = SalesforceOrg(sf_emu.url, auth="password", login_url=sf_emu.url, client_id="calsync-app",
                        client_secret="s3cret", username="bob@acme.test", password="wrong-pw-123",
                        ca_bundle=sf_emu.ca_file)
    with pytest.raises(AuthError) as caught:
        org.find_contacts(["hank@globex.test"])
    assert "wrong-pw-123" not in str(caught.value)


def test_ca_bundle_is_trusted_even_with_requests_ca_bundle_set(sf_emu, company, monkeypatch, tmp_path):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    token = sf_emu.backend.create_session(company.users[0])
    org = SalesforceOrg(sf_emu.url, access_token=token, ca_bundle=sf_emu.ca_file)
    assert org.find_contacts(["hank@globex.test"])


def test_changed_since_queries_cost_one_call_each_and_see_deletions(org, sf_emu, company):
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)  # well after the seeding
    sf_emu.backend.clock = lambda: later
    since = later - dt.timedelta(minutes=1)
    assert org.contacts_changed_since(since) == []
    hank = company.contact_ids["hank@globex.test"]
    sf_emu.backend.update_record("Contact", hank, {"Email": "Hank.S@Globex.test"})
    role = next(r["Id"] for r in sf_emu.backend.list_records("OpportunityContactRole") if r["ContactId"] == hank)
    sf_emu.backend.delete_record("OpportunityContactRole", role)
    sf_emu.backend.convert_lead(company.lead_ids["zoe@soylent.test"])
    calls = org.calls
    contacts = {c.id: c for c in org.contacts_changed_since(since)}
    leads = org.leads_changed_since(since)
    roles = org.roles_changed_since(since)
    assert org.calls - calls == 3
    assert contacts[hank].email == "hank.s@globex.test" and not contacts[hank].deleted
    assert len(contacts) == 2  # hank, and the Contact the Lead became
    (zoe,) = leads
    assert zoe.email == "zoe@soylent.test" and zoe.linked == (next(i for i in contacts if i != hank),)
    (removed,) = roles
    assert removed.id == role and removed.deleted
    assert removed.linked == (hank, company.opportunity_ids["Globex platform renewal"])


def test_an_opportunity_edit_reports_its_roles_with_the_opportunity_stamp(org, sf_emu, company):
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    sf_emu.backend.clock = lambda: later
    since = later - dt.timedelta(minutes=1)
    sf_emu.backend.update_record("Opportunity", company.opportunity_ids["Initech pilot"], {"StageName": "Closed Lost"})
    (role,) = org.roles_changed_since(since)
    assert role.linked == (company.contact_ids["peter@initech.test"], company.opportunity_ids["Initech pilot"])
    assert role.stamp == later.replace(microsecond=later.microsecond // 1000 * 1000)


# -- issue 16: who calsync writes as, and Salesforce's own clock --------------------------------

def test_a_jwt_or_password_login_names_calsyncs_own_user_without_a_call(sf_emu, company):
    private, public = _rsa_pair()
    sf_emu.backend.register_connected_app("calsync-app", public)
    org = SalesforceOrg(sf_emu.url, auth="jwt", login_url=sf_emu.url, consumer_key="calsync-app",
                        private_key=private, username="alice@acme.test", ca_bundle=sf_emu.ca_file)
    assert org.own_user_id() == company.sf_user_ids["alice@acme.test"] and org.calls == 0
    sf_emu.backend.register_connected_app("pw-app", None, consumer_secret="s3cret")
    sf_emu.backend.set_password("bob@acme.test", "hunter2", "TOKEN")
    org = SalesforceOrg(sf_emu.url, auth="password", login_url=sf_emu.url, client_id="pw-app",
                        client_secret="s3cret", username="bob@acme.test", password="hunter2",
                        security_token="TOKEN", ca_bundle=sf_emu.ca_file)
    assert org.own_user_id() == company.sf_user_ids["bob@acme.test"] and org.calls == 0


def test_an_access_token_asks_userinfo_once(org, sf_emu, company):
    assert org.own_user_id() == company.sf_user_ids["alice@acme.test"]
    assert org.own_user_id() == company.sf_user_ids["alice@acme.test"]
    assert org.calls == 1
    assert sum(1 for _, path in sf_emu.requests_seen if path.endswith("/oauth2/userinfo")) == 1


def test_without_userinfo_a_configured_username_is_looked_up(sf_emu, company):
    from calsync.sandbox.server import Fault

    sf_emu.faults.add(Fault(status=403, body="insufficient_scope", path_prefix="/services/oauth2/userinfo"))
    token = sf_emu.backend.create_session("carol@acme.test")
    org = SalesforceOrg(sf_emu.url, access_token=token, username="Carol@acme.test", ca_bundle=sf_emu.ca_file)
    assert org.own_user_id() == company.sf_user_ids["carol@acme.test"]
    sf_emu.faults.add(Fault(status=403, body="insufficient_scope", path_prefix="/services/oauth2/userinfo"))
    nameless = SalesforceOrg(sf_emu.url, access_token=token, ca_bundle=sf_emu.ca_file)
    assert nameless.own_user_id() is None  # judged without it (ownership.py)


@pytest.mark.parametrize("minutes", [-15, 15])
def test_server_now_is_salesforces_clock_whatever_ours_says(org, sf_emu, minutes):
    sf_emu.backend.clock_offset = dt.timedelta(minutes=minutes)
    assert org.server_now() is None  # nothing answered yet
    org.find_contacts(["hank@globex.test"])
    theirs = sf_emu.backend.clock()
    estimate = org.server_now()
    assert estimate is not None and dt.timedelta(0) <= theirs - estimate < dt.timedelta(seconds=2)


def test_events_created_since_reads_salesforces_time_and_the_creator(org, sf_emu, company):
    sf_emu.backend.clock_offset = dt.timedelta(minutes=-10)
    rep = sf_emu.backend.create_user("rep@acme.test")
    alice = company.sf_user_ids["alice@acme.test"]
    body = {"OwnerId": alice, "Subject": "x", "StartDateTime": "2026-11-26T15:00:00Z",
            "EndDateTime": "2026-11-26T16:00:00Z"}
    (ours,) = org.create([body])
    sf_emu.backend.create_record("Event", body, user_id=rep)
    since = org.server_now() - dt.timedelta(minutes=2)
    rows = org.events_created_since([alice], since, org.own_user_id(), ["Description"])
    assert [r["Id"] for r in rows] == [ours.id]
    assert rows[0]["CreatedById"] == alice and "Description" in rows[0] and "DurationInMinutes" in rows[0]
    assert len(org.events_created_since([alice], since)) == 2
