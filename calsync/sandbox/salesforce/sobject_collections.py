"""sObject Collections and upsert by External ID (reference B4).

Collections write up to 200 records in one call and answer one result per record, in request
order; a record's errors carry its statusCode. With allOrNone every record runs under one undo
log: if any fails, the others roll back and answer ALL_OR_NONE_OPERATION_ROLLED_BACK. Upsert
matches the External ID case-insensitively: no match inserts, one updates, several refuse
(300 for a single upsert, DUPLICATE_EXTERNAL_ID inside a collection).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from calsync.sandbox.salesforce.errors import (
    ROLLED_BACK_MESSAGE,
    ApiError,
    RecordError,
    RecordFailed,
    json_parser_error,
)
from calsync.sandbox.salesforce.failures import RecordFailures
from calsync.sandbox.salesforce.schema import FieldDef, ObjectDef, to_18
from calsync.sandbox.salesforce.store import OrgStore, Row
from calsync.sandbox.salesforce.values import coerce, parse_fields
from calsync.sandbox.salesforce.writes import RecordWriter

MAX_COLLECTION_RECORDS = 200  # reference B4


@dataclass(frozen=True)
class WriteResult:
    id: str
    created: bool


class MultipleMatches(Exception):
    """An upsert's external id matched several records (single upsert answers 300)."""

    def __init__(self, ids: list[str]) -> None:
        super().__init__(f"{len(ids)} records match")
        self.ids = ids


class Collections:
    """Upserts and the Collections resources, written through the one write path."""

    def __init__(self, store: OrgStore, writer: RecordWriter, failures: RecordFailures) -> None:
        self.store = store
        self.writer = writer
        self.failures = failures

    # ------------------------------------------------------------------ upsert by External ID (B4)

    def upsert_record(self, object_name: str, ext_field: str, value: str, fields: dict[str, Any], *,
                      user_id: str | None = None, system: bool = False) -> WriteResult:
        """`PATCH /sobjects/{Type}/{ExtField}/{value}` (reference B4). Raises MultipleMatches."""
        with self.store.lock:
            obj = self.store.object(object_name)
            f = self._external_field(obj, ext_field)
            parsed = parse_fields(obj, fields)
            if "Id" in parsed:
                raise RecordFailed(RecordError("INVALID_FIELD", "Unable to create/update fields: Id. Please "
                                               "check the security settings of this field", ("Id",)))
            if f.name in parsed and self.store.unique_key(parsed[f.name]) != self.store.unique_key(value):
                raise ApiError(400, "INVALID_FIELD", f"The external ID field {f.name} in the URL does not match "
                               f"the value in the request body")
            self.failures.raise_hits([{"attributes": {"type": obj.name}, **fields, f.name: value}])
            with self.store.transaction():
                return self._upsert_one(obj, f, value, parsed, user_id=user_id, system=system)

    def find_by_external_id(self, object_name: str, ext_field: str, value: str) -> list[str]:
        """Ids of the live records whose external id field matches (case-insensitively)."""
        with self.store.lock:
            obj = self.store.object(object_name)
            return self.store.matches(obj, self._external_field(obj, ext_field), value)

    def _external_field(self, obj: ObjectDef, name: str) -> FieldDef:
        f = obj.field(name)
        if f is None or not (f.external_id or f.name == "Id"):
            raise ApiError(404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: "
                           f"{name}")
        return f

    def _upsert_one(self, obj: ObjectDef, f: FieldDef, value: Any, parsed: dict[str, Any], *,
                    user_id: str | None, system: bool) -> WriteResult:
        if f.name == "Id":
            found = self.store.find(value)
            if found is None or found[0] is not obj or found[1]["IsDeleted"]:
                raise RecordFailed(RecordError("NOT_FOUND", "Provided external ID field does not exist or is not "
                                               "accessible: Id"))
            self.writer.update(obj, found[1]["Id"], parsed, user_id=user_id, system=system)
            return WriteResult(found[1]["Id"], False)
        matches = self.store.matches(obj, f, value)
        if len(matches) > 1:
            raise MultipleMatches(matches)
        if matches:
            body = dict(parsed)
            body.pop(f.name, None)
            self.writer.update(obj, matches[0], body, user_id=user_id, system=system)
            return WriteResult(matches[0], False)
        body = dict(parsed)
        body[f.name] = coerce(f, value)
        new_id = self.writer.insert(obj, body, user_id=user_id, system=system)
        return WriteResult(new_id, True)

    # ------------------------------------------------------------------ Collections (reference B4)

    def collection_write(
        self,
        operation: str,  # "create" | "update" | "upsert"
        records: Any,
        *,
        all_or_none: bool = False,
        user_id: str | None = None,
        object_name: str | None = None,
        ext_field: str | None = None,
    ) -> list[dict[str, Any]]:
        """One result per record in request order; per-record errors use statusCode."""
        if not isinstance(records, list):
            raise json_parser_error("Cannot deserialize instance of list from non-array value")
        if len(records) > MAX_COLLECTION_RECORDS:
            raise ApiError(400, "EXCEEDED_ID_LIMIT",
                           "record limit reached. cannot submit more than 200 records into this call")
        with self.store.lock:
            ext: FieldDef | None = None
            upsert_obj: ObjectDef | None = None
            if operation == "upsert":
                assert object_name is not None and ext_field is not None
                upsert_obj = self.store.object(object_name)
                ext = self._external_field(upsert_obj, ext_field)
            prepared: list[tuple[ObjectDef, dict[str, Any]]] = []
            for rec in records:
                if not isinstance(rec, dict):
                    raise json_parser_error("Cannot deserialize instance of sobject from non-object value")
                attrs = rec.get("attributes")
                type_name = attrs.get("type") if isinstance(attrs, dict) else None
                if not type_name:
                    if upsert_obj is None:
                        raise ApiError(400, "INVALID_TYPE", "Must send a concrete entity type.")
                    type_name = upsert_obj.name
                obj = self.store.object(type_name)
                if upsert_obj is not None and obj is not upsert_obj:
                    raise ApiError(400, "INVALID_TYPE", f"Upsert records must all be of type {upsert_obj.name}")
                prepared.append((obj, parse_fields(obj, rec)))
            injected = self.failures.hits(records)
            duplicate_keys: set[str] = set()
            if ext is not None:
                seen = Counter(self.store.unique_key(p.get(ext.name)) for _, p in prepared)
                duplicate_keys = {k for k, n in seen.items() if k is not None and n > 1}
            self.store.begin()
            results: list[dict[str, Any]] = []
            failed: list[bool] = []
            for i, (obj, parsed) in enumerate(prepared):
                try:
                    if i in injected:
                        if operation == "update" and parsed.get("Id"):
                            self._row_for_write(obj, parsed["Id"])  # gone fails as gone first
                        raise RecordFailed(injected[i])
                    result = self._collection_one(operation, obj, parsed, ext, duplicate_keys, user_id)
                    results.append(result)
                    failed.append(False)
                except RecordFailed as exc:
                    results.append(_failure(exc.errors, created=False if operation == "upsert" else None))
                    failed.append(True)
            if all_or_none and any(failed):
                self.store.rollback()
                rolled = RecordError("ALL_OR_NONE_OPERATION_ROLLED_BACK", ROLLED_BACK_MESSAGE)
                results = [
                    r if bad else _failure((rolled,), created=False if operation == "upsert" else None)
                    for r, bad in zip(results, failed)
                ]
            else:
                self.store.commit()
            return results

    def _collection_one(self, operation: str, obj: ObjectDef, parsed: dict[str, Any], ext: FieldDef | None,
                        duplicate_keys: set[str], user_id: str | None) -> dict[str, Any]:
        if operation == "create":
            if parsed.get("Id"):
                raise RecordFailed(RecordError("INVALID_FIELD", "cannot specify Id in an insert call", ("Id",)))
            parsed.pop("Id", None)
            new_id = self.writer.insert(obj, parsed, user_id=user_id, system=False)
            return {"id": new_id, "success": True, "errors": []}
        if operation == "update":
            record_id = parsed.pop("Id", None)
            if not record_id:
                raise RecordFailed(RecordError("MISSING_ARGUMENT", "Id not specified in an update call"))
            row = self._row_for_write(obj, record_id)
            self.writer.update(obj, row["Id"], parsed, user_id=user_id, system=False)
            return {"id": row["Id"], "success": True, "errors": []}
        assert ext is not None
        parsed.pop("Id", None)
        value = parsed.get(ext.name)
        if value is None or value == "":
            raise RecordFailed(RecordError("MISSING_ARGUMENT", f"{ext.name} not specified"))
        if self.store.unique_key(value) in duplicate_keys:
            raise RecordFailed(RecordError("DUPLICATE_EXTERNAL_ID", f"Duplicate external id specified: {value}",
                                           (ext.name,)))
        try:
            result = self._upsert_one(obj, ext, value, parsed, user_id=user_id, system=False)
        except MultipleMatches as exc:
            raise RecordFailed(RecordError(
                "DUPLICATE_EXTERNAL_ID",
                f"{ext.name}: more than one record found for external id field: {exc.ids}", (ext.name,))) from None
        return {"id": result.id, "success": True, "errors": [], "created": result.created}

    def _row_for_write(self, obj: ObjectDef | None, record_id: Any) -> Row:
        """The live row a Collections update/delete addresses, or a per-record error."""
        id18 = to_18(record_id) if isinstance(record_id, str) else None
        if id18 is None or (obj is not None and id18[:3] != obj.key_prefix):
            raise RecordFailed(RecordError("MALFORMED_ID", f"malformed id {record_id}"))
        found = self.store.find(id18)
        if found is None:
            raise RecordFailed(RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id"))
        if found[1]["IsDeleted"]:
            raise RecordFailed(RecordError("ENTITY_IS_DELETED", "entity is deleted"))
        return found[1]

    def collection_delete(self, ids: list[str], *, all_or_none: bool = False) -> list[dict[str, Any]]:
        if len(ids) > MAX_COLLECTION_RECORDS:
            raise ApiError(400, "EXCEEDED_ID_LIMIT",
                           "record limit reached. cannot submit more than 200 records into this call")
        with self.store.lock:
            records = []
            for record_id in ids:
                found = self.store.find(record_id)
                type_name = found[0].name if found else None
                records.append({"attributes": {"type": type_name}, "Id": record_id})
            injected = self.failures.hits(records)
            self.store.begin()
            results: list[dict[str, Any]] = []
            failed: list[bool] = []
            for i, record_id in enumerate(ids):
                try:
                    if i in injected:
                        self._row_for_write(None, record_id)  # gone fails as gone first
                        raise RecordFailed(injected[i])
                    row = self._row_for_write(None, record_id)
                    obj = self.store.objects[self.store.index[row["Id"][:15]]]
                    self.writer.delete(obj, row["Id"])
                    results.append({"id": row["Id"], "success": True, "errors": []})
                    failed.append(False)
                except RecordFailed as exc:
                    results.append(_failure(exc.errors))
                    failed.append(True)
            if all_or_none and any(failed):
                self.store.rollback()
                rolled = RecordError("ALL_OR_NONE_OPERATION_ROLLED_BACK", ROLLED_BACK_MESSAGE)
                results = [r if bad else _failure((rolled,)) for r, bad in zip(results, failed)]
            else:
                self.store.commit()
            return results


def _failure(errors: Iterable[RecordError], created: bool | None = None) -> dict[str, Any]:
    # A failed result carries no id (reference B4 allows "id": null or none).
    out: dict[str, Any] = {"success": False, "errors": [e.as_result_error() for e in errors]}
    if created is not None:
        out["created"] = created
    return out
