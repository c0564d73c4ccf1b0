"""Org automation: Apex triggers and record-triggered Flows that rewrite records before they are
saved (reference B10, "Triggers, Flows": what is read back may differ from what was sent).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from calsync.sandbox.salesforce.schema import ObjectDef
from calsync.sandbox.salesforce.store import OrgStore, Row
from calsync.sandbox.salesforce.values import parse_fields


@dataclass(frozen=True)
class Trigger:
    """Org automation that rewrites records before they are saved (`add_trigger`)."""

    object_name: str
    on: frozenset[str]  # "insert", "update"
    subject_prefix: str = ""
    subject_suffix: str = ""
    set_fields: dict[str, Any] = field(default_factory=dict)


class Triggers:
    """The org's triggers, run by the write path before its checks."""

    def __init__(self, store: OrgStore) -> None:
        self.store = store
        self._triggers: list[Trigger] = []

    def add(self, object_name: str, *, on: Iterable[str] = ("insert",), subject_prefix: str = "",
            subject_suffix: str = "", set_fields: dict[str, Any] | None = None) -> Trigger:
        """Org automation (an Apex trigger, a record-triggered Flow) on `object_name`: before each
        insert (and/or update) it rewrites the Subject and sets fields, as the user who made the
        write (reference B10, "Triggers, Flows": what is read back may differ from what was sent).
        """
        with self.store.lock:
            obj = self.store.object(object_name)
            events = frozenset(on)
            if not events or events - {"insert", "update"}:
                raise ValueError(f"a trigger runs on insert and/or update, not {sorted(events)}")
            values = parse_fields(obj, dict(set_fields or {}))
            trigger = Trigger(obj.name, events, subject_prefix, subject_suffix, values)
            self._triggers.append(trigger)
            return trigger

    def clear(self) -> None:
        with self.store.lock:
            self._triggers.clear()

    def run(self, obj: ObjectDef, event: str, row: Row, parsed: dict[str, Any]) -> None:
        """Before-save automation: its changes are part of the write, so they are validated
        with it and recorded under the same user (LastModifiedById) as the rest of it."""
        for trigger in self._triggers:
            if trigger.object_name != obj.name or event not in trigger.on:
                continue
            changes = dict(trigger.set_fields)
            if (trigger.subject_prefix or trigger.subject_suffix) and obj.field("Subject") is not None:
                changes["Subject"] = f"{trigger.subject_prefix}{row.get('Subject') or ''}{trigger.subject_suffix}"
            row.update(changes)
            parsed.update(changes)
