"""The single-writer lock of a PostgreSQL state: a session advisory lock held for the writer's life.

The same rule as lock.py's flock for a SQLite file (one calsync process writes a state at a
time: `sync`, `run`, `resync`, `state copy`), for a database that processes on several hosts can
reach, where a lock file could not see them all: `pg_try_advisory_lock(WRITER_LOCK)` on a
connection of its own, kept open while the process writes. PostgreSQL releases it when that
connection ends, so a process killed (SIGKILL included) never leaves it stuck; a host that
vanishes holds it until the server notices the dead connection (TCP keepalives).

The holder names itself in its connection's `application_name` (`calsync run 1234 host
2026-11-25T09:00:00Z`: command, pid, host, since), which another writer reads from
`pg_stat_activity` for its refusal message, and `daemon_holder` to find a daemon on this host.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
from typing import Any

import psycopg

from calsync.core.errors import StateError
from calsync.state.postgres import conninfo_of, fault, where

WRITER_LOCK = 0x63616C73796E6300  # "calsyn" 00; the write transactions' key is 01, migrations' 02
POLL = 0.2


def _holders(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """The sessions holding the writer lock (one at most), with what they said of themselves."""
    rows = conn.execute(
        "SELECT a.application_name AS name, a.pid AS backend FROM pg_locks AS l"
        " JOIN pg_stat_activity AS a ON a.pid = l.pid WHERE l.locktype = 'advisory'"
        " AND l.granted AND l.classid = %s AND l.objid = %s AND l.objsubid = 1"
        " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        [WRITER_LOCK >> 32, WRITER_LOCK & 0xFFFFFFFF],
    ).fetchall()
    found = []
    for name, _backend in rows:
        parts = str(name or "").split()
        if len(parts) == 5 and parts[0] == "calsync" and parts[2].isdigit():
            found.append({"command": parts[1], "pid": int(parts[2]), "host": parts[3],
                          "since": parts[4]})
        else:
            found.append({})
    return found


def this_host() -> str:
    """This host's name as a holder gives it (short, no spaces: it is one word of the note)."""
    return (socket.gethostname().split(".")[0][:20] or "?").replace(" ", "_")


class PostgresLock:
    """The exclusive writer lock of one PostgreSQL state, for one process (not re-entrant)."""

    def __init__(self, url: str, command: str, password: str | None = None) -> None:
        self.url, self.shown, self.command = url, where(url), command
        self._password = password
        self._conn: psycopg.Connection[Any] | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None

    def _connect(self) -> psycopg.Connection[Any]:
        since = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        host = this_host()
        me = f"calsync {self.command} {os.getpid()} {host} {since}"
        info = conninfo_of(self.url, self._password).replace("application_name=calsync", "")
        try:
            return psycopg.connect(info, autocommit=True, application_name=me[:63])
        except psycopg.Error as exc:
            raise fault(self.shown, exc, "lock") from exc

    def try_acquire(self, wait: float = 0.0) -> dict[str, Any] | None:
        """Take the lock, waiting up to `wait` seconds for its holder: None when taken, else
        what the holder says of itself ({} when it says nothing). lock.py words the refusal."""
        conn = self._connect()
        deadline = time.monotonic() + wait
        try:
            while True:
                got = conn.execute("SELECT pg_try_advisory_lock(%s)", [WRITER_LOCK]).fetchone()
                if got and got[0]:
                    break
                if time.monotonic() >= deadline:
                    holders = _holders(conn)
                    conn.close()
                    return holders[0] if holders else {}
                time.sleep(min(POLL, max(deadline - time.monotonic(), 0.0)))
        except psycopg.Error as exc:
            conn.close()
            raise fault(self.shown, exc, "lock") from exc
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return None

    def release(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()  # the session ends: PostgreSQL releases its advisory lock



def holder(url: str, password: str | None = None) -> dict[str, Any]:
    """Who holds the writer lock of this state ({} when nobody does, or it cannot be asked)."""
    try:
        with psycopg.connect(conninfo_of(url, password), autocommit=True, connect_timeout=5) as conn:
            found = _holders(conn)
    except psycopg.Error as exc:
        raise StateError(str(fault(where(url), exc, "read"))) from exc
    return found[0] if found else {}
