"""`calsync status --check`: one line and an exit status a monitoring system understands.

The Monitoring Plugins guidelines (used by Nagios, Icinga, Naemon, Sensu, Zabbix's and
Checkmk's "nagios" checks): exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; one line of output,
`SERVICE STATUS - text`, optionally followed by `|` and performance data
`'label'=value[UOM];[warn];[crit];[min];[max]`.

What calsync reports, read from the state database only (no network, no lock):
- CRITICAL: a configured calendar without a successful sync for longer than `max_age` (default:
  three intervals), never synced at all, or a user the last mapping found no active Salesforce
  User for (its calendar can never sync);
- WARNING: a calendar that failed `max_failures` (3) or more times in a row, while it is not
  yet stale (failures show at once, not only when `max_age` has passed); records Salesforce
  refused, parked for a retry (each named: owner, subject, start);
  a listener of the running daemon (push, metrics) that cannot listen (polling goes on);
- UNKNOWN: the configuration or the state database cannot be read.
"""

from __future__ import annotations

import datetime as dt
import re

from calsync.commands.status import StatusReport

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}
SHOWN = 3  # calendars or records named on the line; the rest are counted
MAX_FAILURES = 3  # failed runs in a row that make a WARNING

_DURATION = re.compile(r"(\d+)\s*(min|d|h|m|s)?", re.IGNORECASE)
_UNITS = {"d": 86400, "h": 3600, "m": 60, "min": 60, "s": 1, None: 1}


def parse_duration(text: str) -> dt.timedelta:
    """`90m`, `2h`, `1h30m`, `1d`, `3600` (seconds) → timedelta; ValueError otherwise."""
    value = text.strip()
    position, seconds = 0, 0
    for match in _DURATION.finditer(value):
        if match.start() != position and value[position:match.start()].strip():
            break
        seconds += int(match.group(1)) * _UNITS[(match.group(2) or "").lower() or None]
        position = match.end()
    if not value or position != len(value) or seconds <= 0:
        raise ValueError(f"{text!r} is not a duration (e.g. 90m, 2h, 1h30m, 1d, 3600)")
    return dt.timedelta(seconds=seconds)


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def check(
    report: StatusReport, max_age: dt.timedelta | None = None, *, max_failures: int = MAX_FAILURES
) -> tuple[int, str]:
    """The exit status and the one line for `report`."""
    max_age = max_age or report.interval * 3
    calendars = [c for c in report.calendars if c.configured]
    unmapped = set(report.unmapped)
    stale = []
    oldest = 0.0
    for c in calendars:
        if c.user in unmapped:
            continue
        if c.last_success_at is None:
            stale.append(f"{c.user} never synced")
            oldest = max(oldest, float("inf"))
            continue
        age = (report.now - c.last_success_at).total_seconds()
        oldest = max(oldest, age)
        if age > max_age.total_seconds():
            why = f": {c.last_error}" if c.last_attempt_failed and c.last_error else ""
            stale.append(f"{c.user} last synced {_age(age)} ago{why}")
    parked = [p for c in calendars for p in c.retries]
    failing = sorted((c for c in calendars if c.consecutive_failures >= max_failures),
                     key=lambda c: (-c.consecutive_failures, c.user))

    problems = []
    if stale:
        problems.append(f"{len(stale)} of {len(calendars)} calendars not synced within "
                        f"{_age(max_age.total_seconds())} ({_some(stale)})")
    if unmapped:
        problems.append(f"users without a Salesforce User: {_some(sorted(unmapped))}")
    if failing:
        problems.append(
            f"{len(failing)} calendar{'s' if len(failing) != 1 else ''} failing {max_failures}+ times"
            " in a row (" + _some([f"{c.user} ×{c.consecutive_failures}: {c.last_error or '?'}"
                                   for c in failing]) + ")")
    for name, why in report.listeners_down.items():
        problems.append(f"{name} listener down: {why}")
    if parked:
        problems.append(f"{len(parked)} record{'s' if len(parked) != 1 else ''} refused by "
                        "Salesforce, waiting for a retry ("
                        + _some([f"{p.describe()}: {p.retry.status_code or '?'}" for p in parked]) + ")")
    code = CRITICAL if stale or unmapped else (WARNING if parked or failing or report.listeners_down else OK)
    text = "; ".join(problems) or (
        f"{len(calendars)} calendars synced within {_age(max_age.total_seconds())}, "
        f"none failing {max_failures} times in a row, no record waiting for a retry"
    )
    limit = int(max_age.total_seconds())
    perf = [
        f"calendars={len(calendars)};;;0",
        f"stale={len(stale)};;0;0",
        f"unmapped={len(unmapped)};;0;0",
        f"parked={len(parked)};0;;0",
        f"failing={len(failing)};0;;0",
    ]
    if oldest != float("inf") and calendars:
        perf.append(f"oldest_sync_age={int(oldest)}s;;{limit};0")
    return code, f"CALSYNC {NAMES[code]} - {text} | {' '.join(perf)}"


def unknown(message: str) -> tuple[int, str]:
    return UNKNOWN, f"CALSYNC UNKNOWN - {message}"


def _some(items: list[str]) -> str:
    more = f", +{len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return ", ".join(items[:SHOWN]) + more
