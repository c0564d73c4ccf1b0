"""The emulated org's sObjects: fields, types, lengths, references, permissions; and record ids.

Each object is an `ObjectDef` holding `FieldDef`s keyed by lowercased API name (field names are
case-insensitive in the REST API and SOQL). Custom fields (`X__c`) are added at run time by the
backend (`add_custom_field`). Types are the describe types; `soql_type()` narrows them to the
set the SOQL engine understands (combobox/phone/url are strings there).

Ids (reference B2): 15 case-sensitive characters, the first three the object's key prefix; the
API answers with the 18-character form (3-character case-insensitive checksum) and accepts both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

# Describe types the emulator knows; SOQL sees the narrower set of soql_type().
TEXT_TYPES = frozenset({"string", "email", "textarea", "picklist", "combobox", "phone", "url"})
_SOQL_TYPE = {"combobox": "string", "phone": "string", "url": "string"}
SOAP_TYPE = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "int": "xsd:int",
    "double": "xsd:double",
    "currency": "xsd:double",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
    "junctionidlist": "tns:JunctionIdListNames",
}


@dataclass(frozen=True)
class FieldDef:
    name: str
    type: str  # describe type: id, string, email, textarea, picklist, combobox, boolean, ...
    label: str = ""
    length: int = 0
    createable: bool = True
    updateable: bool = True
    nillable: bool = True
    defaulted_on_create: bool = False
    external_id: bool = False
    unique: bool = False
    custom: bool = False
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    picklist_values: tuple[str, ...] = ()
    restricted_picklist: bool = False
    queryable: bool = True  # EventWhoIds is write-only
    precision: int = 0
    scale: int = 0

    def soql_type(self) -> str:
        return _SOQL_TYPE.get(self.type, self.type)

    @property
    def required_on_create(self) -> bool:
        """Salesforce's own test for a required field: createable, not nillable, no default."""
        return self.createable and not self.nillable and not self.defaulted_on_create

    def describe(self) -> dict[str, Any]:
        """The field entry of a describe answer."""
        is_text = self.type in TEXT_TYPES
        return {
            "name": self.name,
            "label": self.label or self.name,
            "type": self.type,
            "soapType": SOAP_TYPE.get(self.type, "xsd:string"),
            "length": self.length if is_text else 0,
            "byteLength": self.length * 3 if is_text else (18 if self.type in ("id", "reference") else 0),
            "precision": self.precision,
            "scale": self.scale,
            "digits": 9 if self.type == "int" else 0,
            "externalId": self.external_id,
            "unique": self.unique,
            "idLookup": self.name == "Id" or self.external_id,
            "caseSensitive": False,
            "createable": self.createable,
            "updateable": self.updateable,
            "nillable": self.nillable,
            "defaultedOnCreate": self.defaulted_on_create,
            "calculated": False,
            "custom": self.custom,
            "filterable": self.queryable,
            "sortable": self.queryable and self.type not in ("textarea", "junctionidlist"),
            "groupable": self.queryable and self.type not in ("textarea", "double", "currency"),
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship_name,
            "polymorphicForeignKey": len(self.reference_to) > 1,
            "restrictedPicklist": self.restricted_picklist,
            "picklistValues": [
                {"active": True, "defaultValue": False, "label": v, "validFor": None, "value": v}
                for v in self.picklist_values
            ],
        }


@dataclass
class ObjectDef:
    name: str
    key_prefix: str
    label: str
    label_plural: str
    fields: dict[str, FieldDef] = field(default_factory=dict)  # lowercased name -> field
    createable: bool = True
    updateable: bool = True
    deletable: bool = True

    def field(self, name: str) -> FieldDef | None:
        return self.fields.get(name.lower())

    def add(self, f: FieldDef) -> None:
        self.fields[f.name.lower()] = f

    def replace_field(self, name: str, **changes: Any) -> None:
        current = self.fields[name.lower()]
        self.fields[name.lower()] = replace(current, **changes)

    def describe(self, api_path: str) -> dict[str, Any]:
        base = f"{api_path}/sobjects/{self.name}"
        return {
            **self.summary(api_path),
            "fields": [f.describe() for f in self.fields.values()],
            "childRelationships": [],
            "recordTypeInfos": [],
            "supportedScopes": [{"label": "All", "name": "everything"}],
            "urls": {
                "sobject": base,
                "describe": f"{base}/describe",
                "rowTemplate": f"{base}/{{ID}}",
            },
        }

    def summary(self, api_path: str) -> dict[str, Any]:
        """The describeGlobal entry (also the head of a describe answer)."""
        base = f"{api_path}/sobjects/{self.name}"
        return {
            "name": self.name,
            "label": self.label,
            "labelPlural": self.label_plural,
            "keyPrefix": self.key_prefix,
            "custom": False,
            "customSetting": False,
            "createable": self.createable,
            "updateable": self.updateable,
            "deletable": self.deletable,
            "undeletable": self.deletable,
            "queryable": True,
            "retrieveable": True,
            "searchable": True,
            "layoutable": True,
            "activateable": False,
            "mergeable": self.name in ("Account", "Contact", "Lead"),
            "replicateable": True,
            "triggerable": True,
            "feedEnabled": False,
            "urls": {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"},
        }


# --- the standard objects -------------------------------------------------------------------


def _system_fields() -> list[FieldDef]:
    ro = {"createable": False, "updateable": False}
    return [
        FieldDef("Id", "id", "Record ID", length=18, nillable=False, defaulted_on_create=True, **ro),
        FieldDef("IsDeleted", "boolean", "Deleted", nillable=False, defaulted_on_create=True, **ro),
        FieldDef("CreatedDate", "datetime", "Created Date", nillable=False, defaulted_on_create=True, **ro),
        FieldDef("CreatedById", "reference", "Created By ID", nillable=False, defaulted_on_create=True,
                 reference_to=("User",), relationship_name="CreatedBy", **ro),
        FieldDef("LastModifiedDate", "datetime", "Last Modified Date", nillable=False,
                 defaulted_on_create=True, **ro),
        FieldDef("LastModifiedById", "reference", "Last Modified By ID", nillable=False,
                 defaulted_on_create=True, reference_to=("User",), relationship_name="LastModifiedBy", **ro),
        FieldDef("SystemModstamp", "datetime", "System Modstamp", nillable=False, defaulted_on_create=True, **ro),
    ]


def _owner() -> FieldDef:
    # Defaults to the session's user when not sent (reference B3 "Assigned To").
    return FieldDef("OwnerId", "reference", "Assigned To ID", nillable=False, defaulted_on_create=True,
                    reference_to=("User",), relationship_name="Owner")


def _s(name: str, label: str, length: int, **kw: Any) -> FieldDef:
    return FieldDef(name, "string", label, length=length, **kw)


def _ro(name: str, type_: str, label: str, **kw: Any) -> FieldDef:
    return FieldDef(name, type_, label, createable=False, updateable=False, **kw)


def _object(name: str, prefix: str, label: str, plural: str, fields: list[FieldDef], **kw: Any) -> ObjectDef:
    obj = ObjectDef(name, prefix, label, plural, **kw)
    for f in _system_fields()[:1] + fields + _system_fields()[1:]:
        obj.add(f)
    return obj


def standard_objects() -> dict[str, ObjectDef]:
    """A fresh copy of the org's objects, keyed by lowercased name."""
    ro_ = {"createable": False, "updateable": False}
    user = _object("User", "005", "User", "Users", [
        FieldDef("Username", "string", "Username", length=80, nillable=False, unique=True),
        _s("FirstName", "First Name", 40),
        FieldDef("LastName", "string", "Last Name", length=80, nillable=False),
        _ro("Name", "string", "Full Name", length=121),
        FieldDef("Email", "email", "Email", length=128, nillable=False),
        _s("Alias", "Alias", 8),
        FieldDef("IsActive", "boolean", "Active", nillable=False, defaulted_on_create=True),
        _s("TimeZoneSidKey", "Time Zone", 40, defaulted_on_create=True),
        _ro("UserType", "picklist", "User Type", length=40, picklist_values=("Standard",)),
    ])
    account = _object("Account", "001", "Account", "Accounts", [
        FieldDef("Name", "string", "Account Name", length=255, nillable=False),
        FieldDef("Type", "picklist", "Account Type", length=255,
                 picklist_values=("Prospect", "Customer - Direct", "Customer - Channel", "Partner", "Other")),
        FieldDef("Website", "url", "Website", length=255),
        FieldDef("Phone", "phone", "Account Phone", length=40),
        FieldDef("Industry", "picklist", "Industry", length=255),
        FieldDef("Description", "textarea", "Account Description", length=32000),
        _owner(),
    ])
    contact = _object("Contact", "003", "Contact", "Contacts", [
        FieldDef("AccountId", "reference", "Account ID", reference_to=("Account",), relationship_name="Account"),
        _s("FirstName", "First Name", 40),
        FieldDef("LastName", "string", "Last Name", length=80, nillable=False),
        _ro("Name", "string", "Full Name", length=121),
        FieldDef("Email", "email", "Email", length=80),
        FieldDef("Phone", "phone", "Business Phone", length=40),
        _s("Title", "Title", 128),
        FieldDef("Description", "textarea", "Contact Description", length=32000),
        _owner(),
    ])
    lead = _object("Lead", "00Q", "Lead", "Leads", [
        _s("FirstName", "First Name", 40),
        FieldDef("LastName", "string", "Last Name", length=80, nillable=False),
        _ro("Name", "string", "Full Name", length=121),
        FieldDef("Company", "string", "Company", length=255, nillable=False),
        FieldDef("Email", "email", "Email", length=80),
        FieldDef("Phone", "phone", "Phone", length=40),
        FieldDef("Status", "picklist", "Status", length=255, nillable=False, defaulted_on_create=True,
                 picklist_values=("Open - Not Contacted", "Working - Contacted", "Closed - Converted",
                                  "Closed - Not Converted")),
        FieldDef("IsConverted", "boolean", "Converted", nillable=False, defaulted_on_create=True, **ro_),
        # Set by lead conversion only (Lead object reference; `convert_lead` in the backend).
        FieldDef("ConvertedContactId", "reference", "Converted Contact ID", reference_to=("Contact",),
                 relationship_name="ConvertedContact", **ro_),
        FieldDef("ConvertedAccountId", "reference", "Converted Account ID", reference_to=("Account",),
                 relationship_name="ConvertedAccount", **ro_),
        FieldDef("ConvertedOpportunityId", "reference", "Converted Opportunity ID",
                 reference_to=("Opportunity",), relationship_name="ConvertedOpportunity", **ro_),
        FieldDef("ConvertedDate", "date", "Converted Date", **ro_),
        _owner(),
    ])
    opportunity = _object("Opportunity", "006", "Opportunity", "Opportunities", [
        FieldDef("AccountId", "reference", "Account ID", reference_to=("Account",), relationship_name="Account"),
        FieldDef("Name", "string", "Name", length=120, nillable=False),
        FieldDef("StageName", "picklist", "Stage", length=255, nillable=False,
                 picklist_values=("Prospecting", "Qualification", "Needs Analysis", "Proposal/Price Quote",
                                  "Negotiation/Review", "Closed Won", "Closed Lost")),
        FieldDef("CloseDate", "date", "Close Date", nillable=False),
        FieldDef("Amount", "currency", "Amount", precision=18, scale=2),
        _ro("IsClosed", "boolean", "Closed", nillable=False, defaulted_on_create=True),
        _ro("IsWon", "boolean", "Won", nillable=False, defaulted_on_create=True),
        FieldDef("Description", "textarea", "Description", length=32000),
        _owner(),
    ])
    ocr = _object("OpportunityContactRole", "00K", "Opportunity Contact Role", "Opportunity Contact Roles", [
        FieldDef("OpportunityId", "reference", "Opportunity ID", nillable=False, updateable=False,
                 reference_to=("Opportunity",), relationship_name="Opportunity"),
        FieldDef("ContactId", "reference", "Contact ID", nillable=False,
                 reference_to=("Contact",), relationship_name="Contact"),
        FieldDef("Role", "picklist", "Role", length=40,
                 picklist_values=("Business User", "Decision Maker", "Economic Buyer", "Evaluator", "Other")),
        FieldDef("IsPrimary", "boolean", "Primary", nillable=False, defaulted_on_create=True),
    ])
    event = _object("Event", "00U", "Event", "Events", [
        # Lengths and rules: reference B3.
        FieldDef("Subject", "combobox", "Subject", length=255,
                 picklist_values=("Call", "Email", "Meeting", "Send Letter/Quote", "Other")),
        FieldDef("Location", "string", "Location", length=255),
        FieldDef("Description", "textarea", "Description", length=32000),
        FieldDef("StartDateTime", "datetime", "Start Date Time"),
        FieldDef("EndDateTime", "datetime", "End Date Time"),
        FieldDef("ActivityDateTime", "datetime", "Due Date Time"),
        FieldDef("ActivityDate", "date", "Due Date Only"),
        FieldDef("DurationInMinutes", "int", "Duration"),
        FieldDef("IsAllDayEvent", "boolean", "All-Day Event", nillable=False, defaulted_on_create=True),
        FieldDef("IsPrivate", "boolean", "Private", nillable=False, defaulted_on_create=True),
        FieldDef("ShowAs", "picklist", "Show Time As", length=40, defaulted_on_create=True,
                 picklist_values=("Busy", "OutOfOffice", "Free"), restricted_picklist=True),
        FieldDef("Type", "picklist", "Type", length=40, picklist_values=("Call", "Email", "Meeting", "Other")),
        _owner(),
        FieldDef("WhoId", "reference", "Name ID", reference_to=("Contact", "Lead"), relationship_name="Who"),
        FieldDef("WhatId", "reference", "Related To ID", reference_to=("Account", "Opportunity"),
                 relationship_name="What"),
        _ro("AccountId", "reference", "Account ID", reference_to=("Account",), relationship_name="Account"),
        # Shared Activities only (reference B3); createable is switched by the backend flag.
        FieldDef("EventWhoIds", "junctionidlist", "Event Who Ids", createable=False, updateable=False,
                 reference_to=("Contact", "Lead"), queryable=False),
        _ro("WhoCount", "int", "Relation Count"),
        _ro("WhatCount", "int", "Related To Count"),
        _ro("IsRecurrence", "boolean", "Create Recurring Series of Events", nillable=False,
            defaulted_on_create=True),
        _ro("IsChild", "boolean", "Is Child", nillable=False, defaulted_on_create=True),
        _ro("IsGroupEvent", "boolean", "Is Group Event", nillable=False, defaulted_on_create=True),
        _ro("GroupEventType", "picklist", "Group Event Type", length=40, picklist_values=("0", "1", "2")),
        FieldDef("IsReminderSet", "boolean", "Reminder Set", nillable=False, defaulted_on_create=True),
        FieldDef("ReminderDateTime", "datetime", "Reminder Date/Time"),
        _ro("EventSubtype", "picklist", "Event Subtype", length=40, picklist_values=("Event",)),
        _ro("IsArchived", "boolean", "Archived", nillable=False, defaulted_on_create=True),
    ])
    relation = _object("EventRelation", "0RE", "Event Relation", "Event Relations", [
        FieldDef("EventId", "reference", "Event ID", nillable=False, updateable=False,
                 reference_to=("Event",), relationship_name="Event"),
        FieldDef("RelationId", "reference", "Relation ID", nillable=False, updateable=False,
                 reference_to=("Contact", "Lead", "User"), relationship_name="Relation"),
        FieldDef("IsParent", "boolean", "Parent", nillable=False, defaulted_on_create=True),
        FieldDef("IsWhat", "boolean", "Is What", nillable=False, defaulted_on_create=True, updateable=False),
        FieldDef("IsInvitee", "boolean", "Invitee", nillable=False, defaulted_on_create=True),
        FieldDef("Status", "picklist", "Status", length=40, defaulted_on_create=True,
                 picklist_values=("New", "Declined", "Accepted", "Uninvited", "Maybe")),
        _ro("AccountId", "reference", "Account ID", reference_to=("Account",), relationship_name="Account"),
    ])
    objects = [user, account, contact, lead, opportunity, ocr, event, relation]
    return {o.name.lower(): o for o in objects}


# --- ids ----------------------------------------------------------------------------------------

_CHECKSUM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_RE = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-5]{3})?\Z")


def id_checksum(id15: str) -> str:
    """The 3-character suffix of an 18-character id (reference B2)."""
    out = []
    for chunk in (id15[0:5], id15[5:10], id15[10:15]):
        bits = 0
        for i, ch in enumerate(chunk):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        out.append(_CHECKSUM_ALPHABET[bits])
    return "".join(out)


def to_18(record_id: str) -> str | None:
    """The 18-character form of a 15- or 18-character id, or None if it is not a valid id."""
    if not isinstance(record_id, str) or not _ID_RE.match(record_id):
        return None
    id15 = record_id[:15]
    suffix = id_checksum(id15)
    if len(record_id) == 18 and record_id[15:].upper() != suffix:
        return None
    return id15 + suffix


def make_id(prefix: str, number: int) -> str:
    """The 18-character id of the `number`-th record with this key prefix."""
    digits = []
    n = number
    while True:
        n, r = divmod(n, 62)
        digits.append(_BASE62[r])
        if n == 0:
            break
    body = "".join(reversed(digits)).rjust(9, "0")
    id15 = f"{prefix}RO0{body}"
    return id15 + id_checksum(id15)


def id_number(record_id: str) -> int:
    """The `number` `make_id` made `record_id` from (its nine base-62 digits)."""
    number = 0
    for char in record_id[6:15]:
        number = number * 62 + _BASE62.index(char)
    return number
