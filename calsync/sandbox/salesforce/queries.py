"""SOQL over the org's rows: query and queryAll with their pages (reference B1).

The parser and the engine are `soql_parser.py` and `soql.py`; this is their `SoqlSchema` and
`SoqlData` (`object_name`, `field`, `relationship`, `rows`, `get`) and the query locators of
answers longer than one batch.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from calsync.sandbox.salesforce.errors import ApiError
from calsync.sandbox.salesforce.schema import make_id
from calsync.sandbox.salesforce.soql import FieldInfo, RelationshipInfo, SoqlError, execute
from calsync.sandbox.salesforce.store import OrgStore, Row

DEFAULT_BATCH_SIZE = 2000  # reference B1
MIN_BATCH_SIZE = 200
MAX_OPEN_CURSORS = 100


@dataclass
class _Cursor:
    records: list[dict[str, Any]]
    batch_size: int


class Queries:
    """The SOQL engine's view of the org, and the open query locators."""

    def __init__(self, store: OrgStore) -> None:
        self.store = store
        self._cursors: OrderedDict[str, _Cursor] = OrderedDict()

    # ------------------------------------------------------------------ SoqlSchema / SoqlData

    def object_name(self, name: str) -> str | None:
        obj = self.store.objects.get(name.lower())
        return obj.name if obj else None

    def field(self, obj: str, name: str) -> FieldInfo | None:
        o = self.store.objects.get(obj.lower())
        f = o.field(name) if o else None
        if f is None or not f.queryable:
            return None
        return FieldInfo(f.name, f.soql_type())

    def relationship(self, obj: str, name: str) -> RelationshipInfo | None:
        o = self.store.objects.get(obj.lower())
        if o is None:
            return None
        for f in o.fields.values():
            if f.relationship_name and f.relationship_name.lower() == name.lower() and f.queryable:
                return RelationshipInfo(f.name, f.reference_to)
        return None

    def rows(self, obj: str, include_deleted: bool) -> Iterable[Row]:
        """SoqlData: the rows a query sees. `include_deleted` is queryAll, which alone returns
        deleted rows and archived Events (reference B10)."""
        rows = self.store.table(obj)
        return [r for r in rows if include_deleted or not (r["IsDeleted"] or r.get("IsArchived"))]

    def get(self, record_id: str) -> tuple[str, Row] | None:
        found = self.store.find(record_id)
        if found is None or found[1]["IsDeleted"]:
            return None
        if found[0].name == "Event":
            self.store.archive([found[1]])
        return found[0].name, found[1]

    # ------------------------------------------------------------------ query

    def query(self, text: str, *, include_deleted: bool = False, api_path: str = "/services/data/v59.0",
              batch_size: int = DEFAULT_BATCH_SIZE) -> dict[str, Any]:
        """First page of a query/queryAll answer (reference B1)."""
        with self.store.lock:
            try:
                result = execute(text, self, self, include_deleted=include_deleted, api_path=api_path,
                                 now=self.store.clock.now())
            except SoqlError as exc:
                raise ApiError(400, exc.error_code, exc.message) from None
            count = getattr(result, "count", None)
            if count is not None:
                return {"totalSize": count, "done": True, "records": []}
            records = result.records
            if len(records) <= batch_size:
                return {"totalSize": len(records), "done": True, "records": records}
            locator = "01g" + make_id("RO0", secrets.randbelow(62**9))[3:15]
            self._cursors[locator] = _Cursor(records, batch_size)
            while len(self._cursors) > MAX_OPEN_CURSORS:
                self._cursors.popitem(last=False)
            return {"totalSize": len(records), "done": False,
                    "nextRecordsUrl": f"{api_path}/query/{locator}-{batch_size}", "records": records[:batch_size]}

    def query_more(self, locator: str, offset: int, *, api_path: str = "/services/data/v59.0") -> dict[str, Any]:
        with self.store.lock:
            cursor = self._cursors.get(locator)
            if cursor is None or offset < 0 or offset > len(cursor.records):
                raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            end = offset + cursor.batch_size
            page = cursor.records[offset:end]
            answer: dict[str, Any] = {"totalSize": len(cursor.records), "done": end >= len(cursor.records),
                                      "records": page}
            if end < len(cursor.records):
                answer["nextRecordsUrl"] = f"{api_path}/query/{locator}-{end}"
            else:
                self._cursors.pop(locator, None)
            return answer
