"""The field-level rules every write meets, whatever the door (reference B3/B5): field
permissions (createable/updateable), required fields, text lengths in UTF-16 code units,
restricted picklists, email addresses, references to live records of the right object, and
unique values. A refused record raises `RecordFailed` with Salesforce's status codes.
"""

from __future__ import annotations

import re
from typing import Any

from calsync.sandbox.salesforce.errors import RecordError, RecordFailed
from calsync.sandbox.salesforce.schema import TEXT_TYPES, FieldDef, ObjectDef, to_18
from calsync.sandbox.salesforce.store import OrgStore, Row
from calsync.sandbox.salesforce.values import utf16_units

_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+\Z")


class FieldRules:
    """Checks of one record's fields against its object's schema and the org's rows."""

    def __init__(self, store: OrgStore) -> None:
        self.store = store

    def check_editable(self, obj: ObjectDef, parsed: dict[str, Any], *, insert: bool, system: bool) -> None:
        bad = []
        for name in parsed:
            f = obj.fields[name.lower()]
            if name == "Id":
                continue
            if system:
                if f.type == "junctionidlist" and not f.createable:
                    bad.append(name)
                continue
            if not (f.createable if insert else f.updateable):
                bad.append(name)
        if bad:
            raise RecordFailed(RecordError(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {', '.join(bad)}. Please check the security settings of this "
                "field and verify that it is read/write for your profile or permission set.",
                tuple(bad),
            ))

    def check_row(self, obj: ObjectDef, row: Row, parsed: dict[str, Any], *, insert: bool) -> None:
        """Field-level rules: required, lengths, picklists, emails, references."""
        missing = []
        for f in obj.fields.values():
            if not f.queryable or f.name == "Id":
                continue
            value = row.get(f.name)
            empty = value is None or value == ""
            if insert and f.required_on_create and empty:
                missing.append(f.name)
            elif not insert and f.name in parsed and empty and not f.nillable:
                missing.append(f.name)
        if missing:
            raise RecordFailed(RecordError("REQUIRED_FIELD_MISSING",
                                           f"Required fields are missing: [{', '.join(missing)}]", tuple(missing)))
        errors: list[RecordError] = []
        for name, value in parsed.items():
            f = obj.fields[name.lower()]
            if value is None or name == "Id":
                continue
            if f.type in TEXT_TYPES and f.length and utf16_units(value) > f.length:
                shown = value if len(value) <= 100 else value[:100] + "..."
                errors.append(RecordError("STRING_TOO_LONG",
                                          f"{f.label}: data value too large: {shown} (max length={f.length})",
                                          (f.name,)))
            elif f.type == "picklist" and f.restricted_picklist and value not in f.picklist_values:
                errors.append(RecordError("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                                          f"{f.label}: bad value for restricted picklist field: {value}", (f.name,)))
            elif f.type == "email" and value and not _EMAIL_RE.match(value):
                errors.append(RecordError("INVALID_EMAIL_ADDRESS", f"{f.label}: invalid email address: {value}",
                                          (f.name,)))
        if errors:
            raise RecordFailed(*errors)
        for name, value in parsed.items():
            f = obj.fields[name.lower()]
            if f.type == "reference" and value is not None and f.name not in ("CreatedById", "LastModifiedById"):
                row[f.name] = self.check_reference(obj, f, value)
        if insert and row.get("OwnerId") and "OwnerId" not in parsed:
            row["OwnerId"] = self.check_reference(obj, obj.fields["ownerid"], row["OwnerId"])

    def check_reference(self, obj: ObjectDef, f: FieldDef, value: str) -> str | None:
        """The 18-char id a reference field stores, or the error Salesforce gives (reference B3/B5)."""
        if value == "":
            return None
        id18 = to_18(value)
        target = self.store.prefixes.get(id18[:3]) if id18 else None
        if id18 is None or target not in f.reference_to:
            if f.name in ("WhoId", "WhatId"):
                raise RecordFailed(RecordError("FIELD_INTEGRITY_EXCEPTION",
                                               f"{f.label}: id value of incorrect type: {value}", (f.name,)))
            raise RecordFailed(RecordError("MALFORMED_ID", f"{f.label}: id value of incorrect type: {value}",
                                           (f.name,)))
        found = self.store.find(id18)
        if found is None:
            raise RecordFailed(RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", (f.name,)))
        if found[1]["IsDeleted"]:
            raise RecordFailed(RecordError("ENTITY_IS_DELETED", "entity is deleted", (f.name,)))
        if f.name == "OwnerId" and found[0].name == "User" and not found[1]["IsActive"]:
            raise RecordFailed(RecordError("INVALID_CROSS_REFERENCE_KEY", "operation performed with inactive user",
                                           (f.name,)))
        return id18

    def check_unique(self, obj: ObjectDef, row: Row, parsed: dict[str, Any]) -> None:
        for name in parsed:
            f = obj.fields[name.lower()]
            if not f.unique:
                continue
            others = [i for i in self.store.matches(obj, f, row.get(f.name)) if i != row["Id"]]
            if others:
                raise RecordFailed(RecordError(
                    "DUPLICATE_VALUE",
                    f"duplicate value found: {f.name} duplicates value on record with id: {others[0]}", (f.name,)))
