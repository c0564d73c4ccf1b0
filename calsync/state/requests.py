"""Admin commands handed to the running daemon (`requests`, m010): the queries of service/handoff.py.

The CLI adds a pending row (`add_request`), the daemon takes it (`take_request`), notes its
progress and closes it with the exit status and the lines to print (`close_request`); the CLI
reads the row until it is closed, or withdraws it while still pending (`withdraw_request`).
Rows are kept `KEEP_DAYS`, for who asked what and what came of it. handoff.py says the protocol.

Functions of a `Connection` (a `StateStore`). One SQL for both engines: the new row's id is the
highest inside the write transaction that inserted it (writers follow one another on both
engines), and a withdrawal reads the state before it changes it, instead of SQLite's own
`last_insert_rowid()` and `changes()`.
"""

from __future__ import annotations

from typing import Any

from calsync.state.connection import Connection


def add_request(store: Connection, command: str, arguments: str, by: str | None, at: str,
                forget_before: str, state: str) -> int:
    """Insert a request (its arguments as JSON text); rows requested before `forget_before`
    go. Returns the new request's id."""
    with store.transaction():
        store.exec("DELETE FROM requests WHERE requested_at < ?", [forget_before])
        store.exec(
            "INSERT INTO requests (command, arguments, requested_by, requested_at, state)"
            " VALUES (?, ?, ?, ?, ?)",
            [command, arguments, by, at, state],
        )
        return int(store.rows("SELECT MAX(id) AS id FROM requests")[0]["id"])


def request(store: Connection, request_id: int) -> dict[str, Any] | None:
    rows = store.rows("SELECT * FROM requests WHERE id = ?", [request_id])
    return rows[0] if rows else None


def requests_in(store: Connection, state: str) -> list[dict[str, Any]]:
    """The rows in `state`, oldest first."""
    return store.rows("SELECT * FROM requests WHERE state = ? ORDER BY id", [state])


def any_in(store: Connection, state: str) -> bool:
    """One indexed look (the daemon's every few seconds): is any row in `state`?"""
    return bool(store.rows("SELECT 1 FROM requests WHERE state = ? LIMIT 1", [state]))


def withdraw_request(store: Connection, request_id: int, pending: str, withdrawn: str,
                     at: str) -> bool:
    """Withdraw a request still `pending`; False when it was taken (or closed) meanwhile."""
    with store.transaction():
        rows = store.rows("SELECT state FROM requests WHERE id = ?", [request_id])
        if not rows or rows[0]["state"] != pending:
            return False
        store.exec("UPDATE requests SET state = ?, finished_at = ? WHERE id = ?",
                   [withdrawn, at, request_id])
        return True


def take_request(store: Connection, request_id: int, state: str, pid: int, at: str) -> None:
    store.exec("UPDATE requests SET state = ?, daemon_pid = ?, taken_at = ? WHERE id = ?",
               [state, pid, at, request_id])


def note_request_progress(store: Connection, request_id: int, line: str) -> None:
    with store.transaction():
        store.exec("UPDATE requests SET progress = ? WHERE id = ?", [line, request_id])


def close_request(store: Connection, request_id: int, state: str, code: int, output: str,
                  at: str) -> None:
    store.exec(
        "UPDATE requests SET state = ?, exit_code = ?, output = ?, finished_at = ? WHERE id = ?",
        [state, code, output, at, request_id],
    )
