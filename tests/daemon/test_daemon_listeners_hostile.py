"""The daemon's listeners under hostile clients, against `calsync run` as a real process with
push notifications and /metrics on loopback, both emulators behind it (issue 17).

- 1,100 idle connections with the daemon's open-files limit at 1,024 (systemd's default):
  the daemon keeps its descriptors, does not spin, and a real notification still syncs its
  calendar;
- `Content-Length: -1` followed by a large body: 400 at once, nothing read into memory;
- the push port taken by someone else at start: the daemon polls on, says push is down
  (STATUS=, status, status --check, the metrics) and listens once the port is free;
  an IPv6 listen address works;
- 2,000 forged notifications: counted in the metrics, logged once per cause.
"""

from __future__ import annotations

import http.client
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from daemon_helpers import NotifyListener, wait_until
from prometheus_client.parser import text_string_to_metric_families

ALICE, BOB, CAROL = "alice@acme.test", "bob@acme.test", "carol@acme.test"


def _free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _limit_open_files(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
    return apply


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=timeout) as answer:
        return answer.read()


def _lists(google_emu, user: str) -> int:
    return google_emu.backend.stats()["events_list_calls"].get(user, 0)


@pytest.fixture
def daemon(make_config, google_emu, sync, tmp_path: Path, processes):
    """start(push_host=..., metrics=True, rlimit=None, interval=600, before=None) → Running."""
    google_emu.backend.push.require_https = False
    notify = NotifyListener()

    class Running:
        pass

    def start(push_host: str = "127.0.0.1", push_port: int | None = None, metrics_host: str = "127.0.0.1",
              rlimit: int | None = None, interval: float = 600, wait_channels: bool = True) -> Running:
        port = push_port or _free_port(push_host)
        where = f"[{push_host}]:{port}" if ":" in push_host else f"{push_host}:{port}"
        metrics_port = _free_port(metrics_host)
        metrics_where = f"[{metrics_host}]:{metrics_port}" if ":" in metrics_host else f"{metrics_host}:{metrics_port}"
        textfile = tmp_path / "calsync.prom"
        path = make_config(
            sync={"users": [CAROL, BOB, ALICE]},  # alice's and bob's first polls come 20-60 s in
            google={"push_url": f"http://{where}/google/notify", "push_listen": where},
            metrics={"textfile": str(textfile), "listen": metrics_where},
        )
        assert sync(path).ok
        log = tmp_path / "daemon.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "calsync", "--config", str(path), "run"],
            stdin=subprocess.DEVNULL, stdout=log.open("ab"), stderr=subprocess.STDOUT,
            env={**os.environ, "CALSYNC_INTERVAL_SECONDS": str(interval),
                 "NOTIFY_SOCKET": notify.address},
            preexec_fn=_limit_open_files(rlimit) if rlimit else None,
        )
        processes.append(proc)
        running = Running()
        running.proc, running.log, running.path, running.notify = proc, log, path, notify
        running.url = f"http://{where}/google/notify"
        running.metrics_url = f"http://{metrics_where}/metrics"
        running.port, running.textfile = port, textfile
        notify.wait_for("READY", "1", timeout=20)
        if wait_channels:
            wait_until(lambda: len(google_emu.backend.push.live()) >= 3, timeout=20)
        return running

    yield start
    notify.close()


def _notification(google_emu, user: str) -> dict[str, str]:
    channel = google_emu.backend.push.live(user)[0]
    return {"X-Goog-Channel-ID": channel.id, "X-Goog-Channel-Token": channel.token,
            "X-Goog-Resource-ID": channel.resource_id, "X-Goog-Resource-State": "exists",
            "X-Goog-Message-Number": "9", "Content-Length": "0"}


def _post(url: str, headers: dict[str, str], timeout: float = 5.0) -> int:
    host, port = url.split("//")[1].split("/")[0].rsplit(":", 1)
    conn = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=timeout)
    try:
        conn.request("POST", "/google/notify", headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()


def _idle_connections(port: int, count: int, host: str = "127.0.0.1") -> list[socket.socket]:
    """`count` connections that send half a request and then nothing (as fast as the listener
    takes them; one that is not taken within 2 s ends the flood)."""
    opened = []
    for _ in range(count):
        try:
            sock = socket.create_connection((host, port), timeout=2)
        except OSError:
            break
        opened.append(sock)
        try:
            sock.sendall(b"POST /google/notify HTTP/1.1\r\nHost: calsync\r\n")
        except OSError:
            pass  # already closed by the listener (made room for a newer one)
    return opened


def test_eleven_hundred_idle_connections_do_not_starve_the_daemon(daemon, google_emu):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 4096:
        pytest.skip(f"this process may open only {hard} files")
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192) if hard != resource.RLIM_INFINITY else 8192, hard))
    try:
        running = daemon(rlimit=1024)
        pid = running.proc.pid
        before = _lists(google_emu, ALICE)
        flood = _idle_connections(running.port, 1100)
        try:
            assert len(flood) == 1100  # every one taken: the oldest idle ones are closed for them
            cpu0, t0 = _cpu_seconds(pid), time.monotonic()
            time.sleep(3)
            share = (_cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
            assert share < 0.5, f"the daemon spins: {share:.0%} of a core"  # accept() in a loop
            descriptors = len(os.listdir(f"/proc/{pid}/fd"))
            assert descriptors < 400, descriptors  # bounded: room left for the calendars
            # A real notification gets through and its calendar syncs (a worker, the state
            # database and the network all still usable).
            assert _post(running.url, _notification(google_emu, ALICE), timeout=10) == 200
            wait_until(lambda: _lists(google_emu, ALICE) > before, timeout=10)
            assert b"calsync_push_notifications_acted_total" in _get(running.metrics_url)
            assert running.proc.poll() is None
        finally:
            for sock in flood:
                sock.close()
        served = _samples(_get(running.metrics_url).decode())
        closed = sum(v for (name, labels), v in served.items()
                     if name == "calsync_listener_connections_closed_total" and ("listener", "push") in labels)
        assert closed > 0  # the idle ones were closed (evicted, or timed out)
        running.proc.send_signal(signal.SIGTERM)
        assert running.proc.wait(30) == 0
        assert "Too many open files" not in running.log.read_text()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_negative_content_length_is_refused_without_reading_the_body(daemon, google_emu):
    running = daemon()
    pid = running.proc.pid
    rss = _rss_mb(pid)
    sock = socket.create_connection(("127.0.0.1", running.port), timeout=10)
    head = ("POST /google/notify HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n"
            "X-Goog-Channel-ID: x\r\nX-Goog-Resource-State: exists\r\n\r\n").encode()
    sock.sendall(head)
    answer = sock.recv(200)
    assert answer.startswith(b"HTTP/1.1 400"), answer
    sent = 0
    chunk = b"x" * 65536
    try:
        while sent < 100 * 2**20:  # the old handler read all of this into memory
            sock.sendall(chunk)
            sent += len(chunk)
    except OSError:
        pass  # closed by the listener: nothing more is read
    finally:
        sock.close()
    assert _rss_mb(pid) < rss + 20, (rss, _rss_mb(pid))
    # A POST without Content-Length, and one longer than a notification can be: refused too.
    for headers, status in (({}, 411), ({"Content-Length": "10000000"}, 413)):
        conn = http.client.HTTPConnection("127.0.0.1", running.port, timeout=10)
        conn.putrequest("POST", "/google/notify", skip_accept_encoding=True)
        for name, value in {"X-Goog-Channel-ID": "x", "X-Goog-Resource-State": "exists", **headers}.items():
            conn.putheader(name, value)
        conn.endheaders()
        assert conn.getresponse().status == status, headers
        conn.close()
    served = _samples(_get(running.metrics_url).decode())
    refused = {labels: v for (name, labels), v in served.items()
               if name == "calsync_push_notifications_refused_total"}
    assert refused[(("reason", "bad_request"),)] >= 1
    assert refused[(("reason", "no_length"),)] >= 1
    assert refused[(("reason", "too_large"),)] >= 1
    assert running.proc.poll() is None


def test_a_taken_push_port_does_not_stop_polling_and_is_retried(daemon, google_emu, sf_emu, cli, company):
    port = _free_port()
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", port))
    squatter.listen(1)
    try:
        running = daemon(push_port=port, interval=2, wait_channels=False)
        status = running.notify.wait_for("STATUS", timeout=20, where=lambda m: "push listener DOWN" in m["STATUS"])
        assert "Address already in use" in status["STATUS"] and "polling goes on" in status["STATUS"]
        # Polling goes on: a change in Google reaches Salesforce without any notification.
        google_emu.backend.update_event(company.meetings["external"], {"summary": "Moved while push is down"})
        wait_until(lambda: any(r["Subject"] == "Moved while push is down"
                               for r in sf_emu.backend.list_records("Event")), timeout=30)
        shown = cli("--config", str(running.path), "status")
        assert "push listener: DOWN (cannot listen on 127.0.0.1:" in shown.stdout, shown.stdout
        check = cli("--config", str(running.path), "status", "--check")
        assert check.returncode == 1 and "push listener down" in check.stdout, check.stdout
        wait_until(lambda: running.textfile.exists() and _samples(running.textfile.read_text()).get(
            ("calsync_listener_up", (("listener", "push"),))) == 0, timeout=20)
        assert running.proc.poll() is None  # not exit 78
    finally:
        squatter.close()
    # The port is free again: the listener binds on its next try (5 s, then 10, 20 ...).
    wait_until(lambda: _answers(f"http://127.0.0.1:{port}/"), timeout=40)
    running.notify.wait_for("STATUS", timeout=20, where=lambda m: "DOWN" not in m["STATUS"])
    assert "push listener listening after a failed bind" in running.log.read_text()
    shown = cli("--config", str(running.path), "status")
    assert "DOWN" not in shown.stdout
    running.proc.send_signal(signal.SIGTERM)
    assert running.proc.wait(30) == 0


def _answers(url: str) -> bool:
    try:
        return _get(url, timeout=2) == b"calsync push listener\n"
    except OSError:
        return False


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_ipv6_listen_addresses_work(daemon):
    running = daemon(push_host="::1", metrics_host="::1", wait_channels=False)
    assert _answers(f"http://[::1]:{running.port}/")
    assert b"calsync_listener_up" in _get(running.metrics_url)
    assert running.proc.poll() is None
    assert "DOWN" not in running.notify.seen[-1].get("STATUS", "")


def test_a_flood_of_forged_notifications_is_counted_and_logged_once_per_cause(daemon, google_emu):
    running = daemon()
    conn = http.client.HTTPConnection("127.0.0.1", running.port, timeout=10)
    forged = {"X-Goog-Channel-ID": "forged", "X-Goog-Channel-Token": "t", "X-Goog-Resource-State": "exists",
              "Content-Length": "0"}
    wrong = {**_notification(google_emu, ALICE), "X-Goog-Channel-Token": "guessed"}
    for n in range(2000):
        conn.request("POST", "/google/notify", headers=forged if n % 2 else wrong)
        response = conn.getresponse()
        response.read()
        assert response.status in (403, 404)
    conn.close()
    served = _samples(_get(running.metrics_url).decode())
    assert served[("calsync_push_notifications_refused_total", (("reason", "unknown_channel"),))] == 1000
    assert served[("calsync_push_notifications_refused_total", (("reason", "wrong_token"),))] == 1000
    lines = [line for line in running.log.read_text().splitlines() if "push notification refused" in line]
    assert len(lines) == 2, lines  # one per cause this minute; the count follows a minute later
    assert all(re.search(r"\bcount=1\b", line) for line in lines)
    assert running.proc.poll() is None
