"""The daemon's side of push notifications: a notification becomes one prompt run of its calendar.

The push service (push.py: the listener Google posts to, the channel keeper) runs when
`[google] push_url` is set, follows the configuration on reload and stops its channels at
shutdown. A change notification asks for a run of its calendar `PUSH_DEBOUNCE` from now,
coalesced: one run per burst, one more run when it comes while the calendar runs, none for a
calendar backing off. A poll that finds changes no notification announced since the run before
it means the channel is lost: it is replaced (`PushService.suspect`). Polling goes on
regardless.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

from calsync.core.config import Config
from calsync.core.logs import event as log_event
from calsync.service.board import Board, CalendarRun
from calsync.service.scheduling import PUSH_DEBOUNCE, Jobs

log = logging.getLogger("calsync.daemon")  # names predate the layers (ARCHITECTURE.md)

PUSH_STOP_GRACE = 10.0  # seconds to stop the push channels at shutdown (TimeoutStopSec is 30 s)


class PushRuns:
    """Notifications turned into runs, and the push service's life in the daemon.

    `service` is the `push.PushService` while push is on (None otherwise; tests put their
    own). `wake` wakes the main thread when the listener comes up or goes down.
    """

    def __init__(self, board: Board, jobs: Jobs, wake: Callable[[], None]) -> None:
        self._board = board
        self._jobs = jobs
        self._wake = wake
        self.service: Any = None

    def notify_change(self, user: str) -> bool:
        """A push notification says `user`'s calendar changed: sync it soon, once.

        Coalesced: while its notified run is scheduled, more notifications change nothing;
        while it runs, they ask for one more run after it (the change may have come after its
        listing). A calendar backing off after failures keeps its backoff. Returns whether a
        run was scheduled or queued.
        """
        board = self._board
        if board.stopping.is_set() or not self._jobs.started:
            return False
        with board.lock:
            if user not in board.status:
                return False
            board.notified[user] = dt.datetime.now(dt.timezone.utc)
            if board.status[user].consecutive_failures > 1:
                return False
            if user in board.running:
                board.rerun.add(user)
                return True
            if user in board.push_due:
                return True
        return self.schedule_run(user)

    def schedule_run(self, user: str) -> bool:
        """`user`'s job runs PUSH_DEBOUNCE from now, as its notified run."""
        board = self._board
        if board.stopping.is_set():
            return False
        with board.lock:
            board.push_due.add(user)
        when = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=PUSH_DEBOUNCE)
        if not self._jobs.run_at(user, when):
            with board.lock:
                board.push_due.discard(user)
            return False
        return True

    def check_channel(self, user: str, outcome: CalendarRun,
                      previous_start: dt.datetime | None) -> None:
        """A poll found changes that no notification announced since the run before it: the
        channel is lost (Google dropped it, or notifications do not arrive): replace it."""
        push = self.service
        if push is None or not outcome.ok or outcome.full or outcome.items == 0:
            return
        if previous_start is None or not push.opened_before(user, previous_start):
            return
        with self._board.lock:
            notified = self._board.notified.get(user)
        if notified is not None and notified >= previous_start:
            return
        log_event(log, "changes found that no push notification announced; channel replaced",
                  level=logging.WARNING, user=user, items=outcome.items)
        push.suspect(user)

    def start(self, config: Config) -> None:
        from calsync.service.push import PushService  # the adapters' imports stay out of `calsync --help`

        service = PushService(config, self.notify_change, on_state=self._listener_changed)
        self.service = service
        service.start()  # a listener that cannot listen is down and retried, never fatal

    def _listener_changed(self, up: bool, error: str | None) -> None:
        """The listener came up or went down (its own thread): STATUS= and the record follow."""
        self._wake()

    def reload(self, old: Config, new: Config) -> None:
        before, after = old.google, new.google
        if self.service is not None and (not after.push or after.push_listen != before.push_listen):
            self.service.stop(time.monotonic() + PUSH_STOP_GRACE)  # off, or moved: start afresh
            self.service = None
        if after.push and self.service is None:
            self.start(new)
        elif self.service is not None:
            self.service.reload(new)

    def stop_listening(self) -> None:
        """Shutdown begins: no notification starts anything any more."""
        if self.service is not None:
            self.service.listener.stop()

    def stop(self) -> None:
        """Shutdown, once the runs are over: every channel stopped, within PUSH_STOP_GRACE."""
        if self.service is not None:
            self.service.stop(time.monotonic() + PUSH_STOP_GRACE)

    def listener(self) -> tuple[bool, str | None] | None:
        """The push listener's (listening, why not); None without push."""
        push = self.service
        if push is None:
            return None
        return (push.listener.up, push.listener.error)


__all__ = ["PUSH_STOP_GRACE", "PushRuns"]
