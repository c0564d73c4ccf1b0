"""The daemon's side of the admin commands handed over by the CLI (handoff.py).

The daemon is the writer of its state database, so the admin's writing commands (`retry`,
`retry --drop`, `resync`) are handed to it: the main loop looks for requests every
`handoff.POLL_SECONDS` (`take`) and runs each as a one-off job on the pool (`run`), holding the
calendars it touches (their polls wait and run right after), then writes back the answer.
Requests a previous daemon took but never finished are marked abandoned at start.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from calsync.core.config import Config
from calsync.core.errors import EXIT_FAILURE, CalsyncError
from calsync.core.logs import event as log_event
from calsync.service.board import Board, known_status
from calsync.service.scheduling import PUSH_DEBOUNCE, Jobs
from calsync.state.store import StateStore

log = logging.getLogger("calsync.daemon")  # names predate the layers (ARCHITECTURE.md)


def handoff_poll_seconds() -> float:
    from calsync.service.handoff import POLL_SECONDS

    return POLL_SECONDS


def _field(value: Any) -> Any:
    """A request argument in a log line: lists joined."""
    return ",".join(map(str, value)) if isinstance(value, list) else value


class AdminJobs:
    """Requests looked for on the main thread's own connection, run on the pool.

    `config` gives the daemon's current configuration; `wake` tells the main thread that a
    request ended (STATUS= follows).
    """

    def __init__(self, board: Board, jobs: Jobs, *, config: Callable[[], Config],
                 wake: Callable[[], None]) -> None:
        self._board = board
        self._jobs = jobs
        self._config = config
        self._wake = wake
        self._store: StateStore | None = None  # the main thread's connection to look for requests

    def open(self, config: Config) -> None:
        """The main thread's connection to look for requests; requests a previous daemon took
        but never finished are marked abandoned (their CLI, if still waiting, exits 75)."""
        from calsync.service import handoff

        self.close()
        store = StateStore(config.state)
        self._store = store
        left = handoff.abandon_unfinished(store)
        if left:
            log_event(log, "admin requests of a previous daemon abandoned", level=logging.WARNING,
                      requests=left)

    def close(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            store.close()

    def take(self) -> None:
        """Every POLL_SECONDS: requests pending in the state database become one-off jobs."""
        from calsync.service import handoff

        store = self._store
        if store is None or self._board.stopping.is_set() or not self._jobs.started:
            return
        try:
            if not handoff.any_pending(store):
                return
            taken = handoff.take(store, os.getpid())
        except CalsyncError as exc:  # the state database is busy or failing: the runs say so
            log_event(log, "cannot read admin requests", level=logging.WARNING, error=str(exc))
            return
        for request in taken:
            log_event(log, "admin request taken", request=request.id, command=request.command,
                      by=request.requested_by, **{k: _field(v) for k, v in request.arguments.items()})
            with self._board.lock:
                self._board.requests_running.add(request.id)
            self._jobs.add_once(self.run, (request,), f"request:{request.id}")

    def run(self, request: Any) -> None:
        """One admin command on a pool thread, once the calendars it touches are free."""
        from calsync.service import admin, handoff
        from calsync.service.runtime import reused_cycle, thread_store

        config = self._config()
        users = admin.users_of(request.arguments) or list(config.sync.users)
        started = time.monotonic()
        try:
            store = thread_store(config)
            if not self.claim(users):
                handoff.abandon(store, request.id, "the daemon is stopping")
                return
            try:
                answer = admin.run(
                    config, request.command, request.arguments, by=request.requested_by,
                    progress=lambda line: handoff.note_progress(store, request.id, line),
                    cycle_factory=reused_cycle,
                )
            except CalsyncError as exc:
                answer = admin.Answer(exc.exit_code, (f"calsync: {exc}",))
            except Exception as exc:  # noqa: BLE001 - a bug in one request must not stop the daemon
                log_event(log, "admin request crashed", level=logging.ERROR, exc_info=True,
                          request=request.id, error=f"{type(exc).__name__}: {exc}")
                answer = admin.Answer(EXIT_FAILURE, (f"calsync: {type(exc).__name__}: {exc}",))
            finally:
                self.release(users)
            handoff.finish(store, request.id, answer)
            log_event(log, "admin request done", request=request.id, command=request.command,
                      exit_code=answer.exit_code, seconds=round(time.monotonic() - started, 3))
        except CalsyncError as exc:  # the state database failed under the request itself
            log_event(log, "admin request failed", level=logging.ERROR, request=request.id,
                      error=str(exc))
        finally:
            with self._board.lock:
                self._board.requests_running.discard(request.id)
                self._board.done.notify_all()
            self._refresh_calendars(users)
            self._wake()

    def claim(self, users: Sequence[str]) -> bool:
        """Wait until none of `users` is syncing, then hold them; False when stopping."""
        board = self._board
        wanted = set(users)
        with board.lock:
            while (wanted & (board.running | board.claimed)) and not board.stopping.is_set():
                board.done.wait(0.5)
            if board.stopping.is_set():
                return False
            board.claimed |= wanted
            return True

    def release(self, users: Sequence[str]) -> None:
        board = self._board
        with board.lock:
            board.claimed -= set(users)
            skipped = sorted(board.after_claim & set(users))
            board.after_claim -= set(skipped)
            board.done.notify_all()
        for user in skipped:  # polls that came due meanwhile run now
            self._run_soon(user)

    def _run_soon(self, user: str) -> None:
        if self._board.stopping.is_set():
            return
        self._jobs.run_at(user, dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=PUSH_DEBOUNCE))

    def _refresh_calendars(self, users: Sequence[str]) -> None:
        """After an admin command: each calendar's status as the state now says (records it
        wrote or dropped, a failure it met)."""
        try:
            known = known_status(self._config(), users)
        except CalsyncError:
            return
        self._board.update(known)


__all__ = ["AdminJobs", "handoff_poll_seconds"]
