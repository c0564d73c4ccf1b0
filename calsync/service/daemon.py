"""`calsync run`: the long-running daemon. APScheduler jobs, signals, systemd notify, backoff.

One APScheduler 3.x interval job per configured calendar on a `BackgroundScheduler` whose pool
has `sync.concurrency` workers, so a slow or failing calendar holds one worker and never delays
the others; calendars drift apart instead of firing together, and a failing one backs off
(scheduling.py). Every job runs `cycle.run([user])` on a `Cycle` of its own over its worker
thread's state connection, which stays open across runs (runs.py).

`Daemon` is the facade: it owns the life cycle (start, SIGHUP reload, shutdown) and the main
thread, and delegates to one object per concern, all sharing what they know of the calendars on
one `Board` (board.py):
- `Jobs` (scheduling.py): the scheduler, its jobs, their timing;
- `CalendarRunner` (runs.py): one calendar's run on a pool thread, its outcome recorded;
- `Health` (health.py): STATUS=, WATCHDOG=1, the metrics, the summary and load lines;
- `PushRuns` (push_runs.py): the push service, notifications turned into prompt runs;
- `AdminJobs` (admin_jobs.py): admin commands handed over by the CLI, run on the pool.

The main thread owns the signals and systemd. It sleeps in select() on a self-pipe that the
signal machinery (`signal.set_wakeup_fd`) and finished jobs write to, so handlers run no logic:
- SIGTERM / SIGINT: STOPPING=1, stop scheduling, wait up to `stop_grace` (8 s) for the running
  jobs, return 0. Every state write is one SQLite transaction, so a job cut short loses nothing:
  the next run lists the same Google changes again (see cycle.py). A second signal stops waiting.
- SIGHUP: RELOADING=1, reload the configuration: calendars added or removed become jobs added or
  removed, a new interval re-times the jobs; a configuration that does not load (or whose state
  database does not open, or is being written by another calsync) is logged and the running one
  kept, and STATUS= says so ("reload FAILED ...") until a reload succeeds. Then READY=1 again.
  (The unit's ExecReload= runs `calsync check-config` before signalling, so `systemctl reload`
  itself fails on a configuration that does not load.)
- READY=1 once the first schedule is set up; WATCHDOG=1 every half $WATCHDOG_USEC while the
  scheduler thread is alive; STATUS= one line, metrics, listeners' state (health.py).

The daemon is the writer of its state database: it holds the single-writer lock (lock.py) from
start to stop, so a hand-run `calsync sync` is refused while it runs (and the daemon does not
start, exit 75, while another calsync writes the database). The admin's writing commands
(`retry`, `retry --drop`, `resync`) are handed to it instead (handoff.py, admin_jobs.py).

`CALSYNC_INTERVAL_SECONDS` (or the hidden `calsync run --interval-seconds`) overrides
`sync.interval_minutes` without touching the configuration: a testing aid, not for production.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import select
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from calsync.core.config import Config
from calsync.core.errors import EXIT_FAILURE, EXIT_OK, CalsyncError
from calsync.core.logs import event as log_event
from calsync.service.admin_jobs import AdminJobs, handoff_poll_seconds
from calsync.service.board import Board, CalendarRun, CalendarStatus, SyncOne, known_status
from calsync.service.health import STATUS_REFRESH, Health, status_line
from calsync.service.notify import Notifier, watchdog_interval
from calsync.service.push_runs import PushRuns
from calsync.service.runs import CalendarRunner, sync_calendar
from calsync.service.scheduling import (
    INTERVAL_ENV,
    Jobs,
    Schedule,
    backoff_delay,
    first_run_offsets,
    interval_of,
    warn_if_over_budget,
)
from calsync.state.lock import WriterLock
from calsync.state.store import StateStore

log = logging.getLogger("calsync.daemon")  # names predate the layers (ARCHITECTURE.md)

STOP_GRACE = 8.0  # seconds running jobs get to finish after SIGTERM


class Daemon:
    """The scheduler, its jobs and the main-thread loop. `run()` is the whole life of `calsync run`.

    `load_config` reads the configuration (and sets up logging); it is called at start and on
    every SIGHUP. `sync_one` runs one calendar (tests pass their own). `watchdog_seconds` is the
    ping period; None reads it from $WATCHDOG_USEC/$WATCHDOG_PID (no watchdog when unset).
    `start()`, `reload()`, `stop()` and `status()` are public so tests can drive the daemon
    without signals.
    """

    def __init__(
        self,
        load_config: Callable[[], Config],
        *,
        interval_override: dt.timedelta | None = None,
        notifier: Notifier | None = None,
        sync_one: SyncOne = sync_calendar,
        stop_grace: float = STOP_GRACE,
        rng: random.Random | None = None,
        watchdog_seconds: float | None = None,
        lock_wait: float = 0.0,
    ) -> None:
        self._load_config = load_config
        self.lock_wait = lock_wait  # seconds to wait at start for another writer of the state
        # The single-writer locks held: the state database's, and after a reload to another
        # state path that one's too (a job may still be finishing on the old one); all until stop.
        self._writers: list[WriterLock] = []
        self.interval_override = interval_override
        self.stop_grace = stop_grace
        rng = rng or random.Random()
        self._config: Config | None = None
        self._wakeup = Wakeup()
        self.abandoned: tuple[str, ...] = ()  # calendars still running when stop() gave up
        # One object per concern, sharing the board (see the module's docstring).
        board = self._board = Board()
        jobs = self._jobs = Jobs(rng)
        wake = self._wakeup.wake
        self._push = PushRuns(board, jobs, wake)
        self._health = Health(
            board, jobs, self._push,
            notifier if notifier is not None else Notifier.from_environ(),
            watchdog_seconds if watchdog_seconds is not None else watchdog_interval(),
            config=self._current_config, schedule=self._current_schedule, wake=wake,
        )
        self._admin = AdminJobs(board, jobs, config=self._current_config, wake=wake)
        self._runner = CalendarRunner(board, jobs, self._push, sync_one, rng,
                                      config=self._current_config,
                                      schedule=self._current_schedule, wake=wake)

    # -- properties ------------------------------------------------------------------------------

    @property
    def config(self) -> Config:
        if self._config is None:
            raise RuntimeError("the daemon is not started")
        return self._config

    @property
    def schedule(self) -> Schedule:
        return Schedule.for_interval(interval_of(self.config, self.interval_override))

    def _current_config(self) -> Config:  # for the parts: the configuration of now (reloads)
        return self.config

    def _current_schedule(self) -> Schedule:
        return self.schedule

    @property
    def scheduler(self) -> BackgroundScheduler:
        return self._jobs.scheduler

    @property
    def healthy(self) -> bool:
        """The scheduler runs and its thread is alive (what WATCHDOG=1 vouches for)."""
        return self._jobs.healthy

    @property
    def notifier(self) -> Notifier:
        return self._health.notifier

    @property
    def watchdog_seconds(self) -> float | None:
        return self._health.watchdog_seconds

    @property
    def push(self) -> Any:
        """The push service (push.PushService) while `[google] push_url` is set, else None."""
        return self._push.service

    @push.setter
    def push(self, service: Any) -> None:
        self._push.service = service

    @property
    def runs(self) -> int:
        """Calendar runs finished since start (the "daemon load" line)."""
        return self._board.runs

    @runs.setter
    def runs(self, count: int) -> None:
        self._board.runs = count

    # What the board holds, under the names tests look at.

    @property
    def _lock(self) -> Any:
        return self._board.lock

    @property
    def _status(self) -> dict[str, CalendarStatus]:
        return self._board.status

    @property
    def _running(self) -> set[str]:
        return self._board.running

    @property
    def _notified(self) -> dict[str, dt.datetime]:
        return self._board.notified

    # -- status and push, as the parts tell ------------------------------------------------------

    def calendars(self) -> list[CalendarStatus]:
        return self._health.calendars()

    def next_run(self) -> dt.datetime | None:
        return self._health.next_run()

    def listeners(self) -> dict[str, tuple[bool, str | None]]:
        """Each listener the daemon runs: (listening, why not)."""
        return self._health.listeners()

    def status(self) -> str:
        return self._health.status()

    def notify_change(self, user: str) -> bool:
        """A push notification says `user`'s calendar changed: sync it soon, once (push_runs.py)."""
        return self._push.notify_change(user)

    def _log_load(self, since: tuple[float, float, int]) -> tuple[float, float, int]:
        return self._health.log_load(since)

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Load the configuration, schedule every calendar, start, then READY=1."""
        config = self._load_config()
        self._writers.append(_take_lock(config, self.lock_wait))
        _open_state(config)  # migrations run here, once, before any worker opens it
        self._config = config
        self._admin.open(config)
        self._board.status = known_status(config, config.sync.users)
        schedule = self.schedule
        self._jobs.create(config.sync.concurrency, self._runner.run)
        self._jobs.add(config.sync.users, schedule)
        self._jobs.start()
        self._health.serve_metrics(config)
        if config.google.push:
            self._push.start(config)
        log_event(
            log,
            "daemon started",
            calendars=len(config.sync.users),
            interval_seconds=round(schedule.interval.total_seconds(), 3),
            concurrency=config.sync.concurrency,
            watchdog_seconds=self.watchdog_seconds,
            push=config.google.push_url,
        )
        warn_if_over_budget(config, schedule.interval)
        self._health.ready()
        self._health.record_listeners()
        self._health.publish_metrics()

    def reload(self) -> bool:
        """SIGHUP: apply a new configuration, or keep the running one if the new one is bad."""
        self.notifier.reloading()
        log_event(log, "reloading configuration")
        old = self.config
        writer = None
        try:
            new = self._load_config()
            if new.state.location != old.state.location:
                writer = _take_lock(new, 0.0)
                _open_state(new)
            added = [u for u in new.sync.users if u not in old.sync.users]
            removed = [u for u in old.sync.users if u not in new.sync.users]
            known = known_status(new, added)
        except CalsyncError as exc:
            if writer is not None:
                writer.release()
            log_event(log, "configuration reload failed, keeping the running configuration",
                      level=logging.ERROR, error=str(exc))
            self._health.reload_error = str(exc)
            self._health.ready()
            return False
        self._health.reload_error = None
        if writer is not None:
            self._writers.append(writer)
            self._admin.open(new)
        old_schedule = self.schedule
        self._config = new
        schedule = self.schedule
        board = self._board
        for user in removed:
            self._jobs.remove(user)
            with board.lock:
                board.status.pop(user, None)
        if schedule != old_schedule:
            self._jobs.retime(schedule, board.backing_off)
        with board.lock:
            board.status.update(known)
        self._jobs.add(added, schedule)
        if new.sync.concurrency != old.sync.concurrency:
            log_event(log, "sync.concurrency changes apply after a restart", level=logging.WARNING,
                      running=old.sync.concurrency, configured=new.sync.concurrency)
        if new.metrics.listen != old.metrics.listen:
            log_event(log, "metrics.listen changes apply after a restart", level=logging.WARNING,
                      running=_address(old.metrics.listen), configured=_address(new.metrics.listen))
        self._push.reload(old, new)
        log_event(log, "configuration reloaded", calendars=len(new.sync.users),
                  added=",".join(added) or None, removed=",".join(removed) or None,
                  interval_seconds=round(schedule.interval.total_seconds(), 3))
        self._health.ready()
        self._health.publish_metrics()
        return True

    def stop(self) -> bool:
        """Stop scheduling, wait up to `stop_grace` for running jobs; True if none was left."""
        board = self._board
        if board.stopping.is_set():
            return not self.abandoned
        board.stopping.set()
        with board.lock:
            running = sorted(board.running)
        log_event(log, "stopping", running=",".join(running) or "none")
        self.notifier.stopping("stopping")
        self._push.stop_listening()  # no notification starts anything any more
        # Queued runs find the board stopping and return at once; running ones get the grace
        # period below.
        self._jobs.shutdown()
        self._health.stop_metrics()
        left = self._wait_for_jobs(time.monotonic() + self.stop_grace)
        self.abandoned = tuple(left)
        self._push.stop()
        if left:
            # The lock stays held: the process exits at once and the kernel releases it then.
            log_event(log, "stopped with calendars still syncing; their uncommitted work is"
                      " redone next run", level=logging.WARNING, running=",".join(left))
        else:
            _close_stores()
            self._admin.close()
            self._release_locks()
            log_event(log, "daemon stopped")
        return not left

    def run(self) -> int:
        """The whole daemon in the main thread: signals, start, loop, stop. Returns an exit code."""
        write_fd = self._wakeup.open()
        handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        # The handlers do nothing: the C-level handler writes the signal number to the wakeup fd,
        # which the loop below reads. Nothing runs inside a signal handler that could deadlock.
        old_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        previous = {sig: signal.signal(sig, _ignore_signal) for sig in handled}
        code = EXIT_OK
        try:
            self.start()
            code = self._loop()
        finally:
            if self._jobs.started:  # started (a start that failed has nothing to stop)
                self.stop()
            else:  # perhaps locked, then the start failed
                self._admin.close()
                self._release_locks()
            signal.set_wakeup_fd(old_fd)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.notifier.close()
            self._wakeup.close()
        return code

    def _release_locks(self) -> None:
        while self._writers:
            self._writers.pop().release()

    # -- the main loop ---------------------------------------------------------------------------

    def _loop(self) -> int:
        health = self._health
        health.begin()
        next_requests = time.monotonic()
        while True:
            now = time.monotonic()
            health.log_lines(now)
            if now >= next_requests:
                next_requests = now + handoff_poll_seconds()
                self._admin.take()
            if not health.ping(now):
                log_event(log, "scheduler thread died, exiting", level=logging.ERROR)
                return EXIT_FAILURE
            timeout = health.timeout(now, min(STATUS_REFRESH, max(0.0, next_requests - now)))
            for signum in self._wait_for_wakeup(timeout):
                if signum in (signal.SIGTERM, signal.SIGINT):
                    log_event(log, "signal received", signal=signal.Signals(signum).name)
                    return EXIT_OK
                if signum == signal.SIGHUP:
                    self.reload()
            if not self.healthy:
                log_event(log, "scheduler thread died, exiting", level=logging.ERROR)
                return EXIT_FAILURE
            health.refresh(time.monotonic())

    def _wait_for_wakeup(self, timeout: float) -> list[int]:
        """Sleep until a signal, a finished job or `timeout`; the signal numbers received."""
        data = self._wakeup.wait(timeout)
        if 0 in data:
            self._health.changed()
        return [byte for byte in data if byte]  # 0 is a job's "status changed"

    def _wait_for_jobs(self, deadline: float) -> list[str]:
        """Until no job runs or `deadline`; a second SIGTERM/SIGINT stops waiting."""
        board = self._board
        while True:
            with board.lock:
                if not board.running and not board.requests_running:
                    return []
                left = board.busy()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return left
                if not self._wakeup.opened:
                    board.done.wait(min(remaining, 0.5))
                    continue
            for signum in self._wait_for_wakeup(min(remaining, 0.1)):
                if signum in (signal.SIGTERM, signal.SIGINT):
                    with board.lock:
                        return board.busy()


class Wakeup:
    """The main thread's sleep: a socket pair that the signal machinery (`set_wakeup_fd`: the
    signal's number) and finished jobs (a 0 byte) write to. Open only while `run()` runs;
    `wake()` is a no-op otherwise."""

    def __init__(self) -> None:
        self._read: socket.socket | None = None
        self._write: socket.socket | None = None

    @property
    def opened(self) -> bool:
        return self._read is not None

    def open(self) -> int:
        """The pair made; the writing end's file descriptor (for `signal.set_wakeup_fd`)."""
        self._read, self._write = socket.socketpair()
        self._read.setblocking(False)
        self._write.setblocking(False)
        return self._write.fileno()

    def close(self) -> None:
        read, write, self._read, self._write = self._read, self._write, None, None
        for end in (read, write):
            if end is not None:
                end.close()

    def wait(self, timeout: float) -> bytes:
        """Sleep until something is written or `timeout`; the bytes written."""
        assert self._read is not None
        try:
            readable, _, _ = select.select([self._read], [], [], timeout)
        except InterruptedError:  # pragma: no cover - PEP 475 retries select() itself
            readable = []
        if not readable:
            return b""
        try:
            return self._read.recv(4096)
        except (BlockingIOError, InterruptedError):
            return b""

    def wake(self) -> None:
        write = self._write
        if write is None:
            return
        try:
            write.send(b"\0")
        except OSError:  # full (the loop is behind anyway) or closed (we are stopping)
            pass


# ---------------------------------------------------------------------------------------------
# The state database, at start and reload


def _take_lock(config: Config, wait: float) -> WriterLock:
    """The single-writer lock of the configuration's state database (LockBusy: exit 75)."""
    writer = WriterLock(config.state, "run")
    writer.acquire(wait)
    return writer


def _open_state(config: Config) -> None:
    """Open (and migrate) the state database once in this thread and check it can be read
    and written; StateError (exit 74, which systemd does not restart) if not."""
    store = StateStore(config.state)
    try:
        store.check_usable()
    finally:
        store.close()


def _close_stores() -> None:
    from calsync.service.runtime import close_thread_stores

    close_thread_stores()


def _address(listen: tuple[str, int] | None) -> str | None:
    return f"{listen[0]}:{listen[1]}" if listen else None


def _ignore_signal(signum: int, frame: Any) -> None:
    """Installed for SIGTERM/SIGINT/SIGHUP so the wakeup fd gets them; the loop acts on them."""


# The daemon's public names, wherever they live now (commands/status.py, cli.py and tests import
# them from here).
__all__ = [
    "CalendarRun",
    "CalendarStatus",
    "Daemon",
    "INTERVAL_ENV",
    "Schedule",
    "backoff_delay",
    "first_run_offsets",
    "interval_of",
    "status_line",
    "sync_calendar",
]
