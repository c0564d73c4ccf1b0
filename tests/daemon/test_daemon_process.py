"""`python -m calsync run` as a real process, with a notify socket the test owns.

The configuration's Salesforce is a closed loopback port, so every calendar fails to map: the
daemon must come up, report the failures in STATUS=, keep running, reload on SIGHUP and stop
with exit status 0 on SIGTERM/SIGINT. (Syncing real calendars against the emulators:
test_daemon_sync_e2e.py.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from daemon_helpers import NotifyListener, write_config

USERS = ["alice@acme.test", "bob@acme.test"]


class DaemonProcess:
    def __init__(self, config: Path, listener: NotifyListener, **env: str) -> None:
        self.log_path = config.parent / "daemon.log"
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "calsync", "--config", str(config), "run"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            env={**os.environ, "NOTIFY_SOCKET": listener.address,
                 "CALSYNC_INTERVAL_SECONDS": "0.5", **env},
        )

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> tuple[int, float]:
        started = time.monotonic()
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        return code, time.monotonic() - started

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()


@pytest.fixture
def listener():
    sock = NotifyListener()
    yield sock
    sock.close()


@pytest.fixture
def start(tmp_path: Path, listener: NotifyListener):
    started: list[DaemonProcess] = []

    def run(users: list[str] = USERS, **env: str) -> DaemonProcess:
        config = write_config(tmp_path / "calsync.toml", users)
        process = DaemonProcess(config, listener, **env)
        started.append(process)
        return process

    yield run
    for process in started:
        process.kill()


def failing(message: dict[str, str]) -> bool:
    return "2 failing" in message.get("STATUS", "")


def test_daemon_keeps_running_when_calendars_fail_and_exits_0_on_sigterm(start, listener):
    daemon = start()
    ready = listener.wait_for("READY", "1", timeout=15)
    assert ready["STATUS"].startswith("2 calendars")
    listener.wait_for("STATUS", where=failing, timeout=15)
    time.sleep(0.5)
    assert daemon.proc.poll() is None  # failing calendars do not stop the daemon
    code, seconds = daemon.stop(signal.SIGTERM)
    assert code == 0, daemon.output()
    assert seconds < 10
    listener.wait_for("STOPPING", "1", timeout=2)
    output = daemon.output()
    assert 'msg="calendar failed" user=alice@acme.test' in output
    assert 'msg="daemon stopped"' in output or "still syncing" in output


def test_sigint_is_a_clean_stop_too(start, listener):
    daemon = start()
    listener.wait_for("READY", "1", timeout=15)
    code, _ = daemon.stop(signal.SIGINT)
    assert code == 0, daemon.output()
    assert "Traceback" not in daemon.output()


def test_sighup_reloads_the_calendars(start, listener, tmp_path):
    daemon = start()
    listener.wait_for("READY", "1", timeout=15)
    write_config(tmp_path / "calsync.toml", [*USERS, "carol@acme.test"])
    daemon.proc.send_signal(signal.SIGHUP)
    reloading = listener.wait_for("RELOADING", "1", timeout=5)
    assert int(reloading["MONOTONIC_USEC"]) > 0
    ready = listener.wait_for("READY", "1", timeout=5)
    assert ready["STATUS"].startswith("3 calendars")
    assert daemon.stop()[0] == 0
    assert 'msg="configuration reloaded" calendars=3 added=carol@acme.test' in daemon.output()


def test_bad_configuration_on_sighup_keeps_the_daemon_running(start, listener, tmp_path):
    daemon = start()
    listener.wait_for("READY", "1", timeout=15)
    good = (tmp_path / "calsync.toml").read_text()
    (tmp_path / "calsync.toml").write_text("[sync]\nusers = []\n")
    daemon.proc.send_signal(signal.SIGHUP)
    listener.wait_for("RELOADING", "1", timeout=5)
    ready = listener.wait_for("READY", "1", timeout=5)
    # The failure reaches systemd: STATUS= says so (and keeps saying it) until a reload succeeds.
    assert ready["STATUS"].startswith("reload FAILED, running the previous configuration (")
    assert "sync.users: must list at least one address); 2 calendars" in ready["STATUS"]
    assert daemon.proc.poll() is None
    (tmp_path / "calsync.toml").write_text(good)
    daemon.proc.send_signal(signal.SIGHUP)
    listener.wait_for("RELOADING", "1", timeout=5)
    assert listener.wait_for("READY", "1", timeout=5)["STATUS"].startswith("2 calendars")
    assert daemon.stop()[0] == 0
    assert "configuration reload failed" in daemon.output()
    assert "sync.users: must list at least one address" in daemon.output()


def test_watchdog_pings_at_half_the_timeout(start, listener):
    # 0.4 s: a ping every 0.2 s. A long interval keeps syncs (and their 3 s of connection
    # retries) out of the way: first runs are spread over the first minute.
    daemon = start(WATCHDOG_USEC="400000", CALSYNC_INTERVAL_SECONDS="600")
    listener.wait_for("READY", "1", timeout=15)
    first = listener.wait_for("WATCHDOG", "1", timeout=2)
    started = time.monotonic()
    for _ in range(3):
        listener.wait_for("WATCHDOG", "1", timeout=2)
    assert first and time.monotonic() - started < 1.5
    assert daemon.stop()[0] == 0


def test_watchdog_meant_for_another_process_is_not_pinged(start, listener):
    daemon = start(WATCHDOG_USEC="400000", WATCHDOG_PID="1", CALSYNC_INTERVAL_SECONDS="600")
    listener.wait_for("READY", "1", timeout=15)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        listener.receive(max(0.01, deadline - time.monotonic()))
    assert not any("WATCHDOG" in m for m in listener.seen)
    assert daemon.stop()[0] == 0


def test_bad_configuration_at_start_exits_78_without_ready(tmp_path, listener):
    config = tmp_path / "calsync.toml"
    config.write_text("[sync]\nusers = ['x@acme.test']\n")
    result = subprocess.run(
        [sys.executable, "-m", "calsync", "--config", str(config), "run"],
        capture_output=True, text=True, timeout=30,
        env={**os.environ, "NOTIFY_SOCKET": listener.address},
    )
    assert result.returncode == 78, result.stderr
    assert "state: " in result.stderr or "state.path" in result.stderr
    assert listener.receive(0.2) is None
