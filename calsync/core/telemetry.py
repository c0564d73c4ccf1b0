"""calsync's Prometheus instruments: one registry and the counters and gauges every layer adds to.

They live in the core layer because the lowest layers count too: the HTTP layer reads the org's
API allowance from every Salesforce answer (`note_limit_info`), the Google client counts
throttles. Reading the state into the per-calendar gauges, the textfile and the /metrics listener
are the service's (calsync/service/metrics.py), which re-exports these names.

Everything lives in `REGISTRY` (prometheus-client), not in the library's global default one, so
a test or a second daemon in one process cannot collide with another library's metrics. Other
modules add their own with `counter()`/`gauge()`, which return the existing metric when it is
already registered.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.metrics import MetricWrapperBase

# No `*_created` series beside every counter: they double the file and no calsync alert uses them.
disable_created_metrics()

REGISTRY = CollectorRegistry(auto_describe=True)
_lock = threading.Lock()
_metrics: dict[str, MetricWrapperBase] = {}


def _get(kind: type[Any], name: str, documentation: str, labels: tuple[str, ...], **extra: Any) -> Any:
    with _lock:
        found = _metrics.get(name)
        if found is None:
            found = kind(name, documentation, labels, registry=REGISTRY, **extra)
            _metrics[name] = found
        return found


def counter(name: str, documentation: str, labels: tuple[str, ...] = ()) -> Counter:
    """The counter `name` in calsync's registry (created on first use). `name` without
    `_total`: prometheus-client appends it."""
    return _get(Counter, name, documentation, labels)  # type: ignore[no-any-return]


def gauge(name: str, documentation: str, labels: tuple[str, ...] = ()) -> Gauge:
    return _get(Gauge, name, documentation, labels)  # type: ignore[no-any-return]


# Per calendar, from the state database.
LAST_SUCCESS = gauge("calsync_last_success_timestamp_seconds",
                     "Unix time of the calendar's last successful sync.", ("user",))
FAILURES = gauge("calsync_consecutive_failures",
                 "Failed runs of the calendar in a row (0 after a success).", ("user",))
NEXT_RUN = gauge("calsync_next_run_timestamp_seconds",
                 "Unix time of the calendar's next run (the daemon's schedule, else an estimate).",
                 ("user",))
PARKED = gauge("calsync_records_parked",
               "Records Salesforce refused, waiting for a retry, by owner and statusCode.",
               ("user", "status_code"))
# Counters of this process.
EVENTS = counter("calsync_events_written", "Salesforce Events written, by operation.", ("operation",))
REFUSED = counter("calsync_records_refused", "Records Salesforce refused (then parked).", ())
CALLS = counter("calsync_api_calls", "API calls made, by service (google, salesforce).", ("service",))
CYCLES = Histogram(
    "calsync_cycle_duration_seconds", "Time one sync cycle took (a daemon run is one calendar).",
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800), registry=REGISTRY,
)
# The configured users the last user mapping found no active Salesforce User for (their
# calendars cannot sync until one is mapped).
UNMAPPED = gauge("calsync_unmapped_users",
                 "Configured users without an active Salesforce User (see [sync] user_map).")
# Which calsync runs: one sample of 1, the version as a label (the Prometheus `*_build_info`
# convention), so a dashboard or an alert can tell versions apart.
BUILD_INFO = gauge("calsync_build_info", "calsync's version (the value is always 1).", ("version",))
# The org's daily API allowance (Sforce-Limit-Info: api-usage=USED/LIMIT): made on the first
# answer that carries it, so the gauges are absent until calsync knows them. A 0 before the
# first Salesforce call (which can be an hour away on an idle daemon) would fire an alert on
# `_remaining < N` after every restart.
ALLOWANCE = {
    "used": ("calsync_salesforce_api_requests_used",
             "The org's API requests used in the last 24 hours (Sforce-Limit-Info)."),
    "remaining": ("calsync_salesforce_api_requests_remaining",
                  "The org's API requests left of its 24-hour allowance (Sforce-Limit-Info)."),
    "limit": ("calsync_salesforce_api_requests_limit",
              "The org's 24-hour API request allowance (Sforce-Limit-Info)."),
}
# Push notifications (push.py) and Google's throttles (google_clients.py).
NOTIFICATIONS_RECEIVED = counter("calsync_push_notifications_received",
                                 "Push notifications received by the listener (every POST).")
NOTIFICATIONS_REFUSED = counter(
    "calsync_push_notifications_refused",
    "Push notifications refused: unknown channel, wrong token, wrong resource or malformed.",
    ("reason",))
NOTIFICATIONS_ACTED = counter("calsync_push_notifications_acted",
                              "Push notifications that triggered (or queued) a sync of their calendar.")
CHANNELS_OPENED = counter("calsync_push_channels_opened", "Notification channels opened (events.watch).")
CHANNELS_STOPPED = counter("calsync_push_channels_stopped",
                           "Notification channels stopped (channels.stop).")
# The daemon's listeners (listener.py): up or down (a port that cannot be bound), and the
# connections their limits closed (idle, slow, evicted to make room, out of descriptors).
LISTENER_UP = gauge("calsync_listener_up",
                    "1 while the daemon's listener (push, metrics) listens, 0 while it cannot bind.",
                    ("listener",))
CONNECTIONS_CLOSED = counter(
    "calsync_listener_connections_closed",
    "Connections the listener's limits closed: idle, slow (request not whole in time), evicted"
    " (room for a new one), out_of_file_descriptors.", ("listener", "reason"))
GOOGLE_THROTTLED = counter("calsync_google_throttled",
                           "Google answers saying too many requests (429, 403 rate limits), by limit.",
                           ("scope",))


def value(name: str, **labels: str) -> float:
    """A sample's current value in calsync's registry (0 when never set): for tests and status."""
    found = REGISTRY.get_sample_value(name, labels or None)
    return float(found or 0.0)


# Not the `per-app-api-usage=17/250(appName=...)` that may share the header (reference B6).
_API_USAGE = re.compile(r"(?<![\w-])api-usage=(\d+)/(\d+)")


def note_limit_info(header: str | None) -> None:
    """Salesforce's `Sforce-Limit-Info: api-usage=25/15000` (reference B6): used and limit."""
    match = _API_USAGE.search(header or "")
    if match is None:
        return
    used, limit = int(match.group(1)), int(match.group(2))
    for kind, number in (("used", used), ("limit", limit), ("remaining", max(limit - used, 0))):
        gauge(*ALLOWANCE[kind]).set(number)
