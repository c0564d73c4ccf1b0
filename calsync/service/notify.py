"""The systemd notify protocol (sd_notify(3)) over a plain AF_UNIX datagram socket.

systemd (Type=notify) passes the socket's address in $NOTIFY_SOCKET: a filesystem path, or an
abstract socket written with a leading '@' (the '@' stands for the leading NUL byte). A message
is newline-separated KEY=VALUE assignments in one datagram: READY=1, RELOADING=1 (with
MONOTONIC_USEC= since systemd 253, ignored by older versions), STOPPING=1, WATCHDOG=1 and
STATUS=<one line>. Without $NOTIFY_SOCKET (run by hand, in a container, in tests) every call is a
no-op, so the daemon never needs to know whether systemd is there.

The watchdog (sd_watchdog_enabled(3)): $WATCHDOG_USEC is the timeout, $WATCHDOG_PID (when set)
the process it is meant for; we ping at half the timeout, as the man page recommends.

No dependency (python-systemd, sdnotify): the protocol is one sendto().
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

from calsync.core.logs import printable

log = logging.getLogger("calsync.notify")  # names predate the layers (ARCHITECTURE.md)


def socket_address(value: str) -> str | bytes:
    """$NOTIFY_SOCKET → an address for sendto(): '@name' is the abstract name b'\\0name'."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    return value


def format_message(**assignments: str | int) -> bytes:
    """KEY=VALUE lines for one datagram. Values lose newlines (a STATUS= is one line) and
    their other control characters are escaped (`systemctl status` shows STATUS= on a
    terminal, and a failing calendar's error comes from a server)."""
    lines = []
    for key, value in assignments.items():
        text = printable(str(value).replace("\r", " ").replace("\n", " "))
        lines.append(f"{key}={text}")
    return ("\n".join(lines) + "\n").encode()


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds, the clock systemd expects in MONOTONIC_USEC=."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def watchdog_interval(environ: Mapping[str, str] | None = None, pid: int | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings (half of $WATCHDOG_USEC), or None: no watchdog for us.

    None when $WATCHDOG_USEC is unset or not a positive integer, or when $WATCHDOG_PID names
    another process (the variables were inherited from a parent), per sd_watchdog_enabled(3).
    """
    env = os.environ if environ is None else environ
    raw = env.get("WATCHDOG_USEC", "")
    try:
        usec = int(raw)
    except ValueError:
        return None
    if usec <= 0:
        return None
    owner = env.get("WATCHDOG_PID")
    if owner:
        try:
            if int(owner) != (os.getpid() if pid is None else pid):
                return None
        except ValueError:
            return None
    return usec / 1_000_000 / 2


class Notifier:
    """Sends notify messages to one address; a disabled Notifier (no address) sends nothing.

    Failures to send are logged once and otherwise ignored: losing a STATUS= must not stop the
    daemon (a lost READY=1 makes systemd time the start out, which is the right outcome anyway).
    """

    def __init__(self, address: str | None) -> None:
        self.address = address or None
        self._socket: socket.socket | None = None
        self._warned = False

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if environ is None else environ
        return cls(env.get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, **assignments: str | int) -> bool:
        """Send one datagram; True when it was handed to the socket."""
        if self.address is None or not assignments:
            return False
        message = format_message(**assignments)
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._socket.sendto(message, socket_address(self.address))
        except OSError as exc:
            if not self._warned:
                log.warning(
                    "cannot notify systemd",
                    extra={"fields": {"socket": self.address, "error": exc.strerror or str(exc)}},
                )
                self._warned = True
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.send(READY=1, **({"STATUS": status} if status else {}))

    def reloading(self) -> bool:
        # MONOTONIC_USEC lets systemd (>= 253, Type=notify-reload) match the reload to this
        # message; older versions ignore the extra key.
        return self.send(RELOADING=1, MONOTONIC_USEC=monotonic_usec())

    def stopping(self, status: str | None = None) -> bool:
        return self.send(STOPPING=1, **({"STATUS": status} if status else {}))

    def watchdog(self) -> bool:
        return self.send(WATCHDOG=1)

    def status(self, text: str) -> bool:
        return self.send(STATUS=text)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
