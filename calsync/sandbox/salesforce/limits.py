"""The org's API allocation (reference B6): every REST call counts against a daily maximum
(403 REQUEST_LIMIT_EXCEEDED beyond it), each answer carries `Sforce-Limit-Info: api-usage=N/M`,
and `GET /limits` reports what remains. Calls are also counted by kind for the tests' budgets.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class ApiUsage:
    """API calls made today, by kind, against the daily allocation."""

    def __init__(self, lock: threading.RLock) -> None:
        self.lock = lock
        self.daily_api_max = 15000  # Developer Edition allocation (reference B6)
        self.api_calls = 0
        self._calls: Counter[str] = Counter()

    def count_call(self, kind: str) -> bool:
        """Count one API call; False (nothing counted) when the daily allocation is used up."""
        with self.lock:
            if self.api_calls >= self.daily_api_max:
                return False
            self.api_calls += 1
            self._calls[kind] += 1
            return True

    def limit_info(self) -> str:
        """The Sforce-Limit-Info header value."""
        with self.lock:
            return f"api-usage={self.api_calls}/{self.daily_api_max}"

    def calls_by_kind(self) -> dict[str, int]:
        """API calls so far by kind: query, collections, sobject, describe, limits, composite, other."""
        with self.lock:
            return dict(self._calls)

    def set_limits(self, *, daily_api_max: int | None = None, api_calls: int | None = None) -> None:
        with self.lock:
            if daily_api_max is not None:
                self.daily_api_max = int(daily_api_max)
            if api_calls is not None:
                self.api_calls = int(api_calls)
                if api_calls == 0:
                    self._calls.clear()

    def limits(self) -> dict[str, Any]:
        """`GET /limits` (reference B6)."""
        with self.lock:
            remaining = max(0, self.daily_api_max - self.api_calls)
            return {
                "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
                "DailyApiRequests": {"Max": self.daily_api_max, "Remaining": remaining},
                "DailyAsyncApexExecutions": {"Max": 250000, "Remaining": 250000},
                "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
                "DailyBulkV2QueryFileStorageMB": {"Max": 976562, "Remaining": 976562},
                "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
                "DataStorageMB": {"Max": 5, "Remaining": 5},
                "FileStorageMB": {"Max": 20, "Remaining": 20},
                "HourlyTimeBasedWorkflow": {"Max": 50, "Remaining": 50},
            }
