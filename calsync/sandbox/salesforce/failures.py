"""Injected per-record failures (`fail_records`): what a validation rule, a trigger or a row
lock refuses, set up by a test. Whole-request faults (an HTTP status, a delay, a dropped
connection after N bytes: `Fault`, `rate`, `drop_after`) are the server's, in
`calsync/sandbox/server.py`; these act inside a write, record by record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from calsync.sandbox.salesforce.errors import LOCK_MESSAGE, RecordError, RecordFailed

log = logging.getLogger("calsync.sandbox.salesforce.backend")  # its name before the split

RecordPredicate = Callable[[dict[str, Any]], bool]


@dataclass
class FailureRule:
    """Injected per-record failures (`fail_records`): each hit request uses one of `times`."""

    predicate: RecordPredicate | None
    count: int | None
    status_code: str
    message: str
    times: int
    fields: tuple[str, ...] = ()


class RecordFailures:
    """The pending failure rules and their use by each write request. Callers hold the org's lock."""

    def __init__(self) -> None:
        self.rules: list[FailureRule] = []

    def add(
        self,
        predicate_or_count: RecordPredicate | int,
        status_code: str = "UNABLE_TO_LOCK_ROW",
        message: str | None = None,
        times: int = 1,
        fields: tuple[str, ...] | list[str] = (),
    ) -> FailureRule:
        """Make record writes fail with `status_code` (inside Collections: per-record results).

        An int N fails the first N records of a write request; a predicate gets each record as
        sent (`{"attributes": {"type": ...}, field: value, ...}`, `Id` for updates/deletes) and
        fails those it accepts. The rule applies to the next `times` write requests in which it
        hits at least one record (-1: until cleared). A single-record write it hits answers 400.
        """
        rule = FailureRule(
            predicate=None if isinstance(predicate_or_count, int) else predicate_or_count,
            count=predicate_or_count if isinstance(predicate_or_count, int) else None,
            status_code=status_code,
            message=message or (LOCK_MESSAGE if status_code == "UNABLE_TO_LOCK_ROW" else status_code),
            times=times,
            fields=tuple(fields),
        )
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        self.rules.clear()

    def hits(self, records: list[dict[str, Any]]) -> dict[int, RecordError]:
        """The injected errors of a write, by position. They stand for what a validation rule,
        a trigger or a lock refuses, which Salesforce only reaches once it has loaded the record
        ("Triggers and Order of Execution": first it "loads the original record from the
        database", https://developer.salesforce.com/docs/atlas.en-us.apexcode.meta/apexcode/
        apex_triggers_order_of_execution.htm): an update or delete of a record that is gone
        fails as gone (ENTITY_IS_DELETED, INVALID_CROSS_REFERENCE_KEY), whatever is injected."""
        hits: dict[int, RecordError] = {}
        for rule in self.rules:
            if rule.times == 0:
                continue
            if rule.count is not None:
                positions = list(range(min(rule.count, len(records))))
            else:
                assert rule.predicate is not None
                positions = [i for i, r in enumerate(records) if _safe_call(rule.predicate, r)]
            positions = [p for p in positions if p not in hits]
            if not positions:
                continue
            if rule.times > 0:
                rule.times -= 1
            for p in positions:
                hits[p] = RecordError(rule.status_code, rule.message, rule.fields)
        self.rules = [r for r in self.rules if r.times != 0]
        return hits

    def raise_hits(self, records: list[dict[str, Any]]) -> None:
        """A single-record write: any injected error fails it whole (RecordFailed)."""
        hits = self.hits(records)
        if hits:
            raise RecordFailed(*hits.values())


def _safe_call(predicate: RecordPredicate, record: dict[str, Any]) -> bool:
    try:
        return bool(predicate(record))
    except Exception:  # a test's predicate must not break the emulator
        log.exception("fail_records predicate raised")
        return False
