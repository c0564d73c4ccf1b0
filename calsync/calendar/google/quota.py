"""Google's per-minute request limits (reference A8), kept by every Calendar request calsync makes.

Google Calendar allows 10,000 requests a minute per project and 600 a minute per user of the
project (under delegation, the impersonated user), in sliding one-minute windows; beyond them it
answers 403 `usageLimits` (`rateLimitExceeded`, `userRateLimitExceeded`) or 429 (reference A7,
A8). `RequestBudget` keeps one process under a configurable share of both:

- `acquire(user)` returns once one more request fits: fewer than the project share in the last
  60 seconds, and fewer than the user share for that user. It is a sliding-window log (the
  instants of the requests of the last minute), so no one-minute window ever holds more than
  the share, whatever the number of threads. Every attempt counts, retries included.
- `throttled(user, scope)`: Google said "too many" anyway (other programs share the project,
  or the project's quota is lower than configured). Every later request of the project (or of
  that user, for `userRateLimitExceeded`) waits a pause that doubles with each throttle in a
  row, with jitter: 1, 2, 4 ... 64 s (truncated exponential backoff, reference A7); 403
  `quotaExceeded` (the Calendar usage limits, "long backoff") pauses at least a minute. A
  request that gets through resets the count.

The clock and the sleep are injectable so tests can let minutes pass in no time.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

WINDOW = 60.0  # seconds: Google counts requests per sliding minute (reference A8)
MAX_PAUSE = 64.0  # seconds: the longest pause after throttles in a row
LONG_PAUSE = 60.0  # seconds at least after 403 quotaExceeded ("long backoff", reference A7)

Scope = Literal["project", "user", "quota"]


@dataclass(frozen=True)
class Limits:
    """Requests a minute calsync may make: the project's and each user's share."""

    per_minute: int
    per_user_per_minute: int

    @classmethod
    def share_of(cls, project: int, user: int, share: float) -> "Limits":
        return cls(max(1, int(project * share)), max(1, int(user * share)))


class RequestBudget:
    """A sliding one-minute window per project and per user, plus a pause after throttles."""

    def __init__(
        self,
        limits: Limits,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.limits = limits
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._project: deque[float] = deque()
        self._users: dict[str, deque[float]] = {}
        self._pause_until = 0.0
        self._user_pause: dict[str, float] = {}
        self._strikes = 0
        self.requests = 0  # attempts let through
        self.throttles = 0  # "too many" answers from Google
        self.waited = 0.0  # seconds spent waiting in acquire()

    def acquire(self, user: str) -> float:
        """Wait until one more request of `user` fits; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                wait = self._wait(user, now)
                if wait <= 0:
                    self._project.append(now)
                    self._users.setdefault(user, deque()).append(now)
                    self.requests += 1
                    self.waited += waited
                    return waited
            self._sleep(wait)
            waited += wait

    def _wait(self, user: str, now: float) -> float:
        """Seconds until a request of `user` may go (0: now). Called with the lock held."""
        # An instant leaves the window when `t + WINDOW <= now`: the very expression the wait
        # below is computed with, so float rounding can never count a request as both gone
        # and still there (which let a burst through).
        while self._project and self._project[0] + WINDOW <= now:
            self._project.popleft()
        mine = self._users.get(user)
        if mine is not None:
            while mine and mine[0] + WINDOW <= now:
                mine.popleft()
            if not mine:
                del self._users[user]  # 10,000 users: keep only those active this minute
                mine = None
        wait = max(self._pause_until, self._user_pause.get(user, 0.0)) - now
        if len(self._project) >= self.limits.per_minute:
            wait = max(wait, self._project[0] + WINDOW - now)
        if mine is not None and len(mine) >= self.limits.per_user_per_minute:
            wait = max(wait, mine[0] + WINDOW - now)
        if wait <= 0 and user in self._user_pause:
            del self._user_pause[user]
        return wait

    def throttled(self, user: str, scope: Scope = "project") -> float:
        """Google refused a request as over a rate limit: pause; returns the pause in seconds.

        Throttles that arrive while a pause is already running (several threads hit by the same
        burst) count once, so the pause grows per burst, not per thread.
        """
        with self._lock:
            now = self._clock()
            self.throttles += 1
            running = (self._user_pause.get(user, 0.0) if scope == "user" else self._pause_until)
            if running <= now:
                self._strikes += 1
            base = min(MAX_PAUSE, 2.0 ** (self._strikes - 1))
            pause = base * self._rng.uniform(0.5, 1.0)  # jitter: threads do not return together
            if scope == "quota":
                pause = max(pause, LONG_PAUSE)
            until = now + pause
            if scope == "user":
                self._user_pause[user] = max(self._user_pause.get(user, 0.0), until)
            else:
                self._pause_until = max(self._pause_until, until)
            return pause

    def succeeded(self) -> None:
        """A request got through: the next throttle starts the backoff again from 1 s."""
        if self._strikes:
            with self._lock:
                self._strikes = 0

    def in_last_minute(self) -> int:
        """Requests let through in the last 60 seconds (for logs and tests)."""
        with self._lock:
            now = self._clock()
            return sum(1 for t in self._project if t + WINDOW > now)


__all__ = ["Limits", "RequestBudget", "WINDOW"]
