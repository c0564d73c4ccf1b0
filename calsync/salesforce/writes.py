"""Writing Events: sObject Collections create, update, upsert and delete, one result per record.

Writes go through sObject Collections, 200 records a call with allOrNone false, and return one
result per record in request order (reference B4), so one refused record never stops the others.
A create is never retried blindly: its answer may be lost after it landed (reference C5).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from calsync.core.errors import TransientError
from calsync.salesforce.connection import Connection

COLLECTION_SIZE = 200  # sObject Collections limit (reference B4)


@dataclass(frozen=True)
class WriteResult:
    ok: bool
    id: str | None = None
    status_code: str | None = None
    message: str | None = None
    created: bool | None = None


class Writer:
    """The Event writes of one org, through its connection (which counts and maps their calls)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def create(self, records: Sequence[Mapping[str, Any]]) -> list[WriteResult]:
        # Not retried blindly: a create whose answer was lost may have landed. The caller
        # recorded its intent and reconciles on the next run (reference C5).
        return self._collection("POST", "composite/sobjects", records, idempotent=False)

    def update(self, records: Sequence[Mapping[str, Any]]) -> list[WriteResult]:
        return self._collection("PATCH", "composite/sobjects", records)

    def upsert(self, field: str, records: Sequence[Mapping[str, Any]]) -> list[WriteResult]:
        return self._collection("PATCH", f"composite/sobjects/Event/{field}", records)

    def delete(self, ids: Sequence[str]) -> list[WriteResult]:
        results: list[WriteResult] = []
        for chunk in _chunks(list(ids), COLLECTION_SIZE):
            params = {"ids": ",".join(chunk), "allOrNone": "false"}
            answer = self._connection.call(
                "delete Events",
                lambda sf, params=params: sf.restful("composite/sobjects", method="DELETE", params=params),
            )
            results.extend(_results(answer, len(chunk)))
        return results

    def _collection(
        self, method: str, path: str, records: Sequence[Mapping[str, Any]], *, idempotent: bool = True
    ) -> list[WriteResult]:
        results: list[WriteResult] = []
        for chunk in _chunks(list(records), COLLECTION_SIZE):
            body = {
                "allOrNone": False,
                "records": [{"attributes": {"type": "Event"}, **r} for r in chunk],
            }
            answer = self._connection.call(
                f"{method} {path}",
                lambda sf, body=body: sf.restful(path, method=method, json=body),
                idempotent=idempotent,
            )
            results.extend(_results(answer, len(chunk)))
        return results


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _results(answer: Any, expected: int) -> list[WriteResult]:
    """Collections answer one result per record in request order (reference B4)."""
    if not isinstance(answer, list) or len(answer) != expected:
        raise TransientError(
            f"Salesforce Collections answered {len(answer) if isinstance(answer, list) else type(answer).__name__}"
            f" results for {expected} records"
        )
    results = []
    for item in answer:
        errors = item.get("errors") or []
        first = errors[0] if errors and isinstance(errors[0], Mapping) else {}
        results.append(
            WriteResult(
                ok=bool(item.get("success")),
                id=item.get("id"),
                status_code=first.get("statusCode"),
                message=first.get("message"),
                created=item.get("created"),
            )
        )
    return results
