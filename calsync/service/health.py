"""How the daemon tells how it is: systemd's STATUS= and WATCHDOG=1, the metrics, its log lines.

- WATCHDOG=1 every half $WATCHDOG_USEC while the scheduler thread is alive; STATUS= one line
  ("3 calendars, 3 ok, 1 record waiting for retry (bob@acme.test), next run 10:42:00 UTC",
  `status_line`), worked out after runs end (at most every STATUS_MIN_GAP) and at least every
  STATUS_REFRESH.
- Metrics (metrics.py): after calendar runs, at most once per tenth of the interval (1-300 s),
  the gauges are refreshed from the state (one row per calendar) and the `[metrics] textfile`
  rewritten; `[metrics] listen` serves /metrics for the daemon's life (listener.py).
- Listeners (push, metrics) that cannot bind never stop the daemon: they retry, and STATUS=,
  the state (`meta` "listeners", for `calsync status`) and `calsync_listener_up` say so.
- Logs: a poll that found nothing logs at debug (cycle.py); one "daemon summary" line per
  interval counts the runs, those that changed something, failures and Salesforce calls; one
  "daemon load" line every LOAD_EVERY gives the CPU per run.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from calsync.core.config import Config
from calsync.core.errors import CalsyncError
from calsync.core.logs import event as log_event
from calsync.service.board import Board, CalendarStatus, IntervalCounts
from calsync.service.notify import Notifier
from calsync.service.push_runs import PushRuns
from calsync.service.scheduling import Jobs, Schedule

log = logging.getLogger("calsync.daemon")  # names predate the layers (ARCHITECTURE.md)

STATUS_REFRESH = 30.0  # seconds; the main loop wakes at least this often
# STATUS= is worked out over every calendar and job (10,000 at scale): at most this often, not
# after each of the dozens of runs a second that end.
STATUS_MIN_GAP = 1.0
# The gauges and the textfile are worked out over every calendar (a read of one row each, and
# the exposition of all of them): after runs end, at most once per tenth of the interval,
# between 1 s and 5 minutes, so that publishing costs a small share of the polls it reports
# (issue 17: with [metrics] the daemon must stay within 1.2 x the CPU it uses without).
METRICS_MIN_GAP = 1.0
METRICS_MAX_GAP = 300.0
LOAD_EVERY = 600.0  # seconds between two "daemon load" lines (runs, CPU per run)


def status_line(
    calendars: Sequence[CalendarStatus],
    next_run: dt.datetime | None,
    *,
    shown: int = 3,
    reload_error: str | None = None,
    listeners_down: Sequence[tuple[str, str | None]] = (),
) -> str:
    """One line for systemd's STATUS=, e.g. "3 calendars, 2 ok, 1 failing (bob@acme.test ×4),
    2 records waiting for retry (bob@acme.test), next run 10:42:00 UTC". At most `shown`
    calendars are named per part. A failed reload comes first, until a reload succeeds; a
    listener that cannot listen ((name, why) in `listeners_down`) next, until it listens."""
    total = len(calendars)
    parts = [f"{total} calendar{'s' if total != 1 else ''}"]
    ok = sum(1 for c in calendars if c.state == "ok")
    parts.append(f"{ok} ok")
    failing = sorted(
        (c for c in calendars if c.state == "failing"),
        key=lambda c: (-c.consecutive_failures, c.user),
    )
    if failing:
        named = ", ".join(f"{c.user} ×{c.consecutive_failures}" for c in failing[:shown])
        more = f", +{len(failing) - shown} more" if len(failing) > shown else ""
        parts.append(f"{len(failing)} failing ({named}{more})")
    pending = sum(1 for c in calendars if c.state == "pending")
    if pending:
        parts.append(f"{pending} pending")
    waiting = sorted((c for c in calendars if c.waiting), key=lambda c: (-c.waiting, c.user))
    if waiting:
        count = sum(c.waiting for c in waiting)
        named = ", ".join(c.user for c in waiting[:shown])
        more = f", +{len(waiting) - shown} more" if len(waiting) > shown else ""
        parts.append(f"{count} record{'s' if count != 1 else ''} waiting for retry ({named}{more})")
    if next_run is not None:
        moment = next_run.astimezone(dt.timezone.utc)
        parts.append(f"next run {moment:%H:%M:%S} UTC")
    else:
        parts.append("no run scheduled")
    line = ", ".join(parts)
    for name, why in reversed(listeners_down):
        line = f"{name} listener DOWN ({why or 'not listening'}; retrying), polling goes on; {line}"
    if reload_error:
        error = reload_error if len(reload_error) <= 160 else reload_error[:160] + "…"
        line = f"reload FAILED, running the previous configuration ({error}); {line}"
    return line


class Health:
    """STATUS=, WATCHDOG=1, the metrics and the periodic log lines, for the main thread.

    `watchdog_seconds` is the ping period (None: no watchdog). `config` and `schedule` give
    the daemon's current ones; `wake` wakes the main thread (a listener changed state).
    The main loop calls `begin()` once, then on each turn `log_lines`, `ping`, `timeout` and,
    after its sleep, `refresh`; a finished job's wake-up is `changed()`.
    """

    def __init__(self, board: Board, jobs: Jobs, push: PushRuns, notifier: Notifier,
                 watchdog_seconds: float | None, *, config: Callable[[], Config],
                 schedule: Callable[[], Schedule], wake: Callable[[], None]) -> None:
        self._board = board
        self._jobs = jobs
        self._push = push
        self.notifier = notifier
        self.watchdog_seconds = watchdog_seconds
        self._config = config
        self._schedule = schedule
        self._wake = wake
        self._last_status = ""
        self.reload_error: str | None = None  # the last reload failed: STATUS= says so
        self._metrics_server: Any = None  # [metrics] listen (a listener.Server)
        self._recorded_listeners: dict[str, Any] | None = None  # as last saved for `status`
        self._status_dirty = False  # a job ended since STATUS= was last worked out
        self._metrics_dirty = False  # a job ended since the metrics were last published
        self._published = float("-inf")  # time.monotonic() of the last publish
        self._next_ping = 0.0
        self._refreshed = 0.0
        self._load = (0.0, 0.0, 0)
        self._summary_at = 0.0

    # -- what STATUS= says -----------------------------------------------------------------------

    def calendars(self) -> list[CalendarStatus]:
        board = self._board
        with board.lock:
            return [board.status[u] for u in self._config().sync.users if u in board.status]

    def next_run(self) -> dt.datetime | None:
        if not self._jobs.started or self._board.stopping.is_set():
            return None
        return self._jobs.next_run()

    def listeners(self) -> dict[str, tuple[bool, str | None]]:
        """Each listener the daemon runs: (listening, why not)."""
        found: dict[str, tuple[bool, str | None]] = {}
        push = self._push.listener()
        if push is not None:
            found["push"] = push
        served = self._metrics_server
        if served is not None:
            found["metrics"] = (served.up, served.error)
        return found

    def status(self) -> str:
        down = [(name, why) for name, (up, why) in self.listeners().items() if not up]
        return status_line(self.calendars(), self.next_run(), reload_error=self.reload_error,
                           listeners_down=down)

    def ready(self) -> None:
        """READY=1 with the STATUS= of now (after the start, after a reload)."""
        status = self.status()
        self._last_status = status
        self.notifier.ready(status)

    def _refresh_status(self, status: str) -> None:
        if status != self._last_status:
            self._last_status = status
            self.notifier.status(status)

    def listener_changed(self, up: bool, error: str | None) -> None:
        """A listener came up or went down (its own thread): STATUS= and the record follow."""
        self._wake()

    def record_listeners(self) -> None:
        """The listeners' state in the state database (`meta`, "listeners"), when it changed,
        so that `calsync status` (another process) can say that push is down."""
        from calsync.service.runtime import thread_store

        found = {name: {"up": up, "error": error} for name, (up, error) in self.listeners().items()}
        if found == self._recorded_listeners:
            return
        now = dt.datetime.now(dt.timezone.utc)
        value = {"pid": os.getpid(), "at": now.isoformat(timespec="seconds"), "listeners": found}
        try:
            thread_store(self._config()).save_meta("listeners", value, now)
        except CalsyncError as exc:
            log_event(log, "cannot record the listeners' state", level=logging.WARNING,
                      error=str(exc))
            return
        self._recorded_listeners = found

    # -- metrics ---------------------------------------------------------------------------------

    def serve_metrics(self, config: Config) -> None:
        """`[metrics] listen`: /metrics for the daemon's life. A port that cannot be bound is
        logged and retried (listener.py); the daemon syncs without it meanwhile (the textfile,
        if any, still works) and STATUS= says so."""
        if config.metrics.listen is None:
            return
        from calsync.service import metrics

        host, port = config.metrics.listen
        self._metrics_server = metrics.serve(host, port, on_state=self.listener_changed)
        if self._metrics_server.up:
            log_event(log, "serving metrics", listen=f"{host}:{port}", path="/metrics")

    def stop_metrics(self) -> None:
        if self._metrics_server is not None:
            self._metrics_server.stop()
            self._metrics_server = None

    def metrics_gap(self) -> float:
        """Seconds between two publishes: a tenth of the interval, within the bounds."""
        tenth = self._schedule().interval.total_seconds() / 10
        return min(max(tenth, METRICS_MIN_GAP), METRICS_MAX_GAP)

    def publish_metrics(self) -> None:
        """Gauges from the state, the daemon's own next runs, the textfile (metrics.py)."""
        from calsync.service import metrics

        self._metrics_dirty = False
        self._published = time.monotonic()
        config = self._config()
        if config.metrics.textfile is None and self._metrics_server is None:
            return  # nothing to publish to: skip walking 10,000 jobs
        metrics.publish(config, self._jobs.next_runs())

    # -- the main loop's turns -------------------------------------------------------------------

    def begin(self) -> None:
        """The main loop starts: the first ping and lines are counted from now."""
        self._next_ping = time.monotonic()
        self._refreshed = 0.0
        self._load = (time.monotonic(), time.process_time(), self._board.runs)
        self._summary_at = time.monotonic()

    def log_lines(self, now: float) -> None:
        """The "daemon load" line every LOAD_EVERY, the "daemon summary" line every interval."""
        if now - self._load[0] >= LOAD_EVERY:
            self._load = self.log_load(self._load)
        if now - self._summary_at >= self._schedule().interval.total_seconds():
            self._summary_at = now
            self.log_summary()

    def ping(self, now: float) -> bool:
        """WATCHDOG=1 when due; False (no ping) when the scheduler thread died."""
        if self.watchdog_seconds is not None and now >= self._next_ping:
            if not self._jobs.healthy:
                return False
            self.notifier.watchdog()
            self._next_ping = now + self.watchdog_seconds
        return True

    def timeout(self, now: float, timeout: float) -> float:
        """`timeout`, shortened to the next ping, STATUS= or publish that is due."""
        if self.watchdog_seconds is not None:
            timeout = min(timeout, max(0.0, self._next_ping - now))
        if self._status_dirty:
            timeout = min(timeout, max(0.0, self._refreshed + STATUS_MIN_GAP - now))
        if self._metrics_dirty:
            timeout = min(timeout, max(0.0, self._published + self.metrics_gap() - now))
        return timeout

    def changed(self) -> None:
        """A job ended: STATUS= (and then the metrics) are worked out again soon."""
        self._status_dirty = True

    def refresh(self, now: float) -> None:
        """After the main loop's sleep: STATUS=, the listeners' record and the metrics, if due."""
        # STATUS= after runs ended (at most every STATUS_MIN_GAP), else every STATUS_REFRESH:
        # not on each wake-up to look for requests, which would walk every calendar a second.
        if (self._status_dirty and now - self._refreshed >= STATUS_MIN_GAP) or now - self._refreshed >= STATUS_REFRESH:
            self._metrics_dirty |= self._status_dirty
            self._status_dirty = False
            self._refreshed = now
            status = self.status()  # taken first: the metrics published next show it all
            if self._metrics_dirty and now - self._published >= self.metrics_gap():
                # Not after every run: the gauges read every calendar's row, which with
                # thousands of calendars polled every few minutes would cost more than the
                # polls (METRICS_MIN_GAP).
                self.publish_metrics()
            self._refresh_status(status)
            self.record_listeners()
        elif self._metrics_dirty and now - self._published >= self.metrics_gap():
            self.publish_metrics()  # runs ended before the gap: their gauges, now it is over

    # -- log lines -------------------------------------------------------------------------------

    def log_load(self, since: tuple[float, float, int]) -> tuple[float, float, int]:
        """One line every LOAD_EVERY: runs finished and this process's CPU per run (an idle
        run is one poll), so the cost of polling shows in the journal, not only in a benchmark."""
        now = (time.monotonic(), time.process_time(), self._board.runs)
        runs = now[2] - since[2]
        cpu = now[1] - since[1]
        log_event(log, "daemon load", runs=runs, minutes=round((now[0] - since[0]) / 60, 1),
                  cpu_seconds=round(cpu, 2),
                  cpu_ms_per_run=round(cpu * 1000 / runs, 2) if runs else None,
                  cpu_share=round(cpu / max(now[0] - since[0], 1e-9), 3))
        return now

    def log_summary(self) -> None:
        """One INFO line per interval: what the calendars' runs did (idle polls log at debug)."""
        board = self._board
        with board.lock:
            counts, board.interval_counts = board.interval_counts, IntervalCounts()
            failing = sorted(u for u, c in board.status.items() if c.state == "failing")
        log_event(log, "daemon summary", calendars=len(self._config().sync.users), polled=counts.runs,
                  changed=counts.changed, failed_runs=counts.failed, failing=len(failing),
                  failing_users=",".join(failing[:5]) + (f",+{len(failing) - 5}" if len(failing) > 5 else "") or None,
                  salesforce_calls=counts.salesforce_calls,
                  minutes=round(self._schedule().interval.total_seconds() / 60, 1))


__all__ = ["Health", "STATUS_REFRESH", "status_line"]
