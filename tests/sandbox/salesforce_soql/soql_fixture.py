"""A small in-memory Salesforce org for the SOQL engine's tests: schema, rows and 18-char ids."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from calsync.sandbox.salesforce.soql import FieldInfo, RelationshipInfo

_CHECKSUM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def make_id(prefix: str, n: int, *, upper: str = "") -> str:
    """An 18-char id: 15-char base (prefix + padding + n) + checksum (reference B2)."""
    base = f"{prefix}{upper}{n:0{12 - len(upper)}d}"
    assert len(base) == 15
    suffix = ""
    for chunk in range(3):
        bits = 0
        for i, char in enumerate(base[chunk * 5 : chunk * 5 + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << i
        suffix += _CHECKSUM_ALPHABET[bits]
    return base + suffix


SCHEMA_FIELDS: dict[str, dict[str, str]] = {
    "Account": {"Id": "id", "Name": "string", "Type": "picklist", "IsDeleted": "boolean"},
    "Contact": {"Id": "id", "FirstName": "string", "LastName": "string", "Name": "string",
                "Email": "email", "AccountId": "reference", "IsDeleted": "boolean"},
    "Lead": {"Id": "id", "Name": "string", "Email": "email", "Company": "string",
             "IsConverted": "boolean", "IsDeleted": "boolean"},
    "Opportunity": {"Id": "id", "Name": "string", "AccountId": "reference", "IsClosed": "boolean",
                    "CloseDate": "date", "Amount": "currency", "StageName": "picklist",
                    "IsDeleted": "boolean"},
    "OpportunityContactRole": {"Id": "id", "ContactId": "reference", "OpportunityId": "reference",
                               "IsPrimary": "boolean", "IsDeleted": "boolean"},
    "Event": {"Id": "id", "Subject": "string", "StartDateTime": "datetime",
              "EndDateTime": "datetime", "ActivityDate": "date", "DurationInMinutes": "int",
              "WhoId": "reference", "WhatId": "reference", "IsPrivate": "boolean",
              "Description": "textarea", "ExtId__c": "string", "IsDeleted": "boolean"},
}
SCHEMA_RELATIONSHIPS: dict[str, dict[str, RelationshipInfo]] = {
    "Contact": {"Account": RelationshipInfo("AccountId", ("Account",))},
    "Opportunity": {"Account": RelationshipInfo("AccountId", ("Account",))},
    "OpportunityContactRole": {
        "Contact": RelationshipInfo("ContactId", ("Contact",)),
        "Opportunity": RelationshipInfo("OpportunityId", ("Opportunity",)),
    },
    "Event": {
        "Who": RelationshipInfo("WhoId", ("Contact", "Lead")),
        "What": RelationshipInfo("WhatId", ("Account", "Opportunity")),
    },
}


class MemorySchema:
    """SoqlSchema over the dictionaries above, case-insensitive like Salesforce."""

    def object_name(self, name: str) -> str | None:
        return next((o for o in SCHEMA_FIELDS if o.lower() == name.lower()), None)

    def field(self, obj: str, name: str) -> FieldInfo | None:
        for canonical, ftype in SCHEMA_FIELDS.get(obj, {}).items():
            if canonical.lower() == name.lower():
                return FieldInfo(canonical, ftype)
        return None

    def relationship(self, obj: str, name: str) -> RelationshipInfo | None:
        for canonical, info in SCHEMA_RELATIONSHIPS.get(obj, {}).items():
            if canonical.lower() == name.lower():
                return info
        return None


@dataclass
class MemoryData:
    """SoqlData over lists of rows; `get` accepts 15- or 18-char ids."""

    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def rows(self, obj: str, include_deleted: bool) -> Iterable[dict[str, Any]]:
        return [r for r in self.tables.get(obj, []) if include_deleted or not r.get("IsDeleted")]

    def get(self, record_id: str) -> tuple[str, dict[str, Any]] | None:
        for obj, rows in self.tables.items():
            for row in rows:
                if row["Id"] == record_id or row["Id"][:15] == record_id:
                    return obj, row
        return None


ACME = make_id("001", 1)
GLOBEX = make_id("001", 2)
ANN = make_id("003", 1, upper="AB")
OBRIEN = make_id("003", 2)
SLASH = make_id("003", 3)
BOB = make_id("003", 4)
GONE = make_id("003", 5)
LEAD = make_id("00Q", 1)
CONVERTED = make_id("00Q", 2)
BIG_DEAL = make_id("006", 1)
RENEWAL = make_id("006", 2)
ORPHAN = make_id("006", 3)
ROLE_ANN = make_id("00K", 1)
ROLE_OBRIEN = make_id("00K", 2)
KICKOFF = make_id("00U", 1)
LEAD_CALL = make_id("00U", 2)
ACCOUNT_SYNC = make_id("00U", 3)
PERCENT = make_id("00U", 4)
DELETED_EVENT = make_id("00U", 5)


def org() -> MemoryData:
    """A fresh copy of the demo org (tests may not share mutable rows)."""
    return MemoryData({
        "Account": [
            {"Id": ACME, "Name": "Acme", "Type": "Customer", "IsDeleted": False},
            {"Id": GLOBEX, "Name": "Globex", "Type": None, "IsDeleted": False},
        ],
        "Contact": [
            {"Id": ANN, "FirstName": "Ann", "LastName": "Lee", "Name": "Ann Lee",
             "Email": "ann@example.com", "AccountId": ACME, "IsDeleted": False},
            {"Id": OBRIEN, "FirstName": "Pat", "LastName": "O'Brien", "Name": "Pat O'Brien",
             "Email": "o'brien@x.com", "AccountId": GLOBEX, "IsDeleted": False},
            {"Id": SLASH, "FirstName": None, "LastName": "Slash", "Name": "Slash",
             "Email": "back\\slash@x.com", "AccountId": None, "IsDeleted": False},
            {"Id": BOB, "FirstName": "bob", "LastName": "Upper", "Name": "bob Upper",
             "Email": "BOB@Example.COM", "AccountId": ACME, "IsDeleted": False},
            {"Id": GONE, "FirstName": "Gone", "LastName": "Away", "Name": "Gone Away",
             "Email": "gone@example.com", "AccountId": ACME, "IsDeleted": True},
        ],
        "Lead": [
            {"Id": LEAD, "Name": "Lee Lead", "Email": "lead@example.com", "Company": "Initech",
             "IsConverted": False, "IsDeleted": False},
            {"Id": CONVERTED, "Name": "Con Verted", "Email": "conv@example.com",
             "Company": "Umbrella", "IsConverted": True, "IsDeleted": False},
        ],
        "Opportunity": [
            {"Id": BIG_DEAL, "Name": "Acme big deal", "AccountId": ACME, "IsClosed": False,
             "CloseDate": "2026-02-01", "Amount": 1000.0, "StageName": "Prospecting",
             "IsDeleted": False},
            {"Id": RENEWAL, "Name": "Globex renewal", "AccountId": GLOBEX, "IsClosed": True,
             "CloseDate": "2025-12-01", "Amount": None, "StageName": "Closed Won",
             "IsDeleted": False},
            {"Id": ORPHAN, "Name": "Orphan", "AccountId": None, "IsClosed": False,
             "CloseDate": "2026-03-01", "Amount": -50.5, "StageName": "Prospecting",
             "IsDeleted": False},
        ],
        "OpportunityContactRole": [
            {"Id": ROLE_ANN, "ContactId": ANN, "OpportunityId": BIG_DEAL, "IsPrimary": True,
             "IsDeleted": False},
            {"Id": ROLE_OBRIEN, "ContactId": OBRIEN, "OpportunityId": RENEWAL,
             "IsPrimary": False, "IsDeleted": False},
        ],
        "Event": [
            {"Id": KICKOFF, "Subject": "Kickoff", "StartDateTime": "2026-01-05T15:00:00.000+0000",
             "EndDateTime": "2026-01-05T16:00:00.000+0000", "ActivityDate": "2026-01-05",
             "DurationInMinutes": 60, "WhoId": ANN, "WhatId": BIG_DEAL, "IsPrivate": False,
             "Description": "line1\nline2", "ExtId__c": "k1", "IsDeleted": False},
            {"Id": LEAD_CALL, "Subject": "Lead call", "StartDateTime": "2026-01-06T09:30:00.000+0000",
             "EndDateTime": "2026-01-06T10:00:00.000+0000", "ActivityDate": "2026-01-06",
             "DurationInMinutes": 30, "WhoId": LEAD, "WhatId": None, "IsPrivate": False,
             "Description": None, "ExtId__c": "k2", "IsDeleted": False},
            {"Id": ACCOUNT_SYNC, "Subject": "account sync",
             "StartDateTime": "2026-01-04T23:00:00.000+0000",
             "EndDateTime": "2026-01-05T00:00:00.000+0000", "ActivityDate": "2026-01-04",
             "DurationInMinutes": 60, "WhoId": None, "WhatId": ACME, "IsPrivate": False,
             "Description": None, "ExtId__c": None, "IsDeleted": False},
            {"Id": PERCENT, "Subject": "100% done_ok", "StartDateTime": None,
             "EndDateTime": None, "ActivityDate": None, "DurationInMinutes": None,
             "WhoId": OBRIEN, "WhatId": GLOBEX, "IsPrivate": True, "Description": None,
             "ExtId__c": "k4", "IsDeleted": False},
            {"Id": DELETED_EVENT, "Subject": "Deleted", "StartDateTime": "2026-01-08T10:00:00.000+0000",
             "EndDateTime": "2026-01-08T11:00:00.000+0000", "ActivityDate": "2026-01-08",
             "DurationInMinutes": 60, "WhoId": ANN, "WhatId": None, "IsPrivate": False,
             "Description": None, "ExtId__c": "k5", "IsDeleted": True},
        ],
    })
