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
  small queries (`gauges.gauges`), whatever the size of the state; they survive a restart and
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
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest

from calsync.core import atomic
from calsync.service import gauges as calendar_gauges
# The instruments are defined in the core layer (the HTTP layer counts too); these are their
# names for the service and its tests.
from calsync.core.telemetry import (  # noqa: F401
    REGISTRY,
    counter,
    gauge,
    value,
    note_limit_info,
    LAST_SUCCESS,
    FAILURES,
    NEXT_RUN,
    PARKED,
    EVENTS,
    REFUSED,
    CALLS,
    CYCLES,
    UNMAPPED,
    BUILD_INFO,
    ALLOWANCE,
    NOTIFICATIONS_RECEIVED,
    NOTIFICATIONS_REFUSED,
    NOTIFICATIONS_ACTED,
    CHANNELS_OPENED,
    CHANNELS_STOPPED,
    LISTENER_UP,
    CONNECTIONS_CLOSED,
    GOOGLE_THROTTLED,
)

log = logging.getLogger("calsync.metrics")  # names predate the layers (ARCHITECTURE.md)

def observe_cycle(result: Any, seconds: float) -> None:
    """Count what one `CycleResult` did."""
    CYCLES.observe(seconds)
    CALLS.labels("salesforce").inc(result.salesforce_calls)
    for outcome in result.calendars.values():
        CALLS.labels("google").inc(outcome.google_calls)
        for operation in ("created", "updated", "deleted"):
            EVENTS.labels(operation).inc(getattr(outcome, operation))
        REFUSED.inc(outcome.failed)


_lock = threading.Lock()  # one refresh at a time: the daemon's and a cycle's may meet
_labelled: set[str] = set()  # the users the per-calendar gauges have samples for


def refresh(config: Any, next_runs: Mapping[str, dt.datetime | None] | None = None) -> None:
    """Set the per-calendar gauges from the state database (`gauges.gauges`: one row per calendar
    and the parked records counted, read-only, whatever the size of the file).

    `next_runs`: the daemon's scheduled runs by user, which beat the estimate.
    """
    found = calendar_gauges.gauges(config)
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
