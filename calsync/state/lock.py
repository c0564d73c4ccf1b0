"""The single-writer lock: one calsync process at a time writes a state database.

Two writers on one state database (a hand-run `calsync sync` beside the daemon, two `sync` at
once) each plan the same new meetings and both create them: on an org without an External ID
field nothing in Salesforce stops the second copy. So `sync`, `run` and `resync` (not
`--dry-run`) hold an exclusive `fcntl.flock` on `<state path>.lock` while they write; `status`,
`doctor` and `explain` never take it. The kernel releases a flock when its process dies, SIGKILL
included, so a crash never leaves it stuck. The holder writes its pid, command and start time
into the file, for the message the refused writer prints.

`run` holds the lock for its whole life: while the daemon runs, `calsync sync` is refused (exit
75, EX_TEMPFAIL) or waits (`--wait SECONDS`) until it stops.

A writer run as root on a state directory that belongs to another user (the `calsync` system
user of the systemd install) is refused too (exit 77, `WrongUser`): the lock file, a new
database or token file it would create would belong to root, and the daemon could no longer
open them. `sudo -u calsync calsync ...` is the way (systemd/README.md).
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

from calsync.core.config_model import StateConfig
from calsync.core.errors import EXIT_NOPERM, CalsyncError, StateError, TransientError
from calsync.state import postgres_lock
from calsync.state.postgres import is_url
from calsync.state.sqlite import private_directory

POLL = 0.1  # seconds between two tries while waiting


class LockBusy(TransientError):
    """Another calsync process is writing this state database (exit 75)."""


class WrongUser(CalsyncError):
    """Run as root where the files belong to the service's user (exit 77, EX_NOPERM)."""

    exit_code = EXIT_NOPERM


def refuse_foreign_owner(path: str | Path, what: str = "the state database") -> None:
    """WrongUser when running as root and the nearest existing directory of `path` belongs to
    another user: what root creates there, that user cannot open."""
    if os.geteuid() != 0:
        return
    target = Path(path)
    directory = next((p for p in [target.parent, *target.parent.parents] if p.exists()), None)
    if directory is None:
        return
    owner = directory.stat().st_uid
    if owner == 0:
        return
    try:
        import pwd

        name = pwd.getpwuid(owner).pw_name
    except (KeyError, ImportError):
        name = str(owner)
    raise WrongUser(
        f"{directory} belongs to the user {name}: run this as that user (sudo -u {name} calsync ...),"
        f" not as root, or {what} would get files {name} cannot open"
    )


def _located(state: str | Path | StateConfig) -> tuple[str | Path, str | None]:
    if isinstance(state, StateConfig):
        return state.location, state.password.reveal() if state.password else None
    return state, None


class WriterLock:
    """The exclusive lock of one state database, for one process (not re-entrant). A
    PostgreSQL state's ([state] url) is an advisory lock in the database (postgres_lock.py)."""

    def __init__(self, state_path: str | Path | StateConfig, command: str) -> None:
        location, password = _located(state_path)
        self._pg = (postgres_lock.PostgresLock(str(location), command, password)
                    if is_url(location) else None)
        self.shown = self._pg.shown if self._pg else str(location)
        self.state_path = Path(str(location))  # a SQLite file (unused for a URL)
        self.path = Path(f"{location}.lock")
        self.command = command
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None or (self._pg is not None and self._pg.held)

    def acquire(self, wait: float = 0.0) -> None:
        """Take the lock, waiting up to `wait` seconds for its holder; LockBusy if still held."""
        if self._pg is not None:
            holder = self._pg.try_acquire(wait)
            if holder is not None:
                raise LockBusy(self._busy(holder, wait))
            return
        refuse_foreign_owner(self.state_path)
        fd = self._open()
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = self._holder_now()
                    os.close(fd)
                    raise LockBusy(self._busy(holder, wait)) from None
                time.sleep(min(POLL, max(deadline - time.monotonic(), 0.0)))
            except OSError as exc:
                os.close(fd)
                raise StateError(f"{self.path}: cannot lock the state database: {exc.strerror}") from exc
        self._fd = fd
        self._write_holder(fd)

    def release(self) -> None:
        if self._pg is not None:
            self._pg.release()
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the descriptor releases the flock

    def __enter__(self) -> "WriterLock":
        if not self.held:
            self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _open(self) -> int:
        """The lock file, created 0600; never through a symbolic link planted in its place
        (O_NOFOLLOW: its target would be truncated by the holder note)."""
        try:
            private_directory(self.path.parent)
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise StateError(
                    f"{self.path}: the lock file of the state database {self.state_path} is a"
                    " symbolic link, which calsync does not follow; remove it"
                ) from exc
            raise StateError(
                f"{self.path}: cannot create the lock file of the state database"
                f" {self.state_path}: {exc.strerror}"
            ) from exc

    def _holder_now(self) -> dict[str, Any]:
        """Who holds the lock. A holder writes this just after it took the lock, so a writer
        refused at that very moment waits a little for it rather than name nobody."""
        holder = _holder(self.path)
        for _ in range(25):
            if holder.get("command"):
                break
            time.sleep(0.02)
            holder = _holder(self.path)
        return holder

    def _write_holder(self, fd: int) -> None:
        since = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        text = json.dumps({"pid": os.getpid(), "command": self.command, "since": since})
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, text.encode(), 0)
        except OSError:
            pass  # only the refusal message of another writer would miss it

    def _busy(self, holder: dict[str, Any], wait: float) -> str:
        who = "another calsync process"
        if holder.get("command"):
            on = f" on {holder['host']}" if holder.get("host") else ""
            who = (
                f"`calsync {holder['command']}` (pid {holder.get('pid', '?')}{on},"
                f" since {holder.get('since', '?')})"
            )
        waited = f"after waiting {wait:g} s" if wait else "pass --wait SECONDS to wait for it"
        text = f"{self.shown}: {who} is writing this state database; {waited}"
        if holder.get("command") == "run":
            text += (
                " (the daemon syncs every calendar every interval_minutes and holds the database"
                " while it runs: stop it first to sync by hand)"
            )
        return text


def daemon_holder(state_path: str | Path | StateConfig) -> int | None:
    """The pid of a running `calsync run` holding this state database, else None.

    Read from the holder note without touching the lock itself (`doctor` and `status` never
    take it): the note names the daemon and its pid must still be alive. A PostgreSQL state's
    daemon counts only on this host (its pid means nothing elsewhere).
    """
    location, password = _located(state_path)
    if is_url(location):
        holder = postgres_lock.holder(str(location), password)
        if holder.get("host") != postgres_lock.this_host():
            return None
    else:
        holder = _holder(Path(f"{location}.lock"))
    pid = holder.get("pid")
    if holder.get("command") != "run" or not isinstance(pid, int):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another user's (the calsync user's daemon seen by an admin)
    try:  # the note outlives its writer: a pid reused by another program is not the daemon
        if b"calsync" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return None
    except OSError:
        pass
    return pid


def _holder(path: Path) -> dict[str, Any]:
    try:
        found = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}
