"""What a cycle reports: per calendar (`CalendarOutcome`) and for the whole run (`CycleResult`).

Filled as the cycle goes (reading the calendar, writing to Salesforce), read by `calsync sync`,
the daemon's summary line and metrics, and stored as each calendar's last result (`counts`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class CalendarOutcome:
    user: str
    ok: bool = False
    error: str | None = None
    full_sync: bool = False
    items: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    skipped: int = 0
    failed: int = 0
    canceled: int = 0  # meetings gone whose Events a person changed: kept with "Canceled: "
    google_calls: int = 0
    seconds: float = 0.0

    def counts(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "created": self.created,
            "updated": self.updated,
            "deleted": self.deleted,
            "skipped": self.skipped,
            "failed": self.failed,
            "canceled": self.canceled,
            "full_sync": self.full_sync,
            "google_calls": self.google_calls,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class CycleResult:
    calendars: dict[str, CalendarOutcome] = field(default_factory=dict)
    salesforce_calls: int = 0

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.calendars.values())
