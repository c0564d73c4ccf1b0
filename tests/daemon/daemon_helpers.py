"""Helpers for the daemon tests: a notify socket the test owns, configurations, a fake sync."""

from __future__ import annotations

import datetime as dt
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from calsync.service.daemon import CalendarRun


def parse_datagram(data: bytes) -> dict[str, str]:
    pairs = [line.split("=", 1) for line in data.decode().splitlines() if line]
    return {key: value for key, value in pairs}


class NotifyListener:
    """An AF_UNIX datagram socket standing in for systemd's notify socket.

    `address` is what goes into $NOTIFY_SOCKET: '@name' (abstract, the default) or a path.
    """

    def __init__(self, address: str | None = None) -> None:
        self.address = address or f"@calsync-test-{uuid.uuid4().hex}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if self.address.startswith("@"):
            self.sock.bind(b"\0" + self.address[1:].encode())
        else:
            self.sock.bind(self.address)
        self.seen: list[dict[str, str]] = []

    def receive(self, timeout: float) -> dict[str, str] | None:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return None
        message = parse_datagram(data)
        self.seen.append(message)
        return message

    def wait_for(
        self, key: str, value: str | None = None, timeout: float = 10.0,
        where: Callable[[dict[str, str]], bool] | None = None,
    ) -> dict[str, str]:
        """The first message from now on with `key` (= `value`, and `where` true)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            message = self.receive(left)
            if message is None:
                break
            if key in message and (value is None or message[key] == value):
                if where is None or where(message):
                    return message
        raise AssertionError(f"no {key}={value or '*'} within {timeout}s; got {self.seen}")

    def close(self) -> None:
        self.sock.close()
        if not self.address.startswith("@"):
            try:
                os.unlink(self.address)
                if os.path.basename(os.path.dirname(self.address)).startswith("csn-"):
                    os.rmdir(os.path.dirname(self.address))  # made by short_socket_path()
            except FileNotFoundError:
                pass


def short_socket_path() -> str:
    """A filesystem socket path well under AF_UNIX's 108-byte limit (pytest's tmp_path may not be)."""
    return os.path.join(tempfile.mkdtemp(prefix="csn-", dir="/tmp"), "notify")


def write_config(path: Path, users: list[str], *, salesforce_url: str = "http://127.0.0.1:9",
                 interval_minutes: int = 40) -> Path:
    """A configuration whose adapters are never reached (fake sync) or fail to connect."""
    path.write_text(
        f"""[sync]
users = {users!r}
interval_minutes = {interval_minutes}
[state]
path = "{path.parent / 'state.db'}"
[google]
service_account_file = "{path.parent / 'no-such-key.json'}"
[salesforce]
instance_url = "{salesforce_url}"
access_token = "not-a-real-token"
""".replace("'", '"')
    )
    return path


@dataclass
class FakeSync:
    """A stand-in for `sync_calendar`: records runs, sleeps and fails as told, per user."""

    sleep: dict[str, float] = field(default_factory=dict)
    failing: set[str] = field(default_factory=set)
    runs: list[tuple[str, float, float]] = field(default_factory=list)  # user, start, end
    failures: dict[str, int] = field(default_factory=dict)
    running: dict[str, int] = field(default_factory=dict)
    max_running: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, config: object, user: str) -> CalendarRun:
        start = time.monotonic()
        with self.lock:
            self.running[user] = self.running.get(user, 0) + 1
            self.max_running[user] = max(self.max_running.get(user, 0), self.running[user])
        try:
            time.sleep(self.sleep.get(user, 0.0))
        finally:
            with self.lock:
                self.running[user] -= 1
                self.runs.append((user, start, time.monotonic()))
        if user in self.failing:
            with self.lock:
                self.failures[user] = self.failures.get(user, 0) + 1
                count = self.failures[user]
            return CalendarRun(user, False, "Salesforce said no", count)
        self.failures[user] = 0
        return CalendarRun(user, True, None, 0)

    def count(self, user: str) -> int:
        with self.lock:
            return sum(1 for u, _, _ in self.runs if u == user)

    def starts(self, user: str) -> list[float]:
        with self.lock:
            return [s for u, s, _ in self.runs if u == user]


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, step: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(step)
    raise AssertionError(f"condition not met within {timeout}s")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
