"""How long a calendar that keeps failing waits before its next run.

The daemon schedules by it; `status` and the metrics estimate the next run with it (without the
jitter), so they agree with what the daemon will do.
"""

from __future__ import annotations

import datetime as dt
import random

MAX_BACKOFF = dt.timedelta(hours=6)
BACKOFF_JITTER = 0.1  # the backoff delay is shortened by up to this fraction


def backoff_delay(
    interval: dt.timedelta,
    failures: int,
    *,
    cap: dt.timedelta = MAX_BACKOFF,
    jitter: float = BACKOFF_JITTER,
    rng: random.Random | None = None,
) -> dt.timedelta:
    """Delay before the next run of a calendar that failed `failures` times in a row.

    interval × 2^(failures-1), at most `cap` (or the interval itself if that is longer), then
    shortened by a random fraction up to `jitter` so calendars failing together (an outage)
    do not come back together. `failures` ≤ 0: the plain interval.
    """
    if failures <= 0:
        return interval
    ceiling = max(cap, interval)
    # Exponent clamped: 2^30 intervals is far past any cap and keeps timedelta from overflowing.
    base = min(interval * (2 ** min(failures - 1, 30)), ceiling)
    fraction = (rng or random).uniform(0.0, jitter) if jitter > 0 else 0.0
    return base * (1 - fraction)
