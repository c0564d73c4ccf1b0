"""Admin commands beside the running daemon: the CLI hands the work over and waits for the answer.

`calsync run` holds the single-writer lock (lock.py) for its whole life, so a writing command
(`retry`, `retry --drop`, `resync`) cannot take it while the service runs. Instead of refusing
(exit 75), the command hands the work to the daemon through the state database:

1. the CLI inserts a row in `requests` (m010): the command, its arguments as JSON, who asked
   (history.who). SQLite lets this second connection write beside the daemon's (WAL, a busy
   timeout); the flock is calsync's own writer lock, not SQLite's;
2. the daemon's main loop looks for pending rows every `POLL_SECONDS` (one indexed query), marks
   each `taken` and runs it on its own worker pool once none of the calendars it touches is
   syncing; those calendars are not polled meanwhile (a poll due then runs right after), so the
   command never races the daemon's own sync of the same calendar;
3. the daemon writes the exit status and the lines to print (`admin.Answer`), and the latest
   progress line while it works (a resync's "listed alice@acme.test: 12 meetings");
4. the CLI polls its row, prints the progress and then the answer, and exits with that status:
   0, 1, 65 as if it had run the command itself.

It gives up with exit 75 (EX_TEMPFAIL, as before) when the daemon does not take the request up
within `PICKUP_SECONDS` (a daemon of an older calsync, or one that hangs: the request is
withdrawn, so it never runs later), or when the daemon stops before it finished (the next start
marks such a request `abandoned`; running the command again is safe: every write is
transactional and a resync or retry that ran halfway is completed by the next one). A pending
request nobody waits for any more (its CLI was killed) is never run: the daemon expires pending
rows older than `EXPIRE_SECONDS`. Rows are kept 30 days (who asked what, and what came of it).

Without a running daemon the CLI takes the lock and runs the command itself (`run_writer`).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from calsync.service.admin import Answer
from calsync.core.config import Config
from calsync.core.errors import EXIT_TEMPFAIL
from calsync.state.lock import LockBusy, WriterLock, daemon_holder
from calsync.state import requests
from calsync.state.store import StateStore

POLL_SECONDS = 1.0  # how often the daemon looks for requests
WAIT_POLL = 0.2  # how often the CLI looks at its request
PICKUP_SECONDS = 30.0  # a request the daemon has not taken up by then is withdrawn (exit 75)
EXPIRE_SECONDS = 2 * PICKUP_SECONDS  # older pending requests are never run
KEEP_DAYS = 30

PENDING, TAKEN, DONE = "pending", "taken", "done"
WITHDRAWN, EXPIRED, ABANDONED = "withdrawn", "expired", "abandoned"

Say = Callable[[str], None]


@dataclass(frozen=True)
class Request:
    id: int
    command: str
    arguments: dict[str, Any]
    requested_by: str | None
    requested_at: dt.datetime


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# -- the CLI's side ----------------------------------------------------------------------------------


def run_writer(
    config: Config,
    command: str,
    arguments: Mapping[str, Any],
    local: Callable[[], Answer],
    *,
    lock_name: str,
    wait: float = 0.0,
    by: str | None = None,
    say: Say = lambda line: None,
    progress: Say = lambda line: None,
) -> Answer:
    """Run `local()` under the writer lock, or, when the daemon holds it, hand `command` to the
    daemon and return its answer. Another writer that is not the daemon (a hand-run `sync`) is
    waited for up to `wait` seconds, then LockBusy (exit 75), as before."""
    lock = WriterLock(config.state, lock_name)
    try:
        lock.acquire(0.0)
    except LockBusy:
        pid = daemon_holder(config.state)
        if pid is None:
            if not wait:
                raise
            lock.acquire(wait)
        else:
            return hand_off(config, command, arguments, pid, by=by, say=say, progress=progress)
    with lock:
        return local()


def hand_off(
    config: Config,
    command: str,
    arguments: Mapping[str, Any],
    pid: int,
    *,
    by: str | None = None,
    say: Say = lambda line: None,
    progress: Say = lambda line: None,
    pickup: float = PICKUP_SECONDS,
) -> Answer:
    """Hand `command` to the daemon `pid` and wait for its answer (LockBusy when it does not
    take it up in time, or stops before it is done)."""
    store = StateStore(config.state)
    try:
        request_id = submit(store, command, arguments, by)
        say(f"calsync run (pid {pid}) is running: handed over to it as request {request_id},"
            " waiting for the answer")
        return await_answer(store, request_id, pid, progress=progress, pickup=pickup)
    finally:
        store.close()


def submit(store: StateStore, command: str, arguments: Mapping[str, Any], by: str | None,
           now: dt.datetime | None = None) -> int:
    """Insert a pending request; requests older than KEEP_DAYS go."""
    now = now or _now()
    return requests.add_request(store, command, json.dumps(dict(arguments)), by, _iso(now),
                                _iso(now - dt.timedelta(days=KEEP_DAYS)), PENDING)


def await_answer(
    store: StateStore, request_id: int, pid: int, *, progress: Say = lambda line: None,
    pickup: float = PICKUP_SECONDS, poll: float = WAIT_POLL,
) -> Answer:
    started = time.monotonic()
    shown: str | None = None
    path = store.path
    next_alive_check = 0.0
    try:
        while True:
            row = _row(store, request_id)
            if row["progress"] and row["progress"] != shown:
                shown = row["progress"]
                progress(shown)
            state = row["state"]
            if state == DONE:
                return Answer(int(row["exit_code"]), tuple(json.loads(row["output"] or "[]")))
            if state in (ABANDONED, EXPIRED, WITHDRAWN):
                lines = json.loads(row["output"] or "[]")
                raise LockBusy(f"request {request_id} was not carried out: "
                               + ("; ".join(lines) or state))
            now = time.monotonic()
            if state == PENDING and now - started > pickup and _withdraw(store, request_id):
                raise LockBusy(
                    f"{path}: calsync run (pid {pid}) did not take up request {request_id} within"
                    f" {pickup:g} s (a daemon of an older calsync, or one that hangs); the request"
                    " is withdrawn. Restart the service (systemctl restart calsync), or stop it to"
                    " run this command by hand"
                )
            if now >= next_alive_check:
                next_alive_check = now + 1.0
                if daemon_holder(path) != pid and _row(store, request_id)["state"] != DONE:
                    if _withdraw(store, request_id):
                        raise LockBusy(f"calsync run (pid {pid}) stopped before taking up request"
                                       f" {request_id}; run the command again")
                    if _row(store, request_id)["state"] != DONE:
                        raise LockBusy(
                            f"calsync run (pid {pid}) stopped before finishing request {request_id};"
                            " run the command again (safe: what was written stays written, and a"
                            " second run completes the rest)")
            time.sleep(poll)
    except KeyboardInterrupt:
        _withdraw(store, request_id)  # not started: it never will be; started: the daemon goes on
        raise


def _row(store: StateStore, request_id: int) -> dict[str, Any]:
    row = requests.request(store, request_id)
    if row is None:
        raise LockBusy(f"request {request_id} disappeared from the state database")
    return row


def _withdraw(store: StateStore, request_id: int) -> bool:
    """Withdraw a request still pending; False when the daemon took it meanwhile."""
    return requests.withdraw_request(store, request_id, PENDING, WITHDRAWN, _iso(_now()))


# -- the daemon's side -------------------------------------------------------------------------------


def any_pending(store: StateStore) -> bool:
    """The daemon's cheap look, every POLL_SECONDS: one indexed query, no transaction."""
    return requests.any_in(store, PENDING)


def take(store: StateStore, pid: int, now: dt.datetime | None = None) -> list[Request]:
    """Mark the pending requests taken by `pid` and return them; pending ones older than
    EXPIRE_SECONDS (nobody waits for them any more) expire instead."""
    now = now or _now()
    taken = []
    with store.transaction():
        for row in requests.requests_in(store, PENDING):
            at = dt.datetime.fromisoformat(row["requested_at"])
            if now - at > dt.timedelta(seconds=EXPIRE_SECONDS):
                _close(store, row["id"], EXPIRED, EXIT_TEMPFAIL,
                       ["expired: nobody was waiting for it any more"], now)
                continue
            requests.take_request(store, row["id"], TAKEN, pid, _iso(now))
            try:
                arguments = json.loads(row["arguments"])
            except ValueError:
                arguments = None
            if not isinstance(arguments, dict):
                _close(store, row["id"], ABANDONED, EXIT_TEMPFAIL, ["unreadable arguments"], now)
                continue
            taken.append(Request(row["id"], row["command"], arguments, row["requested_by"], at))
    return taken


def note_progress(store: StateStore, request_id: int, line: str) -> None:
    requests.note_request_progress(store, request_id, line[:500])


def finish(store: StateStore, request_id: int, answer: Answer, now: dt.datetime | None = None) -> None:
    with store.transaction():
        _close(store, request_id, DONE, answer.exit_code, list(answer.lines), now or _now())


def abandon(store: StateStore, request_id: int, why: str, now: dt.datetime | None = None) -> None:
    with store.transaction():
        _close(store, request_id, ABANDONED, EXIT_TEMPFAIL, [why], now or _now())


def abandon_unfinished(store: StateStore, now: dt.datetime | None = None) -> int:
    """At the daemon's start: requests a previous daemon took but never finished."""
    rows = requests.requests_in(store, TAKEN)
    for row in rows:
        abandon(store, row["id"], "the daemon stopped before finishing it", now)
    return len(rows)


def _close(store: StateStore, request_id: int, state: str, code: int, lines: list[str],
           now: dt.datetime) -> None:
    requests.close_request(store, request_id, state, code, json.dumps(lines), _iso(now))


__all__ = ["POLL_SECONDS", "Request", "abandon", "abandon_unfinished", "any_pending", "finish",
           "hand_off", "note_progress", "run_writer", "submit", "take"]
