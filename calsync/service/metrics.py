"""calsync's Prometheus metrics: one registry, a node_exporter textfile and an HTTP listener.

Everything lives in `REGISTRY` (prometheus-client), not in the library's global default one, so
a test or a second daemon in one process cannot collide with another library's metrics. Other
modules add their own with `counter()`/`gauge()`, which return the existing metric when it is
already registered (the daemon's push listener, for instance, can count notifications).

Two kinds of values:
- per calendar, from the state database (`refresh`, after a cycle; the daemon at most once per
  tenth of its interval): the last successful sync (0 for a calendar never synced: every
  configured user has a sample from the start), consecutive failures, the next run (the
  daemon's own schedule, else the `status` estimate), and records parked for retry by
  Salesforce statusCode; the number of users without a Salesforce User. Read read-only in three
  small queries (`ops.gauges`), whatever the size of the state; they survive a restart and
  agree with `calsync status`;
- counters of this process (`observe_cycle`): Events created, updated and deleted, records
  refused, Google and Salesforce API calls, cycle durations; and the org's daily API allowance
  from the `Sforce-Limit-Info` header of every Salesforce answer (`note_limit_info`), absent
  until the first such answer;
- `calsync_build_info{version}`, always 1.

`write_textfile(path)` writes the exposition format the way node_exporter's textfile collector
wants it: the whole file at once (atomic.py: a temporary file in the same directory, fsync,
rename(2)),
named `*.prom`, readable by other users (node_exporter runs as its own user; the unit's
UMask=0077 would otherwise make it 0600). No timestamps in the file: node_exporter adds its own
and refuses samples that carry one (node_exporter README, "Textfile Collector"). The rename
replaces a symbolic link planted at the path rather than writing through it.

`serve()` is the /metrics listener, on listener.py like the push listener (bounded, retried
when its port cannot be bound, `calsync_listener_up{listener="metrics"}`).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.metrics import MetricWrapperBase

from calsync.core import atomic

log = logging.getLogger("calsync.metrics")  # names predate the layers (ARCHITECTURE.md)

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


def observe_cycle(result: Any, seconds: float) -> None:
    """Count what one `CycleResult` did."""
    CYCLES.observe(seconds)
    CALLS.labels("salesforce").inc(result.salesforce_calls)
    for outcome in result.calendars.values():
        CALLS.labels("google").inc(outcome.google_calls)
        for operation in ("created", "updated", "deleted"):
            EVENTS.labels(operation).inc(getattr(outcome, operation))
        REFUSED.inc(outcome.failed)


_labelled: set[str] = set()  # the users the per-calendar gauges have samples for


def refresh(config: Any, next_runs: Mapping[str, dt.datetime | None] | None = None) -> None:
    """Set the per-calendar gauges from the state database (`ops.gauges`: one row per calendar
    and the parked records counted, read-only, whatever the size of the file).

    `next_runs`: the daemon's scheduled runs by user, which beat the estimate.
    """
    from calsync.commands import ops

    found = ops.gauges(config)
    planned = next_runs or {}
    with _lock:
        BUILD_INFO.labels(version()).set(1)
        UNMAPPED.set(found.unmapped)
        users = {c.user for c in found.calendars}
        for gone in _labelled - users:  # a calendar removed from the configuration disappears
            for metric in (LAST_SUCCESS, FAILURES, NEXT_RUN):
                try:
                    metric.remove(gone)
                except KeyError:
                    pass
        _labelled.clear()
        _labelled.update(users)
        for c in found.calendars:
            # Every configured user has a sample from the start: a calendar never synced is
            # 0 (1970), so `time() - calsync_last_success_timestamp_seconds > N` fires for it too.
            LAST_SUCCESS.labels(c.user).set(c.last_success_at.timestamp() if c.last_success_at else 0)
            FAILURES.labels(c.user).set(c.consecutive_failures)
            NEXT_RUN.labels(c.user).set((planned.get(c.user) or c.next_run_at).timestamp())
        PARKED.clear()
        for (user, code), count in found.parked.items():
            PARKED.labels(user, code).set(count)


def version() -> str:
    """calsync's version (`calsync.__version__`, its one source)."""
    from calsync import __version__

    return __version__


def render() -> bytes:
    return generate_latest(REGISTRY)


def write_textfile(path: str | Path) -> None:
    """The whole exposition at once at `path`, mode 0644 (atomic.py)."""
    atomic.write(path, render(), 0o644)


def publish(config: Any, next_runs: Mapping[str, dt.datetime | None] | None = None) -> None:
    """After a cycle: refresh the gauges and rewrite the textfile when one is configured.

    Never fails the caller: metrics that cannot be written are logged (a full disk, a missing
    directory), the sync itself went through. Without `[metrics]` nothing is read: the gauges
    cost a read-only copy of the state database.
    """
    if config.metrics.textfile is None and config.metrics.listen is None:
        return
    try:
        refresh(config, next_runs)
        if config.metrics.textfile is not None:
            write_textfile(config.metrics.textfile)
    except Exception as exc:  # noqa: BLE001 - metrics must never stop a sync
        log.warning("cannot publish metrics", extra={"fields": {
            "textfile": str(config.metrics.textfile), "error": f"{type(exc).__name__}: {exc}"}})


def serve(host: str, port: int, on_state: Any = None) -> Any:
    """Serve /metrics on host:port (listener.py: bounded connections and threads, deadlines;
    a port that cannot be bound is retried, never fatal); returns the `listener.Server`
    (`.stop()`, `.up`, `.error`). `on_state(up, error)` is told of every change."""
    from prometheus_client import make_wsgi_app

    from calsync.service.listener import Limits, OncePerMinute, Server

    app = make_wsgi_app(REGISTRY)
    closed = OncePerMinute(log, "metrics listener closed connections")

    def state(up: bool, error: str | None) -> None:
        LISTENER_UP.labels("metrics").set(1 if up else 0)
        if on_state is not None:
            on_state(up, error)

    def refused(cause: str) -> None:
        CONNECTIONS_CLOSED.labels("metrics", cause.replace(" ", "_")).inc()
        closed.note(cause)

    server = Server("metrics", (host, port), app, Limits(connections=20, max_body=1024),
                    on_state=state, on_refusal=refused, on_tick=closed.flush)
    LISTENER_UP.labels("metrics").set(1 if server.start() else 0)
    return server
