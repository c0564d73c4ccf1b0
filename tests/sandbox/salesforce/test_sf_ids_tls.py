"""Record ids (reference B2), the emulator's TLS certificates and its discovery resources."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import requests
from simple_salesforce import Salesforce

from calsync.sandbox.salesforce import SalesforceEmulator
from calsync.sandbox.salesforce.schema import id_checksum, make_id, to_18


def test_checksum_of_the_documented_id() -> None:
    assert to_18("001A0000006Vm9r") == "001A0000006Vm9rIAC"


def test_checksum_is_three_characters_from_the_case_of_each_chunk() -> None:
    assert id_checksum("aaaaaAAAAAaAaAa") == "A5K"


def test_eighteen_char_id_with_wrong_checksum_is_not_an_id() -> None:
    assert to_18("001A0000006Vm9rAAA") is None


def test_checksum_suffix_is_case_insensitive() -> None:
    assert to_18("001A0000006Vm9riac") == "001A0000006Vm9rIAC"


def test_generated_ids_carry_key_prefix_and_valid_checksum() -> None:
    record_id = make_id("00U", 12345)
    assert record_id.startswith("00U") and len(record_id) == 18
    assert to_18(record_id[:15]) == record_id


def test_records_get_the_key_prefix_of_their_object(sf: Salesforce) -> None:
    prefixes = {}
    account = sf.Account.create({"Name": "Acme"})["id"]
    prefixes["Account"] = account[:3]
    prefixes["Contact"] = sf.Contact.create({"LastName": "Lee", "AccountId": account})["id"][:3]
    prefixes["Lead"] = sf.Lead.create({"LastName": "Ray", "Company": "Beta"})["id"][:3]
    opp = sf.Opportunity.create({"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2026-03-01",
                                 "AccountId": account})["id"]
    prefixes["Opportunity"] = opp[:3]
    contact = sf.query("SELECT Id FROM Contact")["records"][0]["Id"]
    prefixes["OpportunityContactRole"] = sf.OpportunityContactRole.create(
        {"OpportunityId": opp, "ContactId": contact})["id"][:3]
    event = sf.Event.create({"Subject": "x", "StartDateTime": "2026-01-05T15:00:00Z", "DurationInMinutes": 5,
                             "WhoId": contact})["id"]
    prefixes["Event"] = event[:3]
    prefixes["EventRelation"] = sf.query(
        f"SELECT Id FROM EventRelation WHERE EventId = '{event}'")["records"][0]["Id"][:3]
    assert prefixes == {"Account": "001", "Contact": "003", "Lead": "00Q", "Opportunity": "006",
                        "OpportunityContactRole": "00K", "Event": "00U", "EventRelation": "0RE"}


def test_a_fifteen_char_id_reads_the_same_record(sf: Salesforce) -> None:
    account = sf.Account.create({"Name": "Acme"})["id"]
    assert sf.Account.get(account[:15])["Id"] == account


def test_ca_and_server_certificate_are_reused_from_the_state_dir(tmp_path: Path) -> None:
    first = SalesforceEmulator(state_dir=tmp_path)
    ca_bytes = Path(first.ca_file).read_bytes()
    second = SalesforceEmulator(state_dir=tmp_path)
    assert Path(second.ca_file).read_bytes() == ca_bytes


def test_server_certificate_is_trusted_through_the_ca_for_127_0_0_1_and_localhost(
    emulator: SalesforceEmulator,
) -> None:
    context = ssl.create_default_context(cafile=emulator.ca_file)
    for host in ("127.0.0.1", "localhost"):
        url = f"https://{host}:{emulator.port}/services/data/"
        answer = requests.get(url, verify=emulator.ca_file)
        assert answer.status_code == 200
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_untrusted_client_fails_the_tls_handshake(emulator: SalesforceEmulator) -> None:
    session = requests.Session()
    session.trust_env = False
    with pytest.raises(requests.exceptions.SSLError):
        session.get(f"{emulator.url}/services/data/")


def test_versions_list_needs_no_session_and_names_v59(emulator: SalesforceEmulator) -> None:
    answer = requests.get(f"{emulator.url}/services/data/", verify=emulator.ca_file)
    versions = {v["version"]: v for v in answer.json()}
    assert versions["59.0"] == {"label": "Winter '24", "url": "/services/data/v59.0", "version": "59.0"}


def test_any_api_version_is_served(connect) -> None:  # type: ignore[no-untyped-def]
    sf = connect(version="52.0")
    created = sf.Account.create({"Name": "Old API"})
    assert sf.Account.get(created["id"])["attributes"]["url"].startswith("/services/data/v52.0/")
